//! Hub groups (JupyterHub's `/groups`): a name, members and free-form properties.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};

use super::DbResult;
use crate::timestamp::now_iso;
use crate::types::{GroupName, Username};

/// A group with its members.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    /// Row id.
    pub id: i64,
    /// Its name.
    pub name: GroupName,
    /// Members' names, sorted.
    pub users: Vec<Username>,
    /// Free-form properties (a JSON object).
    pub properties: serde_json::Value,
}

/// Why a change to groups was not made: nothing was changed.
#[derive(Debug)]
pub enum GroupError {
    /// The database.
    Db(rusqlite::Error),
    /// A group of that name exists.
    Exists(GroupName),
    /// No group of that name.
    NoGroup(GroupName),
    /// No user of that name.
    NoUser(Username),
}

impl From<rusqlite::Error> for GroupError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e)
    }
}

/// The groups tables.
pub struct Groups<'a>(pub(super) super::Src<'a>);

impl Groups<'_> {
    /// Groups in creation order, from `offset`, at most `limit`; and how many there are.
    pub fn page(&self, offset: usize, limit: usize) -> DbResult<(Vec<GroupRow>, usize)> {
        let conn = self.0.lock();
        let total: usize = conn.query_row("SELECT COUNT(*) FROM groups", [], |r| r.get(0))?;
        let mut st = conn.prepare_cached(
            "SELECT id, name, properties FROM groups ORDER BY id LIMIT ?1 OFFSET ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let heads: Vec<(i64, GroupName, String)> = st
            .query_map([limit, offset], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<DbResult<_>>()?;
        let mut rows = Vec::with_capacity(heads.len());
        for (id, name, props) in heads {
            rows.push(GroupRow {
                id,
                name,
                users: members(&conn, id)?,
                properties: serde_json::from_str(&props).unwrap_or_default(),
            });
        }
        Ok((rows, total))
    }

    /// A group by name.
    pub fn get(&self, name: &GroupName) -> DbResult<Option<GroupRow>> {
        let conn = self.0.lock();
        let head: Option<(i64, String)> = conn
            .query_row(
                "SELECT id, properties FROM groups WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((id, props)) = head else {
            return Ok(None);
        };
        Ok(Some(GroupRow {
            id,
            name: name.clone(),
            users: members(&conn, id)?,
            properties: serde_json::from_str(&props).unwrap_or_default(),
        }))
    }

    /// Creates the groups `names`, each with the members `users`: all or none.
    pub fn create(&self, names: &[GroupName], users: &[Username]) -> Result<(), GroupError> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let ids = user_ids(&tx, users)?;
        for name in names {
            let added = tx.execute(
                "INSERT INTO groups (name, created) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                params![name, now_iso()],
            )?;
            if added == 0 {
                return Err(GroupError::Exists(name.clone()));
            }
            let group = tx.last_insert_rowid();
            for u in &ids {
                tx.execute(
                    "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
                    [group, *u],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes a group; whether it existed.
    pub fn delete(&self, name: &GroupName) -> DbResult<bool> {
        Ok(self
            .0
            .lock()
            .execute("DELETE FROM groups WHERE name = ?1", [name])?
            > 0)
    }

    /// Adds (`add`) or removes the members `users`: all or none.
    pub fn change_members(
        &self,
        name: &GroupName,
        users: &[Username],
        add: bool,
    ) -> Result<(), GroupError> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let group: i64 = tx
            .query_row("SELECT id FROM groups WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| GroupError::NoGroup(name.clone()))?;
        let sql = if add {
            "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)"
        } else {
            "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2"
        };
        for u in user_ids(&tx, users)? {
            tx.execute(sql, [group, u])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces a group's properties; whether it exists.
    pub fn set_properties(&self, name: &GroupName, props: &serde_json::Value) -> DbResult<bool> {
        Ok(self.0.lock().execute(
            "UPDATE groups SET properties = ?2 WHERE name = ?1",
            params![name, props.to_string()],
        )? > 0)
    }

    /// The groups of each of `users` (by row id), in one query.
    pub fn of_users(&self, users: &[i64]) -> DbResult<HashMap<i64, Vec<String>>> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        if users.is_empty() {
            return Ok(out);
        }
        let conn = self.0.lock();
        // One user (a whoami, a user's model) is the common case: a plain index lookup.
        let (sql, arg) = match users {
            [one] => (
                "SELECT gm.user_id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id
                 WHERE gm.user_id = ?1 ORDER BY g.name",
                one.to_string(),
            ),
            many => (
                "SELECT gm.user_id, g.name FROM group_members gm JOIN groups g ON g.id = gm.group_id
                 WHERE gm.user_id IN (SELECT value FROM json_each(?1)) ORDER BY g.name",
                serde_json::to_string(many).unwrap_or_else(|_| "[]".into()),
            ),
        };
        let mut st = conn.prepare_cached(sql)?;
        let rows = st.query_map([arg], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (user, group) = row?;
            out.entry(user).or_default().push(group);
        }
        Ok(out)
    }
}

fn members(conn: &rusqlite::Connection, group: i64) -> DbResult<Vec<Username>> {
    let mut st = conn.prepare_cached(
        "SELECT u.name FROM group_members gm JOIN users u ON u.id = gm.user_id
         WHERE gm.group_id = ?1 ORDER BY u.name",
    )?;
    let names = st.query_map([group], |r| r.get(0))?.collect();
    names
}

fn user_ids(tx: &Transaction<'_>, users: &[Username]) -> Result<Vec<i64>, GroupError> {
    let mut ids = Vec::with_capacity(users.len());
    for u in users {
        let id = tx
            .query_row("SELECT id FROM users WHERE name = ?1", [u], |r| r.get(0))
            .optional()?
            .ok_or_else(|| GroupError::NoUser(u.clone()))?;
        ids.push(id);
    }
    Ok(ids)
}
