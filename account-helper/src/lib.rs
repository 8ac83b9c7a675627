//! `sudohub-account`: creates the Unix account of one hub user (JupyterHub's
//! `create_system_users`), for the hub only.
//!
//! Installed `root:root 0755` and run by the hub as `sudo -n /usr/lib/sudohub/sudohub-account`
//! through a sudoers rule that names this binary, as root, with no arguments. It is the
//! one helper that runs as root, so it does one thing in one shape, and [`run`] is one
//! linear pipeline, each step stopping an attack by a compromised hub account:
//!
//! 1. no core dumps, not dumpable, clean environment, inherited fds closed;
//! 2. no arguments, effective uid root, the root-owned config, and root's consent: hub.toml
//!    next to it (root's too) says `[auth] create_system_users = true`, or helpers.toml
//!    `[accounts] create = true` — without one the helper creates nothing;
//! 3. the caller (`SUDO_UID`, which sudo sets) is `hub_user`;
//! 4. one hello and one request, bounded, decoded whole — the request carries a name and
//!    nothing else: uid, groups, home and shell come from the config alone;
//! 5. the name passes the naming rule, and no user, group or home of that name exists:
//!    an existing account is never touched;
//! 6. the home base and skeleton are root's (no component the hub could swap for a link);
//! 7. `useradd`, with arguments built here only ([`useradd_args`]);
//! 8. the result is checked ([`check_made`]); anything off and the account is removed
//!    again, so nothing half-made stays;
//! 9. one answer; one log line on stderr and in syslog (caller, name, result).
//!
//! Why `useradd` and not our own writes to /etc/passwd: it takes the shadow suite's
//! locks (`lckpwdf`), keeps passwd, shadow, group and gshadow in step, allocates the uid
//! and gid under those locks, copies the skeleton as the new owner, and is what every
//! admin already trusts; reimplementing that is where account tools get their bugs.
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod made;
// The one module where the crate-wide deny above is lifted; each block there carries a SAFETY note.
#[allow(unsafe_code)]
mod sys;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{geteuid, Group, User};
use sudohub_helpers_config::{
    hub_wants_accounts, is_new_account_name, load_trusted, AccountsConfig, HelpersConfig,
};
use sudohub_protocol::account::{AccountAnswer, AccountRefusal, AccountRequest};
use sudohub_protocol::frame::{read_message, write_frame};
use sudohub_protocol::{Bounded, PROTOCOL_VERSION};

pub use made::check_made;

/// Runs the helper; returns its exit code (0 created, 1 and up refused by kind).
pub fn run() -> i32 {
    let hardened = harden();
    let caller = std::env::var("SUDO_UID").unwrap_or_else(|_| "-".into());
    let (answer, name) = match hardened {
        Ok(()) => decide(Path::new(sudohub_helpers_config::CONFIG_PATH), &caller),
        Err(e) => (
            refused(AccountRefusal::Failed, format!("cannot start safely: {e}")),
            None,
        ),
    };
    let result = match &answer {
        AccountAnswer::Created { uid } => format!("created uid={uid}"),
        AccountAnswer::Refused { kind, message } => format!("refused:{kind:?} {message:?}"),
    };
    // Debug-quoted: a name with a newline cannot forge a second log line.
    let line = format!(
        "caller_uid={caller:?} name={:?} result={result}",
        name.as_deref().unwrap_or("-")
    );
    eprintln!("sudohub-account: {line}");
    syslog(&line);
    let mut out = std::io::stdout();
    let _ = write_frame(&mut out, &answer).map(|()| out.flush());
    exit_code(&answer)
}

/// Every request also goes to the system log (authpriv), which the hub cannot edit.
fn syslog(line: &str) {
    use std::os::unix::net::UnixDatagram;
    // authpriv (10) * 8 + notice (5).
    let msg = format!("<85>sudohub-account[{}]: {line}", std::process::id());
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.set_nonblocking(true);
        let _ = sock.send_to(msg.as_bytes(), "/dev/log");
    }
}

/// Step 1.
fn harden() -> std::io::Result<()> {
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    let _ = nix::sys::prctl::set_dumpable(false);
    for (key, _) in std::env::vars_os() {
        if key != "SUDO_UID" {
            std::env::remove_var(key);
        }
    }
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    sys::close_inherited_fds()
}

fn refused(kind: AccountRefusal, message: String) -> AccountAnswer {
    let message = Bounded::new(message.chars().take(900).collect::<String>()).unwrap_or_default();
    AccountAnswer::Refused { kind, message }
}

