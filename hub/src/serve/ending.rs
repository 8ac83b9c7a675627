//! How a hub ends after handing over, and what only one hub may run at a time.

use std::sync::Mutex;
use std::time::Duration;

use super::Connections;
use crate::state::AppState;

/// After the hand-over: every further response closes its connection, WebSockets go on;
/// once all are gone, or at `timeout_secs`, this process ends.
pub(super) async fn drain(
    conns: &Connections,
    tunnels: &crate::proxy::Tunnels,
    successor: u32,
    timeout_secs: u64,
) {
    conns.begin_closing();
    tracing::info!(
        successor,
        connections = conns.open(),
        websockets = tunnels.open(),
        timeout_secs,
        "handed over; draining"
    );
    let all = async { tokio::join!(conns.ended(), tunnels.closed()) };
    if tokio::time::timeout(Duration::from_secs(timeout_secs), all)
        .await
        .is_err()
    {
        let (c, w) = (conns.open(), tunnels.open());
        tunnels.cut();
        conns.close(Duration::from_secs(1)).await;
        tracing::info!(
            connections = c,
            websockets = w,
            "drain timeout: closed what was left"
        );
    }
    tracing::info!(successor, "drained; this hub exits, the new one serves");
}

/// The culler and the managed services: one hub runs them at a time, so a hub hands them
/// over with its helpers.
pub struct Background {
    state: AppState,
    running: Mutex<Option<(crate::managed::Managed, Option<tokio::task::JoinHandle<()>>)>>,
}

impl Background {
    pub(super) fn new(state: AppState) -> Self {
        Self {
            state,
            running: Mutex::new(None),
        }
    }

    /// Starts them (again).
    pub fn start(&self) {
        let managed = crate::managed::Managed::start(&self.state.cfg);
        let culler = crate::culler::Culler::new(
            &self.state.cfg.culler,
            self.state.db.clone(),
            self.state.servers.clone(),
        )
        .map(crate::culler::Culler::spawn);
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some((managed, culler));
    }

    /// Stops them.
    pub async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((managed, culler)) = running {
            if let Some(c) = culler {
                c.abort();
            }
            managed.stop().await;
        }
    }
}
