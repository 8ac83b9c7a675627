//! The JSON shapes of JupyterHub's REST API (compat §2), written once as structs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::db::{NamedRow, ServerRow, TokenSummary, UserRow};
use crate::types::{ServerKey, ServerState, Username};
use crate::urls::Urls;

mod hub;
pub use hub::{ClassInfo, Info, ServiceModel, ServiceWhoAmI, Version};

/// The server model (compat §2.3).
#[derive(Debug, Serialize)]
pub struct ServerModel {
    /// `""` for the default server.
    pub name: String,
    /// Shown name.
    pub display_name: String,
    /// `<user>/<name>`.
    pub full_name: String,
    /// Last activity, or the start time (`null` for a stopped server).
    pub last_activity: Option<String>,
    /// When it started (`null` for a stopped server).
    pub started: Option<String>,
    /// `spawn` or `stop` while a transition runs.
    pub pending: Option<&'static str>,
    /// Running and routed.
    pub ready: bool,
    /// Neither ready nor pending.
    pub stopped: bool,
    /// Its URL path.
    pub url: String,
    /// Options the user chose at spawn (none here).
    pub user_options: BTreeMap<String, serde_json::Value>,
    /// The progress stream.
    pub progress_url: String,
    /// Absolute URL (only with subdomains).
    pub full_url: Option<String>,
    /// Absolute progress URL (only with subdomains).
    pub full_progress_url: Option<String>,
    /// sudohub's addition, for a running server in a cgroup: the limits in force (root's
    /// helpers.toml `[limits]`, read back from the kernel) and what it uses. JupyterHub's
    /// clients ignore the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<sudohub_helpers_config::cgroup::Usage>,
}

impl ServerModel {
    /// The model of server `key` shown as `display_name`, in `state` and recorded as
    /// `row` (none: stopped, last active at `stopped_activity`).
    pub fn new(
        urls: &Urls,
        key: &ServerKey,
        display_name: &str,
        state: &ServerState,
        row: Option<&ServerRow>,
        stopped_activity: Option<&str>,
    ) -> Self {
        let url = urls.server_url(key);
        let ready = *state == ServerState::Running;
        let started = row.map(|r| r.started.clone());
        let absolute = url.starts_with("http").then(|| url.clone());
        Self {
            name: key.name.to_string(),
            display_name: display_name.to_owned(),
            full_name: key.to_string(),
            last_activity: row
                .and_then(|r| r.last_activity.clone())
                .or_else(|| started.clone())
                .or_else(|| stopped_activity.map(str::to_owned)),
            started,
            pending: state.pending(),
            ready,
            stopped: !(ready || state.pending().is_some()),
            url,
            user_options: BTreeMap::new(),
            progress_url: urls.progress(key),
            full_url: absolute,
            full_progress_url: None,
            resources: None,
        }
    }

    /// The model of `u`'s default server, in `state` and recorded as `row`.
    pub fn default_of(
        urls: &Urls,
        u: &UserRow,
        state: &ServerState,
        row: Option<&ServerRow>,
    ) -> Self {
        Self::new(urls, &ServerKey::default_of(&u.name), "", state, row, None)
    }

    /// The model of named server `n` of `user`'s, in `state`.
    pub fn named(urls: &Urls, user: &Username, n: &NamedRow, state: &ServerState) -> Self {
        let key = ServerKey::new(user.clone(), n.name.clone());
        Self::new(
            urls,
            &key,
            &n.display_name,
            state,
            n.running.as_ref(),
            n.last_activity.as_deref(),
        )
    }
}

/// The user model (compat §2.3).
#[derive(Debug, Serialize)]
pub struct UserModel {
    /// Always `user`.
    pub kind: &'static str,
    /// The name.
    pub name: Username,
    /// Admin rights.
    pub admin: bool,
    /// `["user"]` or `["admin", "user"]`.
    pub roles: Vec<&'static str>,
    /// Hub groups the user is a member of.
    pub groups: Vec<String>,
    /// The default server's URL when it is ready.
    pub server: Option<String>,
    /// `spawn` or `stop` while the default server is in transition.
    pub pending: Option<&'static str>,
    /// Creation time.
    pub created: String,
    /// Last activity.
    pub last_activity: Option<String>,
    /// What the authenticator knows (nothing here).
    pub user_info: Option<serde_json::Value>,
    /// Servers by name.
    pub servers: BTreeMap<String, ServerModel>,
}

impl UserModel {
    /// The model of `u`, whose default server is in `state` and recorded as `row`, and
    /// whose named servers are `named`; `with_stopped`: stopped servers are listed too,
    /// as JupyterHub's `include_stopped_servers` does.
    pub fn new(
        urls: &Urls,
        u: &UserRow,
        state: &ServerState,
        row: Option<&ServerRow>,
        with_stopped: bool,
        groups: Vec<String>,
        named: Vec<ServerModel>,
    ) -> Self {
        let url = urls.server_url(&ServerKey::default_of(&u.name));
        let ready = *state == ServerState::Running;
        let mut servers = BTreeMap::new();
        if row.is_some() || with_stopped {
            servers.insert(String::new(), ServerModel::default_of(urls, u, state, row));
        }
        for m in named {
            if !m.stopped || with_stopped {
                servers.insert(m.name.clone(), m);
            }
        }
        Self {
            kind: "user",
            name: u.name.clone(),
            admin: u.admin,
            roles: if u.admin {
                vec!["admin", "user"]
            } else {
                vec!["user"]
            },
            groups,
            server: ready.then_some(url),
            pending: state.pending(),
            created: u.created.clone(),
            last_activity: u.last_activity.clone(),
            user_info: None,
            servers,
        }
    }
}

