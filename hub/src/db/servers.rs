//! The `servers` table, with what belongs to a server's life: its API token and its
//! OAuth client, created with it and removed with it in one transaction.
//!
//! A row is keyed by its user and name (`''` for the default server); a named server's
//! lasting record (kept while it is stopped) is in [`super::named`].

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension};

use super::users::UserRow;
use super::DbResult;
use crate::secrets::hash;
use crate::timestamp::now_iso;
use crate::types::{RecordedState, ServerKey, ServerName, TokenKind, Username};
use crate::urls::Urls;

/// A server row (one per running, starting or stopping server; none when stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRow {
    /// Owner's name.
    pub user: Username,
    /// `""` for the default server.
    pub name: ServerName,
    /// Where it is in its life cycle.
    pub state: RecordedState,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Pid, once started.
    pub pid: Option<u32>,
    /// Start time.
    pub started: String,
    /// Last activity reported by the server or seen by the proxy.
    pub last_activity: Option<String>,
}

impl ServerRow {
    /// Which server this is.
    pub fn key(&self) -> ServerKey {
        ServerKey::new(self.user.clone(), self.name.clone())
    }
}

/// A server that is a Slurm job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Which server.
    pub key: ServerKey,
    /// Where it is in its life cycle.
    pub state: RecordedState,
    /// The job.
    pub job_id: u32,
    /// The node address its server answers at, once running.
    pub host: Option<String>,
    /// Its port, once running (0 before).
    pub port: u16,
}

/// The servers table.
pub struct Servers<'a>(pub(super) super::Src<'a>);

impl Servers<'_> {
    /// Records a server as starting on `port` (the hub itself picks with
    /// [`Self::starting_on`]).
    pub fn starting(&self, key: &ServerKey, port: u16) -> DbResult<()> {
        self.starting_on(key, |_| Some(port)).map(|_| ())
    }

    /// Records a server as starting on the port `pick` chooses, given the ports every
    /// recorded server holds: choice and record are one step under the database lock, so
    /// two starts at once never get the same port. `None` if `pick` finds none.
    pub fn starting_on(
        &self,
        key: &ServerKey,
        pick: impl FnOnce(&HashSet<u16>) -> Option<u16>,
    ) -> DbResult<Option<u16>> {
        let conn = self.0.lock();
        let taken = conn
            .prepare_cached("SELECT port FROM servers")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<HashSet<u16>, _>>()?;
        let Some(port) = pick(&taken) else {
            return Ok(None);
        };
        conn.execute(
            "INSERT INTO servers (user_id, name, state, port, started) SELECT id, ?5, ?2, ?3, ?4 FROM users WHERE name = ?1",
            params![key.user, RecordedState::Starting, port, now_iso(), key.name],
        )?;
        Ok(Some(port))
    }

    /// Records a server as running with its pid.
    pub fn running(&self, key: &ServerKey, pid: u32) -> DbResult<()> {
        self.set(key, RecordedState::Running, Some(pid))
    }

    /// Records a stop in progress.
    pub fn stopping(&self, key: &ServerKey) -> DbResult<()> {
        self.set(key, RecordedState::Stopping, None)
    }

    fn set(&self, key: &ServerKey, state: RecordedState, pid: Option<u32>) -> DbResult<()> {
        self.0.lock().execute(
            "UPDATE servers SET state = ?2, pid = COALESCE(?3, pid) WHERE name = ?4 AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![key.user, state, pid, key.name],
        )?;
        Ok(())
    }

    /// A server has stopped: its row, its API token and its OAuth client (with the
    /// client's codes and tokens) go, in one transaction.
    pub fn stopped(&self, key: &ServerKey) -> DbResult<()> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let client = Urls::client_id(key);
        tx.execute(
            "DELETE FROM servers WHERE name = ?2 AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![key.user, key.name],
        )?;
        tx.execute(
            "DELETE FROM api_tokens WHERE kind IN (?2, ?3) AND client_id = ?1",
            params![client, TokenKind::Server, TokenKind::OAuth],
        )?;
        tx.execute("DELETE FROM oauth_clients WHERE id = ?1", [&client])?;
        tx.commit()
    }

    /// A server, if it is not stopped.
    pub fn get(&self, key: &ServerKey) -> DbResult<Option<ServerRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(
            "SELECT u.name, s.name, s.state, s.port, s.pid, s.started, s.last_activity
             FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = ?1 AND s.name = ?2",
        )?;
        st.query_row(params![key.user, key.name], server_row)
            .optional()
    }

    /// A user's servers that are not stopped, the default one first.
    pub fn of_user(&self, user: &Username) -> DbResult<Vec<ServerRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(
            "SELECT u.name, s.name, s.state, s.port, s.pid, s.started, s.last_activity
             FROM servers s JOIN users u ON u.id = s.user_id WHERE u.name = ?1 ORDER BY s.name",
        )?;
        let rows = st.query_map([user], server_row)?.collect();
        rows
    }

    /// All servers that are not stopped.
    pub fn all(&self) -> DbResult<Vec<ServerRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare(
            "SELECT u.name, s.name, s.state, s.port, s.pid, s.started, s.last_activity
             FROM servers s JOIN users u ON u.id = s.user_id ORDER BY u.name, s.name",
        )?;
        let rows = st.query_map([], server_row)?.collect();
        rows
    }

    /// Registers the server's API token and OAuth client (secret = hash of the token),
    /// replacing earlier ones, in one transaction.
    pub fn register_client(
        &self,
        user: &UserRow,
        server: &ServerName,
        api_token: &str,
        redirect_uri: &str,
        description: &str,
    ) -> DbResult<()> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
        let client = Urls::client_id(&ServerKey::new(user.name.clone(), server.clone()));
        tx.execute(
            "DELETE FROM api_tokens WHERE kind = ?2 AND client_id = ?1",
            params![client, TokenKind::Server],
        )?;
        tx.execute(
            "INSERT INTO api_tokens (user_id, hash, kind, client_id, note, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user.id, hash(api_token), TokenKind::Server, client, description, now_iso()],
        )?;
        tx.execute(
            "INSERT INTO oauth_clients (id, user_id, secret_hash, redirect_uri, description, server) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id, server = excluded.server,
               secret_hash = excluded.secret_hash, redirect_uri = excluded.redirect_uri",
            params![client, user.id, hash(api_token), redirect_uri, description, server],
        )?;
        tx.commit()
    }

    /// A server submitted as Slurm job `job_id`.
    pub fn submitted(&self, key: &ServerKey, job_id: u32) -> DbResult<()> {
        self.0.lock().execute(
            "UPDATE servers SET job_id = ?3 WHERE name = ?2 AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![key.user, key.name, job_id],
        )?;
        Ok(())
    }

    /// Slurm job `job_id`'s server reported the port it listens on (recorded only while
    /// the row is that job's, still starting, with no port yet); whether it was taken.
    pub fn reported(&self, key: &ServerKey, job_id: u32, port: u16) -> DbResult<bool> {
        let n = self.0.lock().execute(
            "UPDATE servers SET port = ?4 WHERE name = ?2 AND job_id = ?3 AND port = 0 AND state = ?5
             AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![key.user, key.name, job_id, port, RecordedState::Starting],
        )?;
        Ok(n == 1)
    }

    /// A Slurm job's server answers at `host`:`port`: it is running.
    pub fn running_at(&self, key: &ServerKey, host: &str, port: u16) -> DbResult<()> {
        self.0.lock().execute(
            "UPDATE servers SET state = ?3, host = ?4, port = ?5 WHERE name = ?2 AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![key.user, key.name, RecordedState::Running, host, port],
        )?;
        Ok(())
    }

    /// Every server that is a Slurm job: its key, state, job id, and address once running.
    pub fn jobs(&self) -> DbResult<Vec<JobRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(&format!("{JOB_SELECT} WHERE s.job_id IS NOT NULL"))?;
        let rows = st.query_map([], job_row)?.collect();
        rows
    }

    /// The server `key`, if it is a Slurm job.
    pub fn job_of(&self, key: &ServerKey) -> DbResult<Option<JobRow>> {
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(&format!(
            "{JOB_SELECT} WHERE s.job_id IS NOT NULL AND u.name = ?1 AND s.name = ?2"
        ))?;
        st.query_row(params![key.user, key.name], job_row)
            .optional()
    }

    /// After a crash: spawns that never finished and stops that never finished are over
    /// (their tokens and clients go too). Running servers stay recorded: their helpers
    /// re-attach, and the life cycle's recovery ends those that do not.
    pub fn repair(&self) -> DbResult<Vec<ServerRow>> {
        self.repair_except(&[])
    }

    /// [`Self::repair`], leaving alone the starts in `resumed` (Slurm jobs a restarted hub
    /// goes on waiting for).
    pub fn repair_except(&self, resumed: &[ServerKey]) -> DbResult<Vec<ServerRow>> {
        let stale: Vec<ServerRow> = self
            .all()?
            .into_iter()
            .filter(|s| s.state != RecordedState::Running && !resumed.contains(&s.key()))
            .collect();
        for s in &stale {
            self.stopped(&s.key())?;
            tracing::warn!(server = %s.key(), state = s.state.as_str(),
                "repair: server left half-done by the previous hub marked stopped");
        }
        Ok(stale)
    }
}

