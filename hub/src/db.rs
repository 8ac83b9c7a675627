//! The hub's state in SQLite: users, servers, tokens (hashed), OAuth clients and codes,
//! login sessions. The database is the source of truth: every state change is one
//! transaction, and [`Db::repair`] fixes what a crash left half-done.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

use crate::tokens::{hash, now_iso, unix_now};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    last_activity TEXT
);
CREATE TABLE servers (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL CHECK (state IN ('starting', 'running', 'stopping')),
    port INTEGER NOT NULL,
    pid INTEGER,
    started TEXT NOT NULL,
    last_activity TEXT,
    PRIMARY KEY (user_id, name)
);
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('api', 'server', 'oauth')),
    client_id TEXT,
    session_id TEXT,
    note TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    last_activity TEXT,
    expires_at INTEGER
);
CREATE TABLE oauth_clients (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE TABLE oauth_codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    session_id TEXT,
    challenge TEXT,
    challenge_method TEXT,
    expires_at INTEGER NOT NULL
);
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_id TEXT NOT NULL,
    created TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
"#];

/// How long a login session lasts (JupyterHub's `cookie_max_age_days` = 14).
pub const SESSION_SECS: i64 = 14 * 86400;
/// How long an OAuth code is valid.
pub const CODE_SECS: i64 = 300;
/// How long an OAuth access token is valid (`oauth_token_expires_in`).
pub const OAUTH_TOKEN_SECS: i64 = 14 * 86400;

/// Errors from the database.
pub type DbResult<T> = Result<T, rusqlite::Error>;

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// Unix name.
    pub name: String,
    /// Admin rights.
    pub admin: bool,
    /// Creation time (ISO 8601).
    pub created: String,
    /// Last activity (ISO 8601).
    pub last_activity: Option<String>,
}

/// A server row (one per running, starting or stopping server; none when stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRow {
    /// Owner's name.
    pub user: String,
    /// Server name, `""` for the default.
    pub name: String,
    /// `starting`, `running` or `stopping`.
    pub state: String,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Pid, once started.
    pub pid: Option<u32>,
    /// Start time.
    pub started: String,
    /// Last activity reported by the server.
    pub last_activity: Option<String>,
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Row id (the API shows it as `a<id>`).
    pub id: i64,
    /// Owner.
    pub user: UserRow,
    /// `api`, `server` or `oauth`.
    pub kind: String,
    /// The OAuth client for `oauth` tokens.
    pub client_id: Option<String>,
    /// The login session it was issued in.
    pub session_id: Option<String>,
    /// Free text.
    pub note: String,
    /// Creation time.
    pub created: String,
    /// Expiry (Unix seconds).
    pub expires_at: Option<i64>,
}

/// `(id, note, created, expires_at)` of an API token, for the token page.
pub type TokenSummary = (i64, String, String, Option<i64>);

/// A pending OAuth code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    /// Client it was issued for.
    pub client_id: String,
    /// User it stands for.
    pub user_id: i64,
    /// Redirect URI it was issued with.
    pub redirect_uri: String,
    /// Session it was issued in.
    pub session_id: Option<String>,
    /// PKCE challenge.
    pub challenge: Option<String>,
    /// PKCE method.
    pub challenge_method: Option<String>,
}

