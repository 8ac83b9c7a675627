CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    last_activity TEXT
);
CREATE TABLE servers (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('starting', 'running', 'stopping')),
    port INTEGER NOT NULL,
    pid INTEGER,
    started TEXT NOT NULL,
    last_activity TEXT,
    PRIMARY KEY (user_id, name)
);
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('api', 'server', 'oauth')),
    client_id TEXT,
    session_id TEXT,
    note TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    last_activity TEXT,
    expires_at INTEGER
);
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE oauth_codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    session_id TEXT,
    challenge TEXT,
    challenge_method TEXT,
    expires_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    created TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
