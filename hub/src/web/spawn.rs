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
use crate::types::{ServerState, Username};

/// How long a browser waits for a quick spawn before it is shown the progress page.
const QUICK_SPAWN: Duration = Duration::from_secs(1);

type Q = Query<HashMap<String, String>>;

/// `?next=` if it stays on this hub.
fn next_of(s: &AppState, q: &HashMap<String, String>) -> Option<String> {
    q.get("next").filter(|n| s.urls.is_safe_next(n)).cloned()
}

/// `GET /hub/spawn`: where my server is, or a button that starts it.
pub async fn page_self(State(s): State<AppState>, sess: Session, Query(q): Q) -> Response {
    let name = sess.user.name.clone();
    page_for(&s, &sess, &name, &q)
}

/// `GET /hub/spawn/<name>`: only one's own.
pub async fn page_user(
    State(s): State<AppState>,
    sess: Session,
    Path(user): Path<String>,
    Query(q): Q,
) -> Response {
    match Username::parse(&user) {
        Ok(name) if sess.user.name == name => page_for(&s, &sess, &name, &q),
        _ => forbidden("You may only start your own server."),
    }
}

/// A running or pending server is followed to; a stopped one gets the start button.
/// JupyterHub starts the server on this GET; here a GET changes nothing, so a link or a
/// script elsewhere cannot start anyone's server.
fn page_for(
    s: &AppState,
    sess: &Session,
    user: &Username,
    q: &HashMap<String, String>,
) -> Response {
    let next = next_of(s, q);
    match s.servers.state(user) {
        ServerState::Running => {
            Redirect::to(&next.unwrap_or_else(|| s.urls.user_url(user))).into_response()
        }
        ServerState::Starting | ServerState::Stopping => {
            Redirect::to(&s.urls.spawn_pending(user, next.as_deref())).into_response()
        }
        ServerState::Stopped | ServerState::Failed(_) => {
            let here = format!("spawn/{}", crate::urls::quote(user.as_str()));
            let action = format!(
                "{}{}",
                s.urls.hub_page(&here),
                crate::urls::query(next.as_deref().map(|n| ("next", n)))
            );
            Confirm {
                title: "Start your server",
                message: "Your server is not running.",
                action,
                xsrf: sess.xsrf(&s.key),
                button: "Start my server",
                back: Some(s.urls.hub_page("home")),
                back_text: "Home",
            }
            .respond()
        }
    }
}

/// `POST /hub/spawn`: start my server.
pub async fn spawn_self(State(s): State<AppState>, Query(q): Q, form: XsrfForm) -> Response {
    let name = form.session.user.name.clone();
    spawn_for(s, form.session, &name, q).await
}

/// `POST /hub/spawn/<name>`: only one's own.
pub async fn spawn_user(
    State(s): State<AppState>,
    Path(user): Path<String>,
    Query(q): Q,
    form: XsrfForm,
) -> Response {
    match Username::parse(&user) {
        Ok(name) if form.session.user.name == name => spawn_for(s, form.session, &name, q).await,
        _ => forbidden("You may only start your own server."),
    }
}

async fn spawn_for(
    s: AppState,
    sess: Session,
    user: &Username,
    q: HashMap<String, String>,
) -> Response {
    let next = next_of(&s, &q);
    let ready = next.clone().unwrap_or_else(|| s.urls.user_url(user));
    let pending = s.urls.spawn_pending(user, next.as_deref());
    match s.servers.state(user) {
        ServerState::Running => return Redirect::to(&ready).into_response(),
        ServerState::Starting | ServerState::Stopping => {
            return Redirect::to(&pending).into_response()
        }
        _ => {}
    }
    if s.servers.start(&sess.user).is_ok() {
        // Like JupyterHub: give a quick spawn a moment before showing progress.
        let deadline = tokio::time::Instant::now() + QUICK_SPAWN;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.servers.state(user) == ServerState::Running {
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

/// `GET /hub/spawn-pending/<name>`: progress while starting; on to the server when
/// ready; the reason when it failed.
pub async fn pending(
    State(s): State<AppState>,
    sess: Session,
    Path(user): Path<String>,
    Query(q): Q,
) -> Response {
    let Ok(user) = Username::parse(&user) else {
        return forbidden("This is not your server.");
    };
    if sess.user.name != user && !sess.user.admin {
        return forbidden("This is not your server.");
    }
    let next = next_of(&s, &q);
    match s.servers.state(&user) {
        ServerState::Running => {
            Redirect::to(&next.unwrap_or_else(|| s.urls.user_url(&user))).into_response()
        }
        ServerState::Failed(reason) => Message::error("Your server failed to start", &reason)
            .link(s.urls.hub_page("spawn"), "Try again")
            .link(s.urls.hub_page("home"), "Home")
            .respond(StatusCode::INTERNAL_SERVER_ERROR),
        ServerState::Stopped => Redirect::to(&s.urls.hub_page("home")).into_response(),
        ServerState::Starting | ServerState::Stopping => {
            let xsrf = sess.xsrf(&s.key);
            let ctx = PendingPage {
                title: "Starting your server",
                progress_url: format!("{}?_xsrf={xsrf}", s.urls.progress(&user)),
            };
            templates::page(StatusCode::OK, "spawn_pending.html", ctx)
        }
    }
}
