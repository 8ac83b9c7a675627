//! Length-capped, NUL-free strings.
//!
//! Validation happens during deserialisation, so a message that decodes contains only
//! strings that fit their caps. NUL is refused everywhere because every string here may
//! end up in a C API (`execve`'s environment, PAM, syslog) that would silently truncate it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A UTF-8 string of at most `MAX` bytes with no NUL byte.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bounded<const MAX: usize>(String);

/// Why a string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundedError {
    /// The string is longer than its cap.
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The cap in bytes.
        max: usize,
    },
    /// The string contains a NUL byte.
    Nul,
}

impl fmt::Display for BoundedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len, max } => {
                write!(f, "string of {len} bytes exceeds the limit of {max}")
            }
            Self::Nul => f.write_str("string contains a NUL byte"),
        }
    }
}

impl std::error::Error for BoundedError {}

impl<const MAX: usize> Bounded<MAX> {
    /// The cap of this type, in bytes.
    pub const MAX: usize = MAX;

    /// Checks `value` against the cap and for NUL bytes.
    pub fn new(value: impl Into<String>) -> Result<Self, BoundedError> {
        let value = value.into();
        if value.len() > MAX {
            return Err(BoundedError::TooLong {
                len: value.len(),
                max: MAX,
            });
        }
        if value.as_bytes().contains(&0) {
            return Err(BoundedError::Nul);
        }
        Ok(Self(value))
    }

    /// The string itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Gives up the wrapper.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<const MAX: usize> TryFrom<String> for Bounded<MAX> {
    type Error = BoundedError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl<const MAX: usize> TryFrom<&str> for Bounded<MAX> {
    type Error = BoundedError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl<const MAX: usize> From<Bounded<MAX>> for String {
    fn from(value: Bounded<MAX>) -> Self {
        value.0
    }
}

impl<const MAX: usize> fmt::Debug for Bounded<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize> fmt::Display for Bounded<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> std::ops::Deref for Bounded<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}
