//! Preparing and starting the server process: environment, working directory, log file,
//! limits, and the hand-over to [`crate::sys::apply_in_child`].
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::sys::resource::{getrlimit, Resource};
use sudohub_helpers_config::{Limits, SpawnerConfig};
use sudohub_protocol::spawner::ErrorKind;

use crate::error::HelperError;
use crate::request::{service_prefix, Checked};
use crate::root::Verified;
use crate::sys::{apply_in_child, ChildSetup};

/// Starts the configured command for `req` in the server's cgroup and returns its pid
/// and a handle on its log file (for the helper's own lines about it, such as an OOM).
///
/// The environment is built from scratch: the passwd entry, `PATH` from the config, the
/// hub's allow-listed variables, and `JUPYTERHUB_SERVICE_URL`, which the helper writes
/// itself so that the server listens on 127.0.0.1 whatever the hub sends.
pub fn launch(v: &Verified, req: &Checked) -> Result<(u32, File), HelperError> {
    let cfg = &v.config.spawner;
    let fail = |what: &str, e: std::io::Error| {
        HelperError::new(ErrorKind::SpawnFailed, format!("{what}: {e}"))
    };
    let home = v.user.dir.clone();
    let (program, args) = cfg
        .command
        .split_first()
        .ok_or_else(|| HelperError::new(ErrorKind::Config, "spawner.command is empty"))?;
    let log = open_log(&home, cfg, &v.server_name)
        .map_err(|e| fail("cannot open the server's log file", e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| fail("cannot duplicate the log fd", e))?;
    let log_ours = log
        .try_clone()
        .map_err(|e| fail("cannot duplicate the log fd", e))?;

    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("HOME", &home)
        .env("USER", &v.user.name)
        .env("LOGNAME", &v.user.name)
        .env("SHELL", &v.user.shell)
        .env("PATH", &cfg.path)
        .envs(&req.env)
        .env(
            "JUPYTERHUB_SERVICE_URL",
            format!("http://127.0.0.1:{}{}", req.port, service_prefix(&req.env)),
        )
        .current_dir(&home)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    apply_in_child(
        &mut cmd,
        ChildSetup {
            no_new_privs: cfg.no_new_privs,
            umask: cfg.umask,
            limits: limits(&cfg.limits),
            inherited_fds: open_fds(),
            join_fds: v.cgroup.as_ref().map(|c| c.join_fds()).unwrap_or_default(),
        },
    );
    let child = cmd
        .spawn()
        .map_err(|e| fail(&format!("cannot start {program}"), e))?;
    Ok((child.id(), log_ours))
}

/// `~/<log_dir>/<server or "default">.log`, created by the user, mode 0600, appended to,
/// rotated once to `.1` when it is over the configured size. A file, never a pipe: a pipe
/// to the hub breaks at the hub's next restart and takes every new kernel with it.
fn open_log(home: &std::path::Path, cfg: &SpawnerConfig, server: &str) -> std::io::Result<File> {
    let dir = home.join(&cfg.log_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let file_name = sudohub_helpers_config::server_log_name(server);
    let path: PathBuf = dir.join(&file_name);
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if meta.len() > cfg.log_max_bytes {
            std::fs::rename(&path, dir.join(format!("{file_name}.1")))?;
        }
    }
    let name = if server.is_empty() { "default" } else { server };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "--- sudohub-spawner: starting server {name:?} ---")?;
    Ok(file)
}

/// Limits from the config, clamped to the current hard limits: an unprivileged process
/// cannot raise them, and failing the spawn over a too-generous config would help nobody.
fn limits(l: &Limits) -> Vec<(Resource, u64)> {
    [
        (Resource::RLIMIT_NOFILE, l.nofile),
        (Resource::RLIMIT_NPROC, l.nproc),
        (Resource::RLIMIT_AS, l.address_space),
        (Resource::RLIMIT_CPU, l.cpu_seconds),
        (Resource::RLIMIT_CORE, l.core),
    ]
    .into_iter()
    .filter_map(|(r, v)| {
        let v = v?;
        let hard = getrlimit(r).map(|(_, h)| h).unwrap_or(v);
        Some((r, v.min(hard)))
    })
    .collect()
}

/// The fds above 2 open in the helper right now (sudo closes them, but a helper started
/// some other way may have inherited some): the child marks them close-on-exec.
fn open_fds() -> Vec<i32> {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&fd| fd > 2)
                .collect()
        })
        .unwrap_or_else(|_| (3..1024).collect())
}
