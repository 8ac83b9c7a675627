//! hub ⇄ `sudohub-spawner`.
//!
//! The hub runs the helper as `sudo -n sudohub-spawner` (or, installed setuid root, directly)
//! with one end of a socketpair as its stdin and stdout. The helper starts as root and
//! drops to the target user after step 2. Conversation:
//!
//! 1. hub → [`Request::Hello`]; helper → [`Reply::Hello`] or [`Reply::Error`]
//!    ([`ErrorKind::ProtocolVersion`]) and exit. The helper also sends
//!    [`Reply::Error`] without waiting for a hello when one of its start-up checks fails.
//! 2. hub → [`Request::Target`]: whose server, which one. The helper checks the user,
//!    makes the server's cgroup with root's limits, and drops to the user for good; it
//!    answers nothing here, or [`Reply::Error`] and exit. (Or [`Request::Clear`] for a
//!    server whose helper is gone: answered by [`Reply::Cleared`], then the helper exits.)
//! 3. hub → [`Request::Spawn`]; helper → [`Reply::Started`] or [`Reply::Error`].
//! 4. Any time after `Started`, the helper pushes [`Reply::Exited`] exactly once, the moment
//!    the server exits and every process of its cgroup is gone, then exits itself. It
//!    pushes [`Reply::OutOfMemory`] whenever the kernel killed a process of the server for
//!    its memory limit.
//! 5. hub → [`Request::Status`]; helper → [`Reply::Status`].
//! 6. hub → [`Request::Stop`]; the helper signals the server's process group (SIGTERM, then
//!    SIGKILL after the grace period), kills whatever else is in its cgroup, and answers
//!    with the [`Reply::Exited`] of step 4.
//!
//! With `backend = "slurm"` in helpers.toml the helper supervises nothing: after step 2
//! it takes one [`Request::Submit`] (answered by [`Reply::Submitted`] with the job id)
//! or one [`Request::Cancel`] (answered by [`Reply::Cancelled`]), as the user, and exits.
//! The hub follows the job's state with Slurm's own commands.
//!
//! If the hub goes away (end of stream on the channel), the helper keeps supervising and
//! dials the hub's re-attach socket, sending [`ReattachHello`]. The hub answers with a
//! [`ReattachAnswer`]; once accepted, the conversation continues from step 3 over the new
//! connection.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Bounded, Hello};

/// Longest server name. JupyterHub's named servers are 1–30 characters; the default
/// server is the empty name.
pub const MAX_SERVER_NAME: usize = 64;
/// Longest environment variable name accepted.
pub const MAX_ENV_NAME: usize = 128;
/// Longest environment variable value accepted.
pub const MAX_ENV_VALUE: usize = 8 * 1024;
/// Most environment variables in one spawn request.
pub const MAX_ENV_VARS: usize = 64;
/// Longest user name (POSIX names are far shorter; this only bounds the frame).
pub const MAX_USER_NAME: usize = 256;
/// Longest error message.
pub const MAX_MESSAGE: usize = 1024;

/// A server name as carried on the wire (the helper validates its characters).
pub type ServerName = Bounded<MAX_SERVER_NAME>;

/// hub → helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Must be first. Replies: [`Reply::Hello`], or [`Reply::Error`] and exit.
    Hello(Hello),
    /// Must come second: whose server. No reply unless refused ([`Reply::Error`] and exit).
    Target(Target),
    /// Instead of a target: the server's helper is gone (killed by the user it ran as),
    /// so kill whatever is left in the server's cgroup, as root, and remove the group.
    /// Replies: [`Reply::Cleared`] or [`Reply::Error`]; the helper then exits.
    Clear(Target),
    /// Start the configured server. Replies: [`Reply::Started`] or [`Reply::Error`].
    /// Only one spawn per helper process.
    Spawn(Spawn),
    /// Replies: [`Reply::Status`].
    Status,
    /// Slurm backend, instead of a spawn: submit the server as a batch job of the user,
    /// with the job script root's profile `profile` builds. Replies: [`Reply::Submitted`]
    /// or [`Reply::Error`]; the helper then exits.
    Submit(Submit),
    /// Slurm backend: cancel the user's job `job_id` (`scancel`, as the user). Replies:
    /// [`Reply::Cancelled`] or [`Reply::Error`]; the helper then exits.
    Cancel {
        /// The job.
        job_id: u32,
    },
    /// Stop the server. Replies: [`Reply::Exited`] once it is gone, or
    /// [`Reply::Error`] ([`ErrorKind::NotRunning`]).
    Stop {
        /// Milliseconds between SIGTERM and SIGKILL.
        grace_ms: u32,
    },
}

/// Whose server the helper is for. Read by the helper while it is still root, so it
/// carries names only; the helper checks them against the root-owned configuration
/// (allowed group, `min_uid`, never root) before it becomes that user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The Unix user the server runs as.
    pub user: Bounded<MAX_USER_NAME>,
    /// The server's name, `""` for the default server.
    pub server_name: ServerName,
}

/// What the hub may choose about a server. Everything else (the command, its arguments,
/// `PATH`, the listen address, the limits) comes from the helper's root-owned configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spawn {
    /// TCP port on 127.0.0.1 the server must listen on.
    pub port: u16,
    /// Environment variables; the helper admits only names on its allow-list.
    pub env: Vec<EnvVar>,
}