/// `GET /hub/api/user` for a user: the model plus what the credential holds.
#[derive(Debug, Serialize)]
pub struct WhoAmI {
    /// The user.
    #[serde(flatten)]
    pub user: UserModel,
    /// The scopes of this credential.
    pub scopes: Vec<String>,
    /// `a<id>` of the token, if one was used.
    pub token_id: Option<String>,
    /// The login session the token was issued in.
    pub session_id: Option<String>,
}

/// One page of a paginated list (`Accept: application/jupyterhub-pagination+json`).
#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    /// This page.
    pub items: Vec<T>,
    /// Where it is in the whole.
    #[serde(rename = "_pagination")]
    pub pagination: Pagination,
}

/// The `_pagination` object.
#[derive(Debug, Serialize)]
pub struct Pagination {
    /// First item of this page.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
    /// Items in all.
    pub total: usize,
    /// The next page, if any.
    pub next: Option<NextPage>,
}

/// Where the next page is.
#[derive(Debug, Serialize)]
pub struct NextPage {
    /// Its offset.
    pub offset: usize,
    /// Its size.
    pub limit: usize,
    /// Its URL.
    pub url: String,
}

/// The token model (JupyterHub's `token_model`); the secret only when just issued.
#[derive(Debug, Serialize)]
pub struct TokenModel {
    /// Always `api_token`.
    pub kind: &'static str,
    /// `a<row id>`.
    pub id: String,
    /// The owner.
    pub user: Username,
    /// Free text.
    pub note: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// Roles (none).
    pub roles: Vec<String>,
    /// Creation time.
    pub created: String,
    /// Expiry.
    pub expires_at: Option<String>,
    /// Last use (not tracked).
    pub last_activity: Option<String>,
    /// Always null for API tokens.
    pub session_id: Option<String>,
    /// Always null for API tokens.
    pub oauth_client: Option<String>,
    /// The token itself, once, in the answer to `POST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl TokenModel {
    /// The model of `t`, a token of `user` carrying `scopes`.
    pub fn new(user: &Username, t: &TokenSummary, scopes: Vec<String>) -> Self {
        Self {
            kind: "api_token",
            id: format!("a{}", t.id),
            user: user.clone(),
            note: t.note.clone(),
            scopes,
            roles: Vec::new(),
            created: t.created.clone(),
            expires_at: t.expires_at.and_then(crate::timestamp::iso_from_unix),
            last_activity: None,
            session_id: None,
            oauth_client: None,
            token: None,
        }
    }
}

/// `GET /users/<name>/tokens`.
#[derive(Debug, Serialize)]
pub struct TokenList {
    /// The live API tokens.
    pub api_tokens: Vec<TokenModel>,
}

/// The body of `POST /users/<name>/tokens`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Free text.
    pub note: Option<String>,
    /// Seconds until it expires.
    pub expires_in: Option<i64>,
    /// Narrower scopes: refused unless empty.
    pub scopes: Option<Vec<String>>,
    /// Roles: refused unless empty.
    pub roles: Option<Vec<String>>,
}

/// The body of `POST /users/<name>`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Admin rights.
    pub admin: Option<bool>,
}

/// The body of `POST /users` (bulk).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUsers {
    /// The names to add.
    pub usernames: Vec<String>,
    /// Admin rights, for all of them.
    pub admin: Option<bool>,
}

/// The body of `PATCH /users/<name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// A new name.
    pub name: Option<String>,
    /// Admin rights.
    pub admin: Option<bool>,
}

/// The body of `POST /users/<name>/activity` (compat §1.4b).
#[derive(Debug, Deserialize)]
pub struct ActivityReport {
    /// The user's last activity.
    pub last_activity: Option<String>,
    /// Per server.
    pub servers: Option<BTreeMap<String, ServerActivity>>,
}

/// One server's entry in an activity report.
#[derive(Debug, Deserialize)]
pub struct ServerActivity {
    /// Its last activity.
    pub last_activity: Option<String>,
}

/// The answer of `POST /hub/api/oauth2/token`.
#[derive(Debug, Serialize)]
pub struct AccessToken {
    /// The token.
    pub access_token: String,
    /// Seconds it lasts.
    pub expires_in: i64,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// What it may do, space-separated.
    pub scope: String,
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug, Serialize)]
pub struct OAuthError {
    /// The error code.
    pub error: &'static str,
    /// What went wrong.
    pub error_description: &'static str,
}
