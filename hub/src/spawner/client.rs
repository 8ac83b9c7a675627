//! Starting a helper (through sudo, or installed setuid root) and getting its server running.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sudohub_protocol::spawner::{EnvVar, Reply, Request, Spawn, Submit, Target};
use sudohub_protocol::{Bounded, Hello};
use tokio::net::UnixStream;
use tokio::process::Command;

use super::handle::{read_reply, write_request, ServerHandle};
use super::{Spawner, SpawnerError};
use crate::types::{ServerName, Username};

/// How the helper is invoked: `<sudo…> <helper>`, or `<helper>` alone when `sudo` is empty
/// (the helper installed setuid root). The user goes over the channel, never on a
/// command line.
#[derive(Debug, Clone)]
pub struct SpawnerClient {
    sudo: Vec<String>,
    helper: PathBuf,
    /// With the Slurm backend: the poller its jobs are followed by.
    slurm: Option<crate::slurm::JobWatch>,
}

/// What the hub asks for: everything else is the helper's config.
#[derive(Debug, Clone)]
pub struct SpawnArgs {
    /// The Unix user (a member of the allowed group; the helper checks it again).
    pub user: Username,
    /// `""` for the default server.
    pub server_name: ServerName,
    /// Port on 127.0.0.1 for the server.
    pub port: u16,
    /// Environment for the server (the helper admits only allow-listed names).
    pub env: Vec<(String, String)>,
    /// With the Slurm backend: the name of root's profile the job is submitted with
    /// (`""`: the first).
    pub profile: String,
}

impl SpawnerClient {
    /// `sudo` is the command and its options, `["sudo", "-n"]` normally (a sudo
    /// replacement such as `dzdo` works too), or empty for a setuid-root helper.
    pub fn new(sudo: Vec<String>, helper: PathBuf) -> Self {
        Self {
            sudo,
            helper,
            slurm: None,
        }
    }

    /// The same, submitting servers as Slurm jobs followed by `watch`.
    pub fn with_slurm(mut self, watch: crate::slurm::JobWatch) -> Self {
        self.slurm = Some(watch);
        self
    }

    /// With the Slurm backend: a handle on job `job_id` of `user`'s server `server`,
    /// one submitted earlier (by this hub or the one before it).
    pub fn job_handle(
        &self,
        user: &Username,
        server: &ServerName,
        job_id: u32,
        port: Option<u16>,
        timeout: Duration,
    ) -> Option<ServerHandle> {
        let watch = self.slurm.as_ref()?;
        let user_name = user.clone();
        let (client, user, server) = (self.clone(), user.clone(), server.clone());
        let cancel: super::job::Canceller = Arc::new(move |id| {
            let (client, user, server) = (client.clone(), user.clone(), server.clone());
            Box::pin(async move { client.cancel(&user, &server, id, timeout).await })
        });
        Some(super::job::handle(
            watch,
            job_id,
            user_name.as_str(),
            port,
            cancel,
        ))
    }

    /// Submits `args` as a Slurm job through a helper (as the user); the handle follows it.
    async fn submit(
        &self,
        args: SpawnArgs,
        timeout: Duration,
    ) -> Result<ServerHandle, SpawnerError> {
        let user = args.user.clone();
        let target = target(&args.user, &args.server_name)?;
        let submit = Submit {
            profile: Bounded::new(args.profile.as_str())
                .map_err(|_| SpawnerError::Protocol("the profile name is too long".into()))?,
            env: env_vars(&args.env)?,
        };
        let job_id = self
            .converse(&user, timeout, |mut stream| async move {
                hello(&mut stream).await?;
                write_request(&mut stream, &Request::Target(target)).await?;
                let sent = write_request(&mut stream, &Request::Submit(submit)).await;
                match (sent, read_reply(&mut stream).await) {
                    (_, Ok(Reply::Error(e))) => Err(refused(e)),
                    (Ok(()), Ok(Reply::Submitted { job_id })) => Ok(job_id),
                    (Ok(()), Ok(other)) => Err(SpawnerError::Protocol(format!(
                        "expected submitted, got {other:?}"
                    ))),
                    (Err(e), _) | (Ok(()), Err(e)) => Err(e),
                }
            })
            .await?;
        tracing::info!(user = %args.user, server = %args.server_name, job = job_id,
            profile = %args.profile, "server submitted to Slurm");
        self.job_handle(&args.user, &args.server_name, job_id, None, timeout)
            .ok_or_else(|| SpawnerError::Protocol("no Slurm poller".into()))
    }

