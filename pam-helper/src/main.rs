//! Placeholder: the spawner helper is being written.
fn main() {}
