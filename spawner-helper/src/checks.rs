//! Start-up self-checks, in the order that makes each one meaningful. Nothing is started
//! and nothing from the hub is read until all of them pass.
#![forbid(unsafe_code)]

use std::path::Path;

use nix::unistd::{getegid, geteuid, getgid, getuid, Group, Uid, User};
use sudohub_helpers_config::{load_trusted, HelpersConfig};
use sudohub_protocol::spawner::ErrorKind;

use crate::error::{HelperError, EXIT_USAGE};

/// Who the helper acts for and under which rules, once every check has passed.
pub struct Verified {
    /// The root-owned configuration.
    pub config: HelpersConfig,
    /// The uid that invoked sudo (the hub's).
    pub caller_uid: Uid,
    /// The user the helper runs as, and the server will run as.
    pub user: User,
}

/// Runs the checks. `Err(Ok(code))` is a usage error (arguments given), reported by exit
/// code only; `Err(Err(e))` is a refusal.
pub fn verify(config_path: &Path) -> Result<Verified, Result<i32, HelperError>> {
    // 1. No arguments: sudoers allows none (`""`); anything here means the helper was run
    //    some other way, and it takes no instructions from its command line.
    if std::env::args_os().len() > 1 {
        return Err(Ok(EXIT_USAGE));
    }
    verify_identity(config_path).map_err(Err)
}

fn verify_identity(config_path: &Path) -> Result<Verified, HelperError> {
    let refuse = |kind, msg: String| HelperError::new(kind, msg);

    // 2. Not root, and no setuid/setgid games: real and effective ids agree. A server
    //    started as root (sudo misconfigured, or the helper made setuid) is never acceptable.
    let uid = getuid();
    if uid.is_root() || geteuid().is_root() {
        return Err(refuse(
            ErrorKind::BadIdentity,
            "refusing to run as root".into(),
        ));
    }
    if uid != geteuid() || getgid() != getegid() {
        return Err(refuse(
            ErrorKind::BadIdentity,
            "real and effective ids differ: the helper must not be setuid or setgid".into(),
        ));
    }

    // 3. The rules come from a file only root can change; the hub has no say in them.
    let config = load_trusted(config_path).map_err(|e| refuse(ErrorKind::Config, e.to_string()))?;

    // 4. System accounts stay out even if someone adds them to the group.
    if uid.as_raw() < config.min_uid {
        return Err(refuse(
            ErrorKind::BadIdentity,
            format!("uid {uid} is below min_uid {}", config.min_uid),
        ));
    }

    // 5. Only the hub may drive the helper. sudo sets SUDO_UID from the real uid of its
    //    caller after resetting the environment; without sudo, the caller is ourselves.
    let caller_uid = match std::env::var("SUDO_UID") {
        Ok(v) => Uid::from_raw(v.parse().map_err(|_| {
            refuse(
                ErrorKind::CallerNotHub,
                format!("SUDO_UID {v:?} is not a uid"),
            )
        })?),
        Err(_) => uid,
    };
    let hub = User::from_name(&config.hub_user)
        .ok()
        .flatten()
        .ok_or_else(|| {
            refuse(
                ErrorKind::Config,
                format!("hub_user {:?} does not exist", config.hub_user),
            )
        })?;
    if caller_uid != hub.uid {
        return Err(refuse(
            ErrorKind::CallerNotHub,
            format!(
                "caller uid {caller_uid} is not the hub user {} (uid {})",
                hub.name, hub.uid
            ),
        ));
    }

    // 6. The target user must be a member of the allowed group — the same group the
    //    sudoers rule names, checked again here in case the rule is wider than it should be.
    let user = User::from_uid(uid).ok().flatten().ok_or_else(|| {
        refuse(
            ErrorKind::UserNotAllowed,
            format!("uid {uid} has no passwd entry"),
        )
    })?;
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

    // 7. The user's own primary group, not one the caller picked with `sudo -g`: the
    //    server would otherwise run with (and create files as) a group of the hub's choice.
    if getgid() != user.gid {
        return Err(refuse(
            ErrorKind::BadIdentity,
            format!(
                "running with gid {} instead of {}'s own {}: `sudo -g` is not allowed",
                getgid(),
                user.name,
                user.gid
            ),
        ));
    }

    Ok(Verified {
        config,
        caller_uid,
        user,
    })
}

/// A warning to log when no-new-privs is already set on the helper itself: then sudo
/// could not have worked, so the helper is being run some other way, most likely by a
/// systemd unit with `NoNewPrivileges=` or an option that implies it.
pub fn no_new_privs_warning() -> Option<&'static str> {
    let set = nix::sys::prctl::get_no_new_privs().ok()?;
    set.then_some(
        "no-new-privs is already set on the helper: sudo cannot work under it; check the hub's \
         systemd unit for NoNewPrivileges= or options that imply it (SystemCallFilter=, \
         RestrictSUIDSGID=, PrivateDevices=, ...)",
    )
}
