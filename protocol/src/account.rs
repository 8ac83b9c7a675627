//! hub → `sudohub-account`: one hello, one request, one answer.
//!
//! The hub writes [`AccountRequest::Hello`] then [`AccountRequest::Create`] on the
//! helper's stdin; the helper writes exactly one [`AccountAnswer`] on stdout and exits.
//! The request names the account and nothing else: its uid, groups, home and shell come
//! from the root-owned configuration alone.

use serde::{Deserialize, Serialize};

use crate::{Bounded, Hello};

/// Longest user name carried (the helper then applies the naming rule, far stricter).
pub const MAX_USERNAME: usize = 256;
/// Longest message.
pub const MAX_MESSAGE: usize = 1024;

/// hub → helper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountRequest {
    /// Must come first.
    Hello(Hello),
    /// Create the Unix account of this hub user. Answer: [`AccountAnswer`].
    Create {
        /// The name, as the hub has it.
        name: Bounded<MAX_USERNAME>,
    },
}

/// helper → hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountAnswer {
    /// The account exists now, with this uid.
    Created {
        /// Its uid.
        uid: u32,
    },
    /// Not created; nothing was changed.
    Refused {
        /// Why, by kind.
        kind: AccountRefusal,
        /// Why, for the hub's log and the admin.
        message: Bounded<MAX_MESSAGE>,
    },
}

/// Why an account was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountRefusal {
    /// The peer speaks another protocol version.
    ProtocolVersion,
    /// Oversize, truncated, malformed or out-of-order frame.
    BadFrame,
    /// The helper's configuration is missing, invalid, not safely owned, or does not
    /// allow creating accounts.
    Config,
    /// The caller is not the configured hub user, or the helper is not run as root.
    CallerNotHub,
    /// The name breaks the naming rule.
    InvalidName,
    /// An account, group or home of that name exists already.
    Exists,
    /// No uid is free in the configured range.
    NoUid,
    /// The system's tools failed.
    Failed,
}
