//! The `named_servers` table: a user's named servers (JupyterHub's `allow_named_servers`),
//! which live on while stopped until they are removed. While one starts, runs or stops it
//! also has its row in [`super::servers`], read here with it.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::servers::{server_row_at, ServerRow};
use super::DbResult;
use crate::timestamp::now_iso;
use crate::types::ServerName;

/// A named server, stopped or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRow {
    /// Owner's row id.
    pub user_id: i64,
    /// Its name (never `""`).
    pub name: ServerName,
    /// What the UI shows (the name unless one was given).
    pub display_name: String,
    /// When it was created.
    pub created: String,
    /// Last activity of any of its runs.
    pub last_activity: Option<String>,
    /// Its `servers` row while it is not stopped.
    pub running: Option<ServerRow>,
}

/// What [`Named::create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// It is new.
    New,
    /// It existed already.
    Existed,
    /// The user has `limit` named servers already.
    OverLimit(usize),
}

/// What [`Named::rename`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renamed {
    /// Renamed.
    Done,
    /// There is no server of the old name.
    Missing,
    /// The new name is taken.
    Taken,
}

/// The columns of a [`NamedRow`], then its server's (`s`, left-joined; `u` is the user,
/// whose name is four columns before the server's first, as [`server_row_at`] reads it).
macro_rules! named_select {
    ($where:literal) => {
        concat!(
            "SELECT n.user_id, n.name, u.name, n.display_name, n.created, n.last_activity, ",
            "s.state, s.port, s.pid, s.started, s.last_activity, s.name ",
            "FROM named_servers n JOIN users u ON u.id = n.user_id ",
            "LEFT JOIN servers s ON s.user_id = n.user_id AND s.name = n.name ",
            $where
        )
    };
}

/// The named servers table.
pub struct Named<'a>(pub(super) super::Src<'a>);

impl Named<'_> {
    /// Creates user `user_id`'s named server `name` unless it exists, as long as the user
    /// has fewer than `limit` (0: no limit); the count and the insert are one step.
    pub fn create(
        &self,
        user_id: i64,
        name: &ServerName,
        display_name: &str,
        limit: usize,
    ) -> DbResult<Created> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM named_servers WHERE user_id = ?1 AND name = ?2",
                params![user_id, name],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Ok(Created::Existed);
        }
        if limit > 0 {
            let have: usize = tx.query_row(
                "SELECT COUNT(*) FROM named_servers WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )?;
            if have >= limit {
                return Ok(Created::OverLimit(limit));
            }
        }
        let display = if display_name.is_empty() {
            name.as_str()
        } else {
            display_name
        };
        tx.execute(
            "INSERT INTO named_servers (user_id, name, display_name, created) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, name, display, now_iso()],
        )?;
        tx.commit()?;
        Ok(Created::New)
    }

    /// One named server.
    pub fn get(&self, user_id: i64, name: &ServerName) -> DbResult<Option<NamedRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(named_select!("WHERE n.user_id = ?1 AND n.name = ?2"))?;
        st.query_row(params![user_id, name], named_row).optional()
    }

    /// The named servers of each of `ids`, by name.
    pub fn of_users(&self, ids: &[i64]) -> DbResult<HashMap<i64, Vec<NamedRow>>> {
        let mut out: HashMap<i64, Vec<NamedRow>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let conn = self.0.lock();
        // Bound in chunks: SQLite limits the number of parameters of one statement.
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "{} ORDER BY n.user_id, n.name",
                named_select!("WHERE n.user_id IN (MARKS)").replace("MARKS", &marks)
            );
            let mut st = conn.prepare_cached(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(chunk), named_row)?;
            for row in rows {
                let row = row?;
                out.entry(row.user_id).or_default().push(row);
            }
        }
        Ok(out)
    }

    /// Sets a named server's display name; whether it exists.
    pub fn set_display_name(
        &self,
        user_id: i64,
        name: &ServerName,
        display: &str,
    ) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "UPDATE named_servers SET display_name = ?3 WHERE user_id = ?1 AND name = ?2",
            params![user_id, name, display],
        )?;
        Ok(n > 0)
    }

    /// Renames a stopped named server (the caller has checked it is stopped: a named
    /// server's `servers` row exists only while it is not); the check and the rename are
    /// one step.
    pub fn rename(&self, user_id: i64, from: &ServerName, to: &ServerName) -> DbResult<Renamed> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let has = |name: &ServerName| -> DbResult<bool> {
            Ok(tx
                .query_row(
                    "SELECT 1 FROM named_servers WHERE user_id = ?1 AND name = ?2",
                    params![user_id, name],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .is_some())
        };
        if !has(from)? {
            return Ok(Renamed::Missing);
        }
        if has(to)? {
            return Ok(Renamed::Taken);
        }
        // A display name that was the old name follows the new one.
        tx.execute(
            "UPDATE named_servers SET name = ?3, \
             display_name = CASE WHEN display_name = ?2 THEN ?3 ELSE display_name END \
             WHERE user_id = ?1 AND name = ?2",
            params![user_id, from, to],
        )?;
        tx.commit()?;
        Ok(Renamed::Done)
    }

    /// Removes a named server's record (the caller has stopped it); whether it existed.
    pub fn remove(&self, user_id: i64, name: &ServerName) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "DELETE FROM named_servers WHERE user_id = ?1 AND name = ?2",
            params![user_id, name],
        )?;
        Ok(n > 0)
    }
}

fn named_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NamedRow> {
    Ok(NamedRow {
        user_id: r.get(0)?,
        name: r.get(1)?,
        display_name: r.get(3)?,
        created: r.get(4)?,
        last_activity: r.get(5)?,
        running: server_row_at(r, 6)?,
    })
}
