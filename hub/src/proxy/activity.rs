//! Activity seen by the proxy: when each server last carried a request.
//!
//! JupyterHub learns activity both from the single-user server's own reports and from
//! configurable-http-proxy's per-route timestamps; idle-culling scripts read the result as
//! `last_activity`. Here every forwarded request stamps its server in memory (one short
//! lock, no I/O), and a background task writes the stamps to the database in one batch
//! per interval, so a busy server costs one row update per interval, not one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::Db;
use crate::types::ServerKey;

/// The stamps not yet written. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ActivityLog {
    pending: Arc<Mutex<HashMap<ServerKey, time::OffsetDateTime>>>,
}

impl ActivityLog {
    /// Notes a request to `server` now.
    pub fn seen(&self, server: &ServerKey) {
        let now = time::OffsetDateTime::now_utc();
        let mut m = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(server) {
            Some(t) => *t = now,
            None => {
                m.insert(server.clone(), now);
            }
        }
    }

    /// Writes the stamps gathered so far (the servers' and their users'
    /// `last_activity`, never moved back) and forgets them.
    pub fn flush(&self, db: &Db) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (server, at) in batch {
            let at = crate::timestamp::iso(at);
            if let Err(e) = db.users().touch(&server.user, Some(&server.name), &at) {
                tracing::warn!(%server, error = %e, "cannot record proxy activity");
            }
        }
    }

    /// Flushes every `interval`, for the life of the hub.
    pub async fn run(self, db: Db, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (log, db) = (self.clone(), db.clone());
            // SQLite calls block: keep them off the async workers.
            let _ = tokio::task::spawn_blocking(move || log.flush(&db)).await;
        }
    }
}
