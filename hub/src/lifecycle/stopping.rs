//! The end of a stop: awaiting a stopped server's exit in the background, and clearing
//! what is left of a server whose helper is gone.

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::Duration;

use super::Servers;
use crate::spawner::{Ending, ServerHandle};
use crate::types::ServerKey;

impl Servers {
    pub(super) fn draining(&self) -> MutexGuard<'_, HashMap<ServerKey, ServerHandle>> {
        self.inner
            .draining
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Awaits, in the background, the exit of a server that was sent its SIGTERM.
    pub(super) fn drain(&self, user: &ServerKey, handle: ServerHandle) {
        self.draining().insert(user.clone(), handle.clone());
        let this = self.clone();
        let user = user.clone();
        tokio::spawn(async move {
            match handle.ended().await {
                Ending::Exited(status) => {
                    tracing::info!(server = %user, %status, "server stopped by request")
                }
                Ending::Lost => {
                    tracing::warn!(server = %user, "lost the helper of a stopping server")
                }
            }
            let mut draining = this.draining();
            if draining.get(&user).is_some_and(|h| h.pid() == handle.pid()) {
                draining.remove(&user);
            }
        });
    }

    /// A server without a helper (its user killed it, or it never re-attached after a
    /// restart) may still run, unsupervised: a new helper, as root, kills what is left in
    /// its cgroup, so a stop stops it whatever became of its helper.
    pub(super) fn clear_orphan(&self, key: &ServerKey) {
        let this = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let timeout = Duration::from_secs(this.inner.cfg.spawner.start_timeout_secs);
            match this
                .inner
                .spawner
                .clear(&key.user, &key.name, timeout)
                .await
            {
                Ok(0) => tracing::debug!(server = %key, "nothing left of a server without helper"),
                Ok(killed) => {
                    tracing::warn!(server = %key, killed, "killed what was left of a server whose helper was gone")
                }
                Err(e) => {
                    tracing::warn!(server = %key, error = %e, "cannot clear a server whose helper is gone")
                }
            }
        });
    }
}
