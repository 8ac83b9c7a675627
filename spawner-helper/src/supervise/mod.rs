//! The helper's single-threaded event loop: the hub's requests, the server's exit, stop
//! escalation, and re-attaching to a restarted hub — one `poll` over the channel and a
//! signalfd, so an exit is reported the moment the kernel tells us (no polling of pids).
#![forbid(unsafe_code)]

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use sudohub_protocol::spawner::{ErrorKind, ErrorReply, ExitStatus, Reply, Request, ServerStatus};

use crate::channel::{Channel, Incoming};
use crate::error::HelperError;
use crate::log::ActionLog;
use crate::reattach::Backoff;
use crate::root::Verified;
use crate::{child, request};

mod hub_link;

/// How long the hub has to send its spawn request after the target.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a running server's cgroup is asked for new OOM kills.
const OOM_POLL: Duration = Duration::from_secs(1);
/// Grace period when the helper itself is asked to stop (SIGTERM).
const SELF_STOP_GRACE: Duration = Duration::from_secs(10);

enum Phase {
    AwaitSpawn,
    Running { pid: u32 },
    Exited { pid: u32, status: ExitStatus },
}

/// What the loop decided.
enum Flow {
    Continue,
    Exit(i32),
}

/// The state of one helper process.
pub struct Supervisor {
    v: Verified,
    log: ActionLog,
    channel: Option<Channel>,
    signals: SignalFd,
    phase: Phase,
    server_name: String,
    started_at: Instant,
    kill_at: Option<Instant>,
    backoff: Option<Backoff>,
    refused: bool,
    give_up_at: Option<Instant>,
    server_log: Option<std::fs::File>,
    oom_check_at: Option<Instant>,
}

