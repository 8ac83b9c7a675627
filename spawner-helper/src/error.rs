//! The helper's one error type, its exit codes, and its mapping to protocol error kinds.
#![forbid(unsafe_code)]

use std::fmt;

use sudohub_protocol::spawner::ErrorKind;

/// Everything that stops the helper. The message is safe to send to the hub and to log:
/// no secrets, no environment values.
#[derive(Debug)]
pub struct HelperError {
    /// The class of failure: decides the exit code and the protocol kind.
    pub kind: ErrorKind,
    /// What went wrong and, where it helps, how to fix it.
    pub message: String,
}

impl HelperError {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Exit code of the helper for this error: one per class, so an admin can tell from
    /// `sudo`'s exit status alone what was refused.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::BadIdentity => 2,
            ErrorKind::Config => 3,
            ErrorKind::CallerNotHub => 4,
            ErrorKind::UserNotAllowed => 5,
            ErrorKind::ProtocolVersion => 6,
            ErrorKind::BadFrame => 7,
            ErrorKind::EnvNotAllowed => 8,
            ErrorKind::BadValue => 9,
            ErrorKind::AlreadyStarted => 10,
            ErrorKind::NotRunning => 11,
            ErrorKind::SpawnFailed => 12,
            ErrorKind::Internal => 13,
            ErrorKind::Cgroup => 14,
        }
    }
}

/// Exit code when the helper is started with arguments: it takes none.
pub const EXIT_USAGE: i32 = 64;

impl fmt::Display for HelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for HelperError {}
