//! Running the real `sudohub` binary as its own unprivileged service user, the way the
//! systemd unit does, so that end-to-end tests talk to it over real HTTP and can kill it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::system::TestUser;

/// A running hub process, killed (SIGKILL) when dropped.
pub struct HubProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl HubProcess {
    /// Starts `binary --config <config>` as `user`, with `env` added to its environment
    /// (e.g. systemd's `NOTIFY_SOCKET`), and waits until `addr` accepts connections (at
    /// most `timeout`). Panics with the hub's log if it does not come up.
    pub fn start(
        binary: &Path,
        config: &Path,
        user: &TestUser,
        addr: SocketAddr,
        log: PathBuf,
        timeout: Duration,
        env: &[(&str, &Path)],
    ) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("open hub log {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log fd");
        let served = |log: &Path| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .matches("sudohub listening")
                .count()
        };
        let before = served(&log);
        let child = user
            .command(binary)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info,sudohub=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let hub = Self { child, addr, log };
        // The port opens first and the hub serves once started: ready when its log says so.
        let up = crate::wait_for(timeout, || {
            (served(&hub.log) > before && TcpStream::connect(addr).is_ok()).then_some(())
        });
        if up.is_none() {
            panic!(
                "hub did not serve on {addr} within {timeout:?}:\n{}",
                hub.log_text()
            );
        }
        hub
    }

    /// The hub's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the hub logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM the hub, as `systemctl restart` would, and wait for it to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        self.child.wait().expect("wait for the hub")
    }

    /// Waits at most `timeout` for the hub to exit on its own (after it handed over).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        crate::wait_for(timeout, || self.child.try_wait().ok().flatten())
    }

    /// `kill -9` the hub, as a crash or an OOM kill would, and reap it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A hub process this test did not start itself (one a hub started as its successor):
/// killed when dropped.
pub struct Successor(pub u32);

impl Drop for Successor {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
