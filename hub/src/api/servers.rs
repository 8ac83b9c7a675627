//! A user's servers: `/users/<name>/server` (the default one) and
//! `/users/<name>/servers/<server>` (named ones, and the default one as `servers/`):
//! read, create, start, stop and remove (renames are [`super::server_patch`], the
//! progress of a start [`super::progress`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::json_body;
use super::models::ServerModel;
use super::users::existing;
use crate::auth::Caller;
use crate::db::{Created, UserRow};
use crate::error::HubError;
use crate::lifecycle::StartError;
use crate::state::AppState;
use crate::types::{ServerKey, ServerName, ServerState, Username};

/// How long `POST …/server` waits for the server before answering 202
/// (JupyterHub's `slow_spawn_timeout`).
const SLOW_SPAWN: Duration = Duration::from_secs(10);
/// How long `DELETE …/server` waits for the stop before answering 202.
const SLOW_STOP: Duration = Duration::from_secs(10);

/// The server named in the path: `/users/{name}/server` is the default one,
/// `/users/{name}/servers/{server}` a named one (`servers/` with an empty name: the
/// default one, as JupyterHub's admin page calls it). A user name that is not valid names
/// nobody (404); a server name that is not valid is kept as its error, for the handler
/// to answer 404 or 400 as JupyterHub does.
pub struct ServerPath {
    /// The owner.
    pub user: Username,
    /// The server's name, or why the path's is not one.
    pub server: Result<ServerName, String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ServerPath {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = match Path::<Vec<(String, String)>>::from_request_parts(parts, state).await {
            Ok(Path(p)) => p,
            Err(_) => Vec::new(),
        };
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let raw = get("name").unwrap_or_default();
        let user = Username::parse(&raw)
            .map_err(|_| HubError::not_found(format!("No such user: {raw}")))?;
        let server = match get("server") {
            None => Ok(ServerName::DEFAULT),
            Some(n) => ServerName::parse(&n),
        };
        Ok(Self { user, server })
    }
}

impl ServerPath {
    /// The server, or 404 for a name that cannot exist (reads and stops).
    pub(super) fn key_or_404(&self) -> Result<ServerKey, HubError> {
        match &self.server {
            Ok(n) => Ok(ServerKey::new(self.user.clone(), n.clone())),
            Err(_) => Err(HubError::not_found(format!(
                "{} has no such server",
                self.user
            ))),
        }
    }

    /// The server, or 400 saying what is wrong with its name (creation and starts).
    fn key_or_400(&self) -> Result<ServerKey, HubError> {
        match &self.server {
            Ok(n) => Ok(ServerKey::new(self.user.clone(), n.clone())),
            Err(e) => Err(HubError::bad_request(e.clone())),
        }
    }
}

/// How JupyterHub names a server in messages: `alice`, or `alice:gpu`.
pub(super) fn log_name(key: &ServerKey) -> String {
    if key.name.is_default() {
        key.user.to_string()
    } else {
        format!("{}:{}", key.user, key.name)
    }
}

/// 400 unless named servers are enabled.
pub(super) fn named_allowed(s: &AppState) -> Result<(), HubError> {
    if s.cfg.allow_named_servers {
        Ok(())
    } else {
        Err(HubError::bad_request("Named servers are not enabled."))
    }
}

/// A server's model as it is now; 404 for a named server that does not exist.
pub(super) fn server_model(
    s: &AppState,
    user: &UserRow,
    key: &ServerKey,
) -> Result<ServerModel, HubError> {
    let mut model = if key.name.is_default() {
        let row = s.db.servers().get(key)?;
        let state = s.servers.state_given(key, row.as_ref().map(|r| r.state));
        ServerModel::default_of(&s.urls, user, &state, row.as_ref())
    } else {
        let n = s.db.named().get(user.id, &key.name)?.ok_or_else(|| {
            HubError::not_found(format!("{} has no server named '{}'", key.user, key.name))
        })?;
        let state = s
            .servers
            .state_given(key, n.running.as_ref().map(|r| r.state));
        ServerModel::named(&s.urls, &key.user, &n, &state)
    };
    if model.ready {
        model.resources = s.resources(key);
    }
    Ok(model)
}

