//! The `sessions` table: login sessions, by the hash of their secret.

use rusqlite::{params, OptionalExtension};

use super::users::UserRow;
use super::DbResult;
use crate::secrets::hash;
use crate::timestamp::{now_iso, unix_now};

/// How long a login session lasts (JupyterHub's `cookie_max_age_days` = 14).
pub const SESSION_SECS: i64 = 14 * 86400;

/// Login sessions.
pub struct Sessions<'a>(pub(super) super::Src<'a>);

impl Sessions<'_> {
    /// Starts a login session; the caller keeps the secret.
    pub fn add(&self, secret: &str, user_id: i64, session_id: &str) -> DbResult<()> {
        self.0.lock().execute(
            "INSERT INTO sessions (hash, user_id, session_id, created, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash(secret), user_id, session_id, now_iso(), unix_now() + SESSION_SECS],
        )?;
        Ok(())
    }

    /// The user and session id of a live login session.
    pub fn get(&self, secret: &str) -> DbResult<Option<(UserRow, String)>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(concat!(
            "SELECT ",
            user_columns!(),
            ", s.session_id FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.hash = ?1 AND s.expires_at >= ?2"
        ))?;
        st.query_row(params![hash(secret), unix_now()], |r| {
            Ok((UserRow::from_row(r, 0)?, r.get(5)?))
        })
        .optional()
    }

    /// Ends a login session and revokes the OAuth tokens issued in it (compat §1.7).
    pub fn end(&self, secret: &str) -> DbResult<()> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let sid: Option<String> = tx
            .query_row(
                "SELECT session_id FROM sessions WHERE hash = ?1",
                [hash(secret)],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(sid) = sid {
            // OAuth tokens issued in the session, and the admin page's tokens.
            tx.execute("DELETE FROM api_tokens WHERE session_id = ?1", [sid])?;
        }
        tx.execute("DELETE FROM sessions WHERE hash = ?1", [hash(secret)])?;
        tx.commit()
    }
}
