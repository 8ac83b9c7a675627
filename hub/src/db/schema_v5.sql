-- The hub's own accounts ([auth] source "native"): sign-ups waiting for an admin,
-- approved and blocked ones. Apart from `users` (whoever logged in or was added): a
-- sign-up is nobody's user until it is approved and logs in.
CREATE TABLE native_accounts (
    name TEXT PRIMARY KEY,
    -- The argon2id hash in PHC form: its parameters travel with it, so they can be
    -- raised later (a login with a weaker hash rehashes it).
    password TEXT NOT NULL,
    email TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'blocked')),
    created TEXT NOT NULL,
    -- When and by whom it was last approved or blocked.
    decided TEXT,
    decided_by TEXT
);
-- Failed logins in a row per name and the lockout they led to (`allowed_failed_logins`),
-- for every source: a hub restart does not lift a lockout.
CREATE TABLE login_failures (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    -- Unix seconds; NULL while not locked.
    locked_until INTEGER
);
-- A hub user's own account goes with the user, and follows a rename.
CREATE TRIGGER users_delete_native AFTER DELETE ON users BEGIN
    DELETE FROM native_accounts WHERE name = OLD.name;
    DELETE FROM login_failures WHERE name = OLD.name;
END;
CREATE TRIGGER users_rename_native AFTER UPDATE OF name ON users BEGIN
    UPDATE native_accounts SET name = NEW.name WHERE name = OLD.name;
    DELETE FROM login_failures WHERE name = OLD.name;
END;
