//! The root phase's checks of who is asking and for whom: the hub's account as the
//! caller, and a target user the sudoers runas list used to vet (allowed group, `min_uid`,
//! never root or the hub itself), checked here against root's configuration.
#![forbid(unsafe_code)]

use nix::unistd::{Group, Uid, User};
use sudohub_helpers_config::{is_posix_name, HelpersConfig};
use sudohub_protocol::spawner::ErrorKind;

use crate::error::HelperError;

/// The hub's account, which must be `caller`.
pub fn hub_account(config: &HelpersConfig, caller: Uid) -> Result<User, HelperError> {
    let hub = User::from_name(&config.hub_user)
        .ok()
        .flatten()
        .ok_or_else(|| {
            HelperError::new(
                ErrorKind::Config,
                format!("hub_user {:?} does not exist", config.hub_user),
            )
        })?;
    if caller != hub.uid {
        return Err(HelperError::new(
            ErrorKind::CallerNotHub,
            format!(
                "caller uid {caller} is not the hub user {} (uid {})",
                hub.name, hub.uid
            ),
        ));
    }
    Ok(hub)
}

/// The passwd entry of `name`, if the server may run as it.
pub fn target_user(config: &HelpersConfig, hub: &User, name: &str) -> Result<User, HelperError> {
    let refuse = |kind, msg: String| HelperError::new(kind, msg);
    if !is_posix_name(name) {
        return Err(refuse(
            ErrorKind::BadValue,
            format!("{name:?} is not a valid user name"),
        ));
    }
    let user = User::from_name(name)
        .ok()
        .flatten()
        .filter(|u| u.name == name)
        .ok_or_else(|| refuse(ErrorKind::UserNotAllowed, format!("no user {name:?}")))?;
    // Root, or anyone with root's group or uid under another name, never.
    if user.uid.is_root() || user.gid.as_raw() == 0 {
        return Err(refuse(
            ErrorKind::BadIdentity,
            format!(
                "refusing to run a server as {name} (uid {}, gid {}): root",
                user.uid, user.gid
            ),
        ));
    }
    if user.uid == hub.uid {
        return Err(refuse(
            ErrorKind::BadIdentity,
            format!("refusing to run a server as the hub's own account {name}"),
        ));
    }
    // System accounts stay out even if someone adds them to the group.
    if user.uid.as_raw() < config.min_uid {
        return Err(refuse(
            ErrorKind::BadIdentity,
            format!(
                "uid {} of {name} is below min_uid {}",
                user.uid, config.min_uid
            ),
        ));
    }
    let group = Group::from_name(&config.allowed_group)
        .ok()
        .flatten()
        .ok_or_else(|| {
            refuse(
                ErrorKind::Config,
                format!("allowed_group {:?} does not exist", config.allowed_group),
            )
        })?;
    if user.gid != group.gid && !group.mem.iter().any(|m| m == &user.name) {
        return Err(refuse(
            ErrorKind::UserNotAllowed,
            format!("user {} is not a member of group {}", user.name, group.name),
        ));
    }
    Ok(user)
}

/// The names of every group `user` is in, primary first: what `[limits.groups.*]` match.
pub fn group_names(user: &User) -> Vec<String> {
    let Ok(name) = std::ffi::CString::new(user.name.as_str()) else {
        return Vec::new();
    };
    nix::unistd::getgrouplist(&name, user.gid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| Group::from_gid(g).ok().flatten().map(|g| g.name))
        .collect()
}

/// A warning when no-new-privs is already set on the helper: then neither sudo nor the
/// setuid bit can work, so something runs the hub (and us) under a systemd unit with
/// `NoNewPrivileges=` or an option that implies it.
pub fn no_new_privs_warning() -> Option<&'static str> {
    let set = nix::sys::prctl::get_no_new_privs().ok()?;
    set.then_some(
        "no-new-privs is set on the helper, so neither sudo nor a setuid helper can work: check the hub's \
         systemd unit for NoNewPrivileges= or options that imply it (SystemCallFilter=, \
         RestrictSUIDSGID=, PrivateDevices=, ...)",
    )
}
