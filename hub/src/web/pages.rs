//! The pages under `<base>hub/`: login, logout, home, spawn, spawn-pending, the
//! not-running page, user-redirect and the token page.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use sudohub_protocol::Secret;

use super::session::{self, Session, LOGIN_COOKIE, SESSION_ID_COOKIE, XSRF_COOKIE};
use super::{escape, page, query_escape, urlquote};
use crate::app::AppState;
use crate::lifecycle::ServerState;
use crate::tokens::{new_api_token, new_session_id};

/// Routes of the pages, relative to `<base>hub`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .route("/home", get(home))
        .route("/spawn", get(spawn_self))
        .route("/spawn/{user}", get(spawn_user))
        .route("/spawn-pending/{user}", get(spawn_pending))
        .route("/stop", post(stop))
        .route("/user/{user}", get(not_running_root))
        .route("/user/{user}/", get(not_running_root))
        .route("/user/{user}/{*rest}", get(not_running))
        .route("/user-redirect/{*rest}", get(user_redirect))
        .route("/token", get(token_page).post(token_create))
        .route("/token/revoke", post(token_revoke))
        .route("/health", get(|| async { StatusCode::OK }))
}

type Q = Query<HashMap<String, String>>;

fn login_redirect(s: &AppState, next: &str) -> Response {
    Redirect::to(&format!(
        "{}login?next={}",
        s.hub_prefix(),
        query_escape(next)
    ))
    .into_response()
}

/// The session, or a redirect to the login page that comes back to `here`.
fn require(s: &AppState, headers: &HeaderMap, here: &str) -> Result<Session, Response> {
    session::current(&s.db, &s.key, headers).ok_or_else(|| login_redirect(s, here))
}

/// The session of a POSTed form whose `_xsrf` field matches it; otherwise a login
/// redirect (back to `back`) or a 403.
fn require_form(
    s: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    back: &str,
) -> Result<Session, Response> {
    let sess = require(s, headers, &format!("{}{back}", s.hub_prefix()))?;
    if !form
        .get("_xsrf")
        .is_some_and(|x| session::same(x, &s.key.xsrf(&sess.session_id)))
    {
        return Err(forbidden(
            "Your form expired; please go back and try again.",
        ));
    }
    Ok(sess)
}

fn here(s: &AppState, rest: &str, q: &HashMap<String, String>) -> String {
    let query: Vec<String> = q
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("{}{rest}{q}", s.hub_prefix())
}

fn server_url(s: &AppState, user: &str) -> String {
    format!("{}user/{}/", s.cfg.base_url, urlquote(user))
}

/// `GET <base>hub/`: to the user's server if it runs, else to spawn; to login first.
pub async fn root(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let sess = match require(&s, &headers, &s.hub_prefix()) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.servers.state(&sess.user.name) {
        ServerState::Running => Redirect::to(&server_url(&s, &sess.user.name)).into_response(),
        _ => Redirect::to(&format!("{}spawn", s.hub_prefix())).into_response(),
    }
}

fn login_page(s: &AppState, next: &str, xsrf: &str, error: Option<&str>) -> String {
    let err = error
        .map(|e| format!("<p class=\"err\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            r#"{err}<form method="post" action="{action}?next={next}">
<input type="hidden" name="_xsrf" value="{xsrf}">
<label>Username <input name="username" autocomplete="username" autocapitalize="off" autofocus required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<p><button type="submit">Sign in</button></p></form>
<p class="muted">Use your account on this machine.</p>"#,
            action = escape(&format!("{}login", s.hub_prefix())),
            next = escape(&query_escape(next)),
            xsrf = escape(xsrf),
        ),
    )
}

fn default_next(s: &AppState, q: &HashMap<String, String>) -> String {
    q.get("next")
        .filter(|n| session::safe_next(n, &s.cfg.base_url))
        .cloned()
        .unwrap_or_else(|| format!("{}spawn", s.hub_prefix()))
}

