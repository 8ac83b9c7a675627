//! The identities at a provider that hub users are bound to (`identities`).

use rusqlite::{params, OptionalExtension};

use super::DbResult;
use crate::timestamp::now_iso;
use crate::types::Username;

/// What [`Identities::bind`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The identity is this user's (bound before, or bound now).
    User(Username),
    /// The name is another's: a user bound to another identity of the same source, or
    /// an account of the hub's own. Nothing was written.
    Taken,
}

/// The view.
pub struct Identities<'a>(pub(super) super::Src<'a>);

impl Identities<'_> {
    /// The user `source`'s `subject` is bound to; else binds it to `name` (made a hub
    /// user if it is not one) unless that name is another's. The checks and the writes
    /// are one transaction.
    pub fn bind(&self, source: &str, subject: &str, name: &Username) -> DbResult<Binding> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let bound: Option<Username> = tx
            .query_row(
                "SELECT u.name FROM identities i JOIN users u ON u.id = i.user_id \
                 WHERE i.source = ?1 AND i.subject = ?2",
                params![source, subject],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(user) = bound {
            return Ok(Binding::User(user));
        }
        if taken_on(&tx, source, name)? {
            return Ok(Binding::Taken);
        }
        let added = tx.execute(
            "INSERT INTO users (name, admin, created) VALUES (?1, 0, ?2) ON CONFLICT(name) DO NOTHING",
            params![name, now_iso()],
        )?;
        tx.execute(
            "INSERT INTO identities (source, subject, user_id, created) \
             SELECT ?1, ?2, id, ?3 FROM users WHERE name = ?4",
            params![source, subject, now_iso(), name],
        )?;
        tx.commit()?;
        drop(conn);
        if added > 0 {
            super::Users(self.0).recount();
        }
        Ok(Binding::User(name.clone()))
    }

    /// Whether `name` is another's at `source`: bound to an identity there, or an
    /// account of the hub's own.
    pub fn is_taken(&self, source: &str, name: &Username) -> DbResult<bool> {
        taken_on(&self.0.lock(), source, name)
    }

    /// The user `source`'s `subject` is bound to.
    pub fn bound(&self, source: &str, subject: &str) -> DbResult<Option<Username>> {
        self.0
            .lock()
            .query_row(
                "SELECT u.name FROM identities i JOIN users u ON u.id = i.user_id \
                 WHERE i.source = ?1 AND i.subject = ?2",
                params![source, subject],
                |r| r.get(0),
            )
            .optional()
    }

    /// Replaces `user`'s sealed auth state (`None`: forgets it).
    pub fn set_auth_state(&self, user: &Username, sealed: Option<&[u8]>) -> DbResult<()> {
        let conn = self.0.lock();
        match sealed {
            Some(blob) => conn.execute(
                "INSERT INTO auth_state (user_id, sealed, updated) \
                 SELECT id, ?2, ?3 FROM users WHERE name = ?1 \
                 ON CONFLICT(user_id) DO UPDATE SET sealed = excluded.sealed, updated = excluded.updated",
                params![user, blob, now_iso()],
            )?,
            None => conn.execute(
                "DELETE FROM auth_state WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                [user],
            )?,
        };
        Ok(())
    }

    /// `user`'s sealed auth state.
    pub fn auth_state(&self, user: &Username) -> DbResult<Option<Vec<u8>>> {
        self.0
            .lock()
            .query_row(
                "SELECT a.sealed FROM auth_state a JOIN users u ON u.id = a.user_id WHERE u.name = ?1",
                [user],
                |r| r.get(0),
            )
            .optional()
    }
}

fn taken_on(conn: &rusqlite::Connection, source: &str, name: &Username) -> DbResult<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM native_accounts WHERE name = ?1 \
             UNION SELECT 1 FROM identities i JOIN users u ON u.id = i.user_id \
             WHERE u.name = ?1 AND i.source = ?2",
            params![name, source],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
