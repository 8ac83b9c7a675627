//! `/users/<name>/server`: start, stop, and the progress of a start as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use super::models::ServerModel;
use super::users::existing;
use super::UserPath;
use crate::auth::Caller;
use crate::error::HubError;
use crate::lifecycle::{Progress, ProgressEvent, StartError};
use crate::state::AppState;
use crate::types::ServerState;

/// How long `POST …/server` waits for the server before answering 202
/// (JupyterHub's `slow_spawn_timeout`).
const SLOW_SPAWN: Duration = Duration::from_secs(10);
/// How long `DELETE …/server` waits for the stop before answering 202.
const SLOW_STOP: Duration = Duration::from_secs(10);
/// Interval of the progress stream's keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(8);

/// `GET /users/<name>/server` (JupyterHub 6): the default server's model, stopped or not.
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
) -> Result<axum::Json<ServerModel>, HubError> {
    caller.require(&name, "read:servers", true)?;
    let user = existing(&s, &name)?;
    let row = s.db.servers().get(&name)?;
    let state = s.servers.state_given(&name, row.as_ref().map(|r| r.state));
    Ok(axum::Json(ServerModel::default_of(
        &s.urls,
        &user,
        &state,
        row.as_ref(),
    )))
}

/// `POST /users/<name>/server`: 201 once running, 202 while still starting.
pub async fn start(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
) -> Result<StatusCode, HubError> {
    caller.require(&name, "servers", false)?;
    let user = existing(&s, &name)?;
    match s.servers.start(&user) {
        Err(StartError::Running) => {
            return Err(HubError::bad_request(format!(
                "{name}'s server is already running"
            )))
        }
        Err(StartError::Pending) => return Ok(StatusCode::ACCEPTED),
        Ok(()) => {}
    }
    let deadline = tokio::time::Instant::now() + SLOW_SPAWN;
    while tokio::time::Instant::now() < deadline {
        match s.servers.state(&name) {
            ServerState::Running => return Ok(StatusCode::CREATED),
            ServerState::Failed(reason) => return Err(HubError::helper(reason)),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(StatusCode::ACCEPTED)
}

/// `DELETE /users/<name>/server`: 204 once stopped, 202 if the stop takes longer.
pub async fn stop(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
) -> Result<StatusCode, HubError> {
    caller.require(&name, "delete:servers", false)?;
    existing(&s, &name)?;
    // The stop goes on in its own task if the client gives up waiting.
    let servers = s.servers.clone();
    let stop = tokio::spawn(async move { servers.stop(&name).await });
    Ok(match tokio::time::timeout(SLOW_STOP, stop).await {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::ACCEPTED,
    })
}

type Events = BoxStream<'static, Result<Event, Infallible>>;

/// `GET /users/<name>/server/progress`: every event once, then the stream ends after
/// the last one (compat §3.5).
pub async fn progress(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
) -> Result<Response, HubError> {
    caller.require(&name, "read:users", true)?;
    let events: Events = if s.servers.state(&name) == ServerState::Running {
        let ready = ProgressEvent::ready(&s.urls.user_url(&name));
        stream::iter([Ok(event(&ready))]).boxed()
    } else {
        let rx = s
            .servers
            .progress(&name)
            .ok_or_else(|| HubError::bad_request(format!("{name} is not starting...")))?;
        follow(rx)
    };
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

fn event(ev: &ProgressEvent) -> Event {
    Event::default().data(serde_json::to_string(ev).unwrap_or_default())
}

/// The events of a spawn as they come; ends after the last, or when the spawn is gone.
fn follow(rx: watch::Receiver<Progress>) -> Events {
    stream::unfold((rx, 0usize), |(mut rx, sent)| async move {
        loop {
            let (new, done) = {
                let p = rx.borrow_and_update();
                let new: Vec<Event> = p.events.iter().skip(sent).map(event).collect();
                (new, p.done)
            };
            if !new.is_empty() {
                let n = sent + new.len();
                return Some((stream::iter(new.into_iter().map(Ok)), (rx, n)));
            }
            if done || rx.changed().await.is_err() {
                return None;
            }
        }
    })
    .flatten()
    .boxed()
}
