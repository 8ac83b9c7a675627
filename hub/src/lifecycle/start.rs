//! Beginning a start: the checks a start passes, under the lock of the live servers, and
//! the gate a hub closes while it hands its servers over to its successor.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Live, Servers};
use crate::db::UserRow;
use crate::lifecycle::Progress;
use crate::types::{RecordedState, ServerKey, ServerName, ServerState};

/// Why a start was not begun.
#[derive(Debug, PartialEq, Eq)]
pub enum StartError {
    /// Already running.
    Running,
    /// A start is in progress.
    Pending,
    /// A stop is in progress.
    Stopping,
    /// The named server does not exist (it was removed).
    Gone,
    /// This hub has handed over to its successor: no start begins here (requests are
    /// sent there before they come this far; see [`Servers::pass_gate`]).
    HandedOver,
}

/// Whether this hub changes servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartGate {
    /// It does.
    Open,
    /// Not while it hands over: a request let in now would start what no hub follows
    /// (a helper, a Slurm job) or stop, with a handle already let go, what the successor
    /// runs. Those let in before are waited for ([`Servers::changing`]).
    Held,
    /// Not any more: its successor serves.
    HandedOver,
}

/// A request that may change something, let in while the gate was open: counted until
/// it ends, so a hand-over waits for it.
pub struct Changing(Servers);

impl Drop for Changing {
    fn drop(&mut self) {
        self.0.inner.changing.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Servers {
    /// Opens, holds or closes the gate (see [`StartGate`]).
    pub fn set_start_gate(&self, gate: StartGate) {
        let _live = self.live();
        self.inner.gate.send_replace(gate);
    }

    /// Lets a request that may change something in, counted ([`Changing`]): at once while
    /// the gate is open, after the hand-over when it is held and the hand-over fails
    /// (within `wait`). `Err` with the gate as it is then: `HandedOver` (the request is
    /// the successor's), or `Held` still after `wait`.
    pub async fn pass_gate(&self, wait: Duration) -> Result<Changing, StartGate> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Counted first, the gate read after: a hand-over sets the gate and then reads
            // the count, so it sees this request or this request sees the gate held. No
            // lock on the way of a request while the gate is open.
            self.inner.changing.fetch_add(1, Ordering::SeqCst);
            let changing = Changing(self.clone());
            let mut gate = self.inner.gate.subscribe();
            match *gate.borrow_and_update() {
                StartGate::Open => return Ok(changing),
                g @ StartGate::HandedOver => return Err(g),
                StartGate::Held => drop(changing),
            }
            if tokio::time::timeout_at(deadline, gate.changed())
                .await
                .is_err()
            {
                return Err(StartGate::Held);
            }
        }
    }

    /// How many requests that may change something are under way.
    pub fn changing(&self) -> usize {
        self.inner.changing.load(Ordering::SeqCst)
    }

    /// Begins a spawn of `user`'s server `name` in the background.
    pub fn start(&self, user: &UserRow, name: &ServerName) -> Result<(), StartError> {
        self.start_with(user, name, String::new())
    }

    /// The same, with the Slurm profile `profile` (checked by the caller against root's
    /// profiles, and by the helper again).
    pub fn start_with(
        &self,
        user: &UserRow,
        name: &ServerName,
        profile: String,
    ) -> Result<(), StartError> {
        let key = ServerKey::new(user.name.clone(), name.clone());
        let run = {
            let mut live = self.live();
            match live.get(&key).map(|l| &l.state) {
                Some(ServerState::Running) => return Err(StartError::Running),
                Some(ServerState::Starting) => return Err(StartError::Pending),
                Some(ServerState::Stopping) => return Err(StartError::Stopping),
                _ => {}
            }
            // Recorded but not live here: another hub's (during a hand-over), or one this
            // hub is about to follow again.
            match self.recorded(&key) {
                Some(RecordedState::Running) => return Err(StartError::Running),
                Some(RecordedState::Starting) => return Err(StartError::Pending),
                Some(RecordedState::Stopping) => return Err(StartError::Stopping),
                None => {}
            }
            // A start that passed the gate open may begin while it is held: the hand-over
            // counts it from here ([`Self::starting_here`]).
            if *self.inner.gate.borrow() == StartGate::HandedOver {
                return Err(StartError::HandedOver);
            }
            // Checked under the lock a removal or rename holds ([`Self::with_stopped`]).
            if !name.is_default()
                && !matches!(self.inner.db.named().get(user.id, name), Ok(Some(_)))
            {
                return Err(StartError::Gone);
            }
            let run = self.inner.runs.fetch_add(1, Ordering::Relaxed) + 1;
            live.insert(
                key.clone(),
                Live::new(ServerState::Starting, None, Progress::default(), run),
            );
            // Counted as under way from here, not from when its task first runs.
            self.mark_spawning(&key, run, true);
            run
        };
        let this = self.clone();
        let user = user.clone();
        tokio::spawn(async move { this.run_spawn(user, key, run, profile).await });
        Ok(())
    }

    /// Runs `f` while server `key` is stopped, holding the lock every start takes, so no
    /// start begins until `f` returns (a rename or removal of a named server); `None`,
    /// without running it, when the server is starting, running or stopping.
    pub fn with_stopped<R>(&self, key: &ServerKey, f: impl FnOnce() -> R) -> Option<R> {
        let live = self.live();
        let active = live
            .get(key)
            .is_some_and(|l| !matches!(l.state, ServerState::Stopped | ServerState::Failed(_)));
        if active || self.recorded(key).is_some() {
            return None;
        }
        let out = f();
        drop(live);
        Some(out)
    }
}
