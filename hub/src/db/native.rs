//! The hub's own accounts (`native_accounts`) and the lockouts of every name
//! (`login_failures`). Passwords arrive hashed: nothing here sees one.

use rusqlite::{params, OptionalExtension};

use super::DbResult;
use crate::timestamp::now_iso;
use crate::types::Username;

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Signed up, waiting for an admin.
    Pending,
    /// May log in.
    Approved,
    /// May not log in; kept so the name cannot be signed up again.
    Blocked,
}

impl AccountStatus {
    /// Its name in the database and on pages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Blocked => "blocked",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "blocked" => Some(Self::Blocked),
            _ => None,
        }
    }
}

/// One account of the hub's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeAccount {
    /// Its name (also the Unix account's).
    pub name: Username,
    /// The argon2id hash, PHC form.
    pub password: String,
    /// The address given at sign-up.
    pub email: Option<String>,
    /// Where it stands.
    pub status: AccountStatus,
    /// When it signed up.
    pub created: String,
    /// When and by whom it was last approved or blocked.
    pub decided: Option<(String, String)>,
    /// The TOTP secret (base32) of its second factor, once confirmed.
    pub totp: Option<String>,
    /// A TOTP secret shown for enrolment and not confirmed yet.
    pub totp_pending: Option<String>,
    /// The uid of the Unix account it is bound to.
    pub unix_uid: Option<u32>,
}

/// What [`Native::sign_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedUp {
    /// Recorded.
    New,
    /// The name has an account, or is a hub user's: nothing was written.
    Taken,
}

/// The view.
pub struct Native<'a>(pub(super) super::Src<'a>);

const COLUMNS: &str =
    "name, password, email, status, created, decided, decided_by, totp_secret, totp_pending, unix_uid";