async fn login_form(State(s): State<AppState>, headers: HeaderMap, Query(q): Q) -> Response {
    let next = default_next(&s, &q);
    if session::current(&s.db, &s.key, &headers).is_some() {
        return Redirect::to(&next).into_response();
    }
    let xsrf = new_session_id();
    let cookie = session::set_cookie(
        XSRF_COOKIE,
        &xsrf,
        &s.hub_prefix(),
        s.cfg.secure_cookies(),
        Some(3600),
    );
    (
        [(header::SET_COOKIE, cookie)],
        Html(login_page(&s, &next, &xsrf, None)),
    )
        .into_response()
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Q,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let next = default_next(&s, &q);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let cookie_xsrf = session::cookie(&headers, XSRF_COOKIE).unwrap_or_default();
    if cookie_xsrf.is_empty() || !session::same(&cookie_xsrf, field("_xsrf")) {
        return (
            StatusCode::FORBIDDEN,
            Html(login_page(
                &s,
                &next,
                &cookie_xsrf,
                Some("Your form expired; please try again."),
            )),
        )
            .into_response();
    }
    let username = field("username").trim().to_owned();
    let result = match Secret::new(field("password")) {
        Ok(pw) => s.auth.authenticate(&username, pw, client.ip()).await,
        Err(e) => Err(crate::auth::AuthError::Invalid(e.to_string())),
    };
    let who = match result {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::FORBIDDEN,
                Html(login_page(&s, &next, &cookie_xsrf, Some(&e.user_message()))),
            )
                .into_response();
        }
    };
    let user = match s.db.ensure_user(&who.name, Some(who.admin)) {
        Ok(u) => u,
        Err(e) => return internal(&e.to_string()),
    };
    let secret = new_session_id();
    let sid = session::cookie(&headers, SESSION_ID_COOKIE)
        .filter(|v| v.len() == 32 && v.bytes().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(new_session_id);
    if let Err(e) = s.db.add_session(&secret, user.id, &sid) {
        return internal(&e.to_string());
    }
    let secure = s.cfg.secure_cookies();
    let mut resp = Redirect::to(&next).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(
            LOGIN_COOKIE,
            &s.key.sign(&secret),
            &s.hub_prefix(),
            secure,
            Some(crate::db::SESSION_SECS),
        ),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_ID_COOKIE, &sid, &s.cfg.base_url, secure, None),
    );
    resp
}

fn internal(msg: &str) -> Response {
    tracing::error!(error = %msg, "internal error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(page(
            "Error",
            "<p>Something went wrong; the hub's log has details.</p>",
        )),
    )
        .into_response()
}

async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(sess) = session::current(&s.db, &s.key, &headers) {
        if let Err(e) = s.db.end_session(&sess.secret) {
            tracing::error!(error = %e, "cannot end session");
        }
        tracing::info!(user = %sess.user.name, "logout");
    }
    let mut resp = Redirect::to(&format!("{}login", s.hub_prefix())).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::clear_cookie(LOGIN_COOKIE, &s.hub_prefix()),
    );
    h.append(
        header::SET_COOKIE,
        session::clear_cookie(SESSION_ID_COOKIE, &s.cfg.base_url),
    );
    h.append(
        header::SET_COOKIE,
        session::clear_cookie(XSRF_COOKIE, &s.hub_prefix()),
    );
    resp
}