/// Steps 2–8; the answer and the name when one was read.
fn decide(config_path: &Path, caller: &str) -> (AccountAnswer, Option<String>) {
    let no = |kind, m: String| (refused(kind, m), None);
    if std::env::args_os().len() > 1 {
        return no(
            AccountRefusal::CallerNotHub,
            "takes no arguments; the hub runs it through sudo".into(),
        );
    }
    if !geteuid().is_root() {
        return no(
            AccountRefusal::CallerNotHub,
            "must run as root, through sudo".into(),
        );
    }
    let config = match load_trusted(config_path) {
        Ok(c) => c,
        Err(e) => return no(AccountRefusal::Config, e.to_string()),
    };
    // Root's switch: hub.toml's `[auth] create_system_users` next to this file (the hub
    // cannot write it), or `[accounts] create` here.
    let asked = match hub_wants_accounts(config_path) {
        Ok(a) => a,
        Err(e) => return no(AccountRefusal::Config, e.to_string()),
    };
    let accounts = config.accounts.clone().unwrap_or_default();
    if !(asked || accounts.create) {
        return no(
            AccountRefusal::Config,
            "root's configuration does not ask for accounts: hub.toml [auth] create_system_users = true, or helpers.toml [accounts] create = true".into(),
        );
    }
    let hub_uid = User::from_name(&config.hub_user)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    if hub_uid.is_none() || caller.parse::<u32>().ok() != hub_uid {
        let m = format!(
            "the caller (SUDO_UID {caller:?}) is not the hub user {}",
            config.hub_user
        );
        return no(AccountRefusal::CallerNotHub, m);
    }
    let name = match read_request() {
        Ok(n) => n,
        Err(answer) => return (answer, None),
    };
    let answer = create(&config, &accounts, &name);
    (answer, Some(name))
}

