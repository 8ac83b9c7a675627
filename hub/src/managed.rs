//! Managed services (`[[services]] command = [...]`), as JupyterHub runs them: started
//! with the hub, as the hub's own user (never root: the hub refuses to run as root),
//! with a token and JupyterHub's `JUPYTERHUB_*` variables in a clean environment (the
//! token never on a command line), each line of their output in the hub's log,
//! restarted with a back-off when they die, and stopped with the hub.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{HubConfig, ServiceSection};
use crate::urls::Urls;

/// First wait before a restart; doubled after each quick death, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A service that ran this long before dying is restarted after [`FIRST_BACKOFF`] again.
const STEADY: Duration = Duration::from_secs(60);
/// Between SIGTERM and SIGKILL when the hub stops.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The `PATH` of a managed service that sets none.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The running supervisors; [`Managed::stop`] ends them.
pub struct Managed {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// What one managed service is started with.
#[derive(Debug, Clone)]
struct Spec {
    name: String,
    command: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: std::path::PathBuf,
}

impl Managed {
    /// Starts a supervisor for every service of `cfg` with a `command`. Each must have
    /// its `api_token` by now (see [`give_tokens`]).
    pub fn start(cfg: &HubConfig) -> Self {
        let (stop, rx) = watch::channel(false);
        let urls = cfg.urls();
        let tasks = cfg
            .services
            .iter()
            .filter_map(|svc| spec(cfg, &urls, svc))
            .map(|spec| tokio::spawn(supervise(spec, rx.clone())))
            .collect();
        Self { stop, tasks }
    }

