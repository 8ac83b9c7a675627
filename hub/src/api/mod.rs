//! The JupyterHub-compatible REST API under `<base>hub/api` (compat spec §2), and the
//! OAuth2 provider single-user servers log in through ([`oauth`]).

pub mod oauth;
mod tokens;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::app::{AppState, JUPYTERHUB_VERSION};
use crate::db::{TokenRow, UserRow};
use crate::lifecycle::{ServerState, StartError};
use crate::web::session;
use crate::web::urlquote;

/// Routes relative to `<base>hub/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(version))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/user", get(whoami))
        .route("/oauth2/authorize", get(oauth::authorize))
        .route("/oauth2/token", post(oauth::token))
        .route("/users", get(list_users))
        .route(
            "/users/{name}",
            get(get_user).post(create_user).delete(delete_user),
        )
        .route("/users/{name}/activity", post(activity))
        .route(
            "/users/{name}/server",
            post(start_server).delete(stop_server),
        )
        .route("/users/{name}/server/progress", get(progress))
        .route(
            "/users/{name}/tokens",
            get(tokens::list).post(tokens::create),
        )
        .route(
            "/users/{name}/tokens/{id}",
            get(tokens::get_one).delete(tokens::delete_one),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, None) })
}

/// `{"status": N, "message": …}`, JupyterHub's error shape.
pub fn error(status: StatusCode, message: Option<&str>) -> Response {
    let body = json!({"status": status.as_u16(), "message": message});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Who is calling the API.
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
    fn is_admin(&self) -> bool {
        match self {
            Self::User { user, token } => {
                user.admin && token.as_ref().is_none_or(|t| t.kind == "api")
            }
            Self::Service { admin, .. } => *admin,
        }
    }

    /// Whether the caller holds `scope` on `name`'s resources. A login cookie or an API
    /// token carries all of its user's rights (and an admin's, everyone's). The tokens a
    /// single-user server holds carry only what JupyterHub gives them: a server token may
    /// read its user and report activity, an OAuth token may read its user. An admin who
    /// opens someone's server hands that server an OAuth token: it must not be usable to
    /// act as the admin, nor to mint tokens that could.
    fn may(&self, name: &str, scope: &str) -> bool {
        match self {
            Self::User { user, token } => {
                let own = user.name == name;
                match token.as_ref().map_or("api", |t| t.kind.as_str()) {
                    "api" => own || self.is_admin(),
                    "server" => own && matches!(scope, "users:activity" | "read:users"),
                    _ => own && scope == "read:users",
                }
            }
            Self::Service { admin, .. } => *admin,
        }
    }
}

/// The token in `Authorization: token X` or `bearer X` (any case); `?token=` is not
/// accepted (compat §0.11).
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, tok) = v.trim().split_once(' ')?;
    let tok = tok.trim();
    ((scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        && !tok.is_empty()
        && !tok.contains(' '))
    .then(|| tok.to_owned())
}