async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let sess = match require(&s, &headers, &format!("{}home", s.hub_prefix())) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = &sess.user.name;
    let xsrf = s.key.xsrf(&sess.session_id);
    let url = server_url(&s, name);
    let status = match s.servers.state(name) {
        ServerState::Running => format!(
            r#"<p>Your server is running: <a href="{u}">{u}</a></p>
<form class="inline" method="post" action="{stop}"><input type="hidden" name="_xsrf" value="{x}"><button>Stop my server</button></form>"#,
            u = escape(&url),
            stop = escape(&format!("{}stop", s.hub_prefix())),
            x = escape(&xsrf)
        ),
        ServerState::Starting => format!(
            "<p>Your server is starting… <a href=\"{}\">follow its progress</a></p>",
            escape(&format!(
                "{}spawn-pending/{}",
                s.hub_prefix(),
                urlquote(name)
            ))
        ),
        ServerState::Stopping => "<p>Your server is stopping.</p>".into(),
        ServerState::Failed(reason) => format!(
            "<p class=\"err\">The last start failed: {}</p><p><a href=\"{}\">Try again</a></p>",
            escape(&reason),
            escape(&format!("{}spawn", s.hub_prefix()))
        ),
        ServerState::Stopped => format!(
            "<p>Your server is not running.</p><p><a href=\"{}\">Start my server</a></p>",
            escape(&format!("{}spawn", s.hub_prefix()))
        ),
    };
    let body = format!(
        "<p>Signed in as <b>{}</b>{}. <a href=\"{}\">Sign out</a> · <a href=\"{}\">API tokens</a></p>{status}",
        escape(name),
        if sess.user.admin { " (admin)" } else { "" },
        escape(&format!("{}logout", s.hub_prefix())),
        escape(&format!("{}token", s.hub_prefix())),
    );
    Html(page("Home", &body)).into_response()
}

async fn spawn_self(State(s): State<AppState>, headers: HeaderMap, q: Q) -> Response {
    let Some(sess) = session::current(&s.db, &s.key, &headers) else {
        return login_redirect(&s, &here(&s, "spawn", &q.0));
    };
    let name = sess.user.name.clone();
    spawn_for(s, sess, name, q.0).await
}

async fn spawn_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    q: Q,
) -> Response {
    let sess = match require(
        &s,
        &headers,
        &here(&s, &format!("spawn/{}", urlquote(&user)), &q.0),
    ) {
        Ok(x) => x,
        Err(r) => return r,
    };
    spawn_for(s, sess, user, q.0).await
}

async fn spawn_for(
    s: AppState,
    sess: Session,
    user: String,
    q: HashMap<String, String>,
) -> Response {
    if sess.user.name != user {
        return forbidden("You may only start your own server.");
    }
    let next = q
        .get("next")
        .filter(|n| session::safe_next(n, &s.cfg.base_url))
        .cloned();
    let pending = format!(
        "{}spawn-pending/{}{}",
        s.hub_prefix(),
        urlquote(&user),
        next.as_ref()
            .map(|n| format!("?next={}", query_escape(n)))
            .unwrap_or_default()
    );
    match s.servers.state(&user) {
        ServerState::Running => {
            return Redirect::to(&next.unwrap_or_else(|| server_url(&s, &user))).into_response()
        }
        ServerState::Starting | ServerState::Stopping => {
            return Redirect::to(&pending).into_response()
        }
        _ => {}
    }
    if s.servers.start(&sess.user).is_ok() {
        // Like JupyterHub: give a quick spawn one second before showing progress.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.servers.state(&user) == ServerState::Running {
                return Redirect::to(&next.unwrap_or_else(|| server_url(&s, &user)))
                    .into_response();
            }
        }
    }
    Redirect::to(&pending).into_response()
}

