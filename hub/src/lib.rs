//! sudohub, the hub: the unprivileged, web-facing process.
//!
//! It never acts as another user itself: spawning goes through `sudohub-spawner` (run with
//! `sudo`), password checks through `sudohub-pam` (setgid `shadow`). See the README's
//! architecture map for the layers; modules only use modules below them.
#![forbid(unsafe_code)]

// Bottom: values and plumbing every layer uses.
pub mod error;
pub mod handover;
pub mod helper_output;
pub mod hosts;
pub mod metrics;
pub mod secrets;
pub mod templates;
pub mod timestamp;
pub mod types;
pub mod urls;
// What the kernel says of the servers' cgroups (read-only), by server key.
pub mod cgroups;
// What a credential may do (JupyterHub's scopes), built on the types above.
pub mod scopes;
// Configuration and state.
pub mod config;
pub mod db;
// Who is asking; talking to helpers; carrying requests.
pub mod auth;
pub mod proxy;
pub mod reattach;
pub mod slurm;
pub mod spawner;
pub mod tls;
// The life cycle of servers.
pub mod lifecycle;
pub mod managed;
// What runs on its own schedule over the servers.
pub mod culler;
// What handlers share.
pub mod state;
// What answers requests.
pub mod api;
pub mod web;
// Putting it together.
pub mod accounts_cli;
pub mod app;
pub mod check;
pub mod serve;

/// The JupyterHub version whose API this hub speaks (compat spec), sent in
/// `X-JupyterHub-Version` and by `GET /hub/api`.
pub const JUPYTERHUB_VERSION: &str = "6.1.1";
