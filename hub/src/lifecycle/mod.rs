//! The life cycle of users' servers: stopped → starting → running → stopping → stopped,
//! through a [`Spawner`], with the database kept in step at every transition and the
//! proxy route added only once the server answers HTTP.
//!
//! - [`start`]: beginning a start, and the gate a hand-over closes;
//! - [`spawn`]: the steps of a start, and watching for the exit;
//! - [`environment`]: what the server's environment holds;
//! - [`readiness`]: waiting for it to answer HTTP, and [`listener`]: checking that what
//!   answers is the user's own socket;
//! - [`recovery`]: after a hub restart, repair and re-attach;
//! - [`progress`]: the typed events a spawn reports.

mod environment;
mod jobs_again;
mod listener;
pub mod progress;
mod readiness;
mod recovery;
mod slurm;
mod spawn;
mod start;
mod stopping;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

pub use progress::{Progress, ProgressEvent};
pub use start::{Changing, StartError, StartGate};

use crate::config::HubConfig;
use crate::db::Db;
use crate::metrics::{Metrics, StopStatus};
use crate::proxy::RouteTable;
use crate::spawner::{ServerHandle, Spawner};
use crate::types::{RecordedState, ServerKey, ServerState, Username};

struct Live {
    state: ServerState,
    handle: Option<ServerHandle>,
    progress: watch::Sender<Progress>,
    /// Which start this is: a start's steps act only while the entry is still theirs
    /// (a stop, and a new start after it, replace or remove it).
    run: u64,
}

impl Live {
    fn new(state: ServerState, handle: Option<ServerHandle>, progress: Progress, run: u64) -> Self {
        Self {
            state,
            handle,
            progress: watch::Sender::new(progress),
            run,
        }
    }
}

/// All servers of this hub. Cheap to clone.
#[derive(Clone)]
pub struct Servers {
    inner: Arc<Inner>,
}

struct Inner {
    /// The key of auth states, for `auth_state_env`.
    auth_state: std::sync::OnceLock<Arc<crate::auth::auth_state::AuthStateKey>>,
    cfg: Arc<HubConfig>,
    db: Db,
    spawner: Arc<dyn Spawner>,
    routes: RouteTable,
    metrics: Metrics,
    live: Mutex<HashMap<ServerKey, Live>>,
    /// The number of the last start ([`Live::run`]).
    runs: AtomicU64,
    /// Servers stopped (SIGTERM sent) whose exit is not reported yet: a new start of the
    /// same server waits for it, so two never run side by side.
    draining: Mutex<HashMap<ServerKey, ServerHandle>>,
    /// The starts whose steps are still running, by server: a start interrupted while its
    /// helper was starting the server ends that server itself, and a new start of the
    /// same server waits for it.
    spawning: Mutex<HashMap<ServerKey, Vec<u64>>>,
    /// Whether servers change here ([`StartGate`]); set under the lock of `live`.
    gate: watch::Sender<StartGate>,
    /// The requests let through the gate and not yet answered ([`start::Changing`]).
    changing: std::sync::atomic::AtomicUsize,
}

impl Servers {
    /// The server manager, starting servers with `spawner`.
    pub fn new(
        cfg: Arc<HubConfig>,
        db: Db,
        routes: RouteTable,
        spawner: Arc<dyn Spawner>,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                auth_state: std::sync::OnceLock::new(),
                cfg,
                db,
                spawner,
                routes,
                metrics,
                live: Mutex::new(HashMap::new()),
                runs: AtomicU64::new(0),
                draining: Mutex::new(HashMap::new()),
                spawning: Mutex::new(HashMap::new()),
                gate: watch::Sender::new(StartGate::Open),
                changing: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// Gives servers the parts of their user's auth state that `auth_state_env` names.
    pub fn set_auth_state(&self, key: Arc<crate::auth::auth_state::AuthStateKey>) {
        let _ = self.inner.auth_state.set(key);
    }

    fn live(&self) -> MutexGuard<'_, HashMap<ServerKey, Live>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn recorded(&self, key: &ServerKey) -> Option<RecordedState> {
        self.inner
            .db
            .servers()
            .get(key)
            .ok()
            .flatten()
            .map(|r| r.state)
    }

    /// The state of a server.
    pub fn state(&self, key: &ServerKey) -> ServerState {
        if let Some(l) = self.live().get(key) {
            return l.state.clone();
        }
        Self::from_record(self.recorded(key))
    }

    /// The same, given what the database records for it (read with the user already):
    /// no query of its own.
    pub fn state_given(&self, key: &ServerKey, recorded: Option<RecordedState>) -> ServerState {
        if let Some(l) = self.live().get(key) {
            return l.state.clone();
        }
        Self::from_record(recorded)
    }

    fn from_record(recorded: Option<RecordedState>) -> ServerState {
        match recorded {
            Some(RecordedState::Running) => ServerState::Running,
            Some(_) => ServerState::Starting,
            None => ServerState::Stopped,
        }
    }

    /// Whether a server is recorded running but its helper has not dialled back since
    /// this hub started: the short window after a hub restart, before re-attach.
    pub fn reconnecting(&self, key: &ServerKey) -> bool {
        if self.live().get(key).is_some_and(|l| l.handle.is_some()) {
            return false;
        }
        self.recorded(key) == Some(RecordedState::Running)
    }