impl Native<'_> {
    /// Records a sign-up, unless the name has an account already or belongs to a hub
    /// user who has none (one of another source's); the check and the insert are one
    /// step.
    pub fn sign_up(
        &self,
        name: &Username,
        hash: &str,
        email: Option<&str>,
        status: AccountStatus,
    ) -> DbResult<SignedUp> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let taken = tx
            .query_row(
                "SELECT 1 FROM native_accounts WHERE name = ?1 UNION SELECT 1 FROM users WHERE name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if taken {
            return Ok(SignedUp::Taken);
        }
        tx.execute(
            "INSERT INTO native_accounts (name, password, email, status, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, hash, email, status.as_str(), now_iso()],
        )?;
        tx.commit()?;
        Ok(SignedUp::New)
    }

    /// Gives hub user `name`, who has no account of the hub's own, an approved one
    /// (an admin setting the password of a user added through the API); whether there
    /// was such a user.
    pub fn create_for_user(&self, name: &Username, hash: &str) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "INSERT INTO native_accounts (name, password, status, created, decided) \
             SELECT name, ?2, 'approved', ?3, ?3 FROM users WHERE name = ?1 \
             AND NOT EXISTS (SELECT 1 FROM native_accounts WHERE name = ?1)",
            params![name, hash, now_iso()],
        )?;
        Ok(n > 0)
    }

    /// One account.
    pub fn get(&self, name: &Username) -> DbResult<Option<NativeAccount>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM native_accounts WHERE name = ?1"
        ))?;
        st.query_row([name], account).optional()
    }

    /// Accounts, those waiting first, then by sign-up time, newest first; at most
    /// `limit`.
    pub fn list(&self, limit: usize) -> DbResult<Vec<NativeAccount>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM native_accounts \
             ORDER BY status <> 'pending', created DESC, name LIMIT ?1"
        ))?;
        let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], account)?;
        rows.collect()
    }

    /// How many accounts wait for an admin.
    pub fn pending_count(&self) -> DbResult<usize> {
        self.0.lock().query_row(
            "SELECT COUNT(*) FROM native_accounts WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
    }

    /// Sets an account's status, recording who did it; whether it exists. Blocking also
    /// ends what the account holds: its login sessions, API tokens and OAuth codes go in
    /// the same transaction (the caller stops its servers).
    pub fn decide(&self, name: &Username, status: AccountStatus, by: &Username) -> DbResult<bool> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let n = tx.execute(
            "UPDATE native_accounts SET status = ?2, decided = ?3, decided_by = ?4 WHERE name = ?1",
            params![name, status.as_str(), now_iso(), by],
        )?;
        if n > 0 && status == AccountStatus::Blocked {
            for table in ["sessions", "api_tokens", "oauth_codes"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE user_id = (SELECT id FROM users WHERE name = ?1)"),
                    [name],
                )?;
            }
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// Replaces an account's hash; whether it exists.
    pub fn set_password(&self, name: &Username, hash: &str) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "UPDATE native_accounts SET password = ?2 WHERE name = ?1",
            params![name, hash],
        )?;
        Ok(n > 0)
    }

    /// Deletes a sign-up that was not approved (discard); whether there was one. An
    /// approved account goes only with its hub user.
    pub fn discard(&self, name: &Username) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "DELETE FROM native_accounts WHERE name = ?1 AND status <> 'approved'",
            [name],
        )?;
        Ok(n > 0)
    }

    /// Binds the account to the Unix account with `uid`; whether it exists.
    pub fn bind_uid(&self, name: &Username, uid: u32) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "UPDATE native_accounts SET unix_uid = ?2 WHERE name = ?1",
            params![name, uid],
        )?;
        Ok(n > 0)
    }

    /// Keeps `secret` as the second factor being enrolled (`None` forgets it).
    pub fn set_totp_pending(&self, name: &Username, secret: Option<&str>) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "UPDATE native_accounts SET totp_pending = ?2 WHERE name = ?1",
            params![name, secret],
        )?;
        Ok(n > 0)
    }

    /// Turns the second factor on with the enrolled secret, its code at `step` taken;
    /// whether there was one being enrolled.
    pub fn confirm_totp(&self, name: &Username, step: i64) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "UPDATE native_accounts SET totp_secret = totp_pending, totp_pending = NULL, totp_step = ?2 \
             WHERE name = ?1 AND totp_pending IS NOT NULL",
            params![name, step],
        )?;
        Ok(n > 0)
    }

    /// Turns the second factor off.
    pub fn disable_totp(&self, name: &Username) -> DbResult<()> {
        self.0.lock().execute(
            "UPDATE native_accounts SET totp_secret = NULL, totp_pending = NULL, totp_step = NULL WHERE name = ?1",
            [name],
        )?;
        Ok(())
    }

    /// Takes the code of time step `step` for `name`: true once, and only if no code of
    /// this or a later step was taken before (a code is good once).
    pub fn take_totp_step(&self, name: &Username, step: i64) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "UPDATE native_accounts SET totp_step = ?2 WHERE name = ?1 AND (totp_step IS NULL OR totp_step < ?2)",
            params![name, step],
        )?;
        Ok(n > 0)
    }

    /// Until when (unix seconds) `name` is locked out, if it is at `now`.
    pub fn locked_until(&self, name: &Username, now: i64) -> DbResult<Option<i64>> {
        let until: Option<Option<i64>> = self
            .0
            .lock()
            .query_row(
                "SELECT locked_until FROM login_failures WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        Ok(until.flatten().filter(|u| *u > now))
    }

    /// Counts a failed login of `name` at `now`; once `allowed` failures in a row are
    /// reached, the name is locked for `secs` and the count starts again. The lockout's
    /// end, if this failure began one.
    pub fn failed(
        &self,
        name: &Username,
        allowed: u32,
        secs: i64,
        now: i64,
    ) -> DbResult<Option<i64>> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let failures: i64 = tx.query_row(
            "INSERT INTO login_failures (name, failures) VALUES (?1, 1) \
             ON CONFLICT (name) DO UPDATE SET failures = failures + 1 RETURNING failures",
            [name],
            |r| r.get(0),
        )?;
        let locked = if failures >= i64::from(allowed) {
            let until = now + secs;
            tx.execute(
                "UPDATE login_failures SET failures = 0, locked_until = ?2 WHERE name = ?1",
                params![name, until],
            )?;
            Some(until)
        } else {
            None
        };
        tx.commit()?;
        Ok(locked)
    }

    /// Forgets `name`'s failures (a login succeeded, or an admin lifted the lockout).
    pub fn clear_failures(&self, name: &Username) -> DbResult<()> {
        self.0
            .lock()
            .execute("DELETE FROM login_failures WHERE name = ?1", [name])?;
        Ok(())
    }
}

fn account(r: &rusqlite::Row<'_>) -> rusqlite::Result<NativeAccount> {
    let status: String = r.get(3)?;
    let status = AccountStatus::parse(&status).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("unknown account status {status:?}").into(),
        )
    })?;
    let decided: Option<String> = r.get(5)?;
    let by: Option<String> = r.get(6)?;
    Ok(NativeAccount {
        name: r.get(0)?,
        password: r.get(1)?,
        email: r.get(2)?,
        status,
        created: r.get(4)?,
        decided: decided.zip(by),
        totp: r.get(7)?,
        totp_pending: r.get(8)?,
        unix_uid: r.get(9)?,
    })
}
