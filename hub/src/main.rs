//! The `sudohub` binary.
fn main() {}