/// Authenticates an API request: token first, else the login cookie with an XSRF token
/// (`?_xsrf=` or `X-XSRFToken`).
pub fn caller(
    s: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Option<Caller> {
    if let Some(tok) = bearer(headers) {
        for svc in &s.cfg.services {
            if svc
                .api_token
                .as_deref()
                .is_some_and(|t| session::same(t, &tok))
            {
                return Some(Caller::Service {
                    name: svc.name.clone(),
                    admin: svc.admin,
                });
            }
        }
        let row = s.db.token(&tok).ok()??;
        return Some(Caller::User {
            user: row.user.clone(),
            token: Some(row),
        });
    }
    let sess = session::current(&s.db, &s.key, headers)?;
    let sent = query.get("_xsrf").cloned().or_else(|| {
        headers
            .get("x-xsrftoken")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })?;
    session::same(&sent, &s.key.xsrf(&sess.session_id)).then_some(Caller::User {
        user: sess.user,
        token: None,
    })
}

/// The caller, if it may act on `name`'s resources; else the JupyterHub answer: 403 with
/// no credentials, and for a caller without the right either 404 (`hide`, so existence
/// does not leak) or 403 naming the scope.
fn caller_for(
    s: &AppState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    name: &str,
    scope: &str,
    hide: bool,
) -> Result<Caller, Response> {
    let c = caller(s, headers, q).ok_or_else(no_credentials)?;
    if c.may(name, scope) {
        return Ok(c);
    }
    Err(if hide {
        error(
            StatusCode::NOT_FOUND,
            Some("No access to resources or resources not found"),
        )
    } else {
        error(
            StatusCode::FORBIDDEN,
            Some(&format!(
                "Action is not authorized with current scopes; requires any of [{scope}]"
            )),
        )
    })
}

fn no_credentials() -> Response {
    error(
        StatusCode::FORBIDDEN,
        Some("Missing or invalid credentials."),
    )
}

/// `GET <base>hub/api`: the version, without authentication (compat §1.3).
pub async fn version() -> Response {
    let mut r = json_response(StatusCode::OK, &json!({"version": JUPYTERHUB_VERSION}));
    r.headers_mut().insert(
        "access-control-allow-origin",
        axum::http::HeaderValue::from_static("*"),
    );
    r
}

/// The scopes of a request by `user` with `token` (compat §1.4d, §2.5): what the
/// single-user server checks against its access scopes.
fn scopes(user: &UserRow, token: Option<&TokenRow>) -> Vec<String> {
    let n = &user.name;
    let mut v: Vec<String> = match token.map(|t| t.kind.as_str()) {
        Some("oauth") => vec![
            format!("access:servers!server={n}/"),
            format!("read:users:groups!user={n}"),
            format!("read:users:name!user={n}"),
        ],
        Some("server") => vec![
            format!("access:servers!server={n}/"),
            format!("read:users:activity!user={n}"),
            format!("read:users:groups!user={n}"),
            format!("read:users:name!user={n}"),
            format!("users:activity!user={n}"),
        ],
        _ => {
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

/// The User model (compat §2.3).
fn user_model(s: &AppState, u: &UserRow) -> Value {
    let state = s.servers.state(&u.name);
    let url = format!("{}user/{}/", s.cfg.base_url, urlquote(&u.name));
    let pending = match state {
        ServerState::Starting => Some("spawn"),
        ServerState::Stopping => Some("stop"),
        _ => None,
    };
    let row = s.db.server(&u.name, "").ok().flatten();
    let mut servers = serde_json::Map::new();
    if let Some(row) = &row {
        let ready = state == ServerState::Running;
        servers.insert(
            String::new(),
            json!({
                "name": "", "display_name": "", "full_name": format!("{}/", u.name),
                "last_activity": row.last_activity.clone().unwrap_or_else(|| row.started.clone()),
                "started": row.started, "pending": pending, "ready": ready, "stopped": !(ready || pending.is_some()),
                "url": url, "user_options": {},
                "progress_url": format!("{}hub/api/users/{}/server/progress", s.cfg.base_url, urlquote(&u.name)),
                "full_url": null, "full_progress_url": null,
            }),
        );
    }
    json!({
        "kind": "user", "name": u.name, "admin": u.admin,
        "roles": if u.admin { vec!["admin", "user"] } else { vec!["user"] },
        "groups": [],
        "server": (state == ServerState::Running).then_some(url),
        "pending": pending,
        "created": u.created, "last_activity": u.last_activity,
        "user_info": null,
        "servers": servers,
    })
}

async fn whoami(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match caller(&s, &headers, &q) {
        Some(Caller::User { user, token }) => {
            let mut m = user_model(&s, &user);
            m["scopes"] = json!(scopes(&user, token.as_ref()));
            m["token_id"] = json!(token.as_ref().map(|t| format!("a{}", t.id)));
            m["session_id"] = json!(token.as_ref().and_then(|t| t.session_id.clone()));
            json_response(StatusCode::OK, &m)
        }
        Some(Caller::Service { name, admin }) => json_response(
            StatusCode::OK,
            &json!({"kind": "service", "name": name, "admin": admin, "roles": [], "scopes": [], "token_id": null, "session_id": null}),
        ),
        None => no_credentials(),
    }
}

async fn list_users(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(c) = caller(&s, &headers, &q) else {
        return no_credentials();
    };
    let users = match s.db.users() {
        Ok(u) => u,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, Some(&e.to_string())),
    };
    let visible: Vec<Value> = users
        .iter()
        .filter(|u| c.may(&u.name, "read:users"))
        .filter(|u| match q.get("state").map(String::as_str) {
            Some("ready") => s.servers.state(&u.name) == ServerState::Running,
            Some("active") => !matches!(
                s.servers.state(&u.name),
                ServerState::Stopped | ServerState::Failed(_)
            ),
            Some("inactive") => matches!(
                s.servers.state(&u.name),
                ServerState::Stopped | ServerState::Failed(_)
            ),
            _ => true,
        })
        .map(|u| user_model(&s, u))
        .collect();
    if let Some(bad) = q
        .get("state")
        .filter(|v| !["ready", "active", "inactive"].contains(&v.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            Some(&format!("Unrecognized state filter: {bad:?}")),
        );
    }
    let paginated = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .any(|t| t.trim() == "application/jupyterhub-pagination+json")
        });
    let parse = |k: &str, d: usize| -> Result<usize, Response> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v
                .parse::<i64>()
                .map(|n| n.unsigned_abs() as usize)
                .map_err(|_| {
                    error(
                        StatusCode::BAD_REQUEST,
                        Some(&format!("{k} must be an integer")),
                    )
                }),
        }
    };
    let offset = match parse("offset", 0) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit = match parse("limit", if paginated { 50 } else { 200 }) {
        Ok(v) => v.clamp(1, 200),
        Err(r) => return r,
    };
    let total = visible.len();
    let items: Vec<Value> = visible.into_iter().skip(offset).take(limit).collect();
    if !paginated {
        return json_response(StatusCode::OK, &Value::Array(items));
    }
    let next = (offset + limit < total).then(|| {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        json!({"offset": offset + limit, "limit": limit,
               "url": format!("http://{host}{}hub/api/users?limit={limit}&offset={}", s.cfg.base_url, offset + limit)})
    });
    json_response(
        StatusCode::OK,
        &json!({"items": items, "_pagination": {"offset": offset, "limit": limit, "total": total, "next": next}}),
    )
}

