//! The `users` table.

use rusqlite::{params, OptionalExtension};

use super::DbResult;
use crate::timestamp::now_iso;
use crate::types::{ServerName, Username};

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// Unix name.
    pub name: Username,
    /// Admin rights.
    pub admin: bool,
    /// Creation time (ISO 8601).
    pub created: String,
    /// Last activity (ISO 8601).
    pub last_activity: Option<String>,
}

/// The columns [`UserRow::from_row`] reads, in order, for a table aliased `u`.
pub(super) const USER_COLUMNS: &str = user_columns!();

impl UserRow {
    /// Reads [`USER_COLUMNS`] starting at column `at`.
    pub(super) fn from_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(at)?,
            name: r.get(at + 1)?,
            admin: r.get(at + 2)?,
            created: r.get(at + 3)?,
            last_activity: r.get(at + 4)?,
        })
    }
}

/// The users table.
pub struct Users<'a>(pub(super) super::Src<'a>);

impl Users<'_> {
    /// Gets or creates a user; `admin`, if given, is written either way.
    pub fn ensure(&self, name: &Username, admin: Option<bool>) -> DbResult<UserRow> {
        let conn = self.0.lock();
        let added = conn.execute(
            "INSERT INTO users (name, admin, created) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            params![name, admin.unwrap_or(false), now_iso()],
        )?;
        if added > 0 {
            self.recount();
        }
        if let Some(a) = admin {
            conn.execute(
                "UPDATE users SET admin = ?2 WHERE name = ?1",
                params![name, a],
            )?;
        }
        drop(conn);
        self.get(name)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    /// A user by name.
    pub fn get(&self, name: &Username) -> DbResult<Option<UserRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.name = ?1"
        ))?;
        st.query_row([name], |r| UserRow::from_row(r, 0)).optional()
    }

    /// A user by row id.
    pub fn by_id(&self, id: i64) -> DbResult<Option<UserRow>> {
        self.0
            .lock()
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?1"),
                [id],
                |r| UserRow::from_row(r, 0),
            )
            .optional()
    }

    /// All users, by name.
    pub fn all(&self) -> DbResult<Vec<UserRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users u ORDER BY u.name"
        ))?;
        let rows = st.query_map([], |r| UserRow::from_row(r, 0))?.collect();
        rows
    }

    /// How many users there are.
    ///
    /// SQLite walks an index to count, so the count is kept between calls: until this hub
    /// adds or deletes a user, or another connection (an admin's `sqlite3`) commits, which
    /// moves `PRAGMA data_version`. A page of the users list then costs the same at 100 or
    /// 100,000 users.
    pub fn count(&self) -> DbResult<usize> {
        let conn = self.0.lock();
        let version: i64 = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        let mut cached = self.cached_count();
        if let Some((at, n)) = *cached {
            if at == version {
                return Ok(n);
            }
        }
        let n = conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
        *cached = Some((version, n));
        Ok(n)
    }

    fn cached_count(&self) -> std::sync::MutexGuard<'_, Option<(i64, usize)>> {
        self.0.user_count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets the kept count: called with the connection locked, after a change.
    pub(super) fn recount(&self) {
        *self.cached_count() = None;
    }

    /// Adds the users of `names` that do not exist yet, all at once (one transaction:
    /// all or none); returns the rows added, in the order given.
    pub fn create_many(&self, names: &[Username], admin: bool) -> DbResult<Vec<UserRow>> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let mut ids = Vec::new();
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO users (name, admin, created) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO NOTHING",
            )?;
            for name in names {
                if st.execute(params![name, admin, now_iso()])? > 0 {
                    ids.push(tx.last_insert_rowid());
                }
            }
        }
        tx.commit()?;
        if !ids.is_empty() {
            self.recount();
        }
        drop(conn);
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            rows.extend(self.by_id(id)?);
        }
        Ok(rows)
    }

    /// Sets a user's admin flag; whether the user exists.
    pub fn set_admin(&self, name: &Username, admin: bool) -> DbResult<bool> {
        let conn = self.0.lock();
        Ok(conn.execute(
            "UPDATE users SET admin = ?2 WHERE name = ?1",
            params![name, admin],
        )? > 0)
    }

    /// Renames a user. The name is the Unix account a server runs as, so every login
    /// session, token and OAuth client issued to the old name is revoked in the same
    /// transaction: nothing issued to one account ever acts as another. `false` if the
    /// new name is taken.
    pub fn rename(&self, from: &Username, to: &Username) -> DbResult<bool> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let Some(id) = tx
            .query_row("SELECT id FROM users WHERE name = ?1", [from], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
        else {
            return Ok(false);
        };
        // A sign-up of the new name is someone else's: the name is taken.
        let taken = tx
            .query_row(
                "SELECT 1 FROM users WHERE name = ?1 UNION SELECT 1 FROM native_accounts WHERE name = ?1",
                [to],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if taken {
            return Ok(false);
        }
        // The auth state is sealed for the old name: it would not open under the new one.
        for table in [
            "sessions",
            "api_tokens",
            "oauth_codes",
            "oauth_clients",
            "auth_state",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE user_id = ?1"), [id])?;
        }
        tx.execute("UPDATE users SET name = ?2 WHERE id = ?1", params![id, to])?;
        tx.commit()?;
        Ok(true)
    }

    /// The users with a server recorded.
    pub fn having_servers_names(&self) -> DbResult<Vec<Username>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(
            "SELECT u.name FROM servers s JOIN users u ON u.id = s.user_id ORDER BY u.name",
        )?;
        let names = st.query_map([], |r| r.get(0))?.collect();
        names
    }

    /// How many users were active at `since` (ISO 8601) or later.
    pub fn active_since(&self, since: &str) -> DbResult<usize> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached("SELECT COUNT(*) FROM users WHERE last_activity >= ?1")?;
        st.query_row([since], |r| r.get(0))
    }

    /// Deletes a user and everything of theirs.
    pub fn delete(&self, name: &Username) -> DbResult<bool> {
        let conn = self.0.lock();
        let deleted = conn.execute("DELETE FROM users WHERE name = ?1", [name])? > 0;
        if deleted {
            self.recount();
        }
        Ok(deleted)
    }

    /// Moves a user's (and, with `server`, that server's) `last_activity` forward, never
    /// back.
    pub fn touch(&self, name: &Username, server: Option<&ServerName>, at: &str) -> DbResult<()> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE users SET last_activity = ?2 WHERE name = ?1 AND (last_activity IS NULL OR last_activity < ?2)",
            params![name, at],
        )?;
        if let Some(server) = server {
            tx.execute(
                "UPDATE servers SET last_activity = ?2 WHERE name = ?3 AND user_id = (SELECT id FROM users WHERE name = ?1)
                 AND (last_activity IS NULL OR last_activity < ?2)",
                params![name, at, server],
            )?;
            tx.execute(
                "UPDATE named_servers SET last_activity = ?2 WHERE name = ?3 AND user_id = (SELECT id FROM users WHERE name = ?1)
                 AND (last_activity IS NULL OR last_activity < ?2)",
                params![name, at, server],
            )?;
        }
        tx.commit()
    }
}