impl Supervisor {
    /// Blocks SIGCHLD and SIGTERM (they are read from a signalfd instead).
    pub fn new(v: Verified, log: ActionLog, channel: Channel) -> Result<Self, HelperError> {
        let internal =
            |what: &str, e: Errno| HelperError::new(ErrorKind::Internal, format!("{what}: {e}"));
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGTERM);
        mask.thread_block()
            .map_err(|e| internal("block signals", e))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| internal("signalfd", e))?;
        Ok(Self {
            v,
            log,
            channel: Some(channel),
            signals,
            phase: Phase::AwaitSpawn,
            server_name: String::new(),
            started_at: Instant::now(),
            kill_at: None,
            backoff: None,
            refused: false,
            give_up_at: None,
            server_log: None,
            oom_check_at: None,
        })
        .map(|mut s| {
            s.server_name = s.v.server_name.clone();
            s
        })
    }

    /// Runs until the server has exited and been reported (or reporting was given up).
    pub fn run(mut self) -> i32 {
        loop {
            let flow = self.step();
            if let Flow::Exit(code) = flow {
                return code;
            }
        }
    }

    fn step(&mut self) -> Flow {
        let now = Instant::now();
        let deadline = [
            self.kill_at,
            self.backoff.as_ref().map(Backoff::next_at),
            self.give_up_at,
            self.oom_check_at,
            matches!(self.phase, Phase::AwaitSpawn).then(|| self.started_at + REQUEST_TIMEOUT),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = match deadline {
            Some(d) => {
                let ms = d.saturating_duration_since(now).as_millis().min(60_000) as u16;
                PollTimeout::from(ms)
            }
            None => PollTimeout::NONE,
        };
        let (chan_ready, sig_ready) = {
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            if let Some(c) = &self.channel {
                fds.push(PollFd::new(c.poll_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(Errno::EINTR) => return Flow::Continue,
                Err(e) => {
                    self.log.notice(&format!("poll failed: {e}"));
                    return Flow::Exit(13);
                }
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (
                fds.get(1).is_some_and(ready),
                fds.first().is_some_and(ready),
            )
        };
        if sig_ready {
            if let Flow::Exit(c) = self.on_signals() {
                return Flow::Exit(c);
            }
        }
        if chan_ready {
            if let Flow::Exit(c) = self.on_channel() {
                return Flow::Exit(c);
            }
        }
        self.on_timers()
    }

    fn on_signals(&mut self) -> Flow {
        while let Ok(Some(info)) = self.signals.read_signal() {
            if info.ssi_signo == Signal::SIGTERM as u32 {
                self.log.notice("SIGTERM: stopping the server");
                if let Phase::Running { .. } = self.phase {
                    self.begin_stop(SELF_STOP_GRACE);
                } else if !matches!(self.phase, Phase::Exited { .. }) {
                    return Flow::Exit(0);
                }
            }
        }
        self.reap()
    }

    /// Reaps every exited child; the server's exit is reported at once.
    fn reap(&mut self) -> Flow {
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, ExitStatus::Signal(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => return Flow::Continue,
                Ok(_) => continue,
            };
            if let Phase::Running { pid: server } = self.phase {
                if pid.as_raw() as u32 == server {
                    return self.on_server_exit(server, status);
                }
            }
        }
    }

    /// The server process is gone: everything else in its cgroup goes too (however it
    /// was started: a new session, a double fork), and only then is the exit reported.
    fn on_server_exit(&mut self, pid: u32, status: ExitStatus) -> Flow {
        self.phase = Phase::Exited { pid, status };
        self.kill_at = None;
        self.check_oom();
        self.oom_check_at = None;
        let name = self.server_name.clone();
        match &self.v.cgroup {
            Some(cg) => {
                // Everything that was the server's is in its group: no process group or
                // pid (possibly reused by now) is signalled.
                let result = cg.kill_all_and_wait();
                let text = match result {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => format!("error: {e}"),
                };
                self.log.action("cgroup-empty", &name, Some(pid), &text);
            }
            None => crate::reap::reap_descendants(pid),
        }
        self.log
            .action("exit", &name, Some(pid), &status.to_string());
        self.report_exit()
    }

    /// New OOM kills in the cgroup: a line in the server's log and a report to the hub.
    fn check_oom(&mut self) {
        let Some(cg) = &mut self.v.cgroup else {
            return;
        };
        let Some(kills) = cg.new_oom_kills() else {
            return;
        };
        let limit = cg.limits.mem_limit.unwrap_or(0);
        let line = format!(
            "--- sudohub-spawner: out of memory: the kernel has killed {kills} process(es) of this server at its mem_limit of {} MiB ---",
            limit >> 20
        );
        if let Some(f) = &mut self.server_log {
            use std::io::Write;
            let _ = writeln!(f, "{line}");
        }
        let name = self.server_name.clone();
        self.log
            .action("oom", &name, None, &format!("{kills} kill(s) so far"));
        let _ = self.send(&Reply::OutOfMemory { kills, limit });
    }

    fn on_channel(&mut self) -> Flow {
        let Some(channel) = &mut self.channel else {
            return Flow::Continue;
        };
        match channel.read() {
            Incoming::Requests(reqs) => {
                for r in reqs {
                    if let Flow::Exit(c) = self.on_request(r) {
                        return Flow::Exit(c);
                    }
                }
                Flow::Continue
            }
            Incoming::Closed => {
                if self.spawned() {
                    self.detach("the hub closed the channel");
                    Flow::Continue
                } else {
                    // Nothing was started: there is nothing to supervise.
                    Flow::Exit(0)
                }
            }
            Incoming::Bad(e) => {
                let err = HelperError::new(ErrorKind::BadFrame, e.to_string());
                if self.spawned() {
                    self.send_error(&err);
                    self.detach("the hub sent a malformed frame");
                    Flow::Continue
                } else {
                    self.fail(err)
                }
            }
        }
    }

    fn on_request(&mut self, req: Request) -> Flow {
        match (&self.phase, req) {
            (Phase::AwaitSpawn, Request::Spawn(spawn)) => self.spawn(spawn),
            (Phase::AwaitSpawn, Request::Hello(_) | Request::Target(_) | Request::Clear(_)) => self
                .fail(HelperError::new(
                    ErrorKind::BadFrame,
                    "hello or target sent twice",
                )),
            (Phase::AwaitSpawn, Request::Status) => {
                self.send(&Reply::Status(ServerStatus::NotStarted))
            }
            (_, Request::Hello(_) | Request::Target(_) | Request::Clear(_)) => self.send_error(
                &HelperError::new(ErrorKind::BadFrame, "hello or target sent twice"),
            ),
            (Phase::Running { .. } | Phase::Exited { .. }, Request::Spawn(_)) => {
                self.send_error(&HelperError::new(
                    ErrorKind::AlreadyStarted,
                    "this helper already started its server",
                ))
            }
            (Phase::Running { pid }, Request::Status) => {
                let pid = *pid;
                self.send(&Reply::Status(ServerStatus::Running { pid }))
            }
            (Phase::Exited { status, .. }, Request::Status) => {
                let status = *status;
                self.send(&Reply::Status(ServerStatus::Exited { status }))
            }
            (Phase::Running { .. }, Request::Stop { grace_ms }) => {
                let grace = grace_ms.min(self.v.config.spawner.max_grace_ms);
                self.begin_stop(Duration::from_millis(u64::from(grace)));
                Flow::Continue
            }
            (_, Request::Stop { .. }) => self.send_error(&HelperError::new(
                ErrorKind::NotRunning,
                "no server is running",
            )),
            (Phase::AwaitSpawn, Request::Submit(_) | Request::Cancel { .. }) => {
                self.fail(HelperError::new(
                    ErrorKind::BadValue,
                    "a Slurm request, but helpers.toml says backend = \"local\"",
                ))
            }
            (_, Request::Submit(_) | Request::Cancel { .. }) => self.send_error(&HelperError::new(
                ErrorKind::BadValue,
                "a Slurm request to a local server",
            )),
        }
    }

    fn spawn(&mut self, spawn: sudohub_protocol::spawner::Spawn) -> Flow {
        let name = self.server_name.clone();
        let checked = match request::check(spawn, &self.v.config.spawner) {
            Ok(c) => c,
            Err(e) => {
                self.log
                    .action("spawn", &name, None, &format!("refused: {}", e.message));
                return self.fail(e);
            }
        };
        if let Err(e) = self.leave_sudo() {
            self.log
                .action("spawn", &name, None, &format!("failed: {}", e.message));
            return self.fail(e);
        }
        let launched = child::launch(&self.v, &checked);
        // Nothing else may ever join the cgroup: root's join fds go now.
        if let Some(cg) = &mut self.v.cgroup {
            cg.close_join();
        }
        match launched {
            Ok((pid, log)) => {
                self.server_log = Some(log);
                self.oom_check_at = self.v.cgroup.as_ref().map(|_| Instant::now() + OOM_POLL);
                self.phase = Phase::Running { pid };
                self.log.action("spawn", &name, Some(pid), "ok");
                self.send(&Reply::Started { pid })
            }
            Err(e) => {
                self.log
                    .action("spawn", &name, None, &format!("failed: {}", e.message));
                self.fail(e)
            }
        }
    }

    /// The request is valid and the server is about to start: fork, so the process sudo
    /// started exits and sudo with it (nothing of sudo stays resident for the server's
    /// life), and become the subreaper of the server's descendants, so nothing it starts
    /// can outlive it unseen (the attribute is not inherited through fork, so it is set
    /// here, after it). Refusals all come before this, with their exit codes.
    fn leave_sudo(&mut self) -> Result<(), HelperError> {
        let internal = |what: &str, e: std::io::Error| {
            HelperError::new(ErrorKind::Internal, format!("{what}: {e}"))
        };
        crate::sys::leave_sudo().map_err(|e| internal("cannot leave sudo behind", e))?;
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| internal("subreaper", e.into()))
    }

    /// SIGTERM to the server's process group now, SIGKILL when the grace period is over.
    fn begin_stop(&mut self, grace: Duration) {
        let Phase::Running { pid } = self.phase else {
            return;
        };
        if let Some(at) = self.kill_at {
            // Stopping already: no second SIGTERM (a server may take that as "quit now");
            // the sooner of the two deadlines stands.
            self.kill_at = Some(at.min(Instant::now() + grace));
            return;
        }
        let result = killpg(Pid::from_raw(pid as i32), Signal::SIGTERM);
        let name = self.server_name.clone();
        self.log
            .action("stop", &name, Some(pid), &crate::log::result_text(result));
        self.kill_at = Some(Instant::now() + grace);
    }

    fn on_timers(&mut self) -> Flow {
        let now = Instant::now();
        if self.oom_check_at.is_some_and(|t| now >= t) {
            self.check_oom();
            self.oom_check_at = Some(now + OOM_POLL);
        }
        if matches!(self.phase, Phase::AwaitSpawn) && now >= self.started_at + REQUEST_TIMEOUT {
            return self.fail(HelperError::new(
                ErrorKind::BadFrame,
                "no spawn request in time",
            ));
        }
        if let (Some(at), Phase::Running { pid }) = (self.kill_at, &self.phase) {
            if now >= at {
                let pid = *pid;
                let result = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                let name = self.server_name.clone();
                self.log
                    .action("kill", &name, Some(pid), &crate::log::result_text(result));
                self.kill_at = None;
            }
        }
        if self.give_up_at.is_some_and(|t| now >= t) {
            self.log.notice("no hub took the exit report; giving up");
            return Flow::Exit(0);
        }
        if self.backoff.as_ref().is_some_and(|b| now >= b.next_at()) {
            return self.try_reattach();
        }
        Flow::Continue
    }

    fn spawned(&self) -> bool {
        matches!(self.phase, Phase::Running { .. } | Phase::Exited { .. })
    }

    fn send(&mut self, reply: &Reply) -> Flow {
        if let Some(c) = &mut self.channel {
            if c.send(reply).is_err() {
                if self.spawned() {
                    self.detach("cannot write to the hub");
                } else {
                    return Flow::Exit(0);
                }
            }
        }
        Flow::Continue
    }

    fn send_error(&mut self, e: &HelperError) -> Flow {
        self.send(&Reply::Error(ErrorReply::new(e.kind, e.message.clone())))
    }

    /// A refusal before anything was started: report it and exit with its code.
    fn fail(&mut self, e: HelperError) -> Flow {
        eprintln!("sudohub-spawner: refused: {e}");
        let _ = self.send_error(&e);
        Flow::Exit(e.exit_code())
    }
}