async fn get_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = caller_for(&s, &headers, &q, &name, "read:users", true) {
        return r;
    }
    match s.db.user(&name) {
        Ok(Some(u)) => json_response(StatusCode::OK, &user_model(&s, &u)),
        _ => error(
            StatusCode::NOT_FOUND,
            Some(&format!("User {name} does not exist")),
        ),
    }
}

async fn create_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(c) = caller(&s, &headers, &q) else {
        return no_credentials();
    };
    if !c.is_admin() {
        return error(
            StatusCode::FORBIDDEN,
            Some("Action is not authorized with current scopes; requires any of [admin:users]"),
        );
    }
    if !sudohub_helpers_config::is_posix_name(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            Some(&format!("Invalid username: {name:?}")),
        );
    }
    let admin = if body.is_empty() {
        false
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v.get("admin").and_then(Value::as_bool).unwrap_or(false),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    Some("Invalid JSON in body of request"),
                )
            }
        }
    };
    if matches!(s.db.user(&name), Ok(Some(_))) {
        return error(
            StatusCode::CONFLICT,
            Some(&format!("User {name} already exists")),
        );
    }
    match s.db.ensure_user(&name, Some(admin)) {
        Ok(u) => {
            tracing::info!(user = %name, admin, "user created via API");
            json_response(StatusCode::CREATED, &user_model(&s, &u))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, Some(&e.to_string())),
    }
}

