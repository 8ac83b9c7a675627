//! Following Slurm jobs: one poller for every server the hub runs as a batch job. Each
//! round is one `squeue` for all of them (`--states=all`, so jobs that ended within
//! Slurm's `MinJobAge` are still named), one more for the queue when some wait (their
//! place in it), and one `sinfo` when a job runs on a node whose address is not known
//! yet. Nothing is one process per server.
//!
//! The commands run as the hub's account, which must see the users' jobs (no
//! `PrivateData=jobs`): it has no Slurm rights beyond a user's.

pub mod profiles;
pub mod squeue;

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::process::Command;
use tokio::sync::{watch, Notify};

use crate::config::SlurmSection;
use squeue::JobLine;

/// What the hub knows of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobView {
    /// Submitted; not seen by a poll yet.
    Submitted,
    /// Waiting in the queue.
    Pending {
        /// 1 for the next job of its partition to start.
        position: Option<usize>,
        /// Why it waits, as Slurm says (`Resources`, `Priority`, …).
        reason: String,
        /// When it was submitted, by slurmctld's clock: a wait in the queue counts from
        /// there, across restarts of the hub.
        submitted: Option<SystemTime>,
    },
    /// Running.
    Running {
        /// The node (its batch host).
        node: String,
        /// The node's address (`NodeAddr`), once known.
        addr: Option<IpAddr>,
    },
    /// Over: Slurm ended it (`COMPLETED`, `TIMEOUT`, `CANCELLED`, `FAILED`, …), or
    /// forgot it.
    Ended {
        /// Slurm's state, or `GONE` for a job Slurm no longer knows.
        state: String,
        /// Slurm's reason.
        reason: String,
    },
}

/// The poller. Cheap to clone.
#[derive(Clone)]
pub struct JobWatch {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JobWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobWatch")
            .field("jobs", &self.jobs().len())
            .finish()
    }
}

/// One followed job: who must own it, and its view.
struct Watched {
    user: String,
    view: watch::Sender<JobView>,
}

struct Inner {
    cfg: SlurmSection,
    jobs: Mutex<HashMap<u32, Watched>>,
    nodes: Mutex<HashMap<String, IpAddr>>,
    wake: Notify,
}

impl JobWatch {
    /// Starts polling (it idles while no job is watched).
    pub fn start(cfg: SlurmSection) -> Self {
        let w = Self {
            inner: Arc::new(Inner {
                cfg,
                jobs: Mutex::new(HashMap::new()),
                nodes: Mutex::new(HashMap::new()),
                wake: Notify::new(),
            }),
        };
        let this = w.clone();
        tokio::spawn(async move { this.run().await });
        w
    }

    fn jobs(&self) -> MutexGuard<'_, HashMap<u32, Watched>> {
        self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows job `id` of `user` until every receiver is dropped; polls at once. A job
    /// of that id that is another user's (the ids wrapped, or Slurm lost its state) is
    /// taken for gone.
    pub fn watch(&self, id: u32, user: &str) -> watch::Receiver<JobView> {
        let rx = self
            .jobs()
            .entry(id)
            .or_insert_with(|| Watched {
                user: user.to_owned(),
                view: watch::Sender::new(JobView::Submitted),
            })
            .view
            .subscribe();
        self.inner.wake.notify_one();
        rx
    }

