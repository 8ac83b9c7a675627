//! Client of `sudohub-spawner`: runs it through sudo, speaks its protocol, and gives the
//! hub a [`ServerHandle`] per running server. Beside it, [`account`]: the client of
//! `sudohub-account`, which makes a user's Unix account on demand.
//!
//! The helper is the server's parent and pushes its exit the moment it happens, so the hub
//! never polls pids (sudospawner's `kill(pid, 0)` mistakes a reused pid for a live server)
//! and stopping needs no new sudo. A handle is also made from a helper that re-attached
//! after a hub restart ([`ServerHandle::adopt`]).

pub mod account;
mod client;
#[cfg(test)]
pub(crate) mod fake;
mod handle;
pub mod job;

use std::time::Duration;

use futures_util::future::BoxFuture;

pub use account::{AccountMaker, Ensured};
pub use client::{SpawnArgs, SpawnerClient};
pub use handle::{Ending, ServerHandle};
pub use job::JobLink;

use sudohub_protocol::spawner::ErrorKind;

/// What starts servers: the real [`SpawnerClient`] (sudo + `sudohub-spawner`), or in
/// tests a fake helper speaking the same protocol, as greetd's fakegreet stands in for
/// its greeter, so the life cycle is tested without root.
pub trait Spawner: Send + Sync + 'static {
    /// Starts the server `args` describe; resolves once the helper reports it started
    /// (or refused), within `timeout`.
    fn spawn(
        &self,
        args: SpawnArgs,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ServerHandle, SpawnerError>>;

    /// Kills what is left of `user`'s server `server` whose helper is gone (its cgroup,
    /// as root, through a new helper); resolves to how many processes there were.
    fn clear<'a>(
        &'a self,
        user: &'a crate::types::Username,
        server: &'a crate::types::ServerName,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<u32, SpawnerError>>;

    /// With the Slurm backend: a handle on job `job_id`, submitted earlier for `user`'s
    /// server `server` (after a hub restart); `None` for a spawner without Slurm.
    fn job_handle(
        &self,
        _user: &crate::types::Username,
        _server: &crate::types::ServerName,
        _job_id: u32,
        _port: Option<u16>,
    ) -> Option<ServerHandle> {
        None
    }
}

/// Why a spawn or a request to a helper failed.
#[derive(Debug)]
pub enum SpawnerError {
    /// `sudo` could not be started at all.
    Exec(std::io::Error),
    /// The helper ended without answering; `stderr` holds what sudo or the helper said
    /// (for example "sudo: a password is required" when the sudoers rule is missing).
    NoAnswer {
        /// The first lines of the helper's stderr.
        stderr: String,
    },
    /// The helper refused or failed, with its typed reason.
    Refused {
        /// The helper's error kind.
        kind: ErrorKind,
        /// The helper's message.
        message: String,
    },
    /// The helper said something out of protocol.
    Protocol(String),
    /// No answer within the time allowed.
    Timeout,
    /// The connection to the helper is gone.
    Disconnected,
}

impl std::fmt::Display for SpawnerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exec(e) => write!(f, "cannot run sudo: {e}"),
            Self::NoAnswer { stderr } if stderr.contains("password is required") => write!(
                f,
                "sudo refused to run the spawner helper without a password: is the sudoers rule \
                 (/etc/sudoers.d/sudohub) installed and is the user in the allowed group? ({})",
                stderr.trim()
            ),
            Self::NoAnswer { stderr } => {
                write!(
                    f,
                    "the spawner helper ended without answering: {}",
                    stderr.trim()
                )
            }
            Self::Refused { kind, message } => {
                write!(f, "the spawner helper refused ({kind:?}): {message}")
            }
            Self::Protocol(m) => write!(f, "protocol error with the spawner helper: {m}"),
            Self::Timeout => f.write_str("the spawner helper did not answer in time"),
            Self::Disconnected => f.write_str("the connection to the spawner helper is gone"),
        }
    }
}

impl std::error::Error for SpawnerError {}
