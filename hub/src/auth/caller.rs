//! Who is calling the REST API, and what they may do.
//!
//! A caller is a user (by API token, by one of their server's tokens, or by login cookie
//! plus XSRF token) or a configured service (by its token). Handlers take [`Caller`] as
//! an extractor and ask [`Caller::require`] for the scope they need.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::session::{AuthState, Session};
use crate::config::{HubConfig, ServiceSection};
use crate::db::{TokenRow, UserRow};
use crate::error::HubError;
use crate::secrets::same;
use crate::types::{TokenKind, Username};

/// Who is calling the API.
// One per request, moved into the handler: boxing the user variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Caller {
    /// A user, by token or by cookie (with XSRF).
    User {
        /// The user.
        user: UserRow,
        /// The token, if token-authenticated.
        token: Option<TokenRow>,
    },
    /// A configured service token.
    Service {
        /// Its name.
        name: String,
        /// Admin rights.
        admin: bool,
    },
}

impl Caller {
    /// What the caller's credential is: a cookie counts as an API token (all of its
    /// user's rights).
    fn kind(&self) -> Option<TokenKind> {
        match self {
            Self::User { token, .. } => Some(token.as_ref().map_or(TokenKind::Api, |t| t.kind)),
            Self::Service { .. } => None,
        }
    }

    /// Whether the caller has admin rights.
    pub fn is_admin(&self) -> bool {
        match self {
            Self::User { user, .. } => user.admin && self.kind() == Some(TokenKind::Api),
            Self::Service { admin, .. } => *admin,
        }
    }

    /// The calling user, if a user is calling.
    pub fn user(&self) -> Option<&UserRow> {
        match self {
            Self::User { user, .. } => Some(user),
            Self::Service { .. } => None,
        }
    }

    /// `user <name>` or `service <name>`, for logs and default token notes.
    pub fn describe(&self) -> String {
        match self {
            Self::User { user, .. } => format!("user {}", user.name),
            Self::Service { name, .. } => format!("service {name}"),
        }
    }

    /// Whether the caller holds `scope` on `name`'s resources. A login cookie or an API
    /// token carries all of its user's rights (and an admin's, everyone's). The tokens a
    /// single-user server holds carry only what JupyterHub gives them: a server token may
    /// read its user and report activity, an OAuth token may read its user. An admin who
    /// opens someone's server hands that server an OAuth token: it must not be usable to
    /// act as the admin, nor to mint tokens that could.
    pub fn may(&self, name: &Username, scope: &str) -> bool {
        match self {
            Self::User { user, .. } => {
                let own = user.name == *name;
                match self.kind() {
                    Some(TokenKind::Api) => own || self.is_admin(),
                    Some(TokenKind::Server) => {
                        own && matches!(scope, "users:activity" | "read:users")
                    }
                    _ => own && scope == "read:users",
                }
            }
            Self::Service { admin, .. } => *admin,
        }
    }

    /// Whether the caller holds `scope` on every user's resources (an admin's API token,
    /// an admin service): then lists need not be filtered user by user.
    pub fn may_all(&self, scope: &str) -> bool {
        let _ = scope;
        match self {
            Self::User { .. } => self.kind() == Some(TokenKind::Api) && self.is_admin(),
            Self::Service { admin, .. } => *admin,
        }
    }

    /// `Ok` if the caller holds `scope` on `name`'s resources; else JupyterHub's answer:
    /// 404 when `hide` (so existence does not leak), or 403 naming the scope.
    pub fn require(&self, name: &Username, scope: &str, hide: bool) -> Result<(), HubError> {
        if self.may(name, scope) {
            Ok(())
        } else if hide {
            Err(HubError::not_found(
                "No access to resources or resources not found",
            ))
        } else {
            Err(missing_scope(scope))
        }
    }

