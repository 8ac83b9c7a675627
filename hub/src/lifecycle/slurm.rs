//! The part of a start, and of a hub's start, that is particular to servers run as
//! Slurm jobs: waiting through the queue with progress the user can read ("queued
//! (position 2)", "running on node cn07"), for the job's server to report its port, and
//! then for it to answer HTTP on its node; a start taken over from the last hub, and one
//! let go to the next (after a restart, [`super::jobs_again`] follows the jobs).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::readiness::wait_http;
use super::spawn::Cut;
use std::sync::atomic::Ordering;

use super::{Live, Progress, ProgressEvent, Servers};
use crate::error::HubError;
use crate::slurm::JobView;
use crate::spawner::{Ending, JobLink, ServerHandle};
use crate::types::{ServerKey, ServerState};

/// How often a cancel that failed is tried again.
const RETRY_CANCEL: Duration = Duration::from_secs(30);

/// How often the wait looks at the clock when nothing changes.
const TICK: Duration = Duration::from_secs(1);

/// How long a job has waited in the queue: since its submit by slurmctld's clock, so
/// that a wait goes on counting across a restart or an upgrade of the hub; since this
/// hub began to follow it when the submit time is unknown or ahead of this clock.
fn queued_for(followed_since: Instant, submitted: Option<SystemTime>) -> Duration {
    let here = followed_since.elapsed();
    submitted
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(here, |d| d.max(here))
}