/// What `POST` of a server may carry (JupyterHub's ServerRequest): a display name and
/// user options. Of the options only a Slurm `profile` is used, checked against root's
/// profiles: the spawner runs what its root-owned configuration says.
#[derive(Debug, Default, Deserialize)]
struct ServerRequest {
    display_name: Option<String>,
    user_options: Option<serde_json::Map<String, serde_json::Value>>,
    /// The body is the spawn's user options (JupyterHub); a Slurm profile is `profile`.
    profile: Option<serde_json::Value>,
}

/// The Slurm profile a start asks for (the body's `profile`, or `user_options.profile`),
/// checked against root's profiles open to the server's user: the name to submit with,
/// or a 400 that says what to pick. `""` without the Slurm backend.
pub fn profile_for(s: &AppState, key: &ServerKey, asked: Option<&str>) -> Result<String, HubError> {
    if s.cfg.spawner.backend != sudohub_helpers_config::slurm::Backend::Slurm {
        // As JupyterHub's local spawners: options a spawner does not use are ignored.
        let _ = asked;
        return Ok(String::new());
    }
    crate::slurm::profiles::choose(&s.profiles, asked.unwrap_or(""), &key.user)
        .map_err(HubError::bad_request)
}

impl ServerRequest {
    fn profile(&self) -> Result<Option<&str>, HubError> {
        let v = self
            .profile
            .as_ref()
            .or_else(|| self.user_options.as_ref().and_then(|o| o.get("profile")));
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(p)) => Ok(Some(p)),
            Some(_) => Err(HubError::bad_request("profile must be a string")),
        }
    }
}

/// JupyterHub's display-name rule: 1–255 characters, printable, single spaces inside.
pub(super) fn check_display_name(d: &str) -> Result<(), HubError> {
    let ok = (1..=255).contains(&d.chars().count())
        && !d.starts_with(' ')
        && !d.ends_with(' ')
        && !d.contains("  ")
        && d.chars()
            .all(|c| c == ' ' || !(c.is_control() || c.is_whitespace()));
    if ok {
        Ok(())
    } else {
        Err(HubError::bad_request(format!(
            "Invalid display_name: {:?}",
            d.chars().take(40).collect::<String>()
        )))
    }
}

/// Creates `user`'s named server `key` unless it exists (within the limit), with
/// `display` (its name when empty). Whether it was new.
pub fn create_named(
    s: &AppState,
    user: &UserRow,
    key: &ServerKey,
    display: Option<&str>,
) -> Result<bool, HubError> {
    named_allowed(s)?;
    let display = display.filter(|d| !d.is_empty());
    if let Some(d) = display {
        check_display_name(d)?;
    }
    let limit = s.cfg.named_server_limit_per_user;
    match s.db.named().create(user.id, &key.name, display.unwrap_or(""), limit)? {
        Created::New => {
            tracing::info!(server = %key, "named server created");
            Ok(true)
        }
        Created::Existed => Ok(false),
        Created::OverLimit(n) => Err(HubError::bad_request(format!(
            "User {} already has the maximum of {n} named servers.  One must be deleted before a new server can be created",
            key.user
        ))),
    }
}

/// `GET /users/<name>/server` (JupyterHub 6) and `GET /users/<name>/servers/<server>`:
/// the server's model, stopped or not.
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    path: ServerPath,
) -> Result<axum::Json<ServerModel>, HubError> {
    let key = path.key_or_404()?;
    caller.require_server(&key, "read:servers", true)?;
    let user = existing(&s, &key.user)?;
    Ok(axum::Json(server_model(&s, &user, &key)?))
}

/// `PUT /users/<name>/servers/<server>`: creates a named server without starting it;
/// 201 with its model, 409 if it exists.
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    path: ServerPath,
    body: Bytes,
) -> Result<Response, HubError> {
    let key = path.key_or_400()?;
    caller.require_server(&key, "start:servers", false)?;
    let user = existing(&s, &key.user)?;
    if key.name.is_default() {
        return Err(HubError::conflict(format!(
            "User {} already has a default server",
            key.user
        )));
    }
    let req: ServerRequest = json_body(&body)?.unwrap_or_default();
    if !create_named(&s, &user, &key, req.display_name.as_deref())? {
        return Err(HubError::conflict(format!(
            "User {} already has server {}",
            key.user, key.name
        )));
    }
    let model = server_model(&s, &user, &key)?;
    Ok((StatusCode::CREATED, axum::Json(model)).into_response())
}

