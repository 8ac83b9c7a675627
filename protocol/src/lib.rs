//! The wire contract between the sudohub hub and its two privileged helpers.
//!
//! Both helpers trust nothing the hub sends, so everything that crosses this boundary is
//! typed and bounded here, once, and both ends compile against the same definitions.
//!
//! # Framing
//!
//! ```text
//! +----------------------+---------------------------------------+
//! | len: u32 little-end. | body: `len` bytes, one postcard value |
//! +----------------------+---------------------------------------+
//! ```
//!
//! * `len` is checked against [`MAX_FRAME_LEN`] (64 KiB) **before** anything is allocated,
//!   so a peer cannot make us reserve memory by lying about a length.
//! * A body must decode completely: trailing bytes are an error, not ignored.
//! * Every string is a [`Bounded`] string with a length cap and no NUL bytes, so a value that
//!   decodes is already safe to put into an environment or a log line.
//! * The first frame each way is a hello carrying [`PROTOCOL_VERSION`]; a mismatch is a clear,
//!   typed error rather than a misparse.
//!
//! # Conversations
//!
//! * hub → `sudohub-spawner`: see [`spawner`]. Each [`spawner::Request`] lists its replies.
//! * `sudohub-spawner` → hub's re-attach socket: see [`spawner::ReattachHello`].
//! * hub → `sudohub-pam`: see [`pam`]: one hello, one request, one answer.
//! * hub → `sudohub-account`: see [`account`]: one hello, one request, one answer.
//!
//! The crate does no I/O besides the small blocking frame reader and writer in [`frame`];
//! async callers use [`frame::body_len`] and [`frame::decode`] with their own reads.
#![forbid(unsafe_code)]

pub mod account;
pub mod bounded;
pub mod frame;
pub mod pam;
mod secret;
pub mod spawner;
#[cfg(test)]
mod tests;

pub use bounded::{Bounded, BoundedError};
pub use frame::{FrameDecoder, FrameError};
pub use secret::Secret;

/// Version of this protocol. Bumped on any incompatible change to a message type, so
/// that a hub and a helper from different builds refuse each other clearly instead of
/// misreading each other's bytes.
pub const PROTOCOL_VERSION: u16 = 3;

/// Largest frame body either side will accept or send, in bytes.
///
/// Large enough for a spawn request with every allowed environment variable, small
/// enough that a hostile peer cannot make a helper allocate much.
pub const MAX_FRAME_LEN: usize = 64 * 1024;

/// The hello each side sends first. Carries only the protocol version: who the peer is
/// comes from the kernel (uid, `SO_PEERCRED`), never from what it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u16,
}

impl Hello {
    /// The hello of this build.
    pub const fn current() -> Self {
        Self {
            version: PROTOCOL_VERSION,
        }
    }
}
