//! `sudohub check`: verifies an installation and says, per finding, what to fix.
//!
//! Run by an admin as root (or as the hub user, which sees less). Every check prints one
//! line, `ok` or `FAIL` with the fix; the exit code is 0 only when nothing failed.

mod cgroups;
mod install;
mod slurm;
mod sources;
mod state;
mod unix_accounts;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::HubConfig;
use install::{accounts, agreement, binaries, sudoers};
pub use slurm::slurm_only;
use state::state;
use unix_accounts::account_helper;

/// One result line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Passed or not.
    pub ok: bool,
    /// What was checked and, when it failed, how to fix it.
    pub text: String,
}

/// Where to look besides hub.toml.
#[derive(Debug, Clone)]
pub struct CheckPaths {
    /// The helpers' config (compiled into the helpers).
    pub helpers_config: PathBuf,
    /// The sudoers drop-in.
    pub sudoers: PathBuf,
    /// The PAM service directory.
    pub pam_dir: PathBuf,
}

impl Default for CheckPaths {
    fn default() -> Self {
        Self {
            helpers_config: PathBuf::from(sudohub_helpers_config::CONFIG_PATH),
            sudoers: PathBuf::from("/etc/sudoers.d/sudohub"),
            pam_dir: PathBuf::from("/etc/pam.d"),
        }
    }
}

impl CheckPaths {
    /// The files of an install made with `install.sh --prefix dir`.
    pub fn below(dir: &Path) -> Self {
        Self {
            helpers_config: dir.join("etc/sudohub/helpers.toml"),
            sudoers: dir.join("etc/sudoers.d/sudohub"),
            pam_dir: dir.join("etc/pam.d"),
        }
    }
}

pub(crate) struct Report(Vec<Finding>);

impl Report {
    fn ok(&mut self, text: String) {
        self.0.push(Finding { ok: true, text });
    }
    fn fail(&mut self, text: String) {
        self.0.push(Finding { ok: false, text });
    }
    fn check(&mut self, ok: bool, good: String, bad: String) {
        if ok {
            self.ok(good)
        } else {
            self.fail(bad)
        }
    }
}

/// The login sources' checks alone (the directory, the provider, their files).
pub fn sources_only(cfg: &HubConfig) -> Vec<Finding> {
    let mut r = Report(Vec::new());
    sources::sources(cfg, &mut r);
    r.0
}

/// Runs every check.
pub fn run(cfg: &HubConfig, paths: &CheckPaths) -> Vec<Finding> {
    let mut r = Report(Vec::new());
    binaries(cfg, &mut r);
    let helpers = match sudohub_helpers_config::load_trusted(&paths.helpers_config) {
        Ok(h) => {
            r.ok(format!(
                "{} is owned by root and not writable by others",
                paths.helpers_config.display()
            ));
            Some(h)
        }
        Err(e) => {
            r.fail(format!("{e}"));
            None
        }
    };
    if let Some(h) = &helpers {
        accounts(h, &mut r);
        sudoers(cfg, h, paths, &mut r);
        account_helper(cfg, h, paths, &mut r);
        agreement(cfg, h, &mut r);
        slurm::slurm(cfg, h, &mut r);
        let program = h
            .spawner
            .command
            .first()
            .map(PathBuf::from)
            .unwrap_or_default();
        let exec = std::fs::metadata(&program).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
        r.check(
            exec,
            format!("the single-user command {} exists and is executable", program.display()),
            format!("the single-user command {} is missing or not executable: run install.sh, or fix spawner.command in helpers.toml", program.display()),
        );
        pam_state(&h.pam.state_dir, &mut r);
        for var in cfg.auth.oauth.iter().flat_map(|o| o.auth_state_env.keys()) {
            r.check(
                h.spawner.env_allowed(var),
                format!("auth_state_env {var} is admitted by helpers.toml env_allow"),
                format!("auth_state_env {var} would make every start of that user's servers fail: add \"{var}\" to [spawner] env_allow in helpers.toml"),
            );
        }
        let pam = paths.pam_dir.join(&h.pam.service);
        r.check(
            pam.is_file(),
            format!("PAM service {} is present", pam.display()),
            format!(
                "PAM service file {} is missing: install pam.d/sudohub there",
                pam.display()
            ),
        );
    }
    state(cfg, &mut r);
    sources::sources(cfg, &mut r);
    let needed = helpers
        .as_ref()
        .map(|h| h.limits.controllers_needed())
        .unwrap_or_default();
    cgroups::cgroups(&mut r, &needed);
    r.0
}

/// The PAM helper's pacing directory: root:shadow, nothing for others (the hub, not in
/// shadow, must not reset it).
fn pam_state(dir: &Path, r: &mut Report) {
    let shadow = nix::unistd::Group::from_name("shadow")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw());
    match std::fs::symlink_metadata(dir) {
        Ok(m) => r.check(
            m.is_dir() && m.uid() == 0 && Some(m.gid()) == shadow && m.mode() & 0o007 == 0,
            format!("PAM pacing directory {} is root:shadow, mode {:04o}", dir.display(), m.mode() & 0o7777),
            format!(
                "PAM pacing directory {} must be a root:shadow directory without access for others: `chown root:shadow {0} && chmod 0770 {0}`",
                dir.display()
            ),
        ),
        Err(_) => r.fail(format!(
            "PAM pacing directory {} is missing (logins will fail): `install -d -m 0770 -o root -g shadow {0}`",
            dir.display()
        )),
    }
}

/// `sudohub check`: loads hub.toml (`config`, else the one of `prefix` or the default),
/// runs every check against the install at `prefix` (default `/`), prints one line per
/// check, and exits 0 only when all passed.
pub fn main(
    config: Option<PathBuf>,
    prefix: Option<PathBuf>,
    sudoers: Option<PathBuf>,
) -> ExitCode {
    let root = prefix.clone().unwrap_or_else(|| PathBuf::from("/"));
    let config_path = config.unwrap_or_else(|| root.join("etc/sudohub/hub.toml"));
    let config = match HubConfig::load(&config_path) {
        Ok(c) => {
            println!("ok   {} is valid", config_path.display());
            c
        }
        Err(e) => {
            println!("FAIL {e}");
            return ExitCode::from(1);
        }
    };
    let mut paths = match &prefix {
        Some(dir) => CheckPaths::below(dir),
        None => CheckPaths::default(),
    };
    if let Some(file) = sudoers {
        paths.sudoers = file;
    }
    if print(&run(&config, &paths)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints the findings; returns whether all passed.
pub fn print(findings: &[Finding]) -> bool {
    for f in findings {
        println!("{} {}", if f.ok { "ok  " } else { "FAIL" }, f.text);
    }
    let failed = findings.iter().filter(|f| !f.ok).count();
    if failed == 0 {
        println!("all {} checks passed", findings.len());
    } else {
        println!("{failed} of {} checks failed", findings.len());
    }
    failed == 0
}
