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
use crate::types::{ServerKey, ServerName, ServerState, Username};

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

/// `GET /hub/user/<name>[/<server>][/<rest>]`: back to the server if it runs again, 503
/// while it reconnects, else 424 with a button to start it. A first segment that names
/// one of the user's named servers is that server; anything else is the default one's.
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
    let (key, rest) = server_of_path(&s, user, rest);
    let server = s.urls.server_url(&key);
    let target = format!("{server}{rest}");
    if s.servers.state(&key) == ServerState::Running && s.routes.server(&key).is_some() {
        return Redirect::to(&target).into_response();
    }
    let wants_json = rest.split('/').any(|seg| seg == "api")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
    if s.servers.reconnecting(&key) {
        return reconnecting(&target, wants_json);
    }
    let message = format!("Server at {server} is not running");
    if wants_json {
        return HubError::new(Source::Client, StatusCode::FAILED_DEPENDENCY, message)
            .into_response();
    }
    Message::new("Server not running", &format!("{message}."))
        .link(s.urls.spawn_for(&key, &target), "Launch server")
        .link(s.urls.hub_page("home"), "Home")
        .respond(StatusCode::FAILED_DEPENDENCY)
}

/// The server a path below `/user/<name>/` is for, and the rest of the path in it.
fn server_of_path<'a>(s: &AppState, user: Username, rest: &'a str) -> (ServerKey, &'a str) {
    let (seg, after) = rest.split_once('/').unwrap_or((rest, ""));
    {
        if let Ok(name) = ServerName::parse_named(seg) {
            let exists =
                s.db.users()
                    .get(&user)
                    .ok()
                    .flatten()
                    .and_then(|u| s.db.named().get(u.id, &name).ok().flatten())
                    .is_some();
            if exists {
                return (ServerKey::new(user, name), after);
            }
        }
    }
    (ServerKey::default_of(&user), rest)
}

/// `GET /hub/user-redirect/<rest>`: the same path in the caller's own server.
pub async fn redirect(
    State(s): State<AppState>,
    sess: Session,
    Path(rest): Path<String>,
) -> Response {
    let mine = ServerKey::default_of(&sess.user.name);
    Redirect::to(&format!("{}{rest}", s.urls.server_url(&mine))).into_response()
}
