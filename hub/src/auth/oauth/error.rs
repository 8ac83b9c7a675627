//! Why a sign-in at the provider did not let the user in, and what the browser is told.

use crate::types::Username;

/// Why a sign-in at the provider did not let the user in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// The provider could not be reached, or answered nothing usable.
    Unavailable(String),
    /// The provider's answer failed verification (signature, audience, expiry, nonce,
    /// a code used twice).
    Rejected(String),
    /// The provider sent the browser back with an error (the user cancelled, say).
    Refused(String),
    /// The callback's `state` is not the one this browser's sign-in started with, or
    /// that sign-in expired or was used already.
    Expired,
    /// Too many sign-ins under way.
    Busy,
    /// The provider's name for the user makes no user name here.
    BadName(String),
    /// The user name is another identity's, or an account of the hub's own.
    Taken(Username),
    /// The user name is a system account's (root, a daemon, the hub's own).
    SystemAccount(Username),
    /// The rules do not allow this user.
    NotAllowed(Username),
}

impl OAuthError {
    /// The one message the browser sees.
    pub fn user_message(&self, service: &str) -> String {
        match self {
            Self::Unavailable(_) | Self::Busy => "The login service is unavailable right now. Please try again in a few minutes.".into(),
            Self::Rejected(_) => format!("The answer from {service} could not be verified, so you were not signed in. Please try again, or contact your administrator."),
            Self::Refused(e) => format!("{service} did not sign you in ({e})."),
            Self::Expired => "Your sign-in expired or was started in another window. Please sign in again.".into(),
            Self::BadName(m) => format!("Your {service} account cannot be used here: {m}."),
            Self::Taken(n) | Self::SystemAccount(n) => format!("The user name {n} belongs to another account here. Please contact your administrator."),
            Self::NotAllowed(n) => format!("{n} is not allowed to use this hub."),
        }
    }

    /// The `result` label of `sudohub_login_failures`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Unavailable(_) | Self::Busy => "unavailable",
            Self::Rejected(_) => "rejected",
            Self::Refused(_) => "refused",
            Self::Expired => "expired",
            Self::BadName(_) | Self::Taken(_) | Self::SystemAccount(_) => "bad_name",
            Self::NotAllowed(_) => "not_allowed",
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(m) => write!(f, "provider unavailable: {m}"),
            Self::Rejected(m) => write!(f, "provider's answer rejected: {m}"),
            Self::Refused(m) => write!(f, "provider refused: {m}"),
            Self::Expired => f.write_str("state missing, wrong, used or expired"),
            Self::Busy => f.write_str("too many sign-ins under way"),
            Self::BadName(m) => write!(f, "no user name: {m}"),
            Self::Taken(n) => write!(f, "{n} is bound to another identity or is a native account"),
            Self::SystemAccount(n) => write!(f, "{n} is a system account"),
            Self::NotAllowed(n) => write!(f, "{n} is not allowed by the rules"),
        }
    }
}
