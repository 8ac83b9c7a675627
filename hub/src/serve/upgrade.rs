//! The running hub's side of the control socket: `reload` in place, and `upgrade`, the
//! hand-over to a successor process (nginx's binary upgrade, pingora's graceful upgrade).
//!
//! An upgrade starts the installed binary (the path this process was started from, so a
//! binary replaced by install.sh is the one that runs) with [`TAKEOVER_ENV`]. It connects
//! back (the kernel must say it is that very child) and gets the listening sockets, the
//! same sockets, so no connection is refused at any moment: both processes accept until
//! the successor serves. Then this hub lets its helpers go, which dial the successor;
//! stops accepting; and drains (the caller's part). If the successor fails at any step,
//! it is stopped and this hub goes on as before, helpers included.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};
use tokio::process::Child;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::control::{read_line, write_line, Ask};
use super::listeners::Listeners;
use super::takeover::TAKEOVER_ENV;
use super::Background;
use crate::lifecycle::StartGate;
use crate::state::AppState;

/// How long the successor has to ask for the sockets once started.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the successor has for each later step.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// What `reload` does: a summary of what changed, or why nothing did.
pub type Reload = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// The control socket's server.
pub struct Control {
    /// The binary to start as the successor, and its `--config`.
    pub exe: PathBuf,
    /// hub.toml.
    pub config: PathBuf,
    /// Copies of this hub's sockets, to hand over; let go once handed over, so that a
    /// draining hub holds no listening socket a later start must bind.
    listeners: Mutex<Option<Listeners>>,
    /// The hub.
    pub state: AppState,
    /// Whether the re-attach socket accepts.
    pub reattach_open: watch::Sender<bool>,
    /// The culler and managed services, which only one hub may run.
    pub background: Arc<Background>,
    /// `reload`.
    pub reload: Reload,
    /// Told the successor's pid once it serves.
    pub handed_over: watch::Sender<Option<u32>>,
    /// The successor being waited for: its pid, and where its connection goes.
    expected: Mutex<Option<(u32, oneshot::Sender<UnixStream>)>>,
    /// One upgrade at a time.
    busy: tokio::sync::Mutex<()>,
    /// Stop accepting here (handed over).
    done: CancellationToken,
}