    /// Stops every managed service (SIGTERM to its process group, SIGKILL after
    /// [`STOP_GRACE`]) and returns once they are gone.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Gives each managed service without an `api_token` a new one, as JupyterHub does at
/// each start.
pub fn give_tokens(cfg: &mut HubConfig) {
    for svc in &mut cfg.services {
        if svc.command.is_some() && svc.api_token.is_none() {
            svc.api_token = Some(crate::secrets::new_api_token());
        }
    }
}

fn spec(cfg: &HubConfig, urls: &Urls, svc: &ServiceSection) -> Option<Spec> {
    let command = svc.command.clone()?;
    let mut env: BTreeMap<String, String> = [
        ("PATH", PATH.to_owned()),
        ("LANG", "C.UTF-8".to_owned()),
        ("JUPYTERHUB_SERVICE_NAME", svc.name.clone()),
        ("JUPYTERHUB_API_URL", cfg.api_url()),
        ("JUPYTERHUB_BASE_URL", cfg.base_url.clone()),
        ("JUPYTERHUB_SERVICE_PREFIX", urls.service(&svc.name)),
        ("JUPYTERHUB_CLIENT_ID", format!("service-{}", svc.name)),
        ("JUPYTERHUB_HOST", urls.hub_origin().unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(home) = std::env::var_os("HOME") {
        env.insert("HOME".into(), home.to_string_lossy().into_owned());
    }
    if let Some(t) = &svc.api_token {
        env.insert("JUPYTERHUB_API_TOKEN".into(), t.clone());
    }
    if let Some(u) = &svc.url {
        env.insert("JUPYTERHUB_SERVICE_URL".into(), u.clone());
    }
    env.extend(svc.environment.clone());
    Some(Spec {
        name: svc.name.clone(),
        command,
        env,
        cwd: svc.cwd.clone().unwrap_or_else(|| "/".into()),
    })
}

/// Runs one service until the hub stops, restarting it when it dies.
async fn supervise(spec: Spec, mut stop: watch::Receiver<bool>) {
    let name = spec.name.as_str();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let began = Instant::now();
        match launch(&spec) {
            Ok(mut child) => {
                let pid = child.id();
                tracing::info!(service = %name, pid, "managed service started");
                tokio::select! {
                    status = child.wait() => {
                        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                        tracing::warn!(service = %name, %status, "managed service exited");
                        if began.elapsed() >= STEADY {
                            backoff = FIRST_BACKOFF;
                        }
                    }
                    () = stopping(&mut stop) => {
                        end(name, &mut child, pid).await;
                        return;
                    }
                }
            }
            Err(e) => tracing::error!(service = %name, error = %e, "cannot start managed service"),
        }
        tracing::info!(service = %name, after = ?backoff, "restarting managed service");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopping(&mut stop) => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Resolves once the hub stops (or is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn launch(spec: &Spec) -> std::io::Result<tokio::process::Child> {
    let (program, args) = spec
        .command
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    for out in [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let name = spec.name.clone();
        tokio::spawn(async move {
            crate::helper_output::each_line(out, |line| {
                tracing::info!(target: "sudohub::service", service = %name, line = ?line, "managed service");
            })
            .await;
        });
    }
    Ok(child)
}

/// SIGTERM to the service's process group, SIGKILL after [`STOP_GRACE`].
async fn end(name: &str, child: &mut tokio::process::Child, pid: Option<u32>) {
    let group = pid.and_then(|p| i32::try_from(p).ok()).map(Pid::from_raw);
    if let Some(g) = group {
        let _ = killpg(g, Signal::SIGTERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        if let Some(g) = group {
            let _ = killpg(g, Signal::SIGKILL);
        }
        let _ = child.wait().await;
    }
    tracing::info!(service = %name, "managed service stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(dir: &Path, services: &str) -> HubConfig {
        let mut cfg = HubConfig::parse(services, &dir.join("hub.toml")).unwrap();
        give_tokens(&mut cfg);
        cfg
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// A service gets its token and JupyterHub's variables in a clean environment, is
    /// restarted when it dies, and is gone (with its children) once the hub stops it.
    #[tokio::test]
    async fn a_managed_service_is_run_restarted_and_stopped() {
        let dir = std::env::temp_dir().join(format!("sudohub-managed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("runs");
        let script = format!(
            "env > {d}/env.$$; echo $$ >> {o}; sleep 300 & wait",
            d = dir.display(),
            o = out.display()
        );
        let cfg = config(
            &dir,
            &format!(
                "[[services]]\nname = \"cull\"\ncommand = [\"/bin/sh\", \"-c\", {script:?}]\n\
                 environment = {{ CULL_EVERY = \"60\" }}\ncwd = {:?}\n",
                dir.display().to_string()
            ),
        );
        let token = cfg.services[0].api_token.clone().unwrap();
        let managed = Managed::start(&cfg);
        let runs = || -> Vec<i32> {
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect()
        };
        until("the first run", || runs().len() == 1).await;
        let first = runs()[0];
        let env = std::fs::read_to_string(dir.join(format!("env.{first}"))).unwrap();
        for want in [
            format!("JUPYTERHUB_API_TOKEN={token}"),
            "JUPYTERHUB_SERVICE_NAME=cull".to_owned(),
            "JUPYTERHUB_API_URL=http://127.0.0.1:8000/hub/api".to_owned(),
            "JUPYTERHUB_SERVICE_PREFIX=/services/cull/".to_owned(),
            "CULL_EVERY=60".to_owned(),
            format!("PWD={}", dir.display()),
        ] {
            assert!(env.lines().any(|l| l == want), "{want} missing in:\n{env}");
        }
        // Nothing of the hub's own environment: only what the service is given (and
        // what the shell adds itself).
        for line in env.lines() {
            let key = line.split('=').next().unwrap_or("");
            assert!(
                key.starts_with("JUPYTERHUB_")
                    || [
                        "PATH",
                        "LANG",
                        "HOME",
                        "CULL_EVERY",
                        "PWD",
                        "OLDPWD",
                        "SHLVL",
                        "_"
                    ]
                    .contains(&key),
                "{key} leaked into the service's environment"
            );
        }

        // It dies: it is started again.
        killpg(Pid::from_raw(first), Signal::SIGKILL).unwrap();
        until("a restart", || runs().len() == 2).await;
        let second = runs()[1];
        managed.stop().await;
        let gone = |pid: i32| !Path::new(&format!("/proc/{pid}")).exists();
        until("the service's group to be gone", || {
            gone(second)
                && std::fs::read_dir("/proc").unwrap().flatten().all(|e| {
                    std::fs::read_to_string(e.path().join("stat"))
                        .ok()
                        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.to_owned()))
                        .and_then(|r| r.split_whitespace().nth(2).map(str::to_owned))
                        != Some(second.to_string())
                })
        })
        .await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_service_entries_are_refused_with_the_key() {
        let dir = std::env::temp_dir();
        for (text, key) in [
            ("[[services]]\nname = \"a\"\ncommand = [\"relative\"]", "services.command"),
            ("[[services]]\nname = \"a\"\ncommand = []", "services.command"),
            ("[[services]]\nname = \"a\"\nenvironment = { X = \"1\" }", "services.command"),
            (
                "[[services]]\nname = \"a\"\ncommand = [\"/bin/true\"]\nenvironment = { JUPYTERHUB_API_TOKEN = \"x\" }",
                "services.environment",
            ),
            ("[[services]]\nname = \"a\"\n[[services]]\nname = \"a\"", "services.name"),
        ] {
            let e = HubConfig::parse(text, &dir.join("hub.toml")).unwrap_err();
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
    }
}
