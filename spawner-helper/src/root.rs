//! The root phase: the only code of the helper that runs as root, top to bottom in
//! [`enter`]. It reads two small frames from the hub (hello, target), checks them against
//! root's configuration, makes the server's cgroup, and drops to the user for good
//! ([`crate::drop`]) before it reads anything else: the spawn request with its
//! environment, the user's home, the server's log are all handled as the user.
//!
//! It runs either through sudo (`sudohub ALL=(root) NOPASSWD: <helper> ""`) or installed
//! setuid root (`root:<hub group>`, mode 4750, no sudoers rule at all); which one is read
//! from the process's ids, and the caller must be the hub's account either way.
#![forbid(unsafe_code)]

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::setsockopt;
use nix::sys::socket::sockopt::{ReceiveTimeout, SendTimeout};
use nix::sys::time::{TimeVal, TimeValLike};
use nix::unistd::{getresgid, getresuid, Uid, User};
use sudohub_helpers_config::cgroup::Hierarchy;
use sudohub_helpers_config::slurm::Backend;
use sudohub_helpers_config::{load_trusted, HelpersConfig};
use sudohub_protocol::frame::{read_message, write_frame};
use sudohub_protocol::spawner::{ErrorKind, Reply, Request, Target};
use sudohub_protocol::{Hello, PROTOCOL_VERSION};

use crate::cgroup::Cgroup;
use crate::checks;
use crate::error::{HelperError, EXIT_USAGE};

/// How long the hub has for its hello and target, while the helper is root.
const ROOT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How the helper got root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run by sudo as root: the caller is `SUDO_UID`.
    Sudo,
    /// Installed setuid root: the caller is the real uid.
    Setuid,
}

/// Who the helper acts for and under which rules, once the root phase is over.
pub struct Verified {
    /// The root-owned configuration.
    pub config: HelpersConfig,
    /// How the helper got root.
    pub mode: Mode,
    /// The hub's uid.
    pub caller_uid: Uid,
    /// The user the helper now is, and the server will run as.
    pub user: User,
    /// `""` for the default server.
    pub server_name: String,
    /// The server's cgroup (none on a machine without cgroups and no limits set).
    pub cgroup: Option<Cgroup>,
}

/// Runs the root phase. `Err(Ok(code))` is a usage error (arguments given), reported by
/// exit code only; `Err(Err(e))` is a refusal, with what the hub named if it got that far.
pub fn enter(config_path: &Path) -> Result<Verified, Result<i32, HelperError>> {
    // 1. No arguments: sudoers allows none (`""`), and the helper takes no instructions
    //    from its command line.
    if std::env::args_os().len() > 1 {
        return Err(Ok(EXIT_USAGE));
    }
    let refuse = |kind, msg: String| Err(Err(HelperError::new(kind, msg)));
    // 2. Root, and how: sudo (all uids 0, caller in SUDO_UID) or setuid (euid 0, the real
    //    uid is the caller). The primary group stays root's: another one means `sudo -g`.
    let (uids, gids) = match (getresuid(), getresgid()) {
        (Ok(u), Ok(g)) => (u, g),
        _ => return refuse(ErrorKind::Internal, "cannot read the process's ids".into()),
    };
    let sudo_uid = std::env::var("SUDO_UID").ok();
    let (mode, caller) = if uids.real.is_root() && uids.effective.is_root() && uids.saved.is_root()
    {
        if gids.real.as_raw() != 0 || gids.effective.as_raw() != 0 {
            return refuse(
                ErrorKind::BadIdentity,
                format!(
                    "running with gid {} instead of root's: `sudo -g` is not allowed",
                    gids.real
                ),
            );
        }
        let Some(v) = sudo_uid else {
            return refuse(
                ErrorKind::CallerNotHub,
                "started as root but not by sudo (no SUDO_UID): only the hub may run the helper"
                    .into(),
            );
        };
        match v.parse::<u32>() {
            Ok(uid) => (Mode::Sudo, Uid::from_raw(uid)),
            Err(_) => {
                return refuse(
                    ErrorKind::CallerNotHub,
                    format!("SUDO_UID {v:?} is not a uid"),
                )
            }
        }
    } else if uids.effective.is_root() {
        (Mode::Setuid, uids.real)
    } else {
        let mut msg = format!(
            "started as uid {} without root: the helper runs through the sudoers rule, or installed setuid root",
            uids.real
        );
        if let Some(hint) = checks::no_new_privs_warning() {
            msg = format!("{msg}; {hint}");
        }
        return refuse(ErrorKind::CallerNotHub, msg);
    };

    // 3. Nothing of the caller's world: fds, environment, working directory, umask.
    if let Err(e) = harden() {
        return refuse(
            ErrorKind::Internal,
            format!("cannot reset the process: {e}"),
        );
    }

    // 4. The rules come from a file only root can change; the hub has no say in them.
    let config = load_trusted(config_path)
        .map_err(|e| Err(HelperError::new(ErrorKind::Config, e.to_string())))?;

    // 5. Only the hub may drive the helper.
    let hub = checks::hub_account(&config, caller).map_err(Err)?;

    // 6-7. Hello, then whose server; the user is checked as sudoers' runas list used to.
    let (user, server_name, clear) = read_target().and_then(|(t, clear)| {
        let name = t.server_name.into_inner();
        if !crate::request::valid_server_name(&name) {
            return Err(HelperError::new(
                ErrorKind::BadValue,
                format!("invalid server name {name:?}: 1-30 of [a-z0-9-], starting with a letter, ending with a letter or digit, no '--'"),
            ));
        }
        let user = checks::target_user(&config, &hub, t.user.as_str())?;
        Ok((user, name, clear))
    })
    .map_err(Err)?;
    if clear {
        return Err(clear_server(&config, &user, &server_name));
    }

    // 8-9. root's limits for this user, in a fresh cgroup; with Slurm, the job's limits
    //      are Slurm's and nothing runs here.
    let local = config.spawner.backend == Backend::Local;
    let limits = config
        .limits
        .for_user(&user.name, &checks::group_names(&user));
    let cgroup = if local {
        crate::cgroup::prepare(
            &Hierarchy::detect(),
            config.limits.cgroup_parent(),
            &user.name,
            &server_name,
            limits,
        )
        .map_err(Err)?
    } else {
        None
    };
    if local && limits.isolate_tmp == Some(true) {
        private_tmp().map_err(|e| {
            Err(HelperError::new(
                ErrorKind::SpawnFailed,
                format!("private /tmp: {e}"),
            ))
        })?;
    }

    // 10. The user, for good.
    crate::drop::to_user(&user).map_err(Err)?;
    Ok(Verified {
        config,
        mode,
        caller_uid: caller,
        user,
        server_name,
        cgroup,
    })
}

