-- Named servers (JupyterHub's `allow_named_servers`): a user's named server exists,
-- stopped or not, until it is removed; while it starts, runs or stops it also has its
-- `servers` row (same user_id and name).
CREATE TABLE named_servers (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (name <> ''),
    display_name TEXT NOT NULL,
    created TEXT NOT NULL,
    last_activity TEXT,
    PRIMARY KEY (user_id, name)
);
-- Which server an OAuth client is: its owner (user_id) and the server's name ('' for the
-- default one). Client ids are not decodable once names may contain '-'.
ALTER TABLE oauth_clients ADD COLUMN server TEXT NOT NULL DEFAULT '';