/// Shared handle to the database.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> DbResult<Self> {
        Self::init(Connection::open(path)?)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> DbResult<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> DbResult<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let db = Self {
            conn: Arc::new(Mutex::new(conn)),
        };
        db.migrate()?;
        Ok(db)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions
        // roll back), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> DbResult<()> {
        let mut conn = self.lock();
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "database migrated");
        }
        Ok(())
    }

    /// The schema version.
    pub fn version(&self) -> DbResult<usize> {
        self.lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
    }

    /// After a crash: spawns that never finished and stops that never finished are over
    /// (their tokens and clients go too). Running servers stay recorded: their helpers
    /// re-attach, and `lifecycle::Servers::recover` ends those that do not.
    pub fn repair(&self) -> DbResult<Vec<ServerRow>> {
        let stale: Vec<ServerRow> = self
            .servers()?
            .into_iter()
            .filter(|s| s.state != "running")
            .collect();
        for s in &stale {
            self.server_stopped(&s.user, &s.name)?;
            tracing::warn!(user = %s.user, server = %s.name, state = %s.state,
                "repair: server left half-done by the previous hub marked stopped");
        }
        Ok(stale)
    }

    /// Gets or creates a user.
    pub fn ensure_user(&self, name: &str, admin: Option<bool>) -> DbResult<UserRow> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO users (name, admin, created) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            params![name, admin.unwrap_or(false), now_iso()],
        )?;
        if let Some(a) = admin {
            conn.execute(
                "UPDATE users SET admin = ?2 WHERE name = ?1",
                params![name, a],
            )?;
        }
        drop(conn);
        self.user(name)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> DbResult<Option<UserRow>> {
        self.lock()
            .query_row(
                "SELECT id, name, admin, created, last_activity FROM users WHERE name = ?1",
                [name],
                user_row,
            )
            .optional()
    }

    /// All users, by name.
    pub fn users(&self) -> DbResult<Vec<UserRow>> {
        let conn = self.lock();
        let mut st = conn
            .prepare("SELECT id, name, admin, created, last_activity FROM users ORDER BY name")?;
        let rows = st.query_map([], user_row)?.collect();
        rows
    }

    /// Deletes a user and everything of theirs.
    pub fn delete_user(&self, name: &str) -> DbResult<bool> {
        Ok(self
            .lock()
            .execute("DELETE FROM users WHERE name = ?1", [name])?
            > 0)
    }

    /// Moves a user's (and their server's) `last_activity` forward, never back.
    pub fn touch(&self, user: &str, server: Option<&str>, at: &str) -> DbResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE users SET last_activity = ?2 WHERE name = ?1 AND (last_activity IS NULL OR last_activity < ?2)",
            params![user, at],
        )?;
        if let Some(s) = server {
            tx.execute(
                "UPDATE servers SET last_activity = ?3 WHERE name = ?2 AND user_id = (SELECT id FROM users WHERE name = ?1)
                 AND (last_activity IS NULL OR last_activity < ?3)",
                params![user, s, at],
            )?;
        }
        tx.commit()
    }

    /// Records a spawn that is starting.
    pub fn server_starting(&self, user: &str, server: &str, port: u16) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO servers (user_id, name, state, port, started) SELECT id, ?2, 'starting', ?3, ?4 FROM users WHERE name = ?1",
            params![user, server, port, now_iso()],
        )?;
        Ok(())
    }

    /// Records a server as running with its pid.
    pub fn server_running(&self, user: &str, server: &str, pid: u32) -> DbResult<()> {
        self.set_server(user, server, "running", Some(pid))
    }

    /// Records a stop in progress.
    pub fn server_stopping(&self, user: &str, server: &str) -> DbResult<()> {
        self.set_server(user, server, "stopping", None)
    }

    fn set_server(&self, user: &str, server: &str, state: &str, pid: Option<u32>) -> DbResult<()> {
        self.lock().execute(
            "UPDATE servers SET state = ?3, pid = COALESCE(?4, pid) WHERE name = ?2 AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![user, server, state, pid],
        )?;
        Ok(())
    }

    /// A server has stopped: its row, its API token and its OAuth client (with the
    /// client's codes and tokens) go, in one transaction.
    pub fn server_stopped(&self, user: &str, server: &str) -> DbResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let client = client_id(user, server);
        tx.execute(
            "DELETE FROM servers WHERE name = ?2 AND user_id = (SELECT id FROM users WHERE name = ?1)",
            params![user, server],
        )?;
        tx.execute(
            "DELETE FROM api_tokens WHERE (kind = 'server' AND client_id = ?1) OR (kind = 'oauth' AND client_id = ?1)",
            [&client],
        )?;
        tx.execute("DELETE FROM oauth_clients WHERE id = ?1", [&client])?;
        tx.commit()
    }

    /// One server.
    pub fn server(&self, user: &str, server: &str) -> DbResult<Option<ServerRow>> {
        Ok(self
            .servers()?
            .into_iter()
            .find(|s| s.user == user && s.name == server))
    }

    /// All servers that are not stopped.
    pub fn servers(&self) -> DbResult<Vec<ServerRow>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT u.name, s.name, s.state, s.port, s.pid, s.started, s.last_activity
             FROM servers s JOIN users u ON u.id = s.user_id ORDER BY u.name, s.name",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok(ServerRow {
                    user: r.get(0)?,
                    name: r.get(1)?,
                    state: r.get(2)?,
                    port: r.get(3)?,
                    pid: r.get(4)?,
                    started: r.get(5)?,
                    last_activity: r.get(6)?,
                })
            })?
            .collect();
        rows
    }

    /// Registers the server's API token and OAuth client (secret = hash of the token),
    /// replacing earlier ones, in one transaction.
    pub fn register_server_client(
        &self,
        user: &UserRow,
        server: &str,
        api_token: &str,
        redirect_uri: &str,
        description: &str,
    ) -> DbResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let client = client_id(&user.name, server);
        tx.execute(
            "DELETE FROM api_tokens WHERE kind = 'server' AND client_id = ?1",
            [&client],
        )?;
        tx.execute(
            "INSERT INTO api_tokens (user_id, hash, kind, client_id, note, created) VALUES (?1, ?2, 'server', ?3, ?4, ?5)",
            params![user.id, hash(api_token), client, description, now_iso()],
        )?;
        tx.execute(
            "INSERT INTO oauth_clients (id, user_id, secret_hash, redirect_uri, description) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET secret_hash = excluded.secret_hash, redirect_uri = excluded.redirect_uri",
            params![client, user.id, hash(api_token), redirect_uri, description],
        )?;
        tx.commit()
    }

    /// An OAuth client: `(owner id, secret hash, redirect uri)`.
    pub fn oauth_client(&self, id: &str) -> DbResult<Option<(i64, String, String)>> {
        self.lock()
            .query_row(
                "SELECT user_id, secret_hash, redirect_uri FROM oauth_clients WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
    }

    /// Stores an OAuth code (hashed).
    pub fn add_code(&self, code: &str, row: &CodeRow) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO oauth_codes (hash, client_id, user_id, redirect_uri, session_id, challenge, challenge_method, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![hash(code), row.client_id, row.user_id, row.redirect_uri, row.session_id,
                    row.challenge, row.challenge_method, unix_now() + CODE_SECS],
        )?;
        Ok(())
    }

    /// Takes a code out (single use): returns it only if it existed and had not expired.
    pub fn take_code(&self, code: &str) -> DbResult<Option<CodeRow>> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let row = tx
            .query_row(
                "SELECT client_id, user_id, redirect_uri, session_id, challenge, challenge_method, expires_at
                 FROM oauth_codes WHERE hash = ?1",
                [hash(code)],
                |r| {
                    Ok((
                        CodeRow {
                            client_id: r.get(0)?,
                            user_id: r.get(1)?,
                            redirect_uri: r.get(2)?,
                            session_id: r.get(3)?,
                            challenge: r.get(4)?,
                            challenge_method: r.get(5)?,
                        },
                        r.get::<_, i64>(6)?,
                    ))
                },
            )
            .optional()?;
        tx.execute(
            "DELETE FROM oauth_codes WHERE hash = ?1 OR expires_at < ?2",
            params![hash(code), unix_now()],
        )?;
        tx.commit()?;
        Ok(row.filter(|(_, exp)| *exp >= unix_now()).map(|(c, _)| c))
    }

    /// Issues a token of `kind` for `user_id`; returns its row id.
    #[allow(clippy::too_many_arguments)] // one column each; a struct would only rename them
    pub fn add_token(
        &self,
        user_id: i64,
        token: &str,
        kind: &str,
        client_id: Option<&str>,
        session_id: Option<&str>,
        note: &str,
        expires_in: Option<i64>,
    ) -> DbResult<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO api_tokens (user_id, hash, kind, client_id, session_id, note, created, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![user_id, hash(token), kind, client_id, session_id, note, now_iso(),
                    expires_in.map(|s| unix_now() + s)],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Looks a bearer token up; expired tokens are deleted and not found.
    pub fn token(&self, token: &str) -> DbResult<Option<TokenRow>> {
        if token.len() > 256 {
            return Ok(None);
        }
        let conn = self.lock();
        conn.execute(
            "DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?1",
            [unix_now()],
        )?;
        conn.query_row(
            "SELECT t.id, t.kind, t.client_id, t.session_id, t.note, t.created, t.expires_at,
                    u.id, u.name, u.admin, u.created, u.last_activity
             FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
            [hash(token)],
            |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    client_id: r.get(2)?,
                    session_id: r.get(3)?,
                    note: r.get(4)?,
                    created: r.get(5)?,
                    expires_at: r.get(6)?,
                    user: UserRow {
                        id: r.get(7)?,
                        name: r.get(8)?,
                        admin: r.get(9)?,
                        created: r.get(10)?,
                        last_activity: r.get(11)?,
                    },
                })
            },
        )
        .optional()
    }

    /// A user's own API tokens (kind `api`).
    pub fn api_tokens(&self, user_id: i64) -> DbResult<Vec<TokenSummary>> {
        let conn = self.lock();
        let mut st = conn.prepare(
            "SELECT id, note, created, expires_at FROM api_tokens WHERE user_id = ?1 AND kind = 'api' ORDER BY id",
        )?;
        let rows = st
            .query_map([user_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect();
        rows
    }

    /// Revokes one of a user's API tokens.
    pub fn delete_api_token(&self, user_id: i64, id: i64) -> DbResult<bool> {
        Ok(self.lock().execute(
            "DELETE FROM api_tokens WHERE user_id = ?1 AND id = ?2 AND kind = 'api'",
            params![user_id, id],
        )? > 0)
    }

    /// Starts a login session; returns nothing, the caller keeps the secret.
    pub fn add_session(&self, secret: &str, user_id: i64, session_id: &str) -> DbResult<()> {
        self.lock().execute(
            "INSERT INTO sessions (hash, user_id, session_id, created, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash(secret), user_id, session_id, now_iso(), unix_now() + SESSION_SECS],
        )?;
        Ok(())
    }

    /// The user and session id of a live login session.
    pub fn session(&self, secret: &str) -> DbResult<Option<(UserRow, String)>> {
        self.lock()
            .query_row(
                "SELECT u.id, u.name, u.admin, u.created, u.last_activity, s.session_id
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = ?1 AND s.expires_at >= ?2",
                params![hash(secret), unix_now()],
                |r| Ok((user_row(r)?, r.get(5)?)),
            )
            .optional()
    }

    /// Ends a login session and revokes the OAuth tokens issued in it (compat §1.7).
    pub fn end_session(&self, secret: &str) -> DbResult<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let sid: Option<String> = tx
            .query_row(
                "SELECT session_id FROM sessions WHERE hash = ?1",
                [hash(secret)],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(sid) = sid {
            tx.execute(
                "DELETE FROM api_tokens WHERE kind = 'oauth' AND session_id = ?1",
                [&sid],
            )?;
        }
        tx.execute("DELETE FROM sessions WHERE hash = ?1", [hash(secret)])?;
        tx.commit()
    }
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        name: r.get(1)?,
        admin: r.get(2)?,
        created: r.get(3)?,
        last_activity: r.get(4)?,
    })
}

