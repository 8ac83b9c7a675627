//! sudohub, the hub: the unprivileged, web-facing process.
//!
//! It never acts as another user itself: spawning goes through `sudohub-spawner` (run with
//! `sudo`), password checks through `sudohub-pam` (setgid `shadow`). See DESIGN.md.
#![forbid(unsafe_code)]
// axum handlers return `Response` (128 bytes) as their error: boxing it everywhere would
// only add noise to every handler.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod api;
pub mod app;
pub mod auth;
pub mod check;
pub mod config;
pub mod db;
pub mod lifecycle;
pub mod proxy;
pub mod reattach;
pub mod spawner;
pub mod tls;
pub mod tokens;
pub mod web;