    /// Cancels `user`'s job `job_id` through a helper (`scancel` as the user).
    pub async fn cancel(
        &self,
        user: &Username,
        server: &ServerName,
        job_id: u32,
        timeout: Duration,
    ) -> Result<(), SpawnerError> {
        let target = target(user, server)?;
        self.converse(user, timeout, |mut stream| async move {
            hello(&mut stream).await?;
            write_request(&mut stream, &Request::Target(target)).await?;
            let sent = write_request(&mut stream, &Request::Cancel { job_id }).await;
            match (sent, read_reply(&mut stream).await) {
                (_, Ok(Reply::Error(e))) => Err(refused(e)),
                (Ok(()), Ok(Reply::Cancelled)) => Ok(()),
                (Ok(()), Ok(other)) => Err(SpawnerError::Protocol(format!(
                    "expected cancelled, got {other:?}"
                ))),
                (Err(e), _) | (Ok(()), Err(e)) => Err(e),
            }
        })
        .await
    }

    /// Runs the helper for `args.user`, says hello, asks for the spawn, and returns once
    /// the helper reports the server started (or refuses), within `timeout`.
    pub async fn spawn(
        &self,
        args: SpawnArgs,
        timeout: Duration,
    ) -> Result<ServerHandle, SpawnerError> {
        if self.slurm.is_some() {
            return self.submit(args, timeout).await;
        }
        let user = args.user.clone();
        self.converse(&user, timeout, |stream| async move {
            handshake(stream, &args).await
        })
        .await
    }

    /// For a server whose helper is gone (its user killed it): a new helper, as root,
    /// kills what is left in the server's cgroup and removes it. Returns how many
    /// processes were killed.
    pub async fn clear(
        &self,
        user: &Username,
        server: &ServerName,
        timeout: Duration,
    ) -> Result<u32, SpawnerError> {
        let target = target(user, server)?;
        self.converse(user, timeout, |mut stream| async move {
            hello(&mut stream).await?;
            write_request(&mut stream, &Request::Clear(target)).await?;
            match read_reply(&mut stream).await? {
                Reply::Cleared { killed } => Ok(killed),
                Reply::Error(e) => Err(refused(e)),
                other => Err(SpawnerError::Protocol(format!(
                    "expected cleared, got {other:?}"
                ))),
            }
        })
        .await
    }

    /// Runs the helper over a fresh socketpair and holds `talk` with it, within
    /// `timeout`; the helper's stderr goes to the hub's log, and a helper that ends
    /// without answering is reported with what it (or sudo) said.
    async fn converse<T, F>(
        &self,
        user: &Username,
        timeout: Duration,
        talk: impl FnOnce(UnixStream) -> F,
    ) -> Result<T, SpawnerError>
    where
        F: std::future::Future<Output = Result<T, SpawnerError>>,
    {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(SpawnerError::Exec)?;
        let theirs: OwnedFd = theirs.into();
        let mut command = match self.sudo.split_first() {
            Some((program, options)) => {
                let mut c = Command::new(program);
                c.args(options).arg(&self.helper);
                c
            }
            None => Command::new(&self.helper),
        };
        let mut child = command
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::from(theirs.try_clone().map_err(SpawnerError::Exec)?))
            .stdout(Stdio::from(theirs))
            .stderr(Stdio::piped())
            // The helper must outlive a hub restart: never kill it with the handle.
            .kill_on_drop(false)
            .spawn()
            .map_err(SpawnerError::Exec)?;
        // The command holds our copies of the helper's end of the socket: they must go
        // now, or a helper (or sudo) that dies early would never look like a closed
        // channel.
        drop(command);

        let stderr_head = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let head = stderr_head.clone();
            let user = user.clone();
            tokio::spawn(async move {
                let dropped = crate::helper_output::each_line(stderr, |line| {
                    tracing::info!(target: "sudohub::helper", user = %user, line = ?line, "spawner helper");
                    if let Ok(mut h) = head.lock() {
                        if h.len() < 2048 {
                            h.push_str(line);
                            h.push('\n');
                        }
                    }
                })
                .await;
                if dropped > 0 {
                    tracing::warn!(user = %user, dropped, "spawner helper: further output dropped");
                }
            });
        }
        // Reap sudo whenever it ends, so no zombie is left behind.
        let who = user.clone();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                tracing::debug!(user = %who, %status, "spawner helper process ended");
            }
        });

        ours.set_nonblocking(true).map_err(SpawnerError::Exec)?;
        let stream = UnixStream::from_std(ours).map_err(SpawnerError::Exec)?;
        let result = tokio::time::timeout(timeout, talk(stream)).await;
        let no_answer = || SpawnerError::NoAnswer {
            stderr: stderr_head.lock().map(|h| h.clone()).unwrap_or_default(),
        };
        match result {
            Err(_) => Err(SpawnerError::Timeout),
            Ok(Err(SpawnerError::Disconnected)) => {
                // Give the stderr reader a moment to collect sudo's last words.
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(no_answer())
            }
            Ok(r) => r,
        }
    }
}