impl Servers {
    /// Waits until job `job` runs, its server has reported its port and answers HTTP
    /// there; returns where it answers. Fails when Slurm ends the job, when it waits in
    /// the queue past `slurm.queue_timeout_secs`, or when, running, its server does not
    /// report within `spawner.start_timeout_secs` or answer within `http_timeout_secs`.
    pub(super) async fn job_ready(
        &self,
        key: &ServerKey,
        run: u64,
        job: &JobLink,
        prefix: &str,
        handle: &ServerHandle,
    ) -> Result<SocketAddr, Cut> {
        let cfg = &self.inner.cfg;
        let id = job.id;
        let (mut view, mut port) = (job.view(), job.port());
        let queued_since = Instant::now();
        let queue_limit = Duration::from_secs(cfg.slurm.queue_timeout_secs);
        let start_limit = Duration::from_secs(cfg.spawner.start_timeout_secs);
        let mut running_since: Option<Instant> = None;
        let mut said = String::new();
        let fail = |m: String| Err(Cut::Failed(HubError::helper(m)));
        let addr = loop {
            if self.own(key, run, |_| ()).is_none() {
                return Err(Cut::Interrupted);
            }
            let now = Instant::now();
            let current = view.borrow_and_update().clone();
            let (progress, message) = match &current {
                JobView::Submitted => (20, format!("Submitted to Slurm as job {id}")),
                JobView::Pending {
                    position,
                    reason,
                    submitted,
                } => {
                    if !queue_limit.is_zero() && queued_for(queued_since, *submitted) > queue_limit
                    {
                        return fail(format!(
                            "job {id} waited in the queue longer than {} s (slurm.queue_timeout_secs) and was cancelled",
                            queue_limit.as_secs()
                        ));
                    }
                    let mut why: Vec<String> = position
                        .map(|p| format!("position {p}"))
                        .into_iter()
                        .collect();
                    if reason != "None" && !reason.is_empty() {
                        why.push(reason.clone());
                    }
                    (30, format!("Job {id} queued ({})", why.join(", ")))
                }
                JobView::Running { node, addr } => {
                    let since = *running_since.get_or_insert(now);
                    if port.borrow().is_none() {
                        // Reported to the hub before this one, during a hand-over.
                        if let Some(p) = self.recorded_port(key, id) {
                            job.report_port(p);
                        }
                    }
                    let message = format!("Job {id} running on node {node}");
                    if let (Some(ip), Some(p)) = (addr, *port.borrow_and_update()) {
                        if message != said {
                            self.event(key, run, ProgressEvent::note(60, &message));
                        }
                        break SocketAddr::new(*ip, p);
                    }
                    if now - since > start_limit {
                        return fail(format!(
                            "job {id} runs on node {node}, but {} within {} s (spawner.start_timeout_secs)",
                            if addr.is_none() { "the node's address (sinfo NodeAddr) could not be found" } else { "its server did not report its port: is batchspawner-singleuser its command?" },
                            start_limit.as_secs()
                        ));
                    }
                    (60, message)
                }
                JobView::Ended { state, reason } => {
                    return fail(format!(
                        "Slurm ended job {id} ({state}, {reason}) before its server was ready; the job's output file is named in helpers.toml [slurm] output"
                    ));
                }
            };
            if message != said {
                tracing::info!(server = %key, job = id, "{message}");
                self.event(key, run, ProgressEvent::note(progress, &message));
                said = message;
            }
            tokio::select! {
                _ = view.changed() => {}
                _ = port.changed() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        };
        self.event(
            key,
            run,
            ProgressEvent::note(
                80,
                &format!("Job {id} server at {addr}, waiting for it to answer"),
            ),
        );
        let http_timeout = Duration::from_secs(cfg.spawner.http_timeout_secs);
        wait_http(addr, prefix, http_timeout, handle, &key.name)
            .await
            .map_err(Cut::Failed)?;
        Ok(addr)
    }

    /// A job's server reports the port it listens on: taken while the server is
    /// starting as a Slurm job and has not reported one yet.
    pub fn report_port(&self, key: &ServerKey, port: u16) -> Result<(), String> {
        let live = self.live();
        let Some(l) = live.get(key) else {
            // During a hand-over the successor goes on with this start: it reads the port
            // from the record.
            drop(live);
            let job = self.recorded_job(key);
            return match job.map(|j| self.inner.db.servers().reported(key, j, port)) {
                Some(Ok(true)) => Ok(()),
                _ => Err(format!("{key} is not a Slurm job that is starting")),
            };
        };
        let job = Some(l)
            .filter(|l| l.state == ServerState::Starting)
            .and_then(|l| l.handle.as_ref())
            .and_then(|h| h.job())
            .ok_or_else(|| format!("{key} is not a Slurm job that is starting"))?;
        let job_id = job.id;
        if job.report_port(port) {
            drop(live);
            // Recorded, so that a hub that takes over before the server answers knows it.
            if let Err(e) = self.inner.db.servers().reported(key, job_id, port) {
                tracing::error!(server = %key, error = %e, "cannot record the reported port");
            }
            Ok(())
        } else {
            Err(format!("{key} has reported its port already"))
        }
    }

    /// Goes on with the start of a job the last hub submitted: live as starting, through
    /// the queue to ready, as if this hub had submitted it.
    pub(super) fn resume_start(&self, key: ServerKey, handle: ServerHandle) {
        let run = self.inner.runs.fetch_add(1, Ordering::Relaxed) + 1;
        self.live().insert(
            key.clone(),
            Live::new(
                ServerState::Starting,
                Some(handle.clone()),
                Progress::default(),
                run,
            ),
        );
        tracing::info!(server = %key, job = handle.pid(), "the start of a Slurm job goes on in this hub");
        let this = self.clone();
        tokio::spawn(async move {
            this.mark_spawning(&key, run, true);
            let prefix = this.inner.cfg.urls().server_prefix(&key);
            let ready = match handle.job() {
                Some(job) => this.job_ready(&key, run, job, &prefix, &handle).await,
                None => Err(Cut::Interrupted),
            };
            let result = this.finish(&key, run, handle, ready, &prefix).await;
            this.mark_spawning(&key, run, false);
            if let Err(Cut::Failed(e)) = result {
                this.record_failure(&key, run, &e);
            }
        });
    }

    /// A stop whose cancel failed: tried again every 30 s until Slurm reports the job
    /// over, then the server is cleaned up (if the stop is still the server's). A handle
    /// let go of in a hand-over ends this: the successor finds the record stopping and
    /// cancels the job itself.
    pub(super) fn keep_cancelling(
        &self,
        key: &ServerKey,
        handle: ServerHandle,
        error: &crate::spawner::SpawnerError,
        began: Instant,
    ) {
        tracing::warn!(server = %key, error = %error, "the job did not cancel; trying again every 30 s");
        self.inner
            .metrics
            .stopped(crate::metrics::StopStatus::failure, began.elapsed());
        let (this, key) = (self.clone(), key.clone());
        tokio::spawn(async move {
            let grace = this.grace();
            loop {
                match handle.ending() {
                    Some(Ending::Exited(_)) => break,
                    Some(Ending::Lost) => return,
                    None => {}
                }
                tokio::time::sleep(RETRY_CANCEL).await;
                match handle.terminate(grace).await {
                    Ok(()) => {
                        let limit = grace + Duration::from_secs(60);
                        if let Ok(Ending::Lost) = tokio::time::timeout(limit, handle.ended()).await
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(server = %key, job = handle.pid(), error = %e, "the job did not cancel; trying again")
                    }
                }
            }
            let stopping = this
                .live()
                .get(&key)
                .is_some_and(|l| l.state == ServerState::Stopping);
            if stopping {
                this.cleanup(&key);
            }
        });
    }

    /// A hub handing over lets go of the starts that wait for their Slurm jobs: the
    /// successor goes on with them (their records stay), and this hub's own start
    /// steps, no longer owning the server, end without touching them.
    pub(super) fn let_go_of_job_starts(&self) -> Vec<ServerHandle> {
        let mut gone = Vec::new();
        self.live().retain(|_, l| {
            let job_start = l.state == ServerState::Starting
                && l.handle.as_ref().is_some_and(|h| h.job().is_some());
            if job_start {
                gone.extend(l.handle.clone());
            }
            !job_start
        });
        gone
    }

    /// Starts under way that a successor could not go on with: those whose server is
    /// not yet a Slurm job the database records.
    pub fn starting_here(&self) -> usize {
        let live = self.live();
        self.spawning()
            .iter()
            .filter(|(k, _)| {
                live.get(*k)
                    .and_then(|l| l.handle.as_ref())
                    .is_none_or(|h| h.job().is_none())
            })
            .map(|(_, runs)| runs.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_in_the_queue_counts_from_the_submit() {
        let hour = Duration::from_secs(3600);
        let now = SystemTime::now();
        // Submitted an hour ago, followed by this hub only since now (after a restart).
        assert!(queued_for(Instant::now(), Some(now - hour)) >= hour);
        // No submit time, or one ahead of this clock: since this hub began to follow it.
        assert!(queued_for(Instant::now(), None) < hour);
        assert!(queued_for(Instant::now(), Some(now + hour)) < hour);
    }
}