/// Step 4: hello, then one `Create`.
fn read_request() -> Result<String, AccountAnswer> {
    let mut stdin = std::io::stdin().lock();
    let bad = |m: String| refused(AccountRefusal::BadFrame, m);
    match read_message::<_, AccountRequest>(&mut stdin) {
        Ok(Some(AccountRequest::Hello(h))) if h.version == PROTOCOL_VERSION => {}
        Ok(Some(AccountRequest::Hello(h))) => {
            let m = format!(
                "hub speaks protocol {}, helper {PROTOCOL_VERSION}",
                h.version
            );
            return Err(refused(AccountRefusal::ProtocolVersion, m));
        }
        Ok(_) => return Err(bad("expected a hello first".into())),
        Err(e) => return Err(bad(e.to_string())),
    }
    match read_message::<_, AccountRequest>(&mut stdin) {
        Ok(Some(AccountRequest::Create { name })) => Ok(name.into_inner()),
        Ok(_) => Err(bad("expected one create request".into())),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Steps 5–8 for `name`.
fn create(config: &HelpersConfig, accounts: &AccountsConfig, name: &str) -> AccountAnswer {
    if !is_new_account_name(name) || name == "root" {
        let shown: String = name.chars().take(40).collect();
        return refused(
            AccountRefusal::InvalidName,
            format!("{shown:?} is not a name for a new account"),
        );
    }
    if User::from_name(name).ok().flatten().is_some() {
        return refused(
            AccountRefusal::Exists,
            format!("user {name} exists; it is left as it is"),
        );
    }
    if Group::from_name(name).ok().flatten().is_some() {
        return refused(
            AccountRefusal::Exists,
            format!("a group {name} exists; it is left as it is"),
        );
    }
    let home = accounts.home_base.join(name);
    if std::fs::symlink_metadata(&home).is_ok() {
        return refused(
            AccountRefusal::Exists,
            format!("{} exists; it is left as it is", home.display()),
        );
    }
    for dir in [&accounts.home_base, &accounts.skel] {
        if let Err(m) = roots_own(dir) {
            return refused(AccountRefusal::Config, m);
        }
    }
    if Group::from_name(&config.allowed_group)
        .ok()
        .flatten()
        .is_none()
    {
        let m = format!("allowed_group {} does not exist", config.allowed_group);
        return refused(AccountRefusal::Config, m);
    }
    let uids = accounts.uids(config.min_uid);
    let out = Command::new("/usr/sbin/useradd")
        .args(useradd_args(config, accounts, name, &home))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return refused(AccountRefusal::Failed, format!("cannot run useradd: {e}")),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        // useradd exit 4: no uid free in the range; anything it did not finish it undid.
        let kind = if out.status.code() == Some(4) {
            AccountRefusal::NoUid
        } else {
            AccountRefusal::Failed
        };
        return refused(kind, format!("useradd failed ({}): {err}", out.status));
    }
    match check_made(name, &home, &uids, &config.allowed_group, &accounts.shell) {
        Ok(uid) => AccountAnswer::Created { uid },
        Err(problem) => {
            let undo = Command::new("/usr/sbin/userdel")
                .args(["--remove", "--", name])
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .output();
            let undone = undo.is_ok_and(|o| o.status.success());
            refused(
                AccountRefusal::Failed,
                format!(
                    "the new account was not as configured ({problem}); removed again: {undone}"
                ),
            )
        }
    }
}

/// The arguments of `useradd` for `name`: everything but the name comes from the
/// root-owned configuration.
pub fn useradd_args(
    config: &HelpersConfig,
    accounts: &AccountsConfig,
    name: &str,
    home: &Path,
) -> Vec<String> {
    let uids = accounts.uids(config.min_uid);
    let (lo, hi) = (uids.start(), uids.end());
    vec![
        "--create-home".into(),
        "--home-dir".into(),
        home.display().to_string(),
        "--skel".into(),
        accounts.skel.display().to_string(),
        "--shell".into(),
        accounts.shell.clone(),
        "--user-group".into(),
        "--groups".into(),
        config.allowed_group.clone(),
        "--comment".into(),
        "sudohub user".into(),
        "--key".into(),
        format!("UID_MIN={lo}"),
        "--key".into(),
        format!("UID_MAX={hi}"),
        "--key".into(),
        format!("GID_MIN={lo}"),
        "--key".into(),
        format!("GID_MAX={hi}"),
        "--key".into(),
        "HOME_MODE=0700".into(),
        "--".into(),
        name.into(),
    ]
}

/// Whether `dir` and every directory above it is root's and writable by root alone,
/// and none is a symbolic link: nobody else could have put anything in the path.
fn roots_own(dir: &Path) -> Result<(), String> {
    let mut at = PathBuf::new();
    for part in dir.components() {
        at.push(part);
        let meta = std::fs::symlink_metadata(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        let ok = meta.is_dir() && meta.uid() == 0 && meta.mode() & 0o022 == 0;
        if !ok {
            return Err(format!(
                "{} must be a directory of root's that only root can write (and not a link)",
                at.display()
            ));
        }
    }
    Ok(())
}

fn exit_code(answer: &AccountAnswer) -> i32 {
    match answer {
        AccountAnswer::Created { .. } => 0,
        AccountAnswer::Refused { kind, .. } => match kind {
            AccountRefusal::Exists => 1,
            AccountRefusal::CallerNotHub => 2,
            AccountRefusal::Config => 3,
            AccountRefusal::ProtocolVersion | AccountRefusal::BadFrame => 4,
            AccountRefusal::InvalidName => 5,
            AccountRefusal::NoUid => 6,
            AccountRefusal::Failed => 7,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn useradd_gets_the_configured_shape_and_the_name_last() {
        let config = sudohub_helpers_config::parse(
            "hub_user = \"sudohub\"\nallowed_group = \"jupyterhub\"\nmin_uid = 1000\n\
             [accounts]\ncreate = true\nuid_min = 3000\nuid_max = 3999\nshell = \"/bin/sh\"\n",
            Path::new("/etc/sudohub/helpers.toml"),
        )
        .unwrap();
        let a = config.accounts.clone().unwrap();
        let args = useradd_args(&config, &a, "carol", Path::new("/home/carol"));
        let joined = args.join(" ");
        for want in [
            "--create-home --home-dir /home/carol --skel /etc/skel --shell /bin/sh",
            "--user-group --groups jupyterhub",
            "--key UID_MIN=3000 --key UID_MAX=3999 --key GID_MIN=3000 --key GID_MAX=3999",
            "--key HOME_MODE=0700 -- carol",
        ] {
            assert!(joined.contains(want), "{joined}");
        }
        assert_eq!(args.last().unwrap(), "carol");
    }

    #[test]
    fn paths_of_others_are_refused() {
        assert!(roots_own(Path::new("/etc")).is_ok());
        let tmp = std::env::temp_dir().join(format!("acct-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(roots_own(&tmp).is_err(), "world-writable");
        let link = std::env::temp_dir().join(format!("acct-link-{}", std::process::id()));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        assert!(roots_own(&link).is_err(), "a link");
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_dir(&tmp);
    }
}