    async fn run(&self) {
        let every = Duration::from_secs(self.inner.cfg.poll_secs.max(1));
        loop {
            let _ = tokio::time::timeout(every, self.inner.wake.notified()).await;
            let ids: Vec<(u32, String)> = {
                let mut jobs = self.jobs();
                jobs.retain(|_, w| w.view.receiver_count() > 0);
                jobs.iter().map(|(id, w)| (*id, w.user.clone())).collect()
            };
            if ids.is_empty() {
                continue;
            }
            match self.poll(&ids).await {
                Ok(views) => {
                    let jobs = self.jobs();
                    for (id, view) in views {
                        if let Some(w) = jobs.get(&id) {
                            w.view.send_if_modified(|v| {
                                let changed = *v != view;
                                *v = view.clone();
                                changed
                            });
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, jobs = ids.len(), "cannot poll Slurm"),
            }
        }
    }

    /// One round for `ids` (with each job's user).
    async fn poll(&self, ids: &[(u32, String)]) -> Result<Vec<(u32, JobView)>, String> {
        let list = ids
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
            .join(",");
        // `-a`: jobs in hidden partitions, or in ones the hub's account may not use, too.
        let out = self
            .command(
                &self.inner.cfg.squeue,
                &[
                    "-h",
                    "-a",
                    "--states=all",
                    "-j",
                    &list,
                    "-o",
                    squeue::JOB_FORMAT,
                ],
            )
            .await?;
        let lines = match out {
            Ok(text) => {
                let (lines, bad) = squeue::parse_jobs(&text);
                if !bad.is_empty() {
                    tracing::warn!(lines = ?bad, "squeue printed lines that are not jobs");
                }
                lines
            }
            // A lone job id Slurm has forgotten is an error, not an empty answer.
            Err(e) if ids.len() == 1 && e.contains("Invalid job id") => Vec::new(),
            Err(e) => return Err(format!("squeue: {e}")),
        };
        let positions = self.positions(&lines).await?;
        self.learn_nodes(&lines).await;
        let nodes = self.inner.nodes.lock().unwrap_or_else(|p| p.into_inner());
        let views = ids
            .iter()
            .map(|(id, user)| {
                let gone = |reason: &str| JobView::Ended {
                    state: "GONE".into(),
                    reason: reason.into(),
                };
                let view = match lines.iter().find(|j| j.id == *id) {
                    None => gone("Slurm no longer knows the job"),
                    Some(j) if j.user != *user => gone("the job id is another user's job now"),
                    Some(j) if j.over() => JobView::Ended {
                        state: j.state.clone(),
                        reason: j.reason.clone(),
                    },
                    Some(j) if j.pending() => JobView::Pending {
                        position: positions.get(id).copied(),
                        reason: j.reason.clone(),
                        submitted: j.submitted,
                    },
                    Some(j) => match (&j.node, j.running()) {
                        (Some(node), true) => JobView::Running {
                            node: node.clone(),
                            addr: nodes.get(node).copied(),
                        },
                        // SUSPENDED, STOPPED, a state this hub does not know: not over.
                        _ => JobView::Pending {
                            position: None,
                            reason: j.state.clone(),
                            submitted: j.submitted,
                        },
                    },
                };
                (*id, view)
            })
            .collect();
        Ok(views)
    }

    /// The place in its partition's queue of each of our jobs that waits: one squeue of
    /// the pending jobs of those partitions only.
    async fn positions(&self, lines: &[JobLine]) -> Result<HashMap<u32, usize>, String> {
        let pending: Vec<&JobLine> = lines.iter().filter(|j| j.pending()).collect();
        if pending.is_empty() {
            return Ok(HashMap::new());
        }
        let mut parts: Vec<&str> = pending.iter().map(|j| j.partition.as_str()).collect();
        parts.sort_unstable();
        parts.dedup();
        let parts = parts.join(",");
        let ids: Vec<u32> = pending.iter().map(|j| j.id).collect();
        Ok(
            match self
                .command(
                    &self.inner.cfg.squeue,
                    &[
                        "-h",
                        "-a",
                        "-t",
                        "PENDING",
                        "-p",
                        &parts,
                        "-o",
                        squeue::QUEUE_FORMAT,
                    ],
                )
                .await?
            {
                Ok(q) => squeue::positions(&q, &ids),
                Err(_) => HashMap::new(),
            },
        )
    }

    /// Looks up the address (`NodeAddr`) of running jobs' nodes not known yet: one
    /// `sinfo` for all of them, then a name lookup where the address is a host name.
    /// A job that has just begun to run has its node's address looked up afresh (a node
    /// of a cloud or power-saving partition may come back at another address).
    async fn learn_nodes(&self, lines: &[JobLine]) {
        let unknown: Vec<String> = {
            let jobs = self.jobs();
            let mut nodes = self.inner.nodes.lock().unwrap_or_else(|p| p.into_inner());
            for j in lines.iter().filter(|j| j.running()) {
                let was_running = jobs
                    .get(&j.id)
                    .is_some_and(|w| matches!(*w.view.borrow(), JobView::Running { .. }));
                if let (Some(node), false) = (&j.node, was_running) {
                    nodes.remove(node);
                }
            }
            let mut u: Vec<String> = lines
                .iter()
                .filter(|j| j.running())
                .filter_map(|j| j.node.clone())
                .filter(|n| !nodes.contains_key(n))
                .collect();
            u.sort();
            u.dedup();
            u
        };
        if unknown.is_empty() {
            return;
        }
        let list = unknown.join(",");
        let text = match self
            .command(
                &self.inner.cfg.sinfo,
                &["-h", "-a", "-N", "-n", &list, "-o", squeue::NODE_FORMAT],
            )
            .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(error = %e, nodes = %list, "sinfo: cannot learn node addresses");
                return;
            }
        };
        for (node, addr) in squeue::parse_nodes(&text) {
            let ip = match addr.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => tokio::net::lookup_host((addr.as_str(), 0))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip()),
            };
            match ip {
                Some(ip) => {
                    self.inner
                        .nodes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(node, ip);
                }
                None => {
                    tracing::warn!(node = %node, addr = %addr, "cannot resolve a Slurm node's address")
                }
            }
        }
    }

    /// Runs a Slurm command as the hub's account with only `PATH`, `TZ=UTC` (times are
    /// printed in UTC) and `SLURM_CONF`:
    /// `Err` when it cannot run at all, `Ok(Err(stderr))` when it fails.
    async fn command(
        &self,
        program: &std::path::Path,
        args: &[&str],
    ) -> Result<Result<String, String>, String> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(conf) = &self.inner.cfg.slurm_conf {
            cmd.env("SLURM_CONF", conf);
        }
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .map_err(|_| format!("{} did not answer within 30 s", program.display()))?
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if out.status.success() {
            Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
        } else {
            Ok(Err(String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " / ")))
        }
    }
}
