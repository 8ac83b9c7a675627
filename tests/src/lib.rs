//! Shared fixtures of the end-to-end tests: real Unix users and groups, sudoers drop-ins,
//! helpers installed with their real owners and modes, and readers of `/proc`.
//!
//! Every fixture removes what it created when dropped, including after a failed assertion,
//! so a red test leaves no users, groups, sudoers rules or processes behind.
//!
//! These tests need root. They never skip: run them with `sudo ./test.sh` (CI runs as root).

pub mod browser;
pub mod cgroup;
pub mod chromium;
pub mod fs;
pub mod hub;
pub mod kernel;
pub mod ldap;
pub mod oidc;
pub mod proc;
pub mod slurm;
pub mod system;
pub mod tls;

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

/// Environment variable that marks a test run re-executed by [`run_test_as`].
pub const INNER: &str = "SUDOHUB_TEST_INNER";

/// Runs the test `test` of the current test binary again, as `user` (through `setpriv`),
/// with `vars` in its environment and [`INNER`] set, and panics with its output unless it
/// passes. For tests whose subject must run as an unprivileged user — the hub's clients
/// of the helpers check who calls them — while the outer test, as root, sets up users.
pub fn run_test_as(user: &system::TestUser, test: &str, vars: &[(&str, String)]) -> String {
    // The checkout may sit where other users cannot reach (CI clones under /root): run a
    // copy from a directory everyone can traverse.
    let dir = std::env::temp_dir().join(unique_name("shinner"));
    std::fs::create_dir_all(&dir).expect("inner dir");
    let exe = dir.join("test-binary");
    std::fs::copy(std::env::current_exe().expect("current test binary"), &exe)
        .expect("copy test binary");
    let root = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
    fs::chown_mode(&dir, root.0, root.1, 0o755);
    fs::chown_mode(&exe, root.0, root.1, 0o755);
    let mut cmd = user.command(&exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("re-run the test binary");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "inner run of {test} as {} failed:\n{text}",
        user.name
    );
    text
}

/// The value of `name` in an inner run (see [`run_test_as`]); panics when missing.
pub fn inner_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("inner test run without {name}"))
}