/// What the hub may choose about a server submitted to Slurm: which of root's profiles,
/// and the allow-listed environment. The job script, its `#SBATCH` lines and the command
/// come from helpers.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submit {
    /// The name of a `[[slurm.profile]]` of helpers.toml; `""` for the first one.
    pub profile: Bounded<MAX_PROFILE_NAME>,
    /// Environment variables; the helper admits only names on its allow-list. The API
    /// token among them reaches the job through a file of the user's, never the job's
    /// environment or command line.
    pub env: Vec<EnvVar>,
}

/// Longest profile name.
pub const MAX_PROFILE_NAME: usize = 64;

/// One environment variable. Values may be secrets (the API token), so `Debug` shows only
/// the name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: Bounded<MAX_ENV_NAME>,
    /// Variable value.
    pub value: Bounded<MAX_ENV_VALUE>,
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvVar({}=<{} bytes>)", self.name, self.value.len())
    }
}

/// helper → hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// Answer to [`Request::Hello`].
    Hello(Hello),
    /// The server process exists.
    Started {
        /// Its pid, as seen from the machine's pid namespace.
        pid: u32,
    },
    /// The server exited (pushed unprompted, or the end of a stop).
    Exited {
        /// How it ended.
        status: ExitStatus,
    },
    /// Answer to [`Request::Status`].
    Status(ServerStatus),
    /// The kernel killed processes of the server for its memory limit (pushed
    /// unprompted; the server itself may live on).
    OutOfMemory {
        /// Processes killed so far in this server's life.
        kills: u32,
        /// The memory limit, bytes.
        limit: u64,
    },
    /// Answer to [`Request::Clear`]: the server's cgroup is empty and gone.
    Cleared {
        /// Processes that were killed.
        killed: u32,
    },
    /// Answer to [`Request::Submit`]: Slurm accepted the job.
    Submitted {
        /// Its job id.
        job_id: u32,
    },
    /// Answer to [`Request::Cancel`]: `scancel` succeeded (Slurm ends the job
    /// asynchronously; the hub sees it end in the job's state).
    Cancelled,
    /// A request was refused or failed. The message is safe to log: no secrets, no other
    /// users' paths.
    Error(ErrorReply),
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    /// It called `exit` with this code.
    Code(i32),
    /// It was killed by this signal number.
    Signal(i32),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(c) => write!(f, "exit code {c}"),
            Self::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// What the helper knows about its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerStatus {
    /// No spawn request yet.
    NotStarted,
    /// Running with this pid.
    Running {
        /// The server's pid.
        pid: u32,
    },
    /// Exited this way.
    Exited {
        /// How it ended.
        status: ExitStatus,
    },
}

/// A refusal or failure, typed so the hub can react without parsing text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// A human-readable explanation for the hub's log.
    pub message: Bounded<MAX_MESSAGE>,
}

impl ErrorReply {
    /// Builds a reply, cutting the message to the cap on a character boundary.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message: String = message.into().replace('\0', "\u{fffd}");
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let message = Bounded::new(message).unwrap_or_else(|_| {
            // Unreachable given the two lines above; an empty message is still correct.
            Bounded::default()
        });
        Self { kind, message }
    }
}

impl<const MAX: usize> Default for Bounded<MAX> {
    fn default() -> Self {
        // The empty string fits every cap and has no NUL.
        match Bounded::new(String::new()) {
            Ok(b) => b,
            Err(_) => unreachable!("the empty string is always valid"),
        }
    }
}

/// Kinds of refusal and failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The peer speaks another protocol version.
    ProtocolVersion,
    /// A frame was oversize, truncated, malformed or out of order.
    BadFrame,
    /// The helper's configuration is missing, invalid, or not safely owned.
    Config,
    /// The helper runs as root, below `min_uid`, or with an unexpected identity.
    BadIdentity,
    /// The invoking user is not the configured hub user.
    CallerNotHub,
    /// The target user is not in the allowed group.
    UserNotAllowed,
    /// An environment variable is not on the allow-list, or a value is invalid.
    EnvNotAllowed,
    /// A value (server name, port) is invalid.
    BadValue,
    /// A spawn was requested twice.
    AlreadyStarted,
    /// Stop without a running server.
    NotRunning,
    /// The server could not be started (exec failed, home missing, …).
    SpawnFailed,
    /// The server's cgroup could not be made or its limits applied.
    Cgroup,
    /// Anything else.
    Internal,
}

/// First frame of a helper dialling the hub's re-attach socket after the hub went away.
///
/// Claims only: the hub must check `user` against `SO_PEERCRED` and `(user, server_name,
/// pid)` against its database before believing any of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReattachHello {
    /// The sender's protocol version.
    pub version: u16,
    /// The user the helper runs as.
    pub user: Bounded<MAX_USER_NAME>,
    /// The server it supervises.
    pub server_name: ServerName,
    /// The server's pid.
    pub pid: u32,
    /// The server's state now: still running, or already exited while the hub was away.
    pub status: ServerStatus,
}

/// The hub's answer to a [`ReattachHello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReattachAnswer {
    /// The hub knows this server; requests and replies continue on this connection.
    Accepted,
    /// The hub does not recognise the claim; the helper must not dial again for it.
    Refused {
        /// Why, for the helper's log.
        message: Bounded<MAX_MESSAGE>,
    },
}
