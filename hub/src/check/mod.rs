//! `sudohub check`: verifies an installation and says, per finding, what to fix.
//!
//! Run by an admin as root (or as the hub user, which sees less). Every check prints one
//! line, `ok` or `FAIL` with the fix; the exit code is 0 only when nothing failed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::HubConfig;

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

struct Report(Vec<Finding>);

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
        agreement(cfg, h, &mut r);
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
    r.0
}

fn binaries(cfg: &HubConfig, r: &mut Report) {
    let spawner = &cfg.spawner.helper;
    match std::fs::metadata(spawner) {
        Ok(m) => r.check(
            m.uid() == 0 && m.mode() & 0o7777 == 0o755,
            format!("{} is root-owned, mode 0755", spawner.display()),
            format!(
                "{} has owner uid {} and mode {:04o}: fix with `chown root:root {0} && chmod 0755 {0}`",
                spawner.display(),
                m.uid(),
                m.mode() & 0o7777
            ),
        ),
        Err(e) => r.fail(format!("spawner helper {}: {e}: run install.sh", spawner.display())),
    }
    let pam = &cfg.pam.helper;
    let shadow = nix::unistd::Group::from_name("shadow")
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw());
    match std::fs::metadata(pam) {
        Ok(m) => r.check(
            m.uid() == 0 && Some(m.gid()) == shadow && m.mode() & 0o7777 == 0o2755,
            format!("{} is root:shadow, mode 2755 (setgid shadow)", pam.display()),
            format!(
                "{} has owner {}:{} and mode {:04o}: fix with `chown root:shadow {0} && chmod 2755 {0}`",
                pam.display(),
                m.uid(),
                m.gid(),
                m.mode() & 0o7777
            ),
        ),
        Err(e) => r.fail(format!("PAM helper {}: {e}: run install.sh", pam.display())),
    }
}

fn accounts(h: &sudohub_helpers_config::HelpersConfig, r: &mut Report) {
    match nix::unistd::User::from_name(&h.hub_user).ok().flatten() {
        Some(u) => {
            r.check(
                !u.uid.is_root(),
                format!("hub user {} exists and is not root", h.hub_user),
                format!(
                    "hub user {} is root: the hub must run as an unprivileged account",
                    h.hub_user
                ),
            );
            let groups = crate::auth::rules::user_groups(&h.hub_user);
            r.check(
                !groups.iter().any(|g| g == "shadow"),
                format!("hub user {} is not in group shadow", h.hub_user),
                format!(
                    "hub user {} is in group shadow: it must never read password hashes; fix with `gpasswd -d {} shadow`",
                    h.hub_user, h.hub_user
                ),
            );
        }
        None => r.fail(format!(
            "hub user {} does not exist: run install.sh",
            h.hub_user
        )),
    }
    match nix::unistd::Group::from_name(&h.allowed_group)
        .ok()
        .flatten()
    {
        Some(g) if g.mem.is_empty() => r.ok(format!(
            "group {} exists (no members yet: add users with `usermod -aG {} <name>`)",
            g.name, g.name
        )),
        Some(g) => r.ok(format!(
            "group {} exists with {} member(s)",
            g.name,
            g.mem.len()
        )),
        None => r.fail(format!(
            "allowed group {} does not exist: `groupadd {}`",
            h.allowed_group, h.allowed_group
        )),
    }
}

fn sudoers(
    cfg: &HubConfig,
    h: &sudohub_helpers_config::HelpersConfig,
    paths: &CheckPaths,
    r: &mut Report,
) {
    let p = &paths.sudoers;
    let Ok(m) = std::fs::metadata(p) else {
        r.fail(format!("sudoers rule {} is missing: spawning will fail with \"a password is required\"; run install.sh", p.display()));
        return;
    };
    r.check(
        m.uid() == 0 && m.mode() & 0o7777 == 0o440,
        format!("{} is root-owned, mode 0440", p.display()),
        format!(
            "{} has mode {:04o}: fix with `chown root:root {0} && chmod 0440 {0}`",
            p.display(),
            m.mode() & 0o7777
        ),
    );
    let valid = Command::new("visudo")
        .arg("-cf")
        .arg(p)
        .output()
        .is_ok_and(|o| o.status.success());
    r.check(
        valid,
        format!("{} passes visudo -cf", p.display()),
        format!("{} does not pass `visudo -cf {0}`", p.display()),
    );
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let helper = cfg.spawner.helper.display().to_string();
    let rule = text.lines().any(|l| {
        let l = l.trim();
        !l.starts_with('#')
            && l.starts_with(&h.hub_user)
            && l.contains(&format!("%{}", h.allowed_group))
            && l.contains(&format!("{helper} \"\""))
    });
    r.check(
        rule,
        format!("{} lets {} run {helper} (no arguments) as members of {}", p.display(), h.hub_user, h.allowed_group),
        format!(
            "{} has no rule `{} ALL=(%{}, !root) NOPASSWD: {helper} \"\"`: it must name the same user, group and helper path as the configs",
            p.display(),
            h.hub_user,
            h.allowed_group
        ),
    );
}

