//! `sudohub-spawner`: launches and supervises one user's single-user server.
//!
//! The hub runs it as `sudo -n /usr/lib/sudohub/sudohub-spawner` (or, installed setuid
//! root, directly), with one end of a socketpair as stdin and stdout. It trusts nothing
//! the hub says (DESIGN.md, trust boundary 1). The flow, top to bottom, is [`run`]:
//!
//! 1. not dumpable, every signal back to its default (the caller may have left SIGCHLD
//!    ignored), SIGHUP and SIGINT ignored;
//! 2. [`root::enter`], the only code that runs as root: no arguments, the caller is the
//!    hub, root-owned config, hello, the target user checked (allowed group, `min_uid`,
//!    not root), the server's cgroup with root's limits ([`cgroup`]), then the drop to the
//!    user, for good and verified ([`drop`]);
//! 3. [`supervise::Supervisor`], as the user: one validated spawn request (port,
//!    allow-listed environment — never a command), start the configured command in the
//!    cgroup ([`child::launch`]) — first leaving sudo behind ([`supervise`] forks, so sudo
//!    does not stay resident for the server's life) — then report its exit the moment it
//!    happens, kill everything left in its cgroup, stop it on request, and re-attach to a
//!    restarted hub;
//! 4. or, with `backend = "slurm"`, [`slurm::serve`], as the user: submit the server as a
//!    batch job, or cancel one, and exit.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod cgroup;
pub mod channel;
pub mod checks;
pub mod child;
pub mod drop;
pub mod error;
pub mod log;
pub mod reap;
pub mod reattach;
pub mod request;
pub mod root;
pub mod slurm;
pub mod supervise;
// The one module where the crate-wide deny above is lifted; each block there carries a SAFETY note.
#[allow(unsafe_code)]
mod sys;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::Path;

use nix::sys::signal::Signal;
use sudohub_protocol::spawner::{ErrorKind, ErrorReply, Reply};

use crate::channel::Channel;
use crate::error::HelperError;

/// Runs the helper; returns its exit code.
pub fn run() -> i32 {
    // Not dumpable: the user it runs as cannot ptrace it (to forge what it tells the hub)
    // nor read its memory through /proc. The server it execs is dumpable again (exec of a
    // non-setuid program resets the flag), so the user can debug their own kernels.
    let _ = nix::sys::prctl::set_dumpable(false);
    if let Err(e) = sys::reset_signals() {
        return refuse_at_start(&HelperError::new(
            ErrorKind::Internal,
            format!("cannot reset signals: {e}"),
        ));
    }
    // The hub's terminal or process group must not be able to take the server down with
    // the hub: SIGHUP and SIGINT are ignored here and reset to default in the server.
    for sig in [Signal::SIGHUP, Signal::SIGINT] {
        let _ = sys::ignore_signal(sig);
    }
    let verified = match root::enter(Path::new(sudohub_helpers_config::CONFIG_PATH)) {
        Ok(v) => v,
        Err(Ok(code)) => {
            if code == error::EXIT_USAGE {
                eprintln!("sudohub-spawner: takes no arguments; it is run by the hub through sudo");
            }
            return code;
        }
        Err(Err(e)) => return refuse_at_start(&e),
    };
    let mut log = log::ActionLog::new(verified.caller_uid, &verified.user.name);
    log.audit(&root_phase_summary(&verified));
    let channel = match Channel::from_stdio() {
        Ok(c) => c,
        Err(e) => {
            return refuse_at_start(&HelperError::new(
                ErrorKind::Internal,
                format!("no channel on stdin/stdout: {e}"),
            ))
        }
    };
    if verified.config.spawner.backend == sudohub_helpers_config::slurm::Backend::Slurm {
        return slurm::serve(&verified, &mut log, channel);
    }
    match supervise::Supervisor::new(verified, log, channel) {
        Ok(s) => s.run(),
        Err(e) => refuse_at_start(&e),
    }
}

/// The root phase's decision, for the audit log: how, for whom, where, with what.
fn root_phase_summary(v: &root::Verified) -> String {
    let fmt = |x: Option<String>| x.unwrap_or_else(|| "none".into());
    let (cgroup, limits) = match &v.cgroup {
        Some(cg) => (
            cg.dir("memory")
                .or_else(|| cg.dir("pids"))
                .map_or_else(|| "-".into(), |d| d.display().to_string()),
            format!(
                "mem_limit={} cpu_limit={} pids_limit={}",
                fmt(cg.limits.mem_limit.map(|m| m.to_string())),
                fmt(cg
                    .limits
                    .cpu_limit
                    .map(|c| format!("{}.{:03}", c / 1000, c % 1000))),
                fmt(cg.limits.pids_limit.map(|p| p.to_string())),
            ),
        ),
        None => ("none".into(), "none".into()),
    };
    format!(
        "root phase done: mode={:?} server={:?} uid={} gid={} cgroup={cgroup} {limits}",
        v.mode, v.server_name, v.user.uid, v.user.gid
    )
}

/// A start-up refusal: one line on stderr and in syslog, a typed error frame on stdout (the channel,
/// when the hub is there), and the error's exit code. Nothing was started.
fn refuse_at_start(e: &HelperError) -> i32 {
    eprintln!("sudohub-spawner: refused: {e}");
    log::syslog(&format!("refused: {e}"));
    if !nix::unistd::isatty(std::io::stdout()).unwrap_or(false) {
        if let Ok(frame) = sudohub_protocol::frame::encode(&Reply::Error(ErrorReply::new(
            e.kind,
            e.message.clone(),
        ))) {
            let mut out = std::io::stdout();
            let _ = out.write_all(&frame).and_then(|()| out.flush());
        }
    }
    e.exit_code()
}
