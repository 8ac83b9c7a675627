//! What a login comes to: who was accepted and by which source, or why not, with the one
//! message a browser may see.

use std::time::Duration;

use sudohub_protocol::pam::DenyReason;

use crate::config::SourceKind;
use crate::types::Username;

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user name (the Unix account's).
    pub name: Username,
    /// Admin rights from `admin_users` / `admin_groups`; `None`: as recorded.
    pub admin: Option<bool>,
    /// The source that accepted it.
    pub source: SourceKind,
}

/// Why a login failed. The browser is shown [`AuthError::user_message`] only; the
/// details are for the hub's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The password or the account was refused.
    Denied(DenyReason),
    /// The password is right but the rules do not allow this user.
    NotAllowed,
    /// The password is right; the account waits for an admin's approval.
    Pending,
    /// The password is right; an admin blocked the account.
    Blocked,
    /// The password is right, but a Unix account of the name exists that is not the one
    /// this account is bound to (someone else's, made after the sign-up).
    Unbound,
    /// Too many recent failures for this user name or address.
    RateLimited {
        /// How long until the next attempt is considered.
        retry_after: Duration,
    },
    /// `allowed_failed_logins` failures in a row: the name is locked out for a while.
    LockedOut {
        /// How long until the lockout ends.
        retry_after: Duration,
    },
    /// The username or password cannot even be sent (too long, NUL).
    Invalid(String),
    /// The helper (or the database) failed or refused to work (misconfiguration).
    Helper(String),
    /// The helper did not answer in time.
    Timeout,
    /// The directory that checks passwords cannot be reached or did not answer.
    Unavailable(String),
    /// A directory accepted the user, who has no Unix account here, and the hub does
    /// not make accounts (`create_system_users`).
    NoUnixAccount,
    /// The user name belongs to another identity of the provider, or to an account of
    /// the hub's own.
    Taken(String),
}

impl AuthError {
    /// The one message a browser sees. It never says whether a user exists: what
    /// depends on the account is told only to whoever gave its right password.
    pub fn user_message(&self) -> String {
        match self {
            Self::RateLimited { retry_after } | Self::LockedOut { retry_after } => format!(
                "Too many failed attempts. Try again in {} seconds.",
                retry_after.as_secs().max(1)
            ),
            Self::Pending => "Your account is waiting for an administrator's approval.".into(),
            Self::Blocked => {
                "Your account has been blocked. Please contact your administrator.".into()
            }
            Self::Unbound => "Your account cannot sign in: its name belongs to another account on this machine. Please contact your administrator.".into(),
            Self::Helper(_) | Self::Timeout => {
                "Login is not working right now. Please contact your administrator.".into()
            }
            Self::Taken(n) => format!("The user name {n} belongs to another account here. Please contact your administrator."),
            Self::NoUnixAccount => "You signed in, but there is no account for you on this machine yet. Please contact your administrator.".into(),
            Self::Unavailable(_) => {
                "The login service is unavailable right now. Please try again in a few minutes."
                    .into()
            }
            _ => "Invalid username or password".into(),
        }
    }

    /// The `result` label of `sudohub_login_failures`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::RateLimited { .. } => "rate_limited",
            Self::LockedOut { .. } => "locked_out",
            Self::NotAllowed => "not_allowed",
            Self::Pending => "pending",
            Self::Blocked => "blocked",
            Self::Unbound => "unbound",
            Self::Invalid(_) => "invalid",
            Self::Helper(_) | Self::Timeout => "error",
            Self::Unavailable(_) => "unavailable",
            Self::NoUnixAccount => "no_unix_account",
            Self::Taken(_) => "bad_name",
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(r) => write!(f, "denied: {r:?}"),
            Self::NotAllowed => f.write_str("the user is not in allowed_users or allowed_groups"),
            Self::Pending => f.write_str("the account waits for approval"),
            Self::Blocked => f.write_str("the account is blocked"),
            Self::Unbound => {
                f.write_str("a Unix account of this name exists that the account is not bound to")
            }
            Self::RateLimited { retry_after } => write!(f, "rate limited for {retry_after:?}"),
            Self::LockedOut { retry_after } => write!(f, "locked out for {retry_after:?}"),
            Self::Invalid(m) => write!(f, "invalid credentials: {m}"),
            Self::Helper(m) => write!(f, "cannot check the password: {m}"),
            Self::Timeout => f.write_str("PAM helper timed out"),
            Self::Unavailable(m) => write!(f, "login service unavailable: {m}"),
            Self::NoUnixAccount => f.write_str("no Unix account of this name"),
            Self::Taken(n) => write!(f, "{n} is bound to another identity or is a native account"),
        }
    }
}

impl std::error::Error for AuthError {}