impl Control {
    /// The server, not yet accepting.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        exe: PathBuf,
        config: PathBuf,
        listeners: Listeners,
        state: AppState,
        reattach_open: watch::Sender<bool>,
        background: Arc<Background>,
        reload: Reload,
        handed_over: watch::Sender<Option<u32>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            exe,
            config,
            listeners: Mutex::new(Some(listeners)),
            state,
            reattach_open,
            background,
            reload,
            handed_over,
            expected: Mutex::new(None),
            busy: tokio::sync::Mutex::new(()),
            done: CancellationToken::new(),
        })
    }

    /// Accepts on `listener` until handed over.
    pub async fn run(self: Arc<Self>, listener: UnixListener) {
        loop {
            let accepted = tokio::select! {
                () = self.done.cancelled() => return,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(self.clone().answer(stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn answer(self: Arc<Self>, mut s: UnixStream) {
        // The socket is the hub account's (0600); the kernel's word is checked anyway.
        let me = nix::unistd::geteuid().as_raw();
        let (pid, uid) = match crate::handover::peer(&s) {
            Ok(p) => p,
            Err(_) => return,
        };
        if uid != me && uid != 0 {
            tracing::warn!(
                peer_uid = uid,
                "control socket: refused a peer of another account"
            );
            let _ = write_line(&mut s, "error not the hub's account").await;
            return;
        }
        let line = match tokio::time::timeout(Duration::from_secs(5), read_line(&mut s)).await {
            Ok(Ok(Some(l))) => l,
            _ => return,
        };
        let answer = match Ask::parse(&line) {
            Some(Ask::Upgrade) => match self.upgrade().await {
                Ok(pid) => format!("ok the new hub (pid {pid}) serves; this one drains"),
                Err(e) => {
                    tracing::error!(error = %e, "upgrade failed; this hub goes on");
                    format!("error upgrade failed, the running hub goes on: {e}")
                }
            },
            Some(Ask::Reload) => match (self.reload)() {
                Ok(summary) => format!("ok {summary}"),
                Err(e) => format!("error {e}"),
            },
            Some(Ask::Takeover) => {
                let waiting = self
                    .expected
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take_if(|(child, _)| i64::from(*child) == i64::from(pid));
                match waiting {
                    Some((_, tx)) => {
                        let _ = tx.send(s);
                        return;
                    }
                    None => {
                        tracing::warn!(
                            peer_pid = pid,
                            "control socket: a takeover from a process this hub did not start"
                        );
                        "error no upgrade is waiting for this process".to_owned()
                    }
                }
            }
            None => "error unknown command: upgrade or reload".to_owned(),
        };
        let _ = write_line(&mut s, &answer).await;
    }

    /// `SIGUSR2`, or `upgrade` on the control socket: the successor's pid once it serves.
    pub async fn upgrade(&self) -> Result<u32, String> {
        let _one = self
            .busy
            .try_lock()
            .map_err(|_| "an upgrade is under way already".to_owned())?;
        if self.handed_over.borrow().is_some() {
            return Err("this hub has handed over already".into());
        }
        // The successor is expected from before it exists: on a busy machine it may ask
        // for the sockets before this task runs again.
        let (tx, rx) = oneshot::channel();
        let (mut child, pid) = {
            let mut expected = self.expected.lock().unwrap_or_else(|p| p.into_inner());
            let child = tokio::process::Command::new(&self.exe)
                .arg("--config")
                .arg(&self.config)
                .env(TAKEOVER_ENV, "1")
                .stdin(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
            let pid = child.id().ok_or("the new hub has no pid")?;
            *expected = Some((pid, tx));
            (child, pid)
        };
        tracing::info!(pid, exe = %self.exe.display(), "upgrade: new hub started");
        let mut released = false;
        let outcome = self.hand_over(&mut child, rx, &mut released).await;
        *self.expected.lock().unwrap_or_else(|p| p.into_inner()) = None;
        match outcome {
            Ok(()) => {
                // Reaped if it ends while this one still drains.
                tokio::spawn(async move { child.wait().await });
                drop(
                    self.listeners
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take(),
                );
                // systemd (Type=notify) hears of the new main process from this one, the
                // main process until now, before it may exit.
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::MainPid(pid)]);
                self.done.cancel();
                self.state.servers.set_start_gate(StartGate::HandedOver);
                let _ = self.handed_over.send(Some(pid));
                Ok(pid)
            }
            Err(e) => {
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                if released {
                    let _ = self.reattach_open.send(true);
                    self.background.start();
                    // Helpers dial back on their own; Slurm jobs are followed again here.
                    self.state.servers.follow_jobs_again();
                }
                // The starts that waited begin here.
                self.state.servers.set_start_gate(StartGate::Open);
                Err(e)
            }
        }
    }

    async fn hand_over(
        &self,
        child: &mut Child,
        asked: oneshot::Receiver<UnixStream>,
        released: &mut bool,
    ) -> Result<(), String> {
        let mut s = tokio::select! {
            s = asked => s.map_err(|_| "lost the new hub's connection".to_owned())?,
            st = child.wait() => return Err(exited(st)),
            () = tokio::time::sleep(ASK_TIMEOUT) => {
                return Err("the new hub did not ask for the sockets within 30 s".into())
            }
        };
        let copies = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Listeners::try_clone)
            .ok_or("this hub has handed over already")?
            .map_err(|e| format!("copying the sockets: {e}"))?;
        let fds = copies.fds();
        s.async_io(Interest::WRITABLE, || crate::handover::send_fds(&s, &fds))
            .await
            .map_err(|e| format!("sending the sockets: {e}"))?;
        step(&mut s, child, "attach").await?;
        // Starts under way finish here first, so their helpers go over too (a Slurm job's
        // start, waiting in the queue, goes over as it is: the successor goes on with it).
        // So do the requests that may change something (a stop, a start) let in before;
        // new ones wait for the outcome: here if it fails, else at the successor.
        self.state.servers.set_start_gate(StartGate::Held);
        let deadline =
            Instant::now() + Duration::from_secs(self.state.cfg.spawner.start_timeout_secs);
        let servers = &self.state.servers;
        while (servers.starting_here() > 0 || servers.changing() > 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.reattach_open.send(false);
        self.background.stop().await;
        *released = true;
        let n = self.state.servers.release_all().await;
        tracing::info!(helpers = n, "upgrade: helpers let go to the new hub");
        write_line(&mut s, &format!("released {n}"))
            .await
            .map_err(|e| e.to_string())?;
        step(&mut s, child, "serving").await?;
        // From here on the successor serves: what cannot go back is moved.
        let moved = self.state.proxy.tunnels().take_movable().await;
        let n = moved.len();
        write_line(&mut s, &format!("tunnels {n}"))
            .await
            .map_err(|e| e.to_string())?;
        for m in moved {
            let fds = [m.client.as_fd(), m.upstream.as_fd()];
            if let Err(e) = s
                .async_io(Interest::WRITABLE, || crate::handover::send_fds(&s, &fds))
                .await
            {
                // The successor then misses the rest: it logs that and serves on.
                tracing::warn!(error = %e, "upgrade: WebSockets could not be moved; closed");
                return Ok(());
            }
        }
        tracing::info!(websockets = n, "upgrade: WebSockets moved to the new hub");
        let _ = write_line(&mut s, "bye").await;
        Ok(())
    }
}

/// Waits for `word` from the successor, or its exit, or the step's timeout.
async fn step(s: &mut UnixStream, child: &mut Child, word: &str) -> Result<(), String> {
    let line = tokio::select! {
        l = tokio::time::timeout(STEP_TIMEOUT, read_line(s)) => l,
        st = child.wait() => return Err(exited(st)),
    };
    match line {
        Ok(Ok(Some(l))) if l == word => Ok(()),
        Ok(Ok(Some(l))) => Err(format!("the new hub said '{l}', not '{word}'")),
        Ok(Ok(None)) | Ok(Err(_)) => Err(format!("the new hub hung up before '{word}'")),
        Err(_) => Err(format!("the new hub did not say '{word}' within 60 s")),
    }
}

fn exited(st: std::io::Result<std::process::ExitStatus>) -> String {
    match st {
        Ok(st) => format!("the new hub exited ({st}); its reason is in the hub's log"),
        Err(e) => format!("the new hub: {e}"),
    }
}
