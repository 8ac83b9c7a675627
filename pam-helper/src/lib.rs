//! `sudohub-pam`: checks one username and password with PAM, for the hub only.
//!
//! Installed `root:shadow 2755`, so that PAM's `pam_unix` can read `/etc/shadow` while the
//! hub itself stays out of group `shadow`. It is a password oracle for every account on the
//! machine, so [`run`] is one linear pipeline, each step stopping an attack:
//!
//! 1. no core dumps, not dumpable, clean environment, no inherited fds — the password must
//!    not leak through a crash or a PAM module reading the caller's environment;
//! 2. root-owned config; the **real uid** must be its `hub_user` — nobody else may probe
//!    passwords, and nothing is checked for them;
//! 3. one hello and one request, bounded (64 KiB frames, 4 KiB passwords), decoded whole;
//! 4. a valid POSIX user name — no paths, options or NULs reach PAM;
//! 5. a member of the allowed group at or above `min_uid`, else refused without PAM;
//! 6. the account's turn ([`pace`]): one check per account at a time, each failure
//!    recorded before PAM is asked and paid for by a wait before the next check, in state
//!    the hub cannot reset;
//! 7. `pam_authenticate`, then `pam_acct_mgmt`, so locked and expired accounts are refused,
//!    with PAM's own failure delay turned off: a wrong password is answered as soon as a
//!    right one, so when the answer comes tells nothing; step 6 is what a guess costs;
//! 8. one answer; one log line on stderr and in syslog (caller, user, result, reason —
//!    never the password).
#![deny(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod pace;
mod pam;
// The one module where the crate-wide deny above is lifted; each block there carries a SAFETY note.
#[allow(unsafe_code)]
mod sys;

use std::io::Write;
use std::path::Path;

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{getuid, User};
use sudohub_helpers_config::{is_posix_name, load_trusted};
use sudohub_protocol::frame::{read_message, write_frame};
use sudohub_protocol::pam::{DenyReason, PamAnswer, PamErrorKind, PamRequest};
use sudohub_protocol::{Bounded, PROTOCOL_VERSION};

/// Runs the helper; returns its exit code (0 yes, 1 no, 2+ errors by kind).
pub fn run() -> i32 {
    harden();
    let caller = getuid();
    let (answer, user) = decide(Path::new(sudohub_helpers_config::CONFIG_PATH));
    let (result, reason) = match &answer {
        PamAnswer::Ok => ("ok".to_owned(), "-".to_owned()),
        PamAnswer::Denied { reason } => ("denied".to_owned(), format!("{reason:?}")),
        PamAnswer::Error { kind, message } => (format!("error:{kind:?}"), message.to_string()),
    };
    let line = format!(
        "caller_uid={caller} user={} result={result} reason={reason:?}",
        user.as_deref().unwrap_or("-")
    );
    eprintln!("sudohub-pam: {line}");
    syslog(&line);
    let mut out = std::io::stdout();
    let _ = write_frame(&mut out, &answer).map(|()| out.flush());
    exit_code(&answer)
}

/// Every attempt also goes to the system log (authpriv), which the hub cannot edit, not
/// only to the caller's stderr. Without a syslog socket (a container) nothing is sent.
fn syslog(line: &str) {
    use std::os::unix::net::UnixDatagram;
    // authpriv (10) * 8 + notice (5).
    let msg = format!("<85>sudohub-pam[{}]: {line}", std::process::id());
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.set_nonblocking(true);
        let _ = sock.send_to(msg.as_bytes(), "/dev/log");
    }
}

