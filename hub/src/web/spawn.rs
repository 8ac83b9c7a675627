//! Starting one's server from a browser (a button; the start is a POST), and the page
//! that follows its progress.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use super::forbidden;
use crate::auth::{Session, XsrfForm};
use crate::state::AppState;
use crate::templates::{self, Confirm, Message};
use crate::types::{ServerKey, ServerName, ServerState, Username};

/// How long a browser waits for a quick spawn before it is shown the progress page.
const QUICK_SPAWN: Duration = Duration::from_secs(1);

type Q = Query<HashMap<String, String>>;

/// `?next=` if it stays on this hub.
fn next_of(s: &AppState, q: &HashMap<String, String>) -> Option<String> {
    q.get("next").filter(|n| s.urls.is_safe_next(n)).cloned()
}

/// `GET /hub/spawn`: where my server is, or a button that starts it.
pub async fn page_self(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let key = ServerKey::default_of(&sess.user.name);
    page_for(&s, &sess, &key, &q)
}

/// The server a `/hub/spawn…/<user>[/<server>]` path names, if it is the session
/// user's own (only one's own servers are started from the browser); else the page
/// that says why.
fn own_server(
    sess: &Session,
    params: &HashMap<String, String>,
) -> Result<ServerKey, Box<Response>> {
    let user = params.get("user").map(String::as_str).unwrap_or("");
    match Username::parse(user) {
        Ok(name) if sess.user.name == name => {}
        _ => return Err(Box::new(forbidden("You may only start your own server."))),
    }
    let server = params.get("server").map(String::as_str).unwrap_or("");
    ServerName::parse(server)
        .map(|n| ServerKey::new(sess.user.name.clone(), n))
        .map_err(|e| {
            Box::new(Message::error("Invalid server name", &e).respond(StatusCode::BAD_REQUEST))
        })
}

/// `GET /hub/spawn/<name>[/<server>]`: only one's own.
pub async fn page_user(
    State(s): State<AppState>,
    sess: Session,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Q,
) -> Response {
    match own_server(&sess, &params) {
        Ok(key) => page_for(&s, &sess, &key, &q),
        Err(resp) => *resp,
    }
}

/// A running or pending server is followed to; a stopped one gets the start button.
/// JupyterHub starts the server on this GET; here a GET changes nothing, so a link or a
/// script elsewhere cannot start anyone's server.
fn page_for(
    s: &AppState,
    sess: &Session,
    key: &ServerKey,
    q: &HashMap<String, String>,
) -> Response {
    let next = next_of(s, q);
    match s.servers.state(key) {
        ServerState::Running => {
            Redirect::to(&next.unwrap_or_else(|| s.urls.server_url(key))).into_response()
        }
        ServerState::Starting | ServerState::Stopping => {
            Redirect::to(&s.urls.spawn_pending(key, next.as_deref())).into_response()
        }
        ServerState::Stopped | ServerState::Failed(_) => {
            let mut here = format!("spawn/{}", crate::urls::quote(key.user.as_str()));
            if !key.name.is_default() {
                here = format!("{here}/{}", key.name);
            }
            let action = format!(
                "{}{}",
                s.urls.hub_page(&here),
                crate::urls::query(next.as_deref().map(|n| ("next", n)))
            );
            let (message, button) = if key.name.is_default() {
                ("Your server is not running.".to_owned(), "Start my server")
            } else {
                (
                    format!("Your server {} is not running.", key.name),
                    "Start this server",
                )
            };
            Confirm {
                title: "Start your server",
                message: &message,
                action,
                xsrf: sess.xsrf(&s.key),
                button,
                back: Some(s.urls.hub_page("home")),
                back_text: "Home",
                options: choices(s, key),
                options_legend: "Resources for your server (a Slurm job)",
            }
            .respond()
        }
    }
}

/// The Slurm profiles the user may pick, described by what they ask Slurm for.
fn choices(s: &AppState, key: &ServerKey) -> Vec<templates::Choice> {
    crate::slurm::profiles::available(&s.profiles, &key.user)
        .into_iter()
        .map(|p| {
            let options = p.options().join(" ");
            let description = match (p.description.is_empty(), options.is_empty()) {
                (true, _) => options,
                (false, true) => p.description.clone(),
                (false, false) => format!("{} ({options})", p.description),
            };
            templates::Choice {
                name: p.name.clone(),
                description,
            }
        })
        .collect()
}

