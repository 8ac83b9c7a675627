//! hub → `sudohub-pam`: one hello, one request, one answer.
//!
//! The hub writes [`PamRequest::Hello`] then [`PamRequest::Authenticate`] on the helper's
//! stdin; the helper writes exactly one [`PamAnswer`] on stdout and exits. A version
//! mismatch or a bad frame is answered with [`PamAnswer::Error`].

use serde::{Deserialize, Serialize};

use crate::{Bounded, Hello, Secret};

/// Longest user name carried (the helper then applies the POSIX rules, far stricter).
pub const MAX_USERNAME: usize = 1024;
/// Longest error message.
pub const MAX_MESSAGE: usize = 1024;

/// hub → helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PamRequest {
    /// Must come first.
    Hello(Hello),
    /// Check this password for this user. Answer: [`PamAnswer`].
    Authenticate {
        /// The login name as typed.
        username: Bounded<MAX_USERNAME>,
        /// The password; zeroed on drop, redacted in `Debug`.
        password: Secret,
    },
}

/// helper → hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PamAnswer {
    /// PAM authenticated the user and the account is usable.
    Ok,
    /// PAM said no. The hub shows one generic message and logs the reason.
    Denied {
        /// Why.
        reason: DenyReason,
    },
    /// The request could not be judged.
    Error {
        /// What went wrong.
        kind: PamErrorKind,
        /// Explanation for the hub's log; never contains the password.
        message: Bounded<MAX_MESSAGE>,
    },
}

/// Why PAM refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DenyReason {
    /// Wrong password (or a locked password, which PAM reports the same way).
    BadCredentials,
    /// No such user.
    UnknownUser,
    /// The account has expired.
    AccountExpired,
    /// The password has expired and must be changed first.
    PasswordExpired,
    /// PAM refused the account for another reason (`pam_acct_mgmt`).
    AccountUnavailable,
    /// Too many attempts, as judged by a PAM module.
    MaxTries,
}

/// Why a request could not be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PamErrorKind {
    /// The peer speaks another protocol version.
    ProtocolVersion,
    /// Oversize, truncated, malformed or out-of-order frame.
    BadFrame,
    /// The user name is not a valid POSIX user name.
    InvalidUsername,
    /// The helper's configuration is missing, invalid or not safely owned.
    Config,
    /// The caller is not the configured hub user.
    CallerNotHub,
    /// PAM itself failed (missing service file, module error).
    Pam,
    /// Anything else.
    Internal,
}
