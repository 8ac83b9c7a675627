//! sudohub, the hub: the unprivileged, web-facing process.
//!
//! It never acts as another user itself: spawning goes through `sudohub-spawner` (run with
//! `sudo`), password checks through `sudohub-pam` (setgid `shadow`). See DESIGN.md.
#![forbid(unsafe_code)]

pub mod auth;
pub mod proxy;
pub mod reattach;
pub mod spawner;