    /// The progress of the current or last spawn of a server.
    pub fn progress(&self, key: &ServerKey) -> Option<watch::Receiver<Progress>> {
        self.live().get(key).map(|l| l.progress.subscribe())
    }

    /// Every server of `user`'s that is not stopped: live here, or recorded.
    pub fn active_of(&self, user: &Username) -> Vec<ServerKey> {
        let mut keys: Vec<ServerKey> = self
            .live()
            .iter()
            .filter(|(k, l)| {
                k.user == *user && !matches!(l.state, ServerState::Stopped | ServerState::Failed(_))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for row in self.inner.db.servers().of_user(user).unwrap_or_default() {
            keys.push(row.key());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Stops every server of `user`'s, all at once.
    pub async fn stop_all_of(&self, user: &Username) {
        let keys = self.active_of(user);
        futures_util::future::join_all(keys.iter().map(|k| self.stop(k))).await;
    }

    /// How many servers are running and routed now.
    pub fn running_count(&self) -> usize {
        self.live()
            .values()
            .filter(|l| l.state == ServerState::Running)
            .count()
    }

    /// Stops a server: its route goes at once, and the call returns once the server has
    /// had its SIGTERM (its helper owns the grace period and the SIGKILL after it). Row,
    /// token and OAuth client go then too; the exit is awaited in the background, and by
    /// the next start of this server. A start in progress is interrupted: its next step
    /// finds the server no longer its own and ends what it began.
    pub async fn stop(&self, user: &ServerKey) {
        let handle = {
            let mut live = self.live();
            let Some(l) = live.get_mut(user) else {
                // Recorded but not live here (a helper that has not re-attached): the
                // record goes, under the lock, so a start that begins meanwhile is not
                // cleaned up with it.
                if self.recorded(user).is_some() {
                    let job = self.recorded_job(user);
                    self.inner.routes.remove_server(user);
                    if let Err(e) = self.inner.db.servers().stopped(user) {
                        tracing::error!(server = %user, error = %e, "cannot record the stop");
                    }
                    tracing::info!(server = %user, "server stopped; route removed");
                    match job {
                        Some(id) => self.cancel_unheld_job(user, id),
                        None => self.clear_orphan(user),
                    }
                }
                return;
            };
            l.state = ServerState::Stopping;
            l.handle.clone()
        };
        self.inner.routes.remove_server(user);
        if let Err(e) = self.inner.db.servers().stopping(user) {
            tracing::error!(server = %user, error = %e, "cannot record the stop");
        }
        tracing::info!(server = %user, "server stopping");
        let began = std::time::Instant::now();
        let mut status = StopStatus::success;
        match handle {
            Some(h) => match h.terminate(self.grace()).await {
                Ok(()) => self.drain(user, h),
                // A job that would not cancel stays stopping; the cancel goes on.
                Err(e) if h.job().is_some() => return self.keep_cancelling(user, h, &e, began),
                Err(e) => {
                    status = StopStatus::failure;
                    tracing::warn!(server = %user, error = %e, "stop did not complete")
                }
            },
            None => self.clear_orphan(user),
        }
        self.cleanup(user);
        self.inner.metrics.stopped(status, began.elapsed());
    }

    fn spawning(&self) -> MutexGuard<'_, HashMap<ServerKey, Vec<u64>>> {
        self.inner
            .spawning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records that start `run` of `key` runs its steps (`true`) or has ended them.
    fn mark_spawning(&self, key: &ServerKey, run: u64, on: bool) {
        let mut m = self.spawning();
        let runs = m.entry(key.clone()).or_default();
        if on {
            runs.push(run);
        } else {
            runs.retain(|r| *r != run);
        }
        if runs.is_empty() {
            m.remove(key);
        }
    }

    /// Before start `run`: waits (at most the start timeout and the grace period) until
    /// every earlier start of the same server, interrupted by a stop, has ended its steps
    /// (and so ended the server it brought up).
    async fn earlier_starts_gone(&self, key: &ServerKey, run: u64) {
        let limit = Duration::from_secs(self.inner.cfg.spawner.start_timeout_secs) + self.grace();
        let deadline = tokio::time::Instant::now() + limit;
        while self
            .spawning()
            .get(key)
            .is_some_and(|runs| runs.iter().any(|r| *r < run))
        {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(server = %key, "an interrupted start did not end in time; starting anyway");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Before a start: waits (at most the grace period and a little) for the exit of the
    /// server's previous run, if it is still in its grace period.
    async fn previous_gone(&self, user: &ServerKey) {
        let Some(previous) = self.draining().get(user).cloned() else {
            return;
        };
        tracing::info!(server = %user, pid = previous.pid(), "waiting for the previous server to exit");
        let limit = self.grace() + Duration::from_secs(2);
        if tokio::time::timeout(limit, previous.ended()).await.is_err() {
            tracing::warn!(server = %user, "the previous server did not exit in time; starting anyway");
        }
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(self.inner.cfg.spawner.stop_grace_secs)
    }

    /// The server is gone: route, row, token and OAuth client go.
    fn cleanup(&self, user: &ServerKey) {
        self.inner.routes.remove_server(user);
        if let Err(e) = self.inner.db.servers().stopped(user) {
            tracing::error!(server = %user, error = %e, "cannot record the stop");
        }
        self.live().remove(user);
        tracing::info!(server = %user, "server stopped; route removed");
    }
}

#[cfg(test)]
mod tests;