async fn spawn_pending(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    q: Q,
) -> Response {
    let sess = match require(
        &s,
        &headers,
        &here(&s, &format!("spawn-pending/{}", urlquote(&user)), &q.0),
    ) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if sess.user.name != user && !sess.user.admin {
        return forbidden("This is not your server.");
    }
    let next =
        q.0.get("next")
            .filter(|n| session::safe_next(n, &s.cfg.base_url))
            .cloned();
    match s.servers.state(&user) {
        ServerState::Running => Redirect::to(&next.unwrap_or_else(|| server_url(&s, &user))).into_response(),
        ServerState::Failed(reason) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Html(page("Your server failed to start", &format!(
                "<p class=\"err\">{}</p><p><a href=\"{}\">Try again</a> · <a href=\"{}\">Home</a></p>",
                escape(&reason),
                escape(&format!("{}spawn", s.hub_prefix())),
                escape(&format!("{}home", s.hub_prefix()))
            ))),
        )
            .into_response(),
        ServerState::Stopped => Redirect::to(&format!("{}home", s.hub_prefix())).into_response(),
        _ => {
            let progress = format!("{}api/users/{}/server/progress?_xsrf={}", s.hub_prefix(), urlquote(&user), s.key.xsrf(&sess.session_id));
            let body = format!(
                r#"<p>Your server is starting up. You will be redirected when it is ready.</p>
<progress id="bar" max="100" value="0"></progress><p id="msg" class="muted"></p>
<script>
const es = new EventSource({progress});
es.onmessage = (e) => {{ const d = JSON.parse(e.data);
  document.getElementById("bar").value = d.progress || 0;
  document.getElementById("msg").textContent = d.message || "";
  if (d.ready || d.failed) {{ es.close(); window.location.reload(); }} }};
</script><noscript><meta http-equiv="refresh" content="2"></noscript>"#,
                progress = serde_json::Value::String(progress)
            );
            Html(page("Starting your server", &body)).into_response()
        }
    }
}

async fn stop(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_form(&s, &headers, &form, "home") {
        Ok(x) => x,
        Err(r) => return r,
    };
    s.servers.stop(&sess.user.name).await;
    Redirect::to(&format!("{}home", s.hub_prefix())).into_response()
}

async fn not_running_root(
    s: State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
    q: Q,
) -> Response {
    not_running_for(s.0, headers, user, String::new(), q.0).await
}

async fn not_running(
    s: State<AppState>,
    headers: HeaderMap,
    Path((user, rest)): Path<(String, String)>,
    q: Q,
) -> Response {
    not_running_for(s.0, headers, user, rest, q.0).await
}

