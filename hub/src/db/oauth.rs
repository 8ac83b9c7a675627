//! OAuth clients (one per server) and single-use authorization codes.

use rusqlite::{params, OptionalExtension};

use super::DbResult;
use crate::secrets::hash;
use crate::timestamp::unix_now;
use crate::types::ServerName;

/// How long an OAuth code is valid.
pub const CODE_SECS: i64 = 300;
/// How long an OAuth access token is valid (`oauth_token_expires_in`).
pub const OAUTH_TOKEN_SECS: i64 = 14 * 86400;

/// A registered OAuth client: a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// The owner's row id.
    pub user_id: i64,
    /// Hash of the client secret.
    pub secret_hash: String,
    /// The one redirect URI it may use.
    pub redirect_uri: String,
    /// Which of the owner's servers it is (`""`: the default one).
    pub server: ServerName,
}

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

/// OAuth clients and codes.
pub struct OAuth<'a>(pub(super) super::Src<'a>);

impl OAuth<'_> {
    /// A client by id.
    pub fn client(&self, id: &str) -> DbResult<Option<OAuthClient>> {
        self.0
            .lock()
            .query_row(
                "SELECT user_id, secret_hash, redirect_uri, server FROM oauth_clients WHERE id = ?1",
                [id],
                |r| {
                    Ok(OAuthClient {
                        user_id: r.get(0)?,
                        secret_hash: r.get(1)?,
                        redirect_uri: r.get(2)?,
                        server: r.get(3)?,
                    })
                },
            )
            .optional()
    }

    /// Stores a code (hashed).
    pub fn add_code(&self, code: &str, row: &CodeRow) -> DbResult<()> {
        self.0.lock().execute(
            "INSERT INTO oauth_codes (hash, client_id, user_id, redirect_uri, session_id, challenge, challenge_method, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![hash(code), row.client_id, row.user_id, row.redirect_uri, row.session_id,
                    row.challenge, row.challenge_method, unix_now() + CODE_SECS],
        )?;
        Ok(())
    }

    /// Takes a code out (single use): returns it only if it existed and had not expired.
    pub fn take_code(&self, code: &str) -> DbResult<Option<CodeRow>> {
        let conn = self.0.lock();
        let tx = conn.unchecked_transaction()?;
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
}
