//! The progress of a server's start as server-sent events:
//! `GET /users/<name>/server/progress` and `…/servers/<server>/progress`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
use tokio::sync::watch;

use super::servers::{log_name, server_model, ServerPath};
use super::users::existing;
use crate::auth::Caller;
use crate::error::HubError;
use crate::lifecycle::{Progress, ProgressEvent};
use crate::state::AppState;
use crate::types::ServerState;

/// Interval of the progress stream's keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(8);

type Events = BoxStream<'static, Result<Event, Infallible>>;

/// `GET /users/<name>/server/progress` and `…/servers/<server>/progress`: every event
/// once, then the stream ends after the last one (compat §3.5).
pub async fn progress(
    State(s): State<AppState>,
    caller: Caller,
    path: ServerPath,
) -> Result<Response, HubError> {
    let key = path.key_or_404()?;
    caller.require_server(&key, "read:servers", true)?;
    if !key.name.is_default() {
        let user = existing(&s, &key.user)?;
        server_model(&s, &user, &key)?; // 404 unless it exists
    }
    let events: Events = if s.servers.state(&key) == ServerState::Running {
        let ready = ProgressEvent::ready(&s.urls.server_url(&key));
        stream::iter([Ok(event(&ready))]).boxed()
    } else {
        let rx = s.servers.progress(&key).ok_or_else(|| {
            HubError::bad_request(format!("{} is not starting...", log_name(&key)))
        })?;
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
