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
use crate::config::roles;
use crate::config::{HubConfig, ServiceSection};
use crate::db::Db;
use crate::db::{TokenRow, UserRow};
use crate::error::HubError;
use crate::scopes::ScopeSet;
use crate::secrets::same;
use crate::types::{GroupName, ServerKey, TokenKind, Username};

/// Who is calling the API, and the scopes their credential holds.
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
        /// What it may do.
        scopes: ScopeSet,
    },
    /// A configured service token.
    Service {
        /// Its name.
        name: String,
        /// What it may do.
        scopes: ScopeSet,
    },
}

impl Caller {
    fn held(&self) -> &ScopeSet {
        match self {
            Self::User { scopes, .. } | Self::Service { scopes, .. } => scopes,
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

    /// Whether the caller holds `scope` on `name`'s resources (unfiltered, or filtered to
    /// that user, their default server or one of their groups). Reading a user's model
    /// (`read:users`) is also allowed by one of its parts, as JupyterHub's handler allows
    /// it (a server's own tokens hold `read:users:name` of their user); the model then
    /// has only the fields those parts give ([`Self::user_model_keys`]).
    pub fn may(&self, name: &Username, scope: &str) -> bool {
        let held = self.held();
        held.allows(scope, name, &[])
            || (scope == "read:users"
                && [
                    "read:users:name",
                    "read:users:groups",
                    "read:users:activity",
                ]
                .iter()
                .any(|part| held.allows(part, name, &[])))
    }

    /// Which fields of `name`'s user model the caller may read (JupyterHub's access map
    /// in `user_model`): `None` for all of them (`read:users` and `read:servers`), else
    /// those its parts of `read:users` and `read:servers` give.
    pub fn user_model_keys(&self, name: &Username) -> Option<Vec<&'static str>> {
        const ACCESS: &[(&str, &[&str])] = &[
            (
                "read:users",
                &[
                    "kind",
                    "name",
                    "user_info",
                    "admin",
                    "roles",
                    "groups",
                    "server",
                    "pending",
                    "created",
                    "last_activity",
                ],
            ),
            ("read:users:name", &["kind", "name", "user_info", "admin"]),
            ("read:users:groups", &["kind", "name", "groups"]),
            ("read:users:activity", &["kind", "name", "last_activity"]),
            ("read:servers", &["kind", "name", "servers"]),
            ("read:roles:users", &["kind", "name", "roles", "admin"]),
        ];
        let held = self.held();
        if held.allows("read:users", name, &[]) && held.allows("read:servers", name, &[]) {
            return None;
        }
        let mut keys: Vec<&'static str> = ACCESS
            .iter()
            .filter(|(scope, _)| held.allows(scope, name, &[]))
            .flat_map(|(_, keys)| keys.iter().copied())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        Some(keys)
    }

    /// Whether the caller holds `scope` on every user's resources: then lists need not
    /// be filtered user by user.
    pub fn may_all(&self, scope: &str) -> bool {
        self.held().allows_all(scope)
    }

    /// `Ok` if the caller holds `scope` on `name`'s resources; else JupyterHub's answer:
    /// 404 when `hide` (so existence does not leak), or 403 naming the scope.
    pub fn require(&self, name: &Username, scope: &str, hide: bool) -> Result<(), HubError> {
        verdict(self.may(name, scope), scope, hide)
    }

    /// [`Self::require`] for one server: a `!server=` filter on another server of the
    /// same user does not reach it.
    pub fn require_server(&self, key: &ServerKey, scope: &str, hide: bool) -> Result<(), HubError> {
        let held = self
            .held()
            .allows_on(scope, &key.user, key.name.as_str(), &[]);
        verdict(held, scope, hide)
    }

    /// `Ok` if the caller holds `scope` unfiltered (what an admin holds); else 403
    /// naming it.
    pub fn require_admin(&self, scope: &str) -> Result<(), HubError> {
        if self.may_all(scope) {
            Ok(())
        } else {
            Err(missing_scope(scope))
        }
    }

    /// The scopes this request holds, as whoami reports them (compat §1.4d, §2.5).
    pub fn scopes(&self) -> Vec<String> {
        self.held().strings()
    }
}

/// `Ok` when `held`; else 404 when `hide` (so existence does not leak), or 403 naming
/// `scope`.
fn verdict(held: bool, scope: &str, hide: bool) -> Result<(), HubError> {
    if held {
        Ok(())
    } else if hide {
        Err(HubError::not_found(
            "No access to resources or resources not found",
        ))
    } else {
        Err(missing_scope(scope))
    }
}

fn missing_scope(scope: &str) -> HubError {
    HubError::forbidden(format!(
        "Action is not authorized with current scopes; requires any of [{scope}]"
    ))
}

/// The scopes a server's own credentials hold (compat §1.4d): a server token may report
/// its user's activity and read its user; an OAuth token, issued to a server when someone
/// opens it, opens that server and reads its bearer's name and groups. An admin who opens
/// someone's server hands that server such a token: it cannot act as the admin.
fn server_credential(user: &Username, kind: TokenKind, server: &ServerKey) -> Vec<String> {
    let n = user;
    match kind {
        TokenKind::Server => vec![
            format!("access:servers!server={server}"),
            format!("read:users:activity!user={n}"),
            format!("read:users:groups!user={n}"),
            format!("read:users:name!user={n}"),
            format!("users:activity!user={n}"),
        ],
        _ => vec![
            format!("access:servers!server={server}"),
            format!("read:users:groups!user={n}"),
            format!("read:users:name!user={n}"),
        ],
    }
}

/// What `user` holds by default and by `[[roles]]`, with group filters resolved to the
/// members (so a check needs no database).
pub fn user_scopes<S: AuthState>(state: &S, user: &UserRow) -> ScopeSet {
    let (cfg, db) = (state.config(), state.db());
    let groups = if roles::any_group_roles(&cfg.roles) {
        let mut of = db.groups().of_users(&[user.id]).unwrap_or_default();
        of.remove(&user.id)
            .unwrap_or_default()
            .iter()
            .filter_map(|g| GroupName::parse(g).ok())
            .collect()
    } else {
        Vec::new()
    };
    let mut set = roles::user_scopes(&cfg.roles, &user.name, user.admin, &groups);
    resolve_groups(db, &mut set);
    set
}

fn resolve_groups(db: &Db, set: &mut ScopeSet) {
    if set.has_group_filters() {
        set.resolve_groups(|g| {
            db.groups()
                .get(g)
                .ok()
                .flatten()
                .map(|row| row.users)
                .unwrap_or_default()
        });
    }
}

/// What a token holds: a server's credentials their fixed scopes, an API token its
/// owner's or the scopes it was made with; each only as far as its owner holds them now
/// (a demoted admin's OAuth token for another user's server opens it no more), with group
/// filters resolved to the members.
pub fn token_scopes<S: AuthState>(state: &S, row: &TokenRow) -> ScopeSet {
    let owner = user_scopes(state, &row.user);
    let own = match row.kind {
        TokenKind::Api => match &row.scopes {
            None => return owner,
            Some(asked) => ScopeSet::parse(asked, Some(&row.user.name)).unwrap_or_default(),
        },
        kind => {
            let server = row
                .server
                .clone()
                .unwrap_or_else(|| ServerKey::default_of(&row.user.name));
            let list = server_credential(&row.user.name, kind, &server);
            ScopeSet::parse(&list, None).unwrap_or_default()
        }
    };
    let mut held = own.within(&owner, |_, _| false);
    resolve_groups(state.db(), &mut held);
    held
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
            let mut scopes = roles::service_scopes(&cfg.roles, &svc.name, svc.admin);
            resolve_groups(db, &mut scopes);
            return Some(Caller::Service {
                name: svc.name.clone(),
                scopes,
            });
        }
        let row = db.tokens().lookup(tok).ok()??;
        return Some(Caller::User {
            user: row.user.clone(),
            scopes: token_scopes(state, &row),
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
    same(&sent, &session.xsrf(key)).then(|| Caller::User {
        scopes: user_scopes(state, &session.user),
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