async fn delete_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(c) = caller(&s, &headers, &q) else {
        return no_credentials();
    };
    if !c.is_admin() {
        return error(
            StatusCode::FORBIDDEN,
            Some("Action is not authorized with current scopes; requires any of [delete:users]"),
        );
    }
    if let Caller::User { user, .. } = &c {
        if user.name == name {
            return error(StatusCode::BAD_REQUEST, Some("Cannot delete yourself!"));
        }
    }
    if !matches!(s.db.user(&name), Ok(Some(_))) {
        return error(
            StatusCode::NOT_FOUND,
            Some(&format!("User {name} does not exist")),
        );
    }
    s.servers.stop(&name).await;
    let _ = s.db.delete_user(&name);
    tracing::info!(user = %name, "user deleted via API");
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /users/<name>/activity` from the single-user server (compat §1.4b).
async fn activity(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = caller_for(&s, &headers, &q, &name, "users:activity", false) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            Some("Invalid JSON in body of request"),
        );
    };
    let Some(obj) = v.as_object() else {
        return error(StatusCode::BAD_REQUEST, Some("body must be a dict"));
    };
    if !matches!(s.db.user(&name), Ok(Some(_))) {
        return error(
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {name}")),
        );
    }
    let parse = |v: &Value| -> Result<String, Response> {
        let t = v
            .as_str()
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, Some("timestamps must be strings")))?;
        let parsed = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .or_else(|_| {
                time::OffsetDateTime::parse(
                    &format!("{t}Z"),
                    &time::format_description::well_known::Rfc3339,
                )
            })
            .map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    Some(&format!("invalid timestamp {t:?}")),
                )
            })?;
        if parsed > time::OffsetDateTime::now_utc() + time::Duration::minutes(59) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                Some("last_activity is in the future"),
            ));
        }
        Ok(crate::tokens::iso(parsed))
    };
    let user_ts = obj.get("last_activity");
    let servers = obj.get("servers").and_then(Value::as_object);
    if user_ts.is_none() && servers.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            Some("body has neither last_activity nor servers"),
        );
    }
    if let Some(t) = user_ts {
        match parse(t) {
            Ok(ts) => {
                let _ = s.db.touch(&name, None, &ts);
            }
            Err(r) => return r,
        }
    }
    for (server, v) in servers.into_iter().flatten() {
        if !server.is_empty() || s.db.server(&name, server).ok().flatten().is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                Some(&format!("No such server {server:?} for user {name}")),
            );
        }
        if let Some(t) = v.get("last_activity") {
            match parse(t) {
                Ok(ts) => {
                    let _ = s.db.touch(&name, Some(server), &ts);
                }
                Err(r) => return r,
            }
        }
    }
    StatusCode::OK.into_response()
}

async fn start_server(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = caller_for(&s, &headers, &q, &name, "servers", false) {
        return r;
    }
    let Ok(Some(user)) = s.db.user(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {name}")),
        );
    };
    match s.servers.start(&user) {
        Err(StartError::Running) => {
            return error(
                StatusCode::BAD_REQUEST,
                Some(&format!("{name}'s server is already running")),
            )
        }
        Err(StartError::Pending) => return (StatusCode::ACCEPTED, "").into_response(),
        Ok(()) => {}
    }
    // slow_spawn_timeout: 201 if ready within 10 s, else 202.
    for _ in 0..100 {
        match s.servers.state(&name) {
            ServerState::Running => return (StatusCode::CREATED, "").into_response(),
            ServerState::Failed(reason) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, Some(&reason))
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    (StatusCode::ACCEPTED, "").into_response()
}

async fn stop_server(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = caller_for(&s, &headers, &q, &name, "delete:servers", false) {
        return r;
    }
    if !matches!(s.db.user(&name), Ok(Some(_))) {
        return error(
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {name}")),
        );
    }
    let stopping = s.servers.clone();
    let stop = tokio::spawn(async move { stopping.stop(&name).await });
    match tokio::time::timeout(std::time::Duration::from_secs(10), stop).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => (StatusCode::ACCEPTED, "").into_response(),
    }
}

/// Spawn progress as server-sent events (compat §3.5).
async fn progress(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = caller_for(&s, &headers, &q, &name, "read:users", true) {
        return r;
    }
    let url = format!("{}user/{}/", s.cfg.base_url, urlquote(&name));
    if s.servers.state(&name) == ServerState::Running {
        let ev = json!({"progress": 100, "ready": true, "message": format!("Server ready at {url}"), "url": url});
        return sse_body(format!("data: {ev}\n\n"));
    }
    let Some(mut rx) = s.servers.progress(&name) else {
        return error(
            StatusCode::BAD_REQUEST,
            Some(&format!("{name} is not starting...")),
        );
    };
    let stream = async_stream(rx.clone());
    let _ = rx.borrow_and_update();
    let body = axum::body::Body::from_stream(stream);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn sse_body(text: String) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

/// Sends every progress event once, a keep-alive blank line every 8 s, and ends after
/// the final event.
fn async_stream(
    rx: tokio::sync::watch::Receiver<crate::lifecycle::Progress>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold((rx, 0usize, false), |(mut rx, sent, finished)| async move {
        if finished {
            return None;
        }
        loop {
            let (chunk, n, done) = {
                let p = rx.borrow_and_update();
                let mut out = String::new();
                for ev in p.events.iter().skip(sent) {
                    out.push_str(&format!("data: {ev}\n\n"));
                }
                (out, p.events.len(), p.done)
            };
            if !chunk.is_empty() {
                return Some((Ok(Bytes::from(chunk)), (rx, n, done)));
            }
            if done {
                return None;
            }
            match tokio::time::timeout(std::time::Duration::from_secs(8), rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return None,
                Err(_) => return Some((Ok(Bytes::from_static(b"\n\n")), (rx, sent, false))),
            }
        }
    })
}
