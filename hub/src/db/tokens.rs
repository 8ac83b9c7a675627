//! The `api_tokens` table: every token is stored as its SHA-256, never in clear.

use rusqlite::{params, OptionalExtension};

use super::users::UserRow;
use super::DbResult;
use crate::secrets::hash;
use crate::timestamp::{now_iso, unix_now};
use crate::types::{ServerKey, TokenKind};

/// Longest token looked up; anything longer cannot be one of ours.
const MAX_TOKEN_LEN: usize = 256;

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Row id (the API shows it as `a<id>`).
    pub id: i64,
    /// Owner.
    pub user: UserRow,
    /// What it is for.
    pub kind: TokenKind,
    /// The OAuth client for server and OAuth tokens.
    pub client_id: Option<String>,
    /// The server that client is, while it is registered.
    pub server: Option<ServerKey>,
    /// The login session it was issued in.
    pub session_id: Option<String>,
    /// Its own scopes, as asked for when it was made; `None`: its owner's.
    pub scopes: Option<Vec<String>>,
}

/// An API token as its owner's token list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSummary {
    /// Row id.
    pub id: i64,
    /// Free text.
    pub note: String,
    /// Creation time.
    pub created: String,
    /// Expiry (Unix seconds).
    pub expires_at: Option<i64>,
    /// Its own scopes; `None`: its owner's.
    pub scopes: Option<Vec<String>>,
}

/// A stored scope list (JSON), or `None` for NULL or a value that does not parse (the
/// token then holds nothing of its own: see `auth::caller`).
fn scopes_of(raw: Option<String>) -> Option<Vec<String>> {
    raw.map(|r| serde_json::from_str(&r).unwrap_or_default())
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Owner's row id.
    pub user_id: i64,
    /// The secret (stored hashed).
    pub secret: &'a str,
    /// What it is for.
    pub kind: TokenKind,
    /// The OAuth client it was issued to.
    pub client_id: Option<&'a str>,
    /// The login session it was issued in.
    pub session_id: Option<&'a str>,
    /// Free text.
    pub note: &'a str,
    /// Seconds until it expires; `None`: never.
    pub expires_in: Option<i64>,
    /// Its own scopes (a subset of its owner's); `None`: its owner's.
    pub scopes: Option<&'a [String]>,
}

impl<'a> NewToken<'a> {
    /// An API token of `user_id`'s, carrying their rights, bound to no session.
    pub fn api(user_id: i64, secret: &'a str, note: &'a str, expires_in: Option<i64>) -> Self {
        Self {
            user_id,
            secret,
            kind: TokenKind::Api,
            client_id: None,
            session_id: None,
            note,
            expires_in,
            scopes: None,
        }
    }
}

/// The tokens table.
pub struct Tokens<'a>(pub(super) super::Src<'a>);

impl Tokens<'_> {
    /// Stores a token; returns its row id.
    pub fn add(&self, t: &NewToken<'_>) -> DbResult<i64> {
        let conn = self.0.lock();
        conn.execute(
            "INSERT INTO api_tokens (user_id, hash, kind, client_id, session_id, note, created, expires_at, scopes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![t.user_id, hash(t.secret), t.kind, t.client_id, t.session_id, t.note, now_iso(),
                    t.expires_in.map(|s| unix_now() + s),
                    t.scopes.map(|l| serde_json::Value::from(l.to_vec()).to_string())],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Looks a bearer token up; expired tokens are deleted and not found. A token found
    /// is kept (see [`super::cache`]) until the database changes.
    pub fn lookup(&self, secret: &str) -> DbResult<Option<TokenRow>> {
        if secret.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let now = unix_now();
        let key = hash(secret);
        let changes = self.0.changes.load(std::sync::atomic::Ordering::Acquire);
        if let Some((row, expires_at)) = self.0.token_cache.get(&key, changes) {
            if expires_at.is_none_or(|e| e >= now) {
                return Ok(Some(row));
            }
        }
        let conn = self.0.lock();
        // Expired tokens never match; their rows go at most once a minute, so that a
        // lookup (every API call, every server's whoami) is one read, not a write.
        if self.0.due(now, 60) {
            conn.execute(
                "DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?1",
                [now],
            )?;
        }
        let mut st = conn.prepare_cached(concat!(
            "SELECT t.id, t.kind, t.client_id, t.session_id, t.expires_at, t.scopes, ",
            user_columns!(),
            ", cu.name, c.server FROM api_tokens t JOIN users u ON u.id = t.user_id
             LEFT JOIN oauth_clients c ON c.id = t.client_id
             LEFT JOIN users cu ON cu.id = c.user_id
             WHERE t.hash = ?1 AND (t.expires_at IS NULL OR t.expires_at >= ?2)"
        ))?;
        let found = st
            .query_row(params![key, now], |r| {
                let row = TokenRow {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    client_id: r.get(2)?,
                    server: match (r.get(11)?, r.get(12)?) {
                        (Some(user), Some(name)) => Some(ServerKey::new(user, name)),
                        _ => None,
                    },
                    session_id: r.get(3)?,
                    scopes: scopes_of(r.get(5)?),
                    user: UserRow::from_row(r, 6)?,
                };
                Ok((row, r.get::<_, Option<i64>>(4)?))
            })
            .optional()?;
        if let Some(entry) = &found {
            self.0
                .token_cache
                .put(key, conn.total_changes(), entry.clone());
        }
        Ok(found.map(|(row, _)| row))
    }

    /// A user's own API tokens that have not expired, oldest first; the admin page's,
    /// bound to a login session and ending with it, are not listed.
    pub fn api_tokens(&self, user_id: i64) -> DbResult<Vec<TokenSummary>> {
        let conn = self.0.lock();
        let mut st = conn.prepare(
            "SELECT id, note, created, expires_at, scopes FROM api_tokens
             WHERE user_id = ?1 AND kind = ?2 AND session_id IS NULL
               AND (expires_at IS NULL OR expires_at >= ?3) ORDER BY id",
        )?;
        let rows = st
            .query_map(params![user_id, TokenKind::Api, unix_now()], |r| {
                Ok(TokenSummary {
                    id: r.get(0)?,
                    note: r.get(1)?,
                    created: r.get(2)?,
                    expires_at: r.get(3)?,
                    scopes: scopes_of(r.get(4)?),
                })
            })?
            .collect();
        rows
    }

    /// Revokes one of a user's API tokens.
    pub fn delete_api(&self, user_id: i64, id: i64) -> DbResult<bool> {
        Ok(self.0.lock().execute(
            "DELETE FROM api_tokens WHERE user_id = ?1 AND id = ?2 AND kind = ?3",
            params![user_id, id, TokenKind::Api],
        )? > 0)
    }
}