    /// `Ok` for admins; else 403 naming `scope`.
    pub fn require_admin(&self, scope: &str) -> Result<(), HubError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(missing_scope(scope))
        }
    }

    /// The scopes a request of this caller holds (compat §1.4d, §2.5): what the
    /// single-user server checks against its access scopes.
    pub fn scopes(&self) -> Vec<String> {
        match self {
            // An OAuth token opens the server it was issued for: its owner's, or another
            // user's that an admin opened (the client id names that server's user).
            Self::User {
                user,
                token: Some(t),
            } if t.kind == TokenKind::OAuth => {
                let server_of = t
                    .client_id
                    .as_deref()
                    .and_then(|c| c.strip_prefix(crate::urls::CLIENT_PREFIX))
                    .unwrap_or(user.name.as_str());
                let mut v = scopes(user, TokenKind::OAuth);
                let own = format!("access:servers!server={}/", user.name);
                if server_of != user.name.as_str() {
                    v.retain(|sc| *sc != own);
                    v.push(format!("access:servers!server={server_of}/"));
                    v.sort();
                }
                v
            }
            Self::User { user, .. } => scopes(user, self.kind().unwrap_or(TokenKind::Api)),
            Self::Service { admin: true, .. } => {
                let mut v: Vec<String> = [
                    "access:servers",
                    "admin:servers",
                    "admin:users",
                    "list:services",
                    "list:users",
                    "read:hub",
                    "read:services",
                ]
                .map(String::from)
                .to_vec();
                v.sort();
                v
            }
            Self::Service { .. } => Vec::new(),
        }
    }
}

fn missing_scope(scope: &str) -> HubError {
    HubError::forbidden(format!(
        "Action is not authorized with current scopes; requires any of [{scope}]"
    ))
}

/// The scopes of a credential of `kind` belonging to `user`.
pub fn scopes(user: &UserRow, kind: TokenKind) -> Vec<String> {
    let n = &user.name;
    let mut v: Vec<String> = match kind {
        TokenKind::OAuth => vec![
            format!("access:servers!server={n}/"),
            format!("read:users:groups!user={n}"),
            format!("read:users:name!user={n}"),
        ],
        TokenKind::Server => vec![
            format!("access:servers!server={n}/"),
            format!("read:users:activity!user={n}"),
            format!("read:users:groups!user={n}"),
            format!("read:users:name!user={n}"),
            format!("users:activity!user={n}"),
        ],
        TokenKind::Api => {
            let mut v = vec![
                format!("access:servers!user={n}"),
                format!("read:users!user={n}"),
                format!("servers!user={n}"),
                format!("tokens!user={n}"),
                format!("users:activity!user={n}"),
            ];
            if user.admin {
                v.extend(
                    [
                        "admin:users",
                        "admin:servers",
                        "access:servers",
                        "list:users",
                        "read:hub",
                    ]
                    .map(String::from),
                );
            }
            v
        }
    };
    v.sort();
    v
}

/// The token in `Authorization: token X` or `bearer X` (any case); `?token=` is not
/// accepted (compat §0.11).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, tok) = v.trim().split_once(' ')?;
    let tok = tok.trim();
    ((scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        && !tok.is_empty()
        && !tok.contains(' '))
    .then_some(tok)
}

/// The configured service whose `api_token` is `tok` (compared in constant time).
pub fn service_by_token<'a>(cfg: &'a HubConfig, tok: &str) -> Option<&'a ServiceSection> {
    cfg.services
        .iter()
        .find(|svc| svc.api_token.as_deref().is_some_and(|t| same(t, tok)))
}

/// Authenticates an API request: token first, else the login cookie with an XSRF token
/// (`?_xsrf=` or `X-XSRFToken`).
pub fn identify<S: AuthState>(state: &S, parts: &Parts) -> Option<Caller> {
    let (cfg, db, key) = (state.config(), state.db(), state.cookie_key());
    if let Some(tok) = bearer(&parts.headers) {
        if let Some(svc) = service_by_token(cfg, tok) {
            return Some(Caller::Service {
                name: svc.name.clone(),
                admin: svc.admin,
            });
        }
        let row = db.tokens().lookup(tok).ok()??;
        return Some(Caller::User {
            user: row.user.clone(),
            token: Some(row),
        });
    }
    let session = Session::current(db, key, state.cookie_names(), &parts.headers)?;
    let query = Query::<HashMap<String, String>>::try_from_uri(&parts.uri).ok();
    let sent = query
        .and_then(|Query(mut q)| q.remove("_xsrf"))
        .or_else(|| {
            parts
                .headers
                .get("x-xsrftoken")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })?;
    same(&sent, &session.xsrf(key)).then_some(Caller::User {
        user: session.user,
        token: None,
    })
}

/// The answer to a request without valid credentials.
pub fn no_credentials() -> HubError {
    HubError::forbidden("Missing or invalid credentials.")
}

impl<S: AuthState> FromRequestParts<S> for Caller {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        identify(state, parts).ok_or_else(no_credentials)
    }
}
