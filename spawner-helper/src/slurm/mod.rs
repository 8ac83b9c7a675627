//! The Slurm backend (`[spawner] backend = "slurm"`): after the root phase, as the user,
//! one request and one answer. [`Request::Submit`] writes the server's API token to a
//! file only the user can read, builds the job script from root's `[slurm]` (the profile's
//! `#SBATCH` lines, the prologue, the command), and runs `sbatch` with an environment of
//! the allow-listed variables only. [`Request::Cancel`] runs `scancel` for the user's job.
//! Slurm itself refuses a job id that is not the user's.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sudohub_helpers_config::slurm::SlurmConfig;
use sudohub_protocol::spawner::{ErrorKind, ErrorReply, Reply, Request, Submit};

use crate::channel::{Channel, Incoming};
use crate::error::HelperError;
use crate::log::ActionLog;
use crate::request::{check_env, service_prefix};
use crate::root::Verified;

mod run;
mod script;
#[cfg(test)]
mod tests;
mod token;

use run::run;
use script::job_name;
pub use script::job_script;
use token::{remove_tokens, write_token};

/// How long the hub has to send its request after the target.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables the hub may never set for a job, whatever `env_allow` says: they steer
/// Slurm's own commands (`SLURM_CONF`, `SBATCH_*` options, SPANK plugins), or the bash
/// and environment modules that run the job script.
fn denied_for_jobs(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "SLURM_",
        "SBATCH_",
        "SALLOC_",
        "SRUN_",
        "SUDOHUB_",
        "_SLURM",
        "SPANK_",
        "LMOD_",
        "BASH_FUNC",
        "MODULE",
    ];
    const NAMES: &[&str] = &[
        "SHELLOPTS",
        "BASHOPTS",
        "BASH_ENV",
        "ENV",
        "PS4",
        "IFS",
        "CDPATH",
        "GLOBIGNORE",
        "PROMPT_COMMAND",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// Serves the one request and returns the exit code.
pub fn serve(v: &Verified, log: &mut ActionLog, mut channel: Channel) -> i32 {
    let outcome = match read_request(&mut channel) {
        Ok(Request::Submit(s)) => submit(v, s).map(|job_id| {
            log.audit(&format!(
                "action=submit server={:?} job={job_id}",
                v.server_name
            ));
            Reply::Submitted { job_id }
        }),
        Ok(Request::Cancel { job_id }) => cancel(v, job_id).map(|()| {
            log.audit(&format!(
                "action=cancel server={:?} job={job_id}",
                v.server_name
            ));
            Reply::Cancelled
        }),
        Ok(other) => Err(HelperError::new(
            ErrorKind::BadFrame,
            format!(
                "the Slurm backend takes a submit or a cancel, not {}",
                request_name(&other)
            ),
        )),
        Err(e) => Err(e),
    };
    let (reply, code) = match outcome {
        Ok(r) => (r, 0),
        Err(e) => {
            log.notice(&format!("refused: {e}"));
            let code = e.exit_code();
            (Reply::Error(ErrorReply::new(e.kind, e.message)), code)
        }
    };
    let _ = channel.send(&reply);
    code
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Hello(_) => "a hello",
        Request::Target(_) | Request::Clear(_) => "a target",
        Request::Spawn(_) => "a spawn (the helper is configured for Slurm)",
        Request::Status => "a status request",
        Request::Stop { .. } => "a stop",
        Request::Submit(_) | Request::Cancel { .. } => "this",
    }
}

fn read_request(channel: &mut Channel) -> Result<Request, HelperError> {
    let bad = |m: String| HelperError::new(ErrorKind::BadFrame, m);
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(bad("no request within 30 s".into()));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(channel.poll_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(bad(format!("poll: {e}"))),
        }
        match channel.read() {
            Incoming::Requests(mut r) if !r.is_empty() => return Ok(r.remove(0)),
            Incoming::Requests(_) => {}
            Incoming::Closed => return Err(bad("the hub closed the channel".into())),
            Incoming::Bad(e) => return Err(bad(format!("bad frame: {e}"))),
        }
    }
}

fn slurm_config(v: &Verified) -> Result<&SlurmConfig, HelperError> {
    v.config
        .slurm
        .as_ref()
        .ok_or_else(|| HelperError::new(ErrorKind::Config, "helpers.toml has no [slurm] table"))
}

