//! The built-in reverse proxy: `/user/<name>/…` to that user's server and
//! `/services/<name>/…` to external services, paths unchanged (compat §3.8), with
//! WebSocket upgrades, streaming bodies and `X-Forwarded-*` headers.

mod activity;
mod forward;
mod routes;

pub use activity::ActivityLog;
pub use forward::Proxy;
pub use routes::{Route, RouteTable};
