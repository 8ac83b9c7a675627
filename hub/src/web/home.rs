//! The home page, `/hub/` itself, and stopping one's server.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use crate::auth::{Session, XsrfForm};
use crate::state::AppState;
use crate::templates;
use crate::types::{ServerKey, ServerName, ServerState};

/// `GET <base>hub/`: to the user's server if it runs, else to spawn; to login first.
pub async fn root(State(s): State<AppState>, sess: Session) -> Response {
    let mine = ServerKey::default_of(&sess.user.name);
    match s.servers.state(&mine) {
        ServerState::Running => Redirect::to(&s.urls.server_url(&mine)),
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
    /// `/hub/change-password`, for a user whose password the hub keeps.
    password: Option<String>,
    /// `/hub/two-factor`, for such a user when second factors are allowed.
    two_factor: Option<String>,
}

/// A named server's row on the home page.
#[derive(Serialize)]
struct NamedServer {
    name: String,
    display_name: String,
    state: &'static str,
    last_activity: Option<String>,
    url: String,
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
    allow_named: bool,
    named_limit: usize,
    named: Vec<NamedServer>,
}

fn state_word(state: &ServerState) -> &'static str {
    match state {
        ServerState::Running => "running",
        ServerState::Starting => "starting",
        ServerState::Stopping => "stopping",
        ServerState::Failed(_) => "failed",
        ServerState::Stopped => "stopped",
    }
}

/// `GET /hub/home`: who is signed in, their server with a start or stop button, and
/// (with `allow_named_servers`) their named servers with a form to add one.
pub async fn home(State(s): State<AppState>, sess: Session) -> Response {
    let name = &sess.user.name;
    let mine = ServerKey::default_of(name);
    let state = s.servers.state(&mine);
    let reason = match &state {
        ServerState::Failed(reason) => Some(reason.clone()),
        _ => None,
    };
    let u = &s.urls;
    // Whether the hub keeps this user's password (an account of its own).
    let rules = s.auth.rules();
    let own = rules.uses(crate::config::SourceKind::Native)
        && matches!(s.db.native().get(&sess.user.name), Ok(Some(_)));
    let named = match s.db.named().of_users(&[sess.user.id]) {
        Ok(mut m) => m.remove(&sess.user.id).unwrap_or_default(),
        Err(e) => return super::error_page(&e.into()),
    };
    let named = named
        .into_iter()
        .map(|n| {
            let key = ServerKey::new(name.clone(), n.name.clone());
            let state = s
                .servers
                .state_given(&key, n.running.as_ref().map(|r| r.state));
            NamedServer {
                name: n.name.to_string(),
                display_name: n.display_name.clone(),
                state: state_word(&state),
                last_activity: n
                    .running
                    .as_ref()
                    .and_then(|r| r.last_activity.clone())
                    .or(n.last_activity),
                url: u.server_url(&key),
                pending: u.spawn_pending(&key, None),
                spawn: u.spawn_for(&key, &u.server_url(&key)),
            }
        })
        .collect();
    let ctx = HomePage {
        title: "Home",
        user: name.as_str(),
        admin: sess.user.admin,
        xsrf: sess.xsrf(&s.key),
        state: state_word(&state),
        reason,
        urls: HomeUrls {
            logout: u.hub_page("logout"),
            token: u.hub_page("token"),
            admin: u.hub_page("admin"),
            server: u.server_url(&mine),
            stop: u.hub_page("stop"),
            pending: u.spawn_pending(&mine, None),
            spawn: u.hub_page("spawn"),
            password: own.then(|| u.hub_page("change-password")),
            two_factor: (own && rules.native.allow_2fa).then(|| u.hub_page("two-factor")),
        },
        allow_named: s.cfg.allow_named_servers,
        named_limit: s.cfg.named_server_limit_per_user,
        named,
    };
    templates::page(axum::http::StatusCode::OK, "home.html", ctx)
}

/// `POST /hub/stop`: stops one of the user's own servers: the default one, or the named
/// one in the `server` field; with `remove=1` that named server is removed too.
pub async fn stop(State(s): State<AppState>, form: XsrfForm) -> Response {
    let raw = form.fields.get("server").map(String::as_str).unwrap_or("");
    let Ok(server) = ServerName::parse(raw) else {
        return super::forbidden("No such server.");
    };
    let user = &form.session.user;
    let key = ServerKey::new(user.name.clone(), server);
    // A start in flight is stopped, not removed: its record stays until it is seen stopped.
    let remove = form.fields.get("remove").is_some_and(|v| v == "1")
        && !key.name.is_default()
        && s.servers.state(&key) != ServerState::Starting;
    s.servers.stop(&key).await;
    if remove {
        if let Err(e) = s.db.named().remove(user.id, &key.name) {
            return super::error_page(&e.into());
        }
        tracing::info!(server = %key, "named server removed");
    }
    Redirect::to(&s.urls.hub_page("home")).into_response()
}
