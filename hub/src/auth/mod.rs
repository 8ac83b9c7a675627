//! Authentication: who a browser or API caller is.
//!
//! Passwords are checked by `sudohub-pam` ([`pam`]), never by the hub itself, which is not
//! in group `shadow`. Who may log in after PAM says yes is decided from the Unix group
//! database ([`rules`]). Guessing is slowed per user name and per client address
//! ([`ratelimit`]). Browsers carry a signed login cookie ([`cookies`], [`session`]) and
//! prove forms are theirs with an XSRF token ([`xsrf`]); API callers are identified by
//! token or cookie ([`caller`]) and hold JupyterHub's scopes ([`crate::scopes`]). Requests only a hostile script on the hub's origin
//! would send are refused by their fetch metadata ([`fetch`]).

pub mod caller;
pub mod client;
pub mod cookies;
pub mod fetch;
pub mod pam;
pub mod ratelimit;
pub mod rules;
pub mod session;
pub mod xsrf;

pub use crate::config::AuthRules;
pub use caller::{service_by_token, Caller};
pub use cookies::CookieKey;
pub use pam::{AuthError, Authenticated, PamAuthenticator, PamClientConfig};
pub use session::Session;
pub use xsrf::XsrfForm;