/// `POST /hub/spawn`: start my default server, or with a `server_name` field the named
/// server of that name (created if need be: the home page's "new server" form).
pub async fn spawn_self(State(s): State<AppState>, Query(q): Q, form: XsrfForm) -> Response {
    let raw = form
        .fields
        .get("server_name")
        .map(|n| n.trim())
        .unwrap_or("");
    let name = match ServerName::parse(raw) {
        Ok(n) => n,
        Err(e) => {
            return Message::error("Invalid server name", &e).respond(StatusCode::BAD_REQUEST)
        }
    };
    let key = ServerKey::new(form.session.user.name.clone(), name);
    let profile = form.fields.get("profile").cloned();
    spawn_for(s, form.session, &key, q, profile).await
}

/// `POST /hub/spawn/<name>[/<server>]`: only one's own.
pub async fn spawn_user(
    State(s): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Q,
    form: XsrfForm,
) -> Response {
    match own_server(&form.session, &params) {
        Ok(key) => {
            let profile = form.fields.get("profile").cloned();
            spawn_for(s, form.session, &key, q, profile).await
        }
        Err(resp) => *resp,
    }
}

async fn spawn_for(
    s: AppState,
    sess: Session,
    key: &ServerKey,
    q: HashMap<String, String>,
    profile: Option<String>,
) -> Response {
    let next = next_of(&s, &q);
    let ready = next.clone().unwrap_or_else(|| s.urls.server_url(key));
    let pending = s.urls.spawn_pending(key, next.as_deref());
    match s.servers.state(key) {
        ServerState::Running => return Redirect::to(&ready).into_response(),
        ServerState::Starting | ServerState::Stopping => {
            return Redirect::to(&pending).into_response()
        }
        _ => {}
    }
    if !key.name.is_default() {
        if let Err(e) = crate::api::create_named(&s, &sess.user, key, None) {
            return Message::error("Cannot start this server", e.public_message())
                .link(s.urls.hub_page("home"), "Home")
                .respond(e.status());
        }
    }
    let profile = match crate::api::profile_for(&s, key, profile.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            return Message::error("Cannot start this server", e.public_message())
                .link(s.urls.hub_page("spawn"), "Back")
                .respond(e.status())
        }
    };
    if s.servers.start_with(&sess.user, &key.name, profile).is_ok() {
        // Like JupyterHub: give a quick spawn a moment before showing progress.
        let deadline = tokio::time::Instant::now() + QUICK_SPAWN;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.servers.state(key) == ServerState::Running {
                return Redirect::to(&ready).into_response();
            }
        }
    }
    Redirect::to(&pending).into_response()
}

#[derive(Serialize)]
struct PendingPage {
    title: &'static str,
    progress_url: String,
}

/// `GET /hub/spawn-pending/<name>[/<server>]`: progress while starting; on to the
/// server when ready; the reason when it failed.
pub async fn pending(
    State(s): State<AppState>,
    sess: Session,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Q,
) -> Response {
    let user = params.get("user").map(String::as_str).unwrap_or("");
    let server = params.get("server").map(String::as_str).unwrap_or("");
    let (Ok(user), Ok(server)) = (Username::parse(user), ServerName::parse(server)) else {
        return forbidden("This is not your server.");
    };
    if sess.user.name != user && !sess.user.admin {
        return forbidden("This is not your server.");
    }
    let key = ServerKey::new(user, server);
    let next = next_of(&s, &q);
    let again = if key.name.is_default() {
        s.urls.hub_page("spawn")
    } else {
        s.urls.spawn_for(&key, &s.urls.server_url(&key))
    };
    match s.servers.state(&key) {
        ServerState::Running => {
            Redirect::to(&next.unwrap_or_else(|| s.urls.server_url(&key))).into_response()
        }
        ServerState::Failed(reason) => Message::error("Your server failed to start", &reason)
            .link(again, "Try again")
            .link(s.urls.hub_page("home"), "Home")
            .respond(StatusCode::INTERNAL_SERVER_ERROR),
        ServerState::Stopped => Redirect::to(&s.urls.hub_page("home")).into_response(),
        ServerState::Starting | ServerState::Stopping => {
            let xsrf = sess.xsrf(&s.key);
            let ctx = PendingPage {
                title: "Starting your server",
                progress_url: format!("{}?_xsrf={xsrf}", s.urls.progress(&key)),
            };
            templates::page(StatusCode::OK, "spawn_pending.html", ctx)
        }
    }
}