/// `Request::Clear`: the server's helper is gone; root kills what is left in its group,
/// removes the group, answers, and the helper exits without ever becoming the user.
fn clear_server(config: &HelpersConfig, user: &User, server: &str) -> Result<i32, HelperError> {
    let killed = crate::cgroup::clear(
        &Hierarchy::detect(),
        config.limits.cgroup_parent(),
        &user.name,
        server,
    )?;
    crate::log::syslog(&format!(
        "caller=hub user={} action=clear server={server:?} killed={killed}",
        user.name
    ));
    let mut out = std::io::stdout().lock();
    write_frame(&mut out, &Reply::Cleared { killed }).map_err(|e| {
        HelperError::new(ErrorKind::Internal, format!("cannot answer the hub: {e}"))
    })?;
    Ok(0)
}

/// Closes inherited fds, clears the environment, and resets the working directory and
/// umask. Signals were reset before (see [`crate::run`]).
fn harden() -> std::io::Result<()> {
    crate::sys::close_inherited_fds()?;
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    std::env::set_current_dir("/")?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    Ok(())
}

/// A /tmp of the server's own: a new mount namespace (mounts do not propagate back to the
/// machine), and an empty tmpfs on /tmp in it, as systemd's PrivateTmp does.
fn private_tmp() -> nix::Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )?;
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
}

/// stdin, read with one deadline for the whole root phase: each read may wait only for
/// what is left of it, so a hub that sends a byte at a time cannot keep a root process.
struct Deadline {
    input: File,
    until: std::time::Instant,
}

impl std::io::Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self
            .until
            .saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        let tv = TimeVal::microseconds(i64::try_from(left.as_micros()).unwrap_or(i64::MAX).max(1));
        setsockopt(&self.input, ReceiveTimeout, &tv).map_err(std::io::Error::from)?;
        self.input.read(buf)
    }
}

/// Reads the hello (answering it) and the target from stdin, one frame each and not a
/// byte more: the spawn request that follows is read after the drop.
fn read_target() -> Result<(Target, bool), HelperError> {
    let bad = |m: String| HelperError::new(ErrorKind::BadFrame, m);
    let stdin = std::io::stdin();
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map(File::from)
            .map_err(|e| bad(format!("stdin: {e}")))
    };
    let mut input = Deadline {
        input: dup(stdin.as_fd())?,
        until: std::time::Instant::now() + ROOT_READ_TIMEOUT,
    };
    setsockopt(&input.input, SendTimeout, &TimeVal::seconds(5))
        .map_err(|e| bad(format!("stdin is not the hub's socket: {e}")))?;
    match read_message::<_, Request>(&mut input) {
        Ok(Some(Request::Hello(Hello { version }))) if version == PROTOCOL_VERSION => {}
        Ok(Some(Request::Hello(Hello { version }))) => {
            return Err(HelperError::new(
                ErrorKind::ProtocolVersion,
                format!("hub speaks protocol {version}, helper speaks {PROTOCOL_VERSION}"),
            ))
        }
        Ok(Some(_)) => return Err(bad("expected a hello first".into())),
        Ok(None) => return Err(bad("the hub closed the channel before its hello".into())),
        Err(e) => return Err(bad(format!("no hello: {e}"))),
    }
    write_frame(
        &mut dup(std::io::stdout().as_fd())?,
        &Reply::Hello(Hello::current()),
    )
    .map_err(|e| bad(format!("cannot answer the hello: {e}")))?;
    let target = match read_message::<_, Request>(&mut input) {
        Ok(Some(Request::Target(t))) => (t, false),
        Ok(Some(Request::Clear(t))) => (t, true),
        Ok(Some(_)) => {
            return Err(bad(
                "expected the target (or a clear) after the hello".into()
            ))
        }
        Ok(None) => return Err(bad("the hub closed the channel before its target".into())),
        Err(e) => return Err(bad(format!("no target: {e}"))),
    };
    setsockopt(&input.input, ReceiveTimeout, &TimeVal::seconds(0))
        .and_then(|()| setsockopt(&input.input, SendTimeout, &TimeVal::seconds(0)))
        .map_err(|e| bad(format!("stdin: {e}")))?;
    Ok(target)
}