/// The answer while a running server's helper has not yet dialled back to a restarted
/// hub (a few seconds): 503 with `Retry-After`, which JupyterLab's API calls retry, and
/// for a browser a page that reloads `target` by itself. Not the 424 "not running" flow:
/// the server is running, and offering to start it would only be refused.
fn reconnecting(target: &str, wants_json: bool) -> Response {
    let retry = [(header::RETRY_AFTER, "2")];
    if wants_json {
        let body = serde_json::json!({
            "status": 503,
            "message": "the server is reconnecting to the hub after a hub restart; retry shortly",
        });
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            retry,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let t = crate::web::escape(target);
    let body = format!(
        "<meta http-equiv=\"refresh\" content=\"2; url={t}\">\
         <p>The hub has just restarted and your server is reconnecting to it. \
         This page reloads in a moment; <a href=\"{t}\">reload now</a>.</p>"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        retry,
        Html(crate::web::page("Reconnecting", &body)),
    )
        .into_response()
}

/// `/hub/user/<name>/…`: where a stopped server's URLs end up (compat §0.16, §3.6).
async fn not_running_for(
    s: AppState,
    headers: HeaderMap,
    user: String,
    rest: String,
    q: HashMap<String, String>,
) -> Response {
    let sess = match require(
        &s,
        &headers,
        &here(&s, &format!("user/{}/{rest}", urlquote(&user)), &q),
    ) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if sess.user.name != user && !sess.user.admin {
        return forbidden("This is not your server.");
    }
    let target = format!("{}{rest}", server_url(&s, &user));
    if s.servers.state(&user) == ServerState::Running && s.routes.user(&user).is_some() {
        return Redirect::to(&target).into_response();
    }
    let wants_json = rest.split('/').any(|seg| seg == "api")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
    if s.servers.reconnecting(&user) {
        return reconnecting(&target, wants_json);
    }
    let message = format!("Server at {} is not running", server_url(&s, &user));
    if wants_json {
        let body = serde_json::json!({"status": 424, "message": message});
        return (
            StatusCode::FAILED_DEPENDENCY,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    let spawn = format!(
        "{}spawn/{}?next={}",
        s.hub_prefix(),
        urlquote(&user),
        query_escape(&target)
    );
    let body = format!(
        "<p>{}.</p><p><a href=\"{}\">Launch server</a> · <a href=\"{}\">Home</a></p>",
        escape(&message),
        escape(&spawn),
        escape(&format!("{}home", s.hub_prefix()))
    );
    (
        StatusCode::FAILED_DEPENDENCY,
        Html(page("Server not running", &body)),
    )
        .into_response()
}

async fn user_redirect(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(rest): Path<String>,
    q: Q,
) -> Response {
    let sess = match require(
        &s,
        &headers,
        &here(&s, &format!("user-redirect/{rest}"), &q.0),
    ) {
        Ok(x) => x,
        Err(r) => return r,
    };
    Redirect::to(&format!("{}{rest}", server_url(&s, &sess.user.name))).into_response()
}

fn forbidden(msg: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(page("Forbidden", &format!("<p>{}</p>", escape(msg)))),
    )
        .into_response()
}

fn token_list(s: &AppState, sess: &Session, new: Option<&str>) -> Response {
    let xsrf = s.key.xsrf(&sess.session_id);
    let rows = s.db.api_tokens(sess.user.id).unwrap_or_default();
    let mut body = String::new();
    if let Some(t) = new {
        body.push_str(&format!(
            "<p>Your new token (shown once): <code>{}</code></p>",
            escape(t)
        ));
    }
    body.push_str(&format!(
        r#"<form method="post" action="{a}"><input type="hidden" name="_xsrf" value="{x}">
<label>Note <input name="note" maxlength="200"></label>
<label>Expires in days (empty: never) <input name="expires_in_days" type="number" min="1" max="3650"></label>
<p><button>Request new API token</button></p></form><table><tr><th>Id</th><th>Note</th><th>Created</th><th></th></tr>"#,
        a = escape(&format!("{}token", s.hub_prefix())),
        x = escape(&xsrf)
    ));
    for (id, note, created, _exp) in rows {
        body.push_str(&format!(
            r#"<tr><td>a{id}</td><td>{n}</td><td>{c}</td><td><form class="inline" method="post" action="{a}"><input type="hidden" name="_xsrf" value="{x}"><input type="hidden" name="id" value="{id}"><button>Revoke</button></form></td></tr>"#,
            n = escape(&note),
            c = escape(&created),
            a = escape(&format!("{}token/revoke", s.hub_prefix())),
            x = escape(&xsrf)
        ));
    }
    body.push_str("</table>");
    Html(page("API tokens", &body)).into_response()
}

async fn token_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match require(&s, &headers, &format!("{}token", s.hub_prefix())) {
        Ok(sess) => token_list(&s, &sess, None),
        Err(r) => r,
    }
}

async fn token_create(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_form(&s, &headers, &form, "token") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let note: String = form
        .get("note")
        .map(|n| n.chars().take(200).collect())
        .unwrap_or_default();
    let days = match form
        .get("expires_in_days")
        .map(|d| d.trim())
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(d) => match d.parse::<i64>() {
            Ok(n) if (1..=3650).contains(&n) => Some(n * 86400),
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    Html(page("Bad request", "<p>Expiry must be 1 to 3650 days.</p>")),
                )
                    .into_response()
            }
        },
    };
    let token = new_api_token();
    if let Err(e) =
        s.db.add_token(sess.user.id, &token, "api", None, None, &note, days)
    {
        return internal(&e.to_string());
    }
    tracing::info!(user = %sess.user.name, "API token created");
    token_list(&s, &sess, Some(&token))
}

async fn token_revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_form(&s, &headers, &form, "token") {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(id) = form.get("id").and_then(|i| i.parse::<i64>().ok()) {
        let _ = s.db.delete_api_token(sess.user.id, id);
        tracing::info!(user = %sess.user.name, id, "API token revoked");
    }
    Redirect::to(&format!("{}token", s.hub_prefix())).into_response()
}
