//! After a hub restart, or an upgrade that failed half-way: following again the Slurm
//! jobs the database records, by their ids, with no new job. A running job gets its route
//! back only once Slurm shows it running on the recorded node; a start still waiting goes
//! on ([`Servers::resume_start`]); anything else is cancelled, and a job that will not
//! cancel stays recorded, so that no job runs unseen.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Servers;
use crate::slurm::JobView;
use crate::spawner::ServerHandle;
use crate::types::{RecordedState, ServerKey};

/// How long a hub waits for a decisive first poll of a job the last hub ran before it
/// says so in its log (it goes on waiting).
const FIRST_POLL: Duration = Duration::from_secs(60);

impl Servers {
    /// At hub start, before the database repair: every server the last hub ran as a
    /// Slurm job is followed again by its job id, with no new job. A running one gets its
    /// route back once the first poll has seen the job running on the recorded node (a
    /// port on a node the job has left could be anyone's by now), else it is cancelled;
    /// one still starting (queued, or its server not answering yet) is waited for here as
    /// its start would have been. Returns the servers taken over, and of those the starts
    /// resumed (which the repair must leave alone).
    pub(super) fn recover_jobs(&self) -> (Vec<ServerKey>, Vec<ServerKey>) {
        let rows = match self.inner.db.servers().jobs() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the Slurm jobs of the last hub");
                return (Vec::new(), Vec::new());
            }
        };
        let (mut keys, mut resumed) = (Vec::new(), Vec::new());
        for row in rows {
            let key = row.key.clone();
            let port = (row.port != 0).then_some(row.port);
            let Some(handle) = self
                .inner
                .spawner
                .job_handle(&key.user, &key.name, row.job_id, port)
            else {
                tracing::warn!(server = %key, job = row.job_id, "a Slurm job is recorded, but the backend is not slurm: left alone");
                continue;
            };
            keys.push(key.clone());
            if row.state == RecordedState::Starting {
                resumed.push(key.clone());
                self.resume_start(key, handle);
                continue;
            }
            let addr = row
                .host
                .as_deref()
                .and_then(|h| h.parse::<IpAddr>().ok())
                .zip(port)
                .map(|(ip, p)| SocketAddr::new(ip, p))
                .filter(|_| row.state == RecordedState::Running);
            let this = self.clone();
            tokio::spawn(async move { this.follow_again(key, row.job_id, handle, addr).await });
        }
        (keys, resumed)
    }

    /// The port recorded for `key`'s job `job`, once its server reported one.
    pub(super) fn recorded_port(&self, key: &ServerKey, job: u32) -> Option<u16> {
        let row = self.inner.db.servers().job_of(key).ok()??;
        (row.job_id == job && row.port != 0).then_some(row.port)
    }

    /// The Slurm job recorded for `key`, if it is one.
    pub(super) fn recorded_job(&self, key: &ServerKey) -> Option<u32> {
        let row = self.inner.db.servers().job_of(key).ok()??;
        Some(row.job_id)
    }

    /// A stop of a server recorded as job `job` that this hub holds no handle on (before
    /// it is followed again, or during a hand-over): the job is cancelled all the same.
    pub(super) fn cancel_unheld_job(&self, key: &ServerKey, job: u32) {
        let Some(handle) = self
            .inner
            .spawner
            .job_handle(&key.user, &key.name, job, None)
        else {
            return;
        };
        let (key, grace) = (key.clone(), self.grace());
        tokio::spawn(async move {
            let limit = grace + Duration::from_secs(60);
            match tokio::time::timeout(limit, handle.stop(grace)).await {
                Ok(Ok(_)) => tracing::info!(server = %key, job, "job cancelled"),
                _ => tracing::warn!(server = %key, job, "cannot cancel the job"),
            }
        });
    }

    /// After an upgrade that failed once this hub had let go: the Slurm jobs it recorded
    /// and no longer holds are followed again (starts resumed, running ones watched).
    pub fn follow_jobs_again(&self) {
        let rows = self.inner.db.servers().jobs().unwrap_or_default();
        for row in rows {
            let held = self
                .live()
                .get(&row.key)
                .is_some_and(|l| l.handle.is_some());
            if held {
                continue;
            }
            let port = (row.port != 0).then_some(row.port);
            let Some(handle) =
                self.inner
                    .spawner
                    .job_handle(&row.key.user, &row.key.name, row.job_id, port)
            else {
                continue;
            };
            match row.state {
                RecordedState::Starting => self.resume_start(row.key, handle),
                RecordedState::Running => {
                    if let Some(l) = self.live().get_mut(&row.key) {
                        l.handle = Some(handle.clone());
                    }
                    self.watch_exit(row.key, handle);
                }
                RecordedState::Stopping => {}
            }
        }
    }

    async fn follow_again(
        &self,
        key: ServerKey,
        job: u32,
        handle: ServerHandle,
        addr: Option<SocketAddr>,
    ) {
        // A decisive view: running with its node's address, or over. Slurm that does not
        // answer (a slurmctld restarting with the hub) is waited for, not taken for an end.
        let decisive = |v: &JobView| {
            matches!(
                v,
                JobView::Running { addr: Some(_), .. } | JobView::Ended { .. }
            )
        };
        let seen = match (handle.job(), addr) {
            (Some(link), Some(_)) => {
                let mut view = link.view();
                loop {
                    let got = tokio::time::timeout(FIRST_POLL, async {
                        view.wait_for(|v| decisive(v)).await.map(|v| v.clone())
                    })
                    .await;
                    match got {
                        Ok(Ok(v)) => break Some(v),
                        Ok(Err(_)) => break None,
                        Err(_) => {
                            tracing::warn!(server = %key, job, "Slurm has not said yet whether the job runs; still asking")
                        }
                    }
                }
            }
            _ => None,
        };
        // A stop (or a new record) while this waited: the job is not this server any more.
        let still = |this: &Self| {
            this.inner
                .db
                .servers()
                .job_of(&key)
                .ok()
                .flatten()
                .is_some_and(|r| r.job_id == job && r.state == RecordedState::Running)
        };
        match (seen, addr) {
            (Some(JobView::Running { addr: Some(ip), .. }), Some(addr))
                if ip == addr.ip() && still(self) =>
            {
                tracing::info!(server = %key, job, %addr, "Slurm job followed again; route restored");
                self.take_back(key, handle, addr);
            }
            (seen, _) => {
                tracing::warn!(server = %key, job, seen = ?seen,
                    "a Slurm job of the last hub is not running where it was recorded, or was half-stopped: cancelled");
                let limit = self.grace() + Duration::from_secs(60);
                let cancelled = matches!(
                    tokio::time::timeout(limit, handle.stop(self.grace())).await,
                    Ok(Ok(_))
                );
                if self.live().get(&key).is_some() {
                    return;
                }
                // A job that would not cancel stays recorded (stopping): the next start of
                // the hub tries again, and no job runs unseen.
                let db = self.inner.db.servers();
                let recorded = if cancelled {
                    db.stopped(&key)
                } else {
                    db.stopping(&key)
                };
                if let Err(e) = recorded {
                    tracing::error!(server = %key, error = %e, "cannot record the stop");
                }
            }
        }
    }
}