/// The OAuth client id of a server: `jupyterhub-user-<name>[-<server>]` (compat §1.2).
pub fn client_id(user: &str, server: &str) -> String {
    let user = crate::web::urlquote(user);
    if server.is_empty() {
        format!("jupyterhub-user-{user}")
    } else {
        format!("jupyterhub-user-{user}-{server}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_hashed_and_server_cleanup_is_complete() {
        let db = Db::in_memory().unwrap();
        assert_eq!(db.version().unwrap(), MIGRATIONS.len());
        let alice = db.ensure_user("alice", None).unwrap();
        db.server_starting("alice", "", 50000).unwrap();
        db.register_server_client(
            &alice,
            "",
            "servertoken123",
            "/user/alice/oauth_callback",
            "Server at /user/alice/",
        )
        .unwrap();
        db.server_running("alice", "", 42).unwrap();
        let t = db.token("servertoken123").unwrap().unwrap();
        assert_eq!((t.kind.as_str(), t.user.name.as_str()), ("server", "alice"));
        // The clear token is nowhere in the table.
        let stored: Vec<String> = {
            let conn = db.lock();
            let mut st = conn.prepare("SELECT hash FROM api_tokens").unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert!(stored.iter().all(|h| !h.contains("servertoken123")));
        let oauth = db
            .add_token(
                alice.id,
                "oauthtok",
                "oauth",
                Some("jupyterhub-user-alice"),
                Some("sid"),
                "",
                Some(60),
            )
            .unwrap();
        assert!(oauth > 0);
        db.server_stopped("alice", "").unwrap();
        assert!(db.token("servertoken123").unwrap().is_none());
        assert!(db.token("oauthtok").unwrap().is_none());
        assert!(db.oauth_client("jupyterhub-user-alice").unwrap().is_none());
        assert!(db.server("alice", "").unwrap().is_none());
    }

    #[test]
    fn codes_are_single_use() {
        let db = Db::in_memory().unwrap();
        let alice = db.ensure_user("alice", None).unwrap();
        db.register_server_client(&alice, "", "tok", "/cb", "d")
            .unwrap();
        let row = CodeRow {
            client_id: "jupyterhub-user-alice".into(),
            user_id: alice.id,
            redirect_uri: "/cb".into(),
            session_id: None,
            challenge: None,
            challenge_method: None,
        };
        db.add_code("code1", &row).unwrap();
        assert_eq!(db.take_code("code1").unwrap(), Some(row));
        assert_eq!(db.take_code("code1").unwrap(), None);
    }

    #[test]
    fn repair_ends_half_done_spawns_and_keeps_running_ones() {
        let db = Db::in_memory().unwrap();
        db.ensure_user("a", None).unwrap();
        db.ensure_user("b", None).unwrap();
        db.server_starting("a", "", 50001).unwrap();
        db.server_starting("b", "", 50002).unwrap();
        db.server_running("b", "", 7).unwrap();
        let fixed = db.repair().unwrap();
        assert_eq!(fixed.len(), 1);
        assert!(db.server("a", "").unwrap().is_none());
        assert_eq!(db.server("b", "").unwrap().unwrap().pid, Some(7));
    }

    #[test]
    fn activity_only_moves_forward() {
        let db = Db::in_memory().unwrap();
        db.ensure_user("a", None).unwrap();
        db.touch("a", None, "2026-01-02T00:00:00.000000Z").unwrap();
        db.touch("a", None, "2026-01-01T00:00:00.000000Z").unwrap();
        assert_eq!(
            db.user("a").unwrap().unwrap().last_activity.as_deref(),
            Some("2026-01-02T00:00:00.000000Z")
        );
    }
}
