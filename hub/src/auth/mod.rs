//! Authentication: who a browser or API caller is.
//!
//! Passwords are checked by `sudohub-pam` ([`pam`]), never by the hub itself, which is not
//! in group `shadow`. Who may log in after PAM says yes is decided here, from the Unix
//! group database ([`rules`]). Guessing is slowed per user name and per client address
//! ([`ratelimit`]).

pub mod pam;
pub mod ratelimit;
pub mod rules;

pub use pam::{AuthError, Authenticated, PamAuthenticator, PamClientConfig};
pub use rules::AuthRules;