/// `POST /users/<name>/server` and `POST /users/<name>/servers/<server>` (creating a
/// named server that does not exist yet): 201 once running, 202 while still starting.
pub async fn start(
    State(s): State<AppState>,
    caller: Caller,
    path: ServerPath,
    body: Bytes,
) -> Result<StatusCode, HubError> {
    let key = path.key_or_400()?;
    caller.require_server(&key, "start:servers", false)?;
    let user = existing(&s, &key.user)?;
    // A named server's body must be a request; the default server's is options only,
    // read when it is one (JupyterHub passes any body on as user options).
    let req: ServerRequest = if key.name.is_default() {
        json_body(&body).ok().flatten().unwrap_or_default()
    } else {
        json_body(&body)?.unwrap_or_default()
    };
    let profile = profile_for(&s, &key, req.profile()?)?;
    if !key.name.is_default() {
        let display = req.display_name.as_deref().filter(|d| !d.is_empty());
        if !create_named(&s, &user, &key, display)? {
            if let Some(d) = display {
                // As JupyterHub: a start may give an existing server a new display name.
                s.db.named().set_display_name(user.id, &key.name, d)?;
            }
        }
    }
    match s.servers.start_with(&user, &key.name, profile) {
        Err(StartError::Running) => {
            return Err(HubError::bad_request(format!(
                "{} is already running",
                log_name(&key)
            )))
        }
        Err(StartError::Pending) => return Ok(StatusCode::ACCEPTED),
        // Not reached: the gate sends such a request to the successor first.
        Err(StartError::HandedOver) => {
            return Err(HubError::new(
                crate::error::Source::Internal,
                StatusCode::SERVICE_UNAVAILABLE,
                "this hub has handed over to a new one: try again",
            ))
        }
        Err(StartError::Gone) => {
            return Err(HubError::not_found(format!(
                "{} has no server named '{}'",
                key.user, key.name
            )))
        }
        Err(StartError::Stopping) => {
            return Err(HubError::bad_request(format!(
                "{} is pending stop",
                log_name(&key)
            )))
        }
        Ok(()) => {}
    }
    let deadline = tokio::time::Instant::now() + SLOW_SPAWN;
    while tokio::time::Instant::now() < deadline {
        match s.servers.state(&key) {
            ServerState::Running => return Ok(StatusCode::CREATED),
            ServerState::Failed(reason) => return Err(HubError::helper(reason)),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(StatusCode::ACCEPTED)
}

/// What `DELETE` of a server may carry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopRequest {
    #[serde(default)]
    remove: bool,
}

/// `DELETE /users/<name>/server` and `DELETE /users/<name>/servers/<server>` (with
/// `{"remove": true}`: the named server is removed once stopped): 204 once stopped, 202
/// if the stop takes longer.
pub async fn stop(
    State(s): State<AppState>,
    caller: Caller,
    path: ServerPath,
    body: Bytes,
) -> Result<StatusCode, HubError> {
    let key = path.key_or_404()?;
    caller.require_server(&key, "delete:servers", false)?;
    let user = existing(&s, &key.user)?;
    let req: StopRequest = json_body(&body)?.unwrap_or_default();
    if key.name.is_default() {
        if req.remove {
            return Err(HubError::bad_request("Cannot delete the default server"));
        }
    } else {
        named_allowed(&s)?;
        server_model(&s, &user, &key)?; // 404 unless it exists
    }
    // A start in progress is interrupted, as JupyterHub does. The stop (and removal) goes
    // on in its own task if the client gives up waiting.
    let (servers, db) = (s.servers.clone(), s.db.clone());
    let stop = tokio::spawn(async move {
        servers.stop(&key).await;
        if req.remove {
            // Under the lock starts take: a start that slipped in after the stop keeps
            // its server, which is then not removed.
            match servers.with_stopped(&key, || db.named().remove(user.id, &key.name)) {
                Some(Ok(_)) => tracing::info!(server = %key, "named server removed"),
                Some(Err(e)) => {
                    tracing::error!(server = %key, error = %e, "cannot remove the named server")
                }
                None => tracing::warn!(server = %key, "not removed: it was started again"),
            }
        }
    });
    Ok(match tokio::time::timeout(SLOW_STOP, stop).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::ACCEPTED,
    })
}