impl Spawner for SpawnerClient {
    fn spawn(
        &self,
        args: SpawnArgs,
        timeout: Duration,
    ) -> futures_util::future::BoxFuture<'_, Result<ServerHandle, SpawnerError>> {
        Box::pin(SpawnerClient::spawn(self, args, timeout))
    }

    fn clear<'a>(
        &'a self,
        user: &'a Username,
        server: &'a ServerName,
        timeout: Duration,
    ) -> futures_util::future::BoxFuture<'a, Result<u32, SpawnerError>> {
        Box::pin(SpawnerClient::clear(self, user, server, timeout))
    }

    fn job_handle(
        &self,
        user: &Username,
        server: &ServerName,
        job_id: u32,
        port: Option<u16>,
    ) -> Option<ServerHandle> {
        SpawnerClient::job_handle(self, user, server, job_id, port, CANCEL_TIMEOUT)
    }
}

/// How long a helper has to cancel a job of a server re-attached after a restart.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(60);

/// Hello, target, then spawn, then wait for `Started`: the part that needs no sudo, so it can be
/// tested against a fake helper.
pub(crate) async fn handshake(
    mut stream: UnixStream,
    args: &SpawnArgs,
) -> Result<ServerHandle, SpawnerError> {
    hello(&mut stream).await?;
    write_request(
        &mut stream,
        &Request::Target(target(&args.user, &args.server_name)?),
    )
    .await?;
    let env = env_vars(&args.env)?;
    let spawn = Spawn {
        port: args.port,
        env,
    };
    // A root phase that refused the target has written its error and exited: the spawn
    // may not get through, but the error is still there to read.
    let sent = write_request(&mut stream, &Request::Spawn(spawn)).await;
    let reply = read_reply(&mut stream).await;
    let reply = match (sent, reply) {
        (_, Ok(r @ Reply::Error(_))) | (Ok(()), Ok(r)) => r,
        (Err(e), _) | (Ok(()), Err(e)) => return Err(e),
    };
    match reply {
        Reply::Started { pid } => {
            tracing::info!(user = %args.user, server = %args.server_name, pid, port = args.port,
                "server started by the spawner helper");
            Ok(ServerHandle::adopt(stream, pid))
        }
        Reply::Error(e) => Err(refused(e)),
        other => Err(SpawnerError::Protocol(format!(
            "expected started, got {other:?}"
        ))),
    }
}

fn bad(what: &str) -> SpawnerError {
    SpawnerError::Protocol(format!("{what} does not fit the protocol"))
}

fn target(user: &Username, server: &ServerName) -> Result<Target, SpawnerError> {
    Ok(Target {
        user: Bounded::new(user.as_str()).map_err(|_| bad("the user name"))?,
        server_name: Bounded::new(server.as_str()).map_err(|_| bad("the server name"))?,
    })
}

fn env_vars(env: &[(String, String)]) -> Result<Vec<EnvVar>, SpawnerError> {
    env.iter()
        .map(|(k, v)| {
            Ok(EnvVar {
                name: Bounded::new(k.as_str()).map_err(|_| bad("an environment name"))?,
                value: Bounded::new(v.as_str()).map_err(|_| bad("an environment value"))?,
            })
        })
        .collect()
}

/// The hello each way.
async fn hello(stream: &mut UnixStream) -> Result<(), SpawnerError> {
    write_request(stream, &Request::Hello(Hello::current())).await?;
    match read_reply(stream).await? {
        Reply::Hello(h) if h == Hello::current() => Ok(()),
        Reply::Error(e) => Err(refused(e)),
        other => Err(SpawnerError::Protocol(format!(
            "expected hello, got {other:?}"
        ))),
    }
}

fn refused(e: sudohub_protocol::spawner::ErrorReply) -> SpawnerError {
    SpawnerError::Refused {
        kind: e.kind,
        message: e.message.into_inner(),
    }
}
