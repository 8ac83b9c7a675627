//! One fixed-format line per privileged action, for admins and auditors.
//!
//! While the hub is attached the line goes to stderr, which is a pipe the hub reads and
//! forwards to its own log. That pipe breaks when the hub dies, so stderr is made
//! non-blocking and every write error is ignored (SIGPIPE is ignored by the Rust runtime):
//! a dead or slow reader can never kill or stall the helper. Once the hub is gone, lines
//! also go to syslog (`/dev/log`). Never a token, a password or an environment value.
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::unix::net::UnixDatagram;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::Uid;

/// Writes the action lines of one helper process.
pub struct ActionLog {
    caller_uid: Uid,
    user: String,
    hub_attached: bool,
    syslog: Option<UnixDatagram>,
}

impl ActionLog {
    /// A log for actions of `caller_uid` on `user`. Makes stderr non-blocking.
    pub fn new(caller_uid: Uid, user: &str) -> Self {
        let stderr = std::io::stderr();
        if let Ok(flags) = fcntl(&stderr, FcntlArg::F_GETFL) {
            let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
            let _ = fcntl(&stderr, FcntlArg::F_SETFL(flags));
        }
        Self {
            caller_uid,
            user: user.to_owned(),
            hub_attached: true,
            syslog: None,
        }
    }

    /// Records whether a hub is listening on stderr; when not, lines also go to syslog.
    pub fn set_hub_attached(&mut self, attached: bool) {
        self.hub_attached = attached;
        if !attached && self.syslog.is_none() {
            self.syslog = UnixDatagram::unbound()
                .and_then(|s| s.connect("/dev/log").map(|()| s))
                .ok();
        }
    }

    /// Logs one action: `caller_uid=… user=… action=… server=… pid=… result=…`.
    pub fn action(&mut self, action: &str, server: &str, pid: Option<u32>, result: &str) {
        let pid = pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
        let line = format!(
            "caller_uid={} user={} action={action} server={server:?} pid={pid} result={result}",
            self.caller_uid, self.user
        );
        self.emit(&line);
    }

    /// Logs a decision of the root phase: to stderr and always to syslog, since in setuid
    /// mode no sudo line records that the helper ran.
    pub fn audit(&mut self, text: &str) {
        let line = format!("caller_uid={} user={} {text}", self.caller_uid, self.user);
        let _ = writeln!(std::io::stderr(), "sudohub-spawner: {line}");
        syslog(&line);
    }

    /// Logs a free-form notice (start-up warnings, re-attach progress).
    pub fn notice(&mut self, text: &str) {
        let line = format!(
            "caller_uid={} user={} notice={text:?}",
            self.caller_uid, self.user
        );
        self.emit(&line);
    }

    fn emit(&mut self, line: &str) {
        let _ = writeln!(std::io::stderr(), "sudohub-spawner: {line}");
        if !self.hub_attached {
            if let Some(s) = &self.syslog {
                // <85> = facility authpriv (10) * 8 + severity notice (5).
                let msg = format!("<85>sudohub-spawner[{}]: {line}", std::process::id());
                let _ = s.send(msg.as_bytes());
            }
        }
    }
}

/// Sends one line to syslog (authpriv, notice), if there is one; never blocks.
pub fn syslog(line: &str) {
    let msg = format!(
        "<85>sudohub-spawner[{}]: {}",
        std::process::id(),
        line.replace(['\n', '\r'], " ")
    );
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.set_nonblocking(true);
        let _ = sock.send_to(msg.as_bytes(), "/dev/log");
    }
}

/// How a signal's result reads in the action log: `ok`, or `error: <errno>`.
pub fn result_text(r: nix::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("error: {e}"),
    }
}
