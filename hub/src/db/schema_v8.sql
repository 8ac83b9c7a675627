-- The identity at a provider (an OpenID Connect `sub`, GitHub's numeric id) each hub user
-- signs in with: the first sign-in binds the user to it, and a later one whose name maps
-- to the same user from another identity is refused (two people whose provider names
-- map to one Unix name cannot share it). One identity per user and source: an admin who
-- moves the hub to another provider lets its identities bind afresh.
CREATE TABLE identities (
    source TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    PRIMARY KEY (source, subject),
    UNIQUE (source, user_id)
);
-- `enable_auth_state`: what the provider gave at the last sign-in, sealed with the key of
-- root's auth_state_key_file (the hub never stores it in the clear).
CREATE TABLE auth_state (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    sealed BLOB NOT NULL,
    updated TEXT NOT NULL
);
