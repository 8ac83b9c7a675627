//! `/hub/user/<name>/…`, where a stopped server's URLs end up (compat §0.16, §3.6), and
//! `/hub/user-redirect/…`, which sends anyone to their own server.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::forbidden;
use crate::auth::Session;
use crate::error::{HubError, Source};
use crate::state::AppState;
use crate::templates::Message;
use crate::types::{ServerState, Username};

/// Seconds a client waits before retrying while a server reconnects.
const RETRY_SECS: u32 = 2;

/// The answer while a running server's helper has not yet dialled back to a restarted
/// hub (a few seconds): 503 with `Retry-After`, which JupyterLab's API calls retry, and
/// for a browser a page that reloads `target` by itself. Not the 424 "not running" flow:
/// the server is running, and offering to start it would only be refused.
fn reconnecting(target: &str, wants_json: bool) -> Response {
    let mut resp = if wants_json {
        HubError::new(
            Source::Upstream,
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is reconnecting to the hub after a hub restart; retry shortly",
        )
        .into_response()
    } else {
        Message::new(
            "Reconnecting",
            "The hub has just restarted and your server is reconnecting to it. This page reloads in a moment.",
        )
        .link(target, "Reload now")
        .refresh(RETRY_SECS, target)
        .respond(StatusCode::SERVICE_UNAVAILABLE)
    };
    resp.headers_mut()
        .insert(header::RETRY_AFTER, RETRY_SECS.into());
    resp
}

/// `GET /hub/user/<name>[/<rest>]`: back to the server if it runs again, 503 while it
/// reconnects, else 424 with a button to start it.
pub async fn not_running(
    State(s): State<AppState>,
    sess: Session,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let raw = params.get("user").map(String::as_str).unwrap_or("");
    let rest = params.get("rest").map(String::as_str).unwrap_or("");
    let Ok(user) = Username::parse(raw) else {
        return forbidden("This is not your server.");
    };
    if sess.user.name != user && !sess.user.admin {
        return forbidden("This is not your server.");
    }
    let server = s.urls.user_url(&user);
    let target = format!("{server}{rest}");
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
    let message = format!("Server at {server} is not running");
    if wants_json {
        return HubError::new(Source::Client, StatusCode::FAILED_DEPENDENCY, message)
            .into_response();
    }
    Message::new("Server not running", &format!("{message}."))
        .link(s.urls.spawn_for(&user, &target), "Launch server")
        .link(s.urls.hub_page("home"), "Home")
        .respond(StatusCode::FAILED_DEPENDENCY)
}

/// `GET /hub/user-redirect/<rest>`: the same path in the caller's own server.
pub async fn redirect(
    State(s): State<AppState>,
    sess: Session,
    Path(rest): Path<String>,
) -> Response {
    Redirect::to(&format!("{}{rest}", s.urls.user_url(&sess.user.name))).into_response()
}
