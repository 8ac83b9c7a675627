//! The built-in reverse proxy: `/user/<name>/…` to that user's server and
//! `/services/<name>/…` to external services, paths unchanged (compat §3.8), with
//! WebSocket upgrades, streaming bodies, idle timeouts and `X-Forwarded-*` headers.

mod activity;
mod forward;
mod idle;
mod routes;
mod server_headers;
mod tunnels;

pub use activity::ActivityLog;
pub use forward::{Proxied, Proxy};
pub use idle::{splice, IdleBody, IdleTimedOut};
pub use routes::{Route, RouteTable};
pub use tunnels::Tunnels;