const JOB_SELECT: &str = "SELECT u.name, s.name, s.state, s.job_id, s.host, s.port
     FROM servers s JOIN users u ON u.id = s.user_id";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        key: ServerKey::new(r.get(0)?, r.get(1)?),
        state: r.get(2)?,
        job_id: r.get(3)?,
        host: r.get(4)?,
        port: r.get(5)?,
    })
}

fn server_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ServerRow> {
    Ok(ServerRow {
        user: r.get(0)?,
        name: r.get(1)?,
        state: r.get(2)?,
        port: r.get(3)?,
        pid: r.get(4)?,
        started: r.get(5)?,
        last_activity: r.get(6)?,
    })
}

/// The columns [`server_row_at`] reads after a user's: `s` is the server, `u` its user.
pub(super) const SERVER_COLUMNS: &str =
    "s.state, s.port, s.pid, s.started, s.last_activity, s.name";

/// A server row from [`SERVER_COLUMNS`] at column `at` (the user's name at `at - 4`,
/// as [`super::users::USER_COLUMNS`] puts it), or `None` when a LEFT JOIN found none.
pub(super) fn server_row_at(
    r: &rusqlite::Row<'_>,
    at: usize,
) -> rusqlite::Result<Option<ServerRow>> {
    let state: Option<RecordedState> = r.get(at)?;
    let Some(state) = state else {
        return Ok(None);
    };
    Ok(Some(ServerRow {
        user: r.get(at - 4)?,
        name: r.get(at + 5)?,
        state,
        port: r.get(at + 1)?,
        pid: r.get(at + 2)?,
        started: r.get(at + 3)?,
        last_activity: r.get(at + 4)?,
    }))
}
