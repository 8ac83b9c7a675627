//! The hub's state in SQLite: users, servers, tokens (hashed), OAuth clients and codes,
//! login sessions. The database is the source of truth: every state change is one
//! transaction, and [`Servers::repair`](servers::Servers::repair) fixes what a crash left
//! half-done.
//!
//! [`Db`] opens and migrates the file; each table group is reached through its own small
//! view (`db.users()`, `db.servers()`, `db.tokens()`, `db.oauth()`, `db.sessions()`).

/// The columns every query that reads a [`UserRow`] selects, in its order (a macro, so
/// that hot queries are `concat!`ed once at compile time).
macro_rules! user_columns {
    () => {
        "u.id, u.name, u.admin, u.created, u.last_activity"
    };
}

mod cache;
mod groups;
mod identities;
mod named;
mod native;
mod oauth;
mod servers;
mod sessions;
mod tokens;
mod user_list;
mod users;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

pub use groups::{GroupError, GroupRow, Groups};
pub use identities::{Binding, Identities};
pub use named::{Created, Named, NamedRow, Renamed};
pub use native::{AccountStatus, Native, NativeAccount, SignedUp};
pub use oauth::{CodeRow, OAuth, OAuthClient, CODE_SECS, OAUTH_TOKEN_SECS};
pub use servers::{JobRow, ServerRow, Servers};
pub use sessions::{Sessions, SESSION_SECS};
pub use tokens::{NewToken, TokenRow, TokenSummary, Tokens};
pub use user_list::{HavingServer, SortBy, UserQuery};
pub use users::{UserRow, Users};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
];

/// Errors from the database.
pub type DbResult<T> = Result<T, rusqlite::Error>;

/// Shared handle to the database.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// When expired tokens were last deleted (unix seconds).
    last_purge: Arc<AtomicI64>,
    /// The number of users, with the `data_version` it was counted at: kept until this
    /// hub adds or deletes a user, or another connection commits (see [`Users::count`]).
    user_count: Arc<Mutex<Option<(i64, usize)>>>,
    /// The connection's `total_changes` when it was last released (see [`cache`]).
    changes: Arc<AtomicU64>,
    /// Token rows by hash, with their expiry.
    token_cache: Arc<cache::ReadCache<(TokenRow, Option<i64>)>>,
    /// A user's servers' rows and groups, by user id.
    extras_cache: Arc<cache::ReadCache<UserExtras>>,
}

