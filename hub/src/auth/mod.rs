//! Authentication: who a browser or API caller is.
//!
//! Every password login goes through one front door ([`login`]): guessing is slowed per
//! user name and per client address ([`ratelimit`]) and names are locked out after
//! `allowed_failed_logins`; then the name's one source checks it. System accounts'
//! passwords are checked by `sudohub-pam` ([`pam`]), never by the hub itself, which is
//! not in group `shadow`, and who may log in after PAM says yes is decided from the Unix
//! group database ([`rules`]). The hub's own accounts ([`native`]) are signed up on the
//! web, approved by an admin, and kept as argon2id hashes ([`password`]), with an optional
//! second factor ([`totp`]). Browsers carry a signed login cookie ([`cookies`], [`session`]) and
//! prove forms are theirs with an XSRF token ([`xsrf`]); API callers are identified by
//! token or cookie ([`caller`]) and hold JupyterHub's scopes ([`crate::scopes`]). Requests only a hostile script on the hub's origin
//! would send are refused by their fetch metadata ([`fetch`]).

pub mod auth_state;
pub mod caller;
pub mod client;
pub mod cookies;
pub mod fetch;
pub mod ldap;
pub mod login;
pub mod native;
pub mod oauth;
pub mod outcome;
pub mod pam;
pub mod password;
pub mod ratelimit;
pub mod rules;
pub mod session;
pub mod totp;
pub mod xsrf;

pub use crate::config::AuthRules;
pub use caller::{service_by_token, Caller};
pub use cookies::CookieKey;
pub use login::{AuthError, Authenticated, Authenticator};
pub use pam::PamClientConfig;
pub use session::Session;
pub use xsrf::XsrfForm;