/// Submits the server as a batch job of the user; returns its id.
fn submit(v: &Verified, req: Submit) -> Result<u32, HelperError> {
    let slurm = slurm_config(v)?;
    let bad = |m: String| HelperError::new(ErrorKind::BadValue, m);
    let profile = slurm.profile(req.profile.as_str()).ok_or_else(|| {
        bad(format!(
            "no Slurm profile is named {:?}",
            req.profile.as_str()
        ))
    })?;
    if !profile.allows(&crate::checks::group_names(&v.user)) {
        return Err(HelperError::new(
            ErrorKind::UserNotAllowed,
            format!(
                "profile {:?} is for members of {}",
                profile.name,
                profile.groups.join(", ")
            ),
        ));
    }
    let mut env = check_env(req.env, &v.config.spawner)?;
    if let Some(name) = env.keys().find(|k| denied_for_jobs(k)) {
        return Err(HelperError::new(
            ErrorKind::EnvNotAllowed,
            format!("environment variable {name:?} is not allowed for a Slurm job"),
        ));
    }
    let token = env
        .remove("JUPYTERHUB_API_TOKEN")
        .ok_or_else(|| bad("no JUPYTERHUB_API_TOKEN for the server".into()))?;
    env.remove("JPY_API_TOKEN");
    let home = v.user.dir.clone();
    let home_ok = home.is_absolute()
        && home.to_str().is_some_and(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
        });
    if !home_ok {
        return Err(HelperError::new(
            ErrorKind::SpawnFailed,
            format!(
                "the home directory {:?} has characters an #SBATCH line cannot carry",
                home.display()
            ),
        ));
    }
    let token_file = write_token(&home, &v.config.spawner.log_dir, &v.server_name, &token)?;
    if let Some(dir) = home.join(&slurm.output).parent() {
        // Slurm opens the output as the user on the node; a missing directory would fail
        // the job before a line of it could say why.
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    let script = job_script(slurm, profile, &home, &v.user.name, &v.server_name);
    // The job gets root's umask; its resource limits are the node's (the script says
    // `--propagate=NONE`), not those sbatch inherited from sudo or the hub.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        v.config.spawner.umask,
    ));
    let mut cmd = Command::new(&slurm.sbatch);
    cmd.args(["--parsable", "--export=ALL"])
        .env_clear()
        .envs(base_env(v, slurm))
        .envs(&env)
        .env(
            "JUPYTERHUB_SERVICE_URL",
            format!(
                "http://{}:0{}",
                url_host(&slurm.listen_ip),
                service_prefix(&env)
            ),
        )
        .env("SUDOHUB_TOKEN_FILE", &token_file)
        .current_dir(&home);
    let out = run(cmd, Some(script.as_bytes())).inspect_err(|_| {
        let _ = std::fs::remove_file(&token_file);
    })?;
    if !out.ok {
        let _ = std::fs::remove_file(&token_file);
        return Err(HelperError::new(
            ErrorKind::SpawnFailed,
            format!("sbatch refused the job: {}", out.stderr),
        ));
    }
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let id = out.stdout.trim().split(';').next().unwrap_or_default();
    id.parse::<u32>().map_err(|_| {
        HelperError::new(
            ErrorKind::SpawnFailed,
            format!("sbatch printed {:?}, not a job id", out.stdout.trim()),
        )
    })
}

/// Cancels the user's job `job_id`. A job that has ended already counts as cancelled.
fn cancel(v: &Verified, job_id: u32) -> Result<(), HelperError> {
    let slurm = slurm_config(v)?;
    // Only this server's job of this user: with the name and the user as filters, another
    // job id (the user's own other work, or another user's) matches nothing.
    let mut cmd = Command::new(&slurm.scancel);
    cmd.arg(format!("--name={}", job_name(&v.user.name, &v.server_name)))
        .arg(format!("--user={}", v.user.name))
        .arg(job_id.to_string())
        .env_clear()
        .envs(base_env(v, slurm))
        .current_dir(&v.user.dir);
    let out = run(cmd, None)?;
    remove_tokens(&v.user.dir, &v.config.spawner.log_dir, &v.server_name);
    let ended = out.stderr.contains("already completing or completed")
        || out.stderr.contains("Invalid job id");
    if out.ok || ended {
        Ok(())
    } else {
        Err(HelperError::new(
            ErrorKind::SpawnFailed,
            format!("scancel {job_id} failed: {}", out.stderr),
        ))
    }
}

/// What every Slurm command gets: the passwd entry, a fixed `PATH`, and `SLURM_CONF`.
fn base_env(v: &Verified, slurm: &SlurmConfig) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("HOME".to_owned(), v.user.dir.display().to_string()),
        ("USER".to_owned(), v.user.name.clone()),
        ("LOGNAME".to_owned(), v.user.name.clone()),
        ("SHELL".to_owned(), v.user.shell.display().to_string()),
        ("PATH".to_owned(), v.config.spawner.path.clone()),
    ]);
    if let Some(conf) = &slurm.slurm_conf {
        env.insert("SLURM_CONF".to_owned(), conf.display().to_string());
    }
    env
}

fn url_host(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_owned()
    }
}
