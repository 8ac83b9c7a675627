//! A string that is wiped from memory when dropped and never printed.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::bounded::BoundedError;

/// Largest secret (password, API token) accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 4096;

/// A password or token: capped at [`MAX_SECRET_LEN`], NUL-free, zeroed on drop, and
/// redacted in `Debug`, so it can be carried in a message without ever reaching a log.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Checks and wraps `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, BoundedError> {
        let value = Zeroizing::new(value.into());
        if value.len() > MAX_SECRET_LEN {
            return Err(BoundedError::TooLong {
                len: value.len(),
                max: MAX_SECRET_LEN,
            });
        }
        if value.as_bytes().contains(&0) {
            return Err(BoundedError::Nul);
        }
        Ok(Self(value))
    }

    /// The secret itself; callers must not log or copy it into errors.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Secret {
    type Error = BoundedError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl Serialize for Secret {
    // Written straight from the zeroizing buffer: no unwiped intermediate copy.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
