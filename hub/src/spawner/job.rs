//! A server that runs as a Slurm job, behind the same [`ServerHandle`] as a local one:
//! its state comes from the [`JobWatch`] poller, a stop is `scancel` through a new
//! helper (as the user), and its end is the moment Slurm reports the job over. The port
//! the job's server listens on arrives from the job itself
//! (`POST /hub/api/batchspawner`) through [`JobLink::report_port`].

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sudohub_protocol::spawner::{ExitStatus, ServerStatus};
use tokio::sync::{mpsc, watch};

use super::handle::Command;
use super::{Ending, ServerHandle, SpawnerError};
use crate::slurm::{JobView, JobWatch};

/// Cancels the job (a helper running `scancel` as the user).
pub type Canceller = Arc<dyn Fn(u32) -> BoxFuture<'static, Result<(), SpawnerError>> + Send + Sync>;

/// What the hub holds of one job.
#[derive(Clone)]
pub struct JobLink {
    /// The job id.
    pub id: u32,
    view: watch::Receiver<JobView>,
    port: Arc<watch::Sender<Option<u16>>>,
}

impl std::fmt::Debug for JobLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobLink({})", self.id)
    }
}

impl JobLink {
    /// The job's state, as the last poll saw it; changes can be awaited on the receiver.
    pub fn view(&self) -> watch::Receiver<JobView> {
        self.view.clone()
    }

    /// The port the job's server said it listens on, once it has.
    pub fn port(&self) -> watch::Receiver<Option<u16>> {
        self.port.subscribe()
    }

    /// The job's server reports its port: taken once; `false` if one was reported already.
    pub fn report_port(&self, port: u16) -> bool {
        self.port.send_if_modified(|p| {
            if p.is_some() {
                return false;
            }
            *p = Some(port);
            true
        })
    }
}

/// A handle for job `id` of `user`, followed by `watch`, stopped through `cancel`;
/// `port` is set for a job whose server reported its port before (one followed again
/// after a restart).
pub fn handle(
    watch: &JobWatch,
    id: u32,
    user: &str,
    port: Option<u16>,
    cancel: Canceller,
) -> ServerHandle {
    let link = JobLink {
        id,
        view: watch.watch(id, user),
        port: Arc::new(watch::Sender::new(port)),
    };
    let (commands, rx) = mpsc::channel(8);
    let (tx_end, ending) = watch::channel(None);
    tokio::spawn(drive(link.view(), id, rx, tx_end, cancel));
    ServerHandle::for_job(link, commands, ending)
}

/// How a job's end is reported in the life cycle's terms: `COMPLETED` as exit code 0,
/// `FAILED` and `OUT_OF_MEMORY` as 1, anything else (cancelled, timed out, node
/// failure, forgotten) as killed by SIGKILL.
fn status_of(state: &str) -> ExitStatus {
    match state {
        "COMPLETED" => ExitStatus::Code(0),
        "FAILED" | "OUT_OF_MEMORY" | "BOOT_FAIL" => ExitStatus::Code(1),
        _ => ExitStatus::Signal(9),
    }
}

/// Cancels, trying again twice (after 2 s, then 4 s) when the helper or Slurm fails: a
/// job the hub gave up on would run on unseen, and the next start would make a second.
async fn cancel_hard(cancel: &Canceller, id: u32) -> Result<(), SpawnerError> {
    let mut wait = std::time::Duration::from_secs(2);
    let mut tries = 0;
    loop {
        match cancel(id).await {
            Ok(()) => return Ok(()),
            Err(e) if tries == 2 => return Err(e),
            Err(e) => {
                tracing::warn!(job = id, error = %e, "cancel failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                tries += 1;
            }
        }
    }
}

async fn drive(
    mut view: watch::Receiver<JobView>,
    id: u32,
    mut commands: mpsc::Receiver<Command>,
    ending: watch::Sender<Option<Ending>>,
    cancel: Canceller,
) {
    loop {
        let ended = match &*view.borrow_and_update() {
            JobView::Ended { state, reason } => Some((state.clone(), reason.clone())),
            _ => None,
        };
        if let Some((state, reason)) = ended {
            tracing::info!(job = id, state = %state, reason = %reason, "Slurm job over");
            let _ = ending.send(Some(Ending::Exited(status_of(&state))));
            return;
        }
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() {
                    let _ = ending.send(Some(Ending::Lost));
                    return;
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Status(tx)) => {
                    let _ = tx.send(Ok(ServerStatus::Running { pid: id }));
                }
                Some(Command::Stop(_, tx)) => {
                    let _ = tx.send(cancel_hard(&cancel, id).await);
                }
                // The successor hub follows the job by its id in the database.
                Some(Command::Release) | None => {
                    let _ = ending.send(Some(Ending::Lost));
                    return;
                }
            }
        }
    }
}
