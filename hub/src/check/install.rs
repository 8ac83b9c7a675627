//! Checks of what install.sh puts in place: the helpers' owners and modes, the accounts
//! and group, the sudoers rule, and the settings both configs must agree on.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use super::{CheckPaths, Report};
use crate::config::HubConfig;

/// A helper sudo runs (`what` names it): root's, mode 0755.
pub(super) fn root_binary(path: &std::path::Path, what: &str, r: &mut Report) {
    match std::fs::metadata(path) {
        Ok(m) => r.check(
            m.uid() == 0 && m.mode() & 0o7777 == 0o755,
            format!("{} is root-owned, mode 0755", path.display()),
            format!(
                "{} has owner uid {} and mode {:04o}: fix with `chown root:root {0} && chmod 0755 {0}`",
                path.display(),
                m.uid(),
                m.mode() & 0o7777
            ),
        ),
        Err(e) => r.fail(format!("{what} {}: {e}: run install.sh", path.display())),
    }
}

pub(super) fn binaries(cfg: &HubConfig, r: &mut Report) {
    // A setuid helper is checked with the sudoers rule it replaces (`sudoers`).
    if !cfg.spawner.sudo.is_empty() {
        root_binary(&cfg.spawner.helper, "spawner helper", r);
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

pub(super) fn accounts(h: &sudohub_helpers_config::HelpersConfig, r: &mut Report) {
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

/// `[spawner] sudo = []`: the helper is run directly and must be setuid root, executable
/// by the hub's group only (`root:<hub group>`, 4750): nobody else may start it.
fn setuid_spawner(path: &std::path::Path, hub_user: &str, r: &mut Report) {
    let Some(hub_gid) = nix::unistd::User::from_name(hub_user)
        .ok()
        .flatten()
        .map(|u| u.gid.as_raw())
    else {
        return r.fail(format!("hub_user {hub_user} does not exist"));
    };
    match std::fs::metadata(path) {
        Ok(m) => r.check(
            m.uid() == 0 && m.gid() == hub_gid && m.mode() & 0o7777 == 0o4750,
            format!("{} is setuid root, root:{hub_gid}, mode 4750 ([spawner] sudo = [])", path.display()),
            format!(
                "{} has owner {}:{} and mode {:04o}, but hub.toml [spawner] sudo = [] runs it setuid root: run install.sh --setuid-spawner, or `chown root:<hub group> {0} && chmod 4750 {0}`",
                path.display(),
                m.uid(),
                m.gid(),
                m.mode() & 0o7777
            ),
        ),
        Err(e) => r.fail(format!("spawner helper {}: {e}: run install.sh", path.display())),
    }
}

pub(super) fn sudoers(
    cfg: &HubConfig,
    h: &sudohub_helpers_config::HelpersConfig,
    paths: &CheckPaths,
    r: &mut Report,
) {
    if cfg.spawner.sudo.is_empty() {
        return setuid_spawner(&cfg.spawner.helper, &h.hub_user, r);
    }
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
            && l.contains("(root)")
            && l.contains(&format!("{helper} \"\""))
    });
    r.check(
        rule,
        format!("{} lets {} run {helper} (no arguments) as root, for its root phase", p.display(), h.hub_user),
        format!(
            "{} has no rule `{} ALL=(root) NOPASSWD: {helper} \"\"`: it must name the same user and helper path as the configs (a rule of the form `(%group, !root)` is from before the root phase: run install.sh again)",
            p.display(),
            h.hub_user,
        ),
    );
}

/// The settings the two files must agree on: the hub's cannot be checked by the helpers
/// at run time, and a mismatch only shows later (after a restart, at a first spawn).
pub(super) fn agreement(
    cfg: &HubConfig,
    h: &sudohub_helpers_config::HelpersConfig,
    r: &mut Report,
) {
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
    if let Some(pinned) = &h.spawner.hub_api_url {
        let api = cfg.server_api_url();
        r.check(
            *pinned == api,
            format!("helpers.toml pins the servers' Hub API to this hub's, {api}"),
            format!(
                "helpers.toml [spawner] hub_api_url {pinned} is not this hub's API {api} (from bind/hub_bind and base_url): every spawn would be refused; set hub_api_url = {api:?}"
            ),
        );
    }
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
