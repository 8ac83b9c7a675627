//! Shared fixtures of the end-to-end tests: real Unix users and groups, sudoers drop-ins,
//! helpers installed with their real owners and modes, and readers of `/proc`.
//!
//! Every fixture removes what it created when dropped, including after a failed assertion,
//! so a red test leaves no users, groups, sudoers rules or processes behind.
//!
//! These tests need root. They never skip: run them with `sudo ./test.sh` (CI runs as root).

pub mod browser;
pub mod fs;
pub mod hub;
pub mod kernel;
pub mod proc;
pub mod system;

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Panics unless the tests run as root. Tests that create users call this first, so that a
/// non-root run fails loudly instead of passing vacuously.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this end-to-end test creates users, groups and sudoers rules and must run as root: \
             run `sudo ./test.sh`"
        );
    }
}

/// A name that no other test run (nor a previous crashed one) uses: a prefix, the pid and a
/// counter, within the 32 characters of a POSIX user name.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}x{n}", std::process::id());
    assert!(name.len() <= 32, "name {name} too long for a user name");
    name
}

/// Directory holding the helpers built by ./test.sh for the tests (they read their config
/// from [`sudohub_helpers_config::CONFIG_PATH`] of the test build).
pub fn test_bin_dir() -> PathBuf {
    let dir = std::env::var_os("SUDOHUB_TEST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    assert!(
        dir.join("sudohub-spawner").is_file(),
        "test helpers not built in {}: run ./test.sh, which builds them with a test config path",
        dir.display()
    );
    dir
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
