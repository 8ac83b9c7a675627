//! `sudohub-account`: see the library crate for what it does and why.
fn main() {
    std::process::exit(sudohub_account::run());
}
