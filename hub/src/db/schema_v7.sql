-- The Unix account an account of the hub's own is bound to: the uid sudohub-account made
-- for it, or that an admin gave it a password for. A Unix account of the same name that
-- appears later (another person's) is not its.
ALTER TABLE native_accounts ADD COLUMN unix_uid INTEGER;
