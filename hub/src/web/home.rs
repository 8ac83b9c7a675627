//! The home page, `/hub/` itself, and stopping one's server.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use crate::auth::{Session, XsrfForm};
use crate::state::AppState;
use crate::templates;
use crate::types::ServerState;

/// `GET <base>hub/`: to the user's server if it runs, else to spawn; to login first.
pub async fn root(State(s): State<AppState>, sess: Session) -> Response {
    match s.servers.state(&sess.user.name) {
        ServerState::Running => Redirect::to(&s.urls.user_url(&sess.user.name)),
        _ => Redirect::to(&s.urls.hub_page("spawn")),
    }
    .into_response()
}

#[derive(Serialize)]
struct HomeUrls {
    logout: String,
    token: String,
    admin: String,
    server: String,
    stop: String,
    pending: String,
    spawn: String,
}

#[derive(Serialize)]
struct HomePage<'a> {
    title: &'static str,
    user: &'a str,
    admin: bool,
    xsrf: String,
    state: &'static str,
    reason: Option<String>,
    urls: HomeUrls,
}

/// `GET /hub/home`: who is signed in, and their server with a start or stop button.
pub async fn home(State(s): State<AppState>, sess: Session) -> Response {
    let name = &sess.user.name;
    let (state, reason) = match s.servers.state(name) {
        ServerState::Running => ("running", None),
        ServerState::Starting => ("starting", None),
        ServerState::Stopping => ("stopping", None),
        ServerState::Failed(reason) => ("failed", Some(reason)),
        ServerState::Stopped => ("stopped", None),
    };
    let u = &s.urls;
    let ctx = HomePage {
        title: "Home",
        user: name.as_str(),
        admin: sess.user.admin,
        xsrf: sess.xsrf(&s.key),
        state,
        reason,
        urls: HomeUrls {
            logout: u.hub_page("logout"),
            token: u.hub_page("token"),
            admin: u.hub_page("admin"),
            server: u.user_url(name),
            stop: u.hub_page("stop"),
            pending: u.spawn_pending(name, None),
            spawn: u.hub_page("spawn"),
        },
    };
    templates::page(axum::http::StatusCode::OK, "home.html", ctx)
}

/// `POST /hub/stop`: stops the user's own server.
pub async fn stop(State(s): State<AppState>, form: XsrfForm) -> Response {
    s.servers.stop(&form.session.user.name).await;
    Redirect::to(&s.urls.hub_page("home")).into_response()
}
