//! `sudohub-spawner`: launches and supervises one user's single-user server.
//!
//! The hub runs it as `sudo -n -u <user> /usr/lib/sudohub/sudohub-spawner`, with one end of
//! a socketpair as stdin and stdout. It trusts nothing the hub says (DESIGN.md, trust
//! boundary 1). The flow, top to bottom, is [`run`]:
//!
//! 1. ignore the signals that would come from the hub's terminal or process group;
//! 2. [`checks::verify`]: no arguments, not root, root-owned config, caller is the hub
//!    user, target user in the allowed group — before reading a single byte from the hub;
//! 3. [`supervise::Supervisor`]: hello, one validated spawn request (server name, port,
//!    allow-listed environment — never a command), start the configured command as this
//!    user ([`child::launch`]) — first leaving sudo behind ([`supervise`] forks, so sudo
//!    does not stay resident for the server's life) — then report its exit the moment it happens, stop it on
//!    request, and re-attach to a restarted hub.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod channel;
pub mod checks;
pub mod child;
pub mod error;
pub mod log;
pub mod reap;
pub mod reattach;
pub mod request;
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
    // The hub's terminal or process group must not be able to take the server down with
    // the hub: SIGHUP and SIGINT are ignored here and reset to default in the server.
    for sig in [Signal::SIGHUP, Signal::SIGINT] {
        let _ = sys::ignore_signal(sig);
    }
    let verified = match checks::verify(Path::new(sudohub_helpers_config::CONFIG_PATH)) {
        Ok(v) => v,
        Err(Ok(code)) => {
            eprintln!("sudohub-spawner: takes no arguments; it is run by the hub through sudo");
            return code;
        }
        Err(Err(e)) => return refuse_at_start(&e),
    };
    let mut log = log::ActionLog::new(verified.caller_uid, &verified.user.name);
    if let Some(warning) = checks::no_new_privs_warning() {
        log.notice(warning);
    }
    let channel = match Channel::from_stdio() {
        Ok(c) => c,
        Err(e) => {
            return refuse_at_start(&HelperError::new(
                ErrorKind::Internal,
                format!("no channel on stdin/stdout: {e}"),
            ))
        }
    };
    match supervise::Supervisor::new(verified, log, channel) {
        Ok(s) => s.run(),
        Err(e) => refuse_at_start(&e),
    }
}

/// A start-up refusal: one line on stderr, a typed error frame on stdout (the channel,
/// when the hub is there), and the error's exit code. Nothing was started.
fn refuse_at_start(e: &HelperError) -> i32 {
    eprintln!("sudohub-spawner: refused: {e}");
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