/// What a user's model needs besides their row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserExtras {
    /// Their default server's row, unless it is stopped.
    pub default: Option<ServerRow>,
    /// Their named servers.
    pub named: Vec<NamedRow>,
    /// Their groups' names.
    pub groups: Vec<String>,
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
            last_purge: Arc::new(AtomicI64::new(0)),
            user_count: Arc::new(Mutex::new(None)),
            changes: Arc::new(AtomicU64::new(0)),
            token_cache: Arc::new(cache::ReadCache::new()),
            extras_cache: Arc::new(cache::ReadCache::new()),
        };
        db.migrate()?;
        Ok(db)
    }

    /// Runs `f` on views that share one lock of the connection and one read transaction:
    /// what several statements read is consistent, and the connection is locked once
    /// (a whoami reads a token, a server and groups on every call).
    pub fn read<R>(&self, f: impl FnOnce(&Snapshot<'_>) -> DbResult<R>) -> DbResult<R> {
        let conn = self.lock();
        let tx =
            rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Deferred)?;
        let out = f(&Snapshot(Src::Held(self, &tx)))?;
        tx.commit()?;
        Ok(out)
    }

    /// A user's servers and groups, read in one snapshot; kept while the database does
    /// not change (see [`cache`]).
    pub fn user_extras(&self, user: &UserRow) -> DbResult<UserExtras> {
        let key = user.id.to_string();
        if let Some(v) = self
            .extras_cache
            .get(&key, self.changes.load(Ordering::Acquire))
        {
            return Ok(v);
        }
        let (changes, extras) = self.read(|db| {
            let default = db
                .servers()
                .get(&crate::types::ServerKey::default_of(&user.name))?;
            let named = db.named().of_users(&[user.id])?.remove(&user.id);
            let groups = db.groups().of_users(&[user.id])?.remove(&user.id);
            let extras = UserExtras {
                default,
                named: named.unwrap_or_default(),
                groups: groups.unwrap_or_default(),
            };
            Ok((db.changes(), extras))
        })?;
        self.extras_cache.put(key, changes, extras.clone());
        Ok(extras)
    }

    fn lock(&self) -> Locked<'_> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions
        // roll back), so a poisoned lock is still safe to use.
        Locked {
            guard: self.conn.lock().unwrap_or_else(|p| p.into_inner()),
            changes: &self.changes,
        }
    }

    /// Whether a periodic clean-up last ran `every` seconds or more before `now`; if so,
    /// it counts as run now.
    fn due(&self, now: i64, every: i64) -> bool {
        let last = self.last_purge.load(Ordering::Relaxed);
        now - last >= every
            && self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
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

    /// Groups and their members.
    pub fn groups(&self) -> Groups<'_> {
        Groups(Src::Own(self))
    }

    /// The users table.
    pub fn users(&self) -> Users<'_> {
        Users(Src::Own(self))
    }

    /// Servers, with their server tokens and OAuth clients.
    pub fn servers(&self) -> Servers<'_> {
        Servers(Src::Own(self))
    }

    /// Named servers, stopped or not.
    pub fn named(&self) -> Named<'_> {
        Named(Src::Own(self))
    }

    /// The hub's own accounts and the lockouts of every name.
    pub fn native(&self) -> Native<'_> {
        Native(Src::Own(self))
    }

    /// API, server and OAuth tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens(Src::Own(self))
    }

    /// OAuth clients and codes.
    pub fn oauth(&self) -> OAuth<'_> {
        OAuth(Src::Own(self))
    }

    /// The provider identities users are bound to.
    pub fn identities(&self) -> Identities<'_> {
        Identities(Src::Own(self))
    }

    /// Login sessions.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions(Src::Own(self))
    }
}

/// The locked connection. Releasing it publishes its `total_changes`, so that
/// [`cache`] entries read before a write are not used after it.
struct Locked<'a> {
    guard: MutexGuard<'a, Connection>,
    changes: &'a AtomicU64,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.changes
            .store(self.guard.total_changes(), Ordering::Release);
    }
}

impl Deref for Locked<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.guard
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.guard
    }
}

/// The views of one [`Db::read`]: their statements run in its transaction.
pub struct Snapshot<'a>(Src<'a>);

impl Snapshot<'_> {
    /// The connection's change count, for entries of [`cache`] read in this snapshot.
    fn changes(&self) -> u64 {
        self.0.lock().total_changes()
    }

    /// Groups and their members.
    pub fn groups(&self) -> Groups<'_> {
        Groups(self.0)
    }

    /// The users table.
    pub fn users(&self) -> Users<'_> {
        Users(self.0)
    }

    /// Servers.
    pub fn servers(&self) -> Servers<'_> {
        Servers(self.0)
    }

    /// Named servers.
    pub fn named(&self) -> Named<'_> {
        Named(self.0)
    }

    /// API, server and OAuth tokens.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens(self.0)
    }
}

/// Where a view's statements run: each under its own lock of the connection, or inside
/// the lock and transaction a [`Db::read`] holds.
#[derive(Clone, Copy)]
enum Src<'a> {
    Own(&'a Db),
    Held(&'a Db, &'a Connection),
}

impl<'a> Src<'a> {
    fn lock(&self) -> Conn<'a> {
        match *self {
            Self::Own(db) => Conn::Guard(db.lock()),
            Self::Held(_, conn) => Conn::Held(conn),
        }
    }
}

impl Deref for Src<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        match *self {
            Self::Own(db) | Self::Held(db, _) => db,
        }
    }
}

/// A locked connection: its own guard, or the one a [`Db::read`] holds.
enum Conn<'a> {
    Guard(Locked<'a>),
    Held(&'a Connection),
}

impl Deref for Conn<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Self::Guard(g) => g,
            Self::Held(c) => c,
        }
    }
}

#[cfg(test)]
mod tests;
