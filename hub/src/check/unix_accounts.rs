//! Checks of `create_system_users`: the account helper, its sudoers rule, and that the
//! helper will see root's consent (hub.toml next to helpers.toml, or `[accounts] create`),
//! with homes and skeleton of root's.

use std::os::unix::fs::MetadataExt;

use super::{CheckPaths, Report};
use crate::config::HubConfig;

pub(super) fn account_helper(
    cfg: &HubConfig,
    h: &sudohub_helpers_config::HelpersConfig,
    paths: &CheckPaths,
    r: &mut Report,
) {
    if !cfg.auth.create_system_users {
        r.ok("create_system_users is off: the hub makes no Unix accounts".into());
        return;
    }
    let helper = &cfg.auth.account_helper;
    super::install::root_binary(helper, "account helper", r);
    let text = std::fs::read_to_string(&paths.sudoers).unwrap_or_default();
    let shown = helper.display().to_string();
    let rule = text.lines().any(|l| {
        let l = l.trim();
        !l.starts_with('#')
            && l.starts_with(&h.hub_user)
            && l.contains("(root)")
            && l.ends_with(&format!("{shown} \"\""))
    });
    r.check(
        rule,
        format!("{} lets {} run {shown} (no arguments) as root", paths.sudoers.display(), h.hub_user),
        format!(
            "{} has no rule `{} ALL=(root) NOPASSWD: {shown} \"\"`: new users' accounts cannot be made; run install.sh",
            paths.sudoers.display(),
            h.hub_user
        ),
    );
    let next_to = paths.helpers_config.with_file_name("hub.toml");
    let asked = match sudohub_helpers_config::hub_wants_accounts(&paths.helpers_config) {
        Ok(a) => a,
        Err(e) => {
            r.fail(format!(
                "the account helper cannot read {}: {e}",
                next_to.display()
            ));
            return;
        }
    };
    let a = h.accounts.clone().unwrap_or_default();
    if !(asked || a.create) {
        r.fail(format!(
            "the account helper will refuse: it takes root's consent from {} ([auth] create_system_users = true) or helpers.toml ([accounts] create = true), and neither says so",
            next_to.display()
        ));
        return;
    }
    let uids = a.uids(h.min_uid);
    r.ok(format!(
        "the account helper will make new accounts: uids {}–{}, shell {}, homes in {}, group {}",
        uids.start(),
        uids.end(),
        a.shell,
        a.home_base.display(),
        h.allowed_group
    ));
    for dir in [&a.home_base, &a.skel] {
        let ok = std::fs::symlink_metadata(dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0);
        r.check(
            ok,
            format!("{} is a directory of root's", dir.display()),
            format!(
                "{} must be a directory owned by root and writable by root alone: the account helper refuses otherwise",
                dir.display()
            ),
        );
    }
}
