-- A second factor for the hub's own accounts (`allow_2fa`): the TOTP secret once its
-- owner confirmed it with a code, one being enrolled, and the last time step a code was
-- taken at (a code is good once).
ALTER TABLE native_accounts ADD COLUMN totp_secret TEXT;
ALTER TABLE native_accounts ADD COLUMN totp_pending TEXT;
ALTER TABLE native_accounts ADD COLUMN totp_step INTEGER;
