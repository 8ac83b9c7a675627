CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    properties TEXT NOT NULL DEFAULT '{}',
    created TEXT NOT NULL
);
CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members(user_id);
-- The users list cuts its pages from an index before it joins: these make those walks
-- short for every `sort` (the name has its UNIQUE index already).
CREATE INDEX users_by_id ON users(id);
CREATE INDEX users_by_activity ON users(last_activity);
