//! After a hub restart: repair what the last hub left half-done, take back the servers
//! whose helpers dial the re-attach socket, and forget those that never do.

use std::net::SocketAddr;
use std::time::Duration;

use sudohub_protocol::spawner::ServerStatus;

use super::{Live, Progress, Servers};
use crate::reattach::{ReattachHandler, VerifiedClaim};
use crate::spawner::ServerHandle;
use crate::types::{RecordedState, ServerKey, ServerState};

/// How long helpers of servers recorded as running get to re-attach after a hub start
/// before those servers are marked stopped.
const REATTACH_GRACE: Duration = Duration::from_secs(60);

/// How long a hub handing over waits for one handle to let go (a job's handle may be in
/// the middle of a cancel).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

impl Servers {
    /// At hub start: repair the database, and give servers recorded as running
    /// [`REATTACH_GRACE`] for their helpers to dial back before marking them stopped.
    ///
    /// A server whose process no longer exists (the machine rebooted, or it died with
    /// its helper) is marked stopped at once rather than after the grace period.
    pub fn recover(&self) {
        let (jobs, resumed) = self.recover_jobs();
        if let Err(e) = self.inner.db.servers().repair_except(&resumed) {
            tracing::error!(error = %e, "database repair failed");
        }
        let mut awaited = Vec::new();
        for row in self.inner.db.servers().all().unwrap_or_default() {
            if row.state != RecordedState::Running || jobs.contains(&row.key()) {
                continue;
            }
            if row.pid.is_some_and(|pid| !process_exists(pid)) {
                tracing::warn!(server = %row.key(), pid = ?row.pid, "server process is gone; marked stopped");
                self.cleanup(&row.key());
            } else {
                awaited.push((row.key(), row.pid));
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REATTACH_GRACE).await;
            this.forget_unattached(&awaited);
        });
    }

    /// Marks stopped the servers that were recorded as running at hub start (`awaited`)
    /// and whose helpers never re-attached. Only those: a server this hub started itself
    /// meanwhile (its row says running before its route is added) is not touched, nor is
    /// one whose row has changed since.
    pub(super) fn forget_unattached(&self, awaited: &[(ServerKey, Option<u32>)]) {
        for (user, pid) in awaited {
            if self.live().contains_key(user) {
                continue;
            }
            let Ok(Some(row)) = self.inner.db.servers().get(user) else {
                continue;
            };
            if row.state == RecordedState::Running && row.pid == *pid {
                tracing::warn!(server = %user, pid = ?pid, "no helper re-attached; server marked stopped");
                self.cleanup(user);
            }
        }
    }
}

impl Servers {
    /// A hub handing over to its successor lets go of every helper it holds: each closes
    /// its end and dials the re-attach socket, where the successor takes it. Routes stay,
    /// so this hub keeps carrying what it already carries. Returns how many it let go.
    pub async fn release_all(&self) -> usize {
        // Starts waiting for their Slurm jobs first: from here on their steps here end
        // without touching what the successor goes on with.
        let mut handles = self.let_go_of_job_starts();
        handles.extend(self.live().values().filter_map(|l| l.handle.clone()));
        let n = handles.len();
        let release = |h: &ServerHandle| {
            let h = h.clone();
            async move {
                if tokio::time::timeout(RELEASE_TIMEOUT, h.release())
                    .await
                    .is_err()
                {
                    tracing::warn!(pid = h.pid(), "a server's handle did not let go in time");
                }
            }
        };
        futures_util::future::join_all(handles.iter().map(release)).await;
        n
    }

    /// How many servers are recorded as running: the helpers a successor waits for.
    pub fn recorded_running(&self) -> usize {
        self.inner
            .db
            .servers()
            .all()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.state == RecordedState::Running)
            .count()
    }

    /// How many starts are under way.
    pub fn starting(&self) -> usize {
        self.spawning().values().map(Vec::len).sum()
    }

    /// How many servers have their helper attached to this hub.
    pub fn attached(&self) -> usize {
        self.live().values().filter(|l| l.handle.is_some()).count()
    }
}

/// Whether a process exists, seen from the hub user, which may not signal it: a null
/// signal answers EPERM for another user's live process and ESRCH for none.
fn process_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

impl ReattachHandler for Servers {
    fn verify(&self, claim: &VerifiedClaim) -> Result<(), String> {
        let verdict = self.verify_claim(claim);
        if verdict.is_err() {
            self.inner.metrics.reattached(false);
        }
        verdict
    }

    fn adopt(&self, claim: VerifiedClaim, stream: tokio::net::UnixStream) {
        self.inner.metrics.reattached(true);
        self.adopt_claim(claim, stream);
    }
}

impl Servers {
    fn verify_claim(&self, claim: &VerifiedClaim) -> Result<(), String> {
        let key = ServerKey::new(claim.user.clone(), claim.server_name.clone());
        let row = self
            .inner
            .db
            .servers()
            .get(&key)
            .map_err(|e| format!("database: {e}"))?
            .ok_or("no such server is recorded")?;
        if row.state != RecordedState::Running || row.pid != Some(claim.pid) {
            return Err(format!(
                "the recorded server has pid {:?}, not {}",
                row.pid, claim.pid
            ));
        }
        if self.live().get(&key).is_some_and(|l| l.handle.is_some()) {
            return Err("that server is attached already".into());
        }
        // The port may have been taken while the hub was away: route only to the user's
        // own socket, as at spawn.
        if claim.status != (ServerStatus::Running { pid: claim.pid }) {
            return Ok(());
        }
        let uid = nix::unistd::User::from_name(claim.user.as_str())
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
            .ok_or("the user has no passwd entry")?;
        super::listener::owned_by(row.port, uid)
    }

    fn adopt_claim(&self, claim: VerifiedClaim, stream: tokio::net::UnixStream) {
        let key = ServerKey::new(claim.user.clone(), claim.server_name.clone());
        let Ok(Some(row)) = self.inner.db.servers().get(&key) else {
            return;
        };
        let handle = ServerHandle::adopt(stream, claim.pid);
        if let ServerStatus::Exited { status } = claim.status {
            tracing::info!(server = %key, %status, "server exited while the hub was away");
            self.cleanup(&key);
            return;
        }
        tracing::info!(server = %key, pid = claim.pid, port = row.port, "server re-attached; route restored");
        self.take_back(key, handle, SocketAddr::from(([127, 0, 0, 1], row.port)));
    }

    /// A server the last hub ran, followed again through `handle`: routed to `addr`,
    /// live as running, its end watched.
    pub(super) fn take_back(&self, key: ServerKey, handle: ServerHandle, addr: SocketAddr) {
        self.inner.routes.set_server(&key, addr);
        let done = Progress {
            events: Vec::new(),
            done: true,
        };
        self.live().insert(
            key.clone(),
            Live::new(ServerState::Running, Some(handle.clone()), done, 0),
        );
        self.watch_exit(key, handle);
    }
}