/// Step 1: nothing of this process may end up on disk or in a PAM module's view.
fn harden() {
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // The caller's file-size limit must not cut the pacing record short (`pace`): lift the
    // soft limit to the hard one, which `decide` then requires to be unlimited.
    if let Ok((_, hard)) = nix::sys::resource::getrlimit(Resource::RLIMIT_FSIZE) {
        let _ = setrlimit(Resource::RLIMIT_FSIZE, hard, hard);
    }
    let _ = nix::sys::prctl::set_dumpable(false);
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    std::env::set_var("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    sys::close_inherited_fds();
}

/// Steps 2–5; returns the answer and the user name when one was read.
fn decide(config_path: &Path) -> (PamAnswer, Option<String>) {
    let error = |kind, msg: String| PamAnswer::Error {
        kind,
        message: Bounded::new(msg.chars().take(900).collect::<String>()).unwrap_or_default(),
    };
    let fsize = nix::sys::resource::getrlimit(Resource::RLIMIT_FSIZE);
    if fsize.map_or(true, |(soft, _)| soft != nix::sys::resource::RLIM_INFINITY) {
        let msg = "the caller limits file sizes (RLIMIT_FSIZE): refused".to_owned();
        return (error(PamErrorKind::Config, msg), None);
    }
    let config = match load_trusted(config_path) {
        Ok(c) => c,
        Err(e) => return (error(PamErrorKind::Config, e.to_string()), None),
    };
    let caller = getuid();
    let hub_uid = User::from_name(&config.hub_user)
        .ok()
        .flatten()
        .map(|u| u.uid);
    if hub_uid != Some(caller) {
        let msg = format!(
            "uid {caller} is not the hub user {}: refused",
            config.hub_user
        );
        return (error(PamErrorKind::CallerNotHub, msg), None);
    }
    let mut stdin = std::io::stdin().lock();
    match read_message::<_, PamRequest>(&mut stdin) {
        Ok(Some(PamRequest::Hello(h))) if h.version == PROTOCOL_VERSION => {}
        Ok(Some(PamRequest::Hello(h))) => {
            let msg = format!(
                "hub speaks protocol {}, helper {PROTOCOL_VERSION}",
                h.version
            );
            return (error(PamErrorKind::ProtocolVersion, msg), None);
        }
        Ok(_) => {
            return (
                error(PamErrorKind::BadFrame, "expected a hello first".into()),
                None,
            )
        }
        Err(e) => return (error(PamErrorKind::BadFrame, e.to_string()), None),
    }
    let (username, password) = match read_message::<_, PamRequest>(&mut stdin) {
        Ok(Some(PamRequest::Authenticate { username, password })) => (username, password),
        Ok(_) => {
            return (
                error(
                    PamErrorKind::BadFrame,
                    "expected one authenticate request".into(),
                ),
                None,
            )
        }
        Err(e) => return (error(PamErrorKind::BadFrame, e.to_string()), None),
    };
    let username = username.into_inner();
    if !is_posix_name(&username) {
        let shown: String = username.chars().take(40).collect();
        return (
            error(
                PamErrorKind::InvalidUsername,
                format!("{shown:?} is not a valid user name"),
            ),
            None,
        );
    }
    // Only members of the allowed group at or above min_uid are ever checked: system
    // accounts and everyone else are refused without PAM, after the wait a wrong password
    // costs, so the answer says nothing about the account.
    let Some(uid) = member_uid(&config, &username) else {
        std::thread::sleep(pace::delay(1));
        let reason = DenyReason::UnknownUser;
        return (PamAnswer::Denied { reason }, Some(username));
    };
    let egid = nix::unistd::getegid().as_raw();
    let turn = match pace::take_turn(&config.pam.state_dir, egid, uid, &username) {
        Ok(t) => t,
        Err(pace::Refusal::BadState(m)) => return (error(PamErrorKind::Config, m), Some(username)),
    };
    let answer = match pam::check(&config.pam.service, &username, password) {
        Ok(()) => {
            turn.succeeded();
            PamAnswer::Ok
        }
        Err(pam::Outcome::Denied(reason)) => PamAnswer::Denied { reason },
        Err(pam::Outcome::Failed(msg)) => error(PamErrorKind::Pam, msg),
    };
    (answer, Some(username))
}

/// The uid of `name` if it is a member of the allowed group (primary or supplementary)
/// at or above `min_uid`.
fn member_uid(config: &sudohub_helpers_config::HelpersConfig, name: &str) -> Option<u32> {
    let user = User::from_name(name).ok().flatten()?;
    let group = nix::unistd::Group::from_name(&config.allowed_group)
        .ok()
        .flatten()?;
    let member = user.gid == group.gid || group.mem.iter().any(|m| m == name);
    (member && user.uid.as_raw() >= config.min_uid).then_some(user.uid.as_raw())
}

fn exit_code(answer: &PamAnswer) -> i32 {
    match answer {
        PamAnswer::Ok => 0,
        PamAnswer::Denied { .. } => 1,
        PamAnswer::Error { kind, .. } => match kind {
            PamErrorKind::CallerNotHub => 2,
            PamErrorKind::Config => 3,
            PamErrorKind::ProtocolVersion | PamErrorKind::BadFrame => 4,
            PamErrorKind::InvalidUsername => 5,
            PamErrorKind::Pam => 6,
            PamErrorKind::Internal => 7,
        },
    }
}

/// Maps a PAM refusal to the reason the hub logs.
pub fn deny_reason(code: pam_client::ErrorCode) -> Option<DenyReason> {
    use pam_client::ErrorCode as C;
    Some(match code {
        C::AUTH_ERR | C::CRED_INSUFFICIENT | C::PERM_DENIED => DenyReason::BadCredentials,
        C::USER_UNKNOWN => DenyReason::UnknownUser,
        C::ACCT_EXPIRED => DenyReason::AccountExpired,
        C::NEW_AUTHTOK_REQD | C::AUTHTOK_EXPIRED => DenyReason::PasswordExpired,
        C::MAXTRIES => DenyReason::MaxTries,
        _ => return None,
    })
}