/// The settings the two files must agree on: the hub's cannot be checked by the helpers
/// at run time, and a mismatch only shows later (after a restart, at a first spawn).
fn agreement(cfg: &HubConfig, h: &sudohub_helpers_config::HelpersConfig, r: &mut Report) {
    let (hub_sock, helper_sock) = (&cfg.reattach_socket, &h.spawner.reattach_socket);
    r.check(
        hub_sock == helper_sock,
        format!("both configs use the re-attach socket {}", hub_sock.display()),
        format!(
            "hub.toml reattach_socket {} differs from helpers.toml [spawner] reattach_socket {}: servers could not re-attach after a hub restart; make them equal",
            hub_sock.display(),
            helper_sock.display()
        ),
    );
    let strays: Vec<&String> = cfg
        .auth
        .allowed_groups
        .iter()
        .filter(|g| **g != h.allowed_group)
        .collect();
    r.check(
        strays.is_empty(),
        format!(
            "hub.toml [auth] allowed_groups admits only members of {}, the group the helpers serve",
            h.allowed_group
        ),
        format!(
            "hub.toml [auth] allowed_groups names {strays:?}, but the helpers serve only members of {}: those users could log in and never start a server; use {:?}",
            h.allowed_group, h.allowed_group
        ),
    );
}

fn state(cfg: &HubConfig, r: &mut Report) {
    if cfg.db.exists() {
        let version = rusqlite::Connection::open_with_flags(
            &cfg.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| c.pragma_query_value(None, "user_version", |row| row.get::<_, usize>(0)));
        match version {
            Ok(v) if v >= 1 => r.ok(format!(
                "database {} is readable, schema version {v}",
                cfg.db.display()
            )),
            Ok(v) => r.fail(format!(
                "database {} has schema version {v}: start the hub once to migrate it",
                cfg.db.display()
            )),
            Err(e) => r.fail(format!("database {} cannot be read: {e}", cfg.db.display())),
        }
    } else {
        r.ok(format!(
            "database {} will be created at the first start",
            cfg.db.display()
        ));
    }
    match std::fs::metadata(&cfg.cookie_secret_file) {
        Ok(m) => r.check(
            m.mode() & 0o077 == 0,
            format!(
                "cookie secret {} is private (mode {:04o})",
                cfg.cookie_secret_file.display(),
                m.mode() & 0o777
            ),
            format!(
                "cookie secret {} has mode {:04o}: fix with `chmod 600 {0}`",
                cfg.cookie_secret_file.display(),
                m.mode() & 0o777
            ),
        ),
        Err(_) => r.ok(format!(
            "cookie secret {} will be created at the first start",
            cfg.cookie_secret_file.display()
        )),
    }
    if let (Some(cert), Some(key)) = (&cfg.ssl_cert, &cfg.ssl_key) {
        tls(cert, key, r);
    }
    let free = std::net::TcpListener::bind(cfg.bind).is_ok();
    if free {
        r.ok(format!("port {} is free", cfg.bind.port()));
    } else {
        let hub = probe_hub(cfg);
        r.check(
            hub,
            format!("sudohub is running on port {}", cfg.bind.port()),
            format!("port {} is taken by something that is not sudohub: change `bind` in hub.toml or stop it", cfg.bind.port()),
        );
    }
    let dir = cfg.reattach_socket.parent().unwrap_or(Path::new("/"));
    r.check(
        dir.is_dir(),
        format!("re-attach socket directory {} exists", dir.display()),
        format!("re-attach socket directory {} is missing: `install -d -o sudohub -g sudohub -m 0755 {0}`", dir.display()),
    );
}

fn tls(cert: &Path, key: &Path, r: &mut Report) {
    match crate::tls::server_config(cert, key) {
        Ok(_) => r.ok(format!(
            "TLS certificate {} and key {} load and match",
            cert.display(),
            key.display()
        )),
        Err(e) => r.fail(format!("TLS: {e}")),
    }
    if let Ok(m) = std::fs::metadata(key) {
        r.check(
            m.mode() & 0o007 == 0,
            format!("TLS key {} is not readable by others", key.display()),
            format!(
                "TLS key {} has mode {:04o}: fix with `chown root:sudohub {0} && chmod 0640 {0}`",
                key.display(),
                m.mode() & 0o777
            ),
        );
    }
}

/// Whether sudohub answers on its plain-HTTP listener: `bind`, or `hub_bind` with TLS.
fn probe_hub(cfg: &HubConfig) -> bool {
    use std::io::{Read, Write};
    let port = if cfg.tls() {
        cfg.hub_bind.port()
    } else {
        cfg.bind.port()
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let req = format!(
        "GET {}hub/api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        cfg.base_url
    );
    let mut out = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut out).is_ok()
        && out.to_ascii_lowercase().contains("x-jupyterhub-version")
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
