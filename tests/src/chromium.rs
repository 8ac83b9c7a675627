//! Debian's chromium driven by playwright-core: the scripts of `tests/browser/` run with a
//! signed-in user's cookies and print JSON of what they saw.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sudohub::auth::cookies::LOGIN_COOKIE;

/// `tests/browser/`: the scripts and their `node_modules`.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Fails (never skips) when the browser or its driver is missing: `./test.sh` installs
/// both (scripts/deps.sh).
pub fn require_browser() {
    for (what, ok) in [
        ("/usr/bin/chromium", Path::new("/usr/bin/chromium").exists()),
        (
            "tests/browser/node_modules/playwright-core",
            browser_dir().join("node_modules/playwright-core").exists(),
        ),
        (
            "node",
            Command::new("node").arg("--version").output().is_ok(),
        ),
    ] {
        assert!(
            ok,
            "{what} is missing: run ./test.sh, which installs it (scripts/deps.sh)"
        );
    }
}

/// Where a failing script leaves its screenshots: `target/browser-shots/`.
pub fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-shots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Runs `script` of `tests/browser/` against the hub at `base` (`scheme://host:port`)
/// with a login cookie and a session id cookie, plus `env`; its JSON. A failed run
/// fails the test with the script's output (which names its screenshot).
pub fn run(base: &str, script: &str, login: &str, sid: &str, env: &[(&str, &str)]) -> Value {
    let cookies = serde_json::json!([
        {"name": LOGIN_COOKIE, "value": login, "path": "/hub/"},
        {"name": "jupyterhub-session-id", "value": sid, "path": "/"},
    ]);
    run_with(base, script, &cookies, env)
}

/// [`run`] in a browser that is not signed in.
pub fn run_signed_out(base: &str, script: &str, env: &[(&str, &str)]) -> Value {
    run_with(base, script, &serde_json::json!([]), env)
}

fn run_with(base: &str, script: &str, cookies: &Value, env: &[(&str, &str)]) -> Value {
    let out = Command::new("node")
        .arg(browser_dir().join(script))
        .env("SUDOHUB_BASE", base)
        .env("SUDOHUB_COOKIES", cookies.to_string())
        .env("SUDOHUB_SHOTS", shots_dir())
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    report
}
