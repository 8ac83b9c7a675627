//! Activity seen by the proxy: when each user's server last carried a request.
//!
//! JupyterHub learns activity both from the single-user server's own reports and from
//! configurable-http-proxy's per-route timestamps; idle-culling scripts read the result as
//! `last_activity`. Here every forwarded request stamps the user in memory (one short
//! lock, no I/O), and a background task writes the stamps to the database in one batch
//! per interval, so a busy server costs one row update per interval, not one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::Db;
use crate::types::Username;

/// The stamps not yet written. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ActivityLog {
    pending: Arc<Mutex<HashMap<Username, time::OffsetDateTime>>>,
}

impl ActivityLog {
    /// Notes a request to `user`'s server now.
    pub fn seen(&self, user: &Username) {
        let now = time::OffsetDateTime::now_utc();
        let mut m = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(user) {
            Some(t) => *t = now,
            None => {
                m.insert(user.clone(), now);
            }
        }
    }

    /// Writes the stamps gathered so far (the users' and their default servers'
    /// `last_activity`, never moved back) and forgets them.
    pub fn flush(&self, db: &Db) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (user, at) in batch {
            if let Err(e) = db.users().touch(&user, true, &crate::timestamp::iso(at)) {
                tracing::warn!(%user, error = %e, "cannot record proxy activity");
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
