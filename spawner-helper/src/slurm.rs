//! The Slurm backend (`[spawner] backend = "slurm"`): after the root phase, as the user,
//! one request and one answer. [`Request::Submit`] writes the server's API token to a
//! file only the user can read, builds the job script from root's `[slurm]` (the profile's
//! `#SBATCH` lines, the prologue, the command), and runs `sbatch` with an environment of
//! the allow-listed variables only. [`Request::Cancel`] runs `scancel` for the user's job.
//! Slurm itself refuses a job id that is not the user's.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use sudohub_helpers_config::slurm::{Profile, SlurmConfig};
use sudohub_protocol::spawner::{ErrorKind, ErrorReply, Reply, Request, Submit};

use crate::channel::{Channel, Incoming};
use crate::error::HelperError;
use crate::log::ActionLog;
use crate::request::{check_env, service_prefix};
use crate::root::Verified;

/// How long the hub has to send its request after the target.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `sbatch` or `scancel` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The token files of a server's jobs are `~/<log_dir>/slurm-<server or "default">-<random>.token`.
fn token_prefix(server: &str) -> String {
    let name = if server.is_empty() { "default" } else { server };
    format!("slurm-{name}-")
}

/// Removes what is left of the token files of `server`'s jobs (a job cancelled before it
/// ran never read its own).
fn remove_tokens(home: &Path, log_dir: &str, server: &str) {
    let dir = home.join(log_dir);
    let prefix = token_prefix(server);
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".token") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes the token to a new file of mode 0600, named for this one submit, in a
/// directory of mode 0700 (as the user: a link planted there can only lead to the user's
/// own files, and none is followed). A name of its own per submit: an older job of the
/// same server still queued cannot read the next one's token.
fn write_token(
    home: &Path,
    log_dir: &str,
    server: &str,
    token: &str,
) -> Result<PathBuf, HelperError> {
    let fail = |what: &str, e: std::io::Error| {
        HelperError::new(ErrorKind::SpawnFailed, format!("{what}: {e}"))
    };
    let mut random = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| fail("cannot read /dev/urandom", e))?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let dir = home.join(log_dir);
    let path = dir.join(format!("{}{suffix}.token", token_prefix(server)));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| fail("cannot make the directory for the job's token", e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(|e| fail("cannot create the job's token file", e))?;
    f.write_all(token.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| fail("cannot write the job's token file", e))?;
    Ok(path)
}

/// The job's name: `sudohub-<user>` or `sudohub-<user>-<server>`.
fn job_name(user: &str, server: &str) -> String {
    if server.is_empty() {
        format!("sudohub-{user}")
    } else {
        format!("sudohub-{user}-{server}")
    }
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The job script: root's `#SBATCH` lines for the profile, then the prologue, then the
/// token read from its file (and the file removed), then the command.
pub fn job_script(
    slurm: &SlurmConfig,
    profile: &Profile,
    home: &Path,
    user: &str,
    server: &str,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", job_name(user, server)));
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        home.join(&slurm.output).display()
    ));
    s.push_str(&format!("#SBATCH --chdir={}\n", home.display()));
    // A rerun could not read the token (the first run removed it), and the hub follows
    // the job's first run only; the node's limits, not those sbatch inherited.
    s.push_str("#SBATCH --no-requeue\n#SBATCH --propagate=NONE\n");
    for o in profile.options() {
        s.push_str(&format!("#SBATCH {o}\n"));
    }
    s.push_str("set -eu\n");
    if !slurm.prologue.is_empty() {
        s.push_str(&slurm.prologue);
        s.push('\n');
    }
    s.push_str(
        "JUPYTERHUB_API_TOKEN=$(cat -- \"$SUDOHUB_TOKEN_FILE\")\n\
         rm -f -- \"$SUDOHUB_TOKEN_FILE\"\n\
         JPY_API_TOKEN=$JUPYTERHUB_API_TOKEN\n\
         export JUPYTERHUB_API_TOKEN JPY_API_TOKEN\n\
         unset SUDOHUB_TOKEN_FILE\n",
    );
    let cmd: Vec<String> = slurm.command.iter().map(|a| quote(a)).collect();
    s.push_str(&format!("exec {}\n", cmd.join(" ")));
    s
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` with `input` on its stdin, within [`COMMAND_TIMEOUT`]; stderr is cut to
/// one line for the hub's log.
fn run(mut cmd: Command, input: Option<&[u8]>) -> Result<Ran, HelperError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let fail = |e: std::io::Error| {
        HelperError::new(ErrorKind::SpawnFailed, format!("cannot run {program}: {e}"))
    };
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        stdin.write_all(input).map_err(fail)?;
    }
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(fail)? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HelperError::new(
                ErrorKind::SpawnFailed,
                format!("{program} did not finish within 60 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |r: Option<&mut dyn Read>| {
        let mut s = String::new();
        if let Some(r) = r {
            let _ = r.take(64 * 1024).read_to_string(&mut s);
        }
        s
    };
    let stdout = read(child.stdout.as_mut().map(|r| r as &mut dyn Read));
    let stderr = read(child.stderr.as_mut().map(|r| r as &mut dyn Read));
    let stderr = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    Ok(Ran {
        ok: status.success(),
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_has_roots_lines_and_reads_the_token_from_its_file() {
        let text = "hub_user = \"sudohub\"\n[spawner]\nbackend = \"slurm\"\nhub_api_url = \"http://hub:8081/hub/api\"\n[slurm]\nprologue = \"module load python\"\ncommand = [\"/opt/v/bin/batchspawner-singleuser\", \"/opt/v/bin/it's\"]\n[[slurm.profile]]\nname = \"p\"\ntime = \"10\"\nextra = [\"--gres=gpu:1\"]";
        let config = sudohub_helpers_config::parse(text, Path::new("helpers.toml")).unwrap();
        let slurm = config.slurm.unwrap();
        let p = slurm.profile("").unwrap();
        let s = job_script(&slurm, p, Path::new("/home/a"), "a", "lab");
        assert!(s.starts_with("#!/bin/bash\n#SBATCH --job-name=sudohub-a-lab\n"));
        assert!(s.contains("#SBATCH --output=/home/a/.local/state/sudohub/slurm-%j.log\n"));
        assert!(
            s.contains("#SBATCH --time=10\n#SBATCH --gres=gpu:1\nset -eu\nmodule load python\n")
        );
        assert!(s.contains("rm -f -- \"$SUDOHUB_TOKEN_FILE\""));
        assert!(s.ends_with("exec '/opt/v/bin/batchspawner-singleuser' '/opt/v/bin/it'\\''s'\n"));
    }
}
