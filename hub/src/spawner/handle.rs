//! A running server, as seen through its helper's connection.

use std::collections::VecDeque;
use std::time::Duration;

use sudohub_protocol::frame::{self, HEADER_LEN};
use sudohub_protocol::spawner::{ExitStatus, Reply, Request, ServerStatus};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};

use super::SpawnerError;

/// How a server's supervision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The helper reported the server's exit.
    Exited(ExitStatus),
    /// The connection to the helper broke without an exit report: the server may still
    /// run, and its helper will dial the re-attach socket.
    Lost,
}

pub(super) enum Command {
    Status(oneshot::Sender<Result<ServerStatus, SpawnerError>>),
    Stop(u32, oneshot::Sender<Result<(), SpawnerError>>),
    Release,
}

/// Handle to one server supervised by a helper. Cheap to clone; all clones talk to the
/// same connection.
#[derive(Clone)]
pub struct ServerHandle {
    pid: u32,
    commands: mpsc::Sender<Command>,
    ending: watch::Receiver<Option<Ending>>,
    job: Option<super::job::JobLink>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("pid", &self.pid)
            .finish()
    }
}

impl ServerHandle {
    /// Takes over a connection to a helper whose server runs as `pid`: the one from a
    /// spawn, or one accepted on the re-attach socket.
    pub fn adopt(stream: UnixStream, pid: u32) -> Self {
        let (commands, rx) = mpsc::channel(8);
        let (tx_end, ending) = watch::channel(None);
        tokio::spawn(drive(stream, rx, tx_end));
        Self {
            pid,
            commands,
            ending,
            job: None,
        }
    }

    /// A server that is Slurm job `link`, driven by `drive` (see [`super::job`]): its
    /// "pid" is the job id.
    pub(super) fn for_job(
        link: super::job::JobLink,
        commands: mpsc::Sender<Command>,
        ending: watch::Receiver<Option<Ending>>,
    ) -> Self {
        Self {
            pid: link.id,
            commands,
            ending,
            job: Some(link),
        }
    }

    /// The Slurm job this server is, with the backend `"slurm"`.
    pub fn job(&self) -> Option<&super::job::JobLink> {
        self.job.as_ref()
    }

    /// The server's pid (its job id, for a Slurm job).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Asks the helper for the server's state.
    pub async fn status(&self) -> Result<ServerStatus, SpawnerError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Status(tx))
            .await
            .map_err(|_| SpawnerError::Disconnected)?;
        rx.await.map_err(|_| SpawnerError::Disconnected)?
    }

    /// Stops the server: SIGTERM to its process group, SIGKILL after `grace`. Returns its
    /// exit status once it is gone.
    pub async fn stop(&self, grace: Duration) -> Result<ExitStatus, SpawnerError> {
        let (tx, rx) = oneshot::channel();
        let ms = u32::try_from(grace.as_millis()).unwrap_or(u32::MAX);
        self.commands
            .send(Command::Stop(ms, tx))
            .await
            .map_err(|_| SpawnerError::Disconnected)?;
        rx.await.map_err(|_| SpawnerError::Disconnected)??;
        match self.ended().await {
            Ending::Exited(status) => Ok(status),
            Ending::Lost => Err(SpawnerError::Disconnected),
        }
    }

    /// Asks the helper to stop the server and returns once it has: the SIGTERM is sent
    /// (confirmed by a status round trip, which the helper answers after the stop), and
    /// the helper owns the grace period and the SIGKILL after it. The exit report still
    /// arrives through [`ServerHandle::ended`]. A helper already gone counts as done.
    pub async fn terminate(&self, grace: Duration) -> Result<(), SpawnerError> {
        let (tx, rx) = oneshot::channel();
        let ms = u32::try_from(grace.as_millis()).unwrap_or(u32::MAX);
        if self.commands.send(Command::Stop(ms, tx)).await.is_err() {
            return self.gone_or(SpawnerError::Disconnected);
        }
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return self.gone_or(SpawnerError::Disconnected),
        }
        match self.status().await {
            Ok(_) => Ok(()),
            Err(e) => self.gone_or(e),
        }
    }

    /// `Ok` when the server's exit was reported (a stop raced with it), else `e`.
    fn gone_or(&self, e: SpawnerError) -> Result<(), SpawnerError> {
        match self.ending() {
            Some(Ending::Exited(_)) => Ok(()),
            _ => Err(e),
        }
    }

    /// Resolves as soon as supervision ends: with the exit status the helper pushed, or
    /// `Lost` when the connection broke.
    pub async fn ended(&self) -> Ending {
        let mut rx = self.ending.clone();
        let ending = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(Ending::Lost),
            Err(_) => Ending::Lost,
        };
        ending
    }

    /// Lets go of the helper without a word: the connection closes, supervision ends as
    /// `Lost`, and the helper, which keeps its server running, dials the re-attach socket
    /// (a hub handing over to its successor, which accepts there).
    pub async fn release(&self) {
        let _ = self.commands.send(Command::Release).await;
        let _ = self.ended().await;
    }

    /// The ending, if it happened already.
    pub fn ending(&self) -> Option<Ending> {
        *self.ending.borrow()
    }
}

/// Owns the connection: sends commands, matches replies to them in order, and publishes
/// the server's exit the moment the helper pushes it.
async fn drive(
    stream: UnixStream,
    mut commands: mpsc::Receiver<Command>,
    ending: watch::Sender<Option<Ending>>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let mut waiting: VecDeque<Command> = VecDeque::new();
    let mut commands_open = true;
    loop {
        tokio::select! {
            cmd = commands.recv(), if commands_open => {
                let Some(cmd) = cmd else { commands_open = false; continue };
                let req = match &cmd {
                    Command::Status(_) => Request::Status,
                    Command::Stop(ms, _) => Request::Stop { grace_ms: *ms },
                    Command::Release => break,
                };
                if write_request(&mut writer, &req).await.is_err() {
                    break;
                }
                // A stop is answered by the exit report; acknowledge it as sent.
                match cmd {
                    Command::Stop(_, tx) => { let _ = tx.send(Ok(())); }
                    other => waiting.push_back(other),
                }
            }
            reply = read_reply(&mut reader) => {
                match reply {
                    Ok(Reply::Exited { status }) => {
                        let _ = ending.send(Some(Ending::Exited(status)));
                        return;
                    }
                    Ok(Reply::Status(s)) => {
                        if let Some(Command::Status(tx)) = waiting.pop_front() {
                            let _ = tx.send(Ok(s));
                        }
                    }
                    Ok(Reply::Error(e)) => {
                        let err = SpawnerError::Refused { kind: e.kind, message: e.message.into_inner() };
                        match waiting.pop_front() {
                            Some(Command::Status(tx)) => { let _ = tx.send(Err(err)); }
                            _ => tracing::warn!(error = %err, "spawner helper reported an error"),
                        }
                    }
                    Ok(Reply::OutOfMemory { kills, limit }) => {
                        tracing::warn!(kills, limit, "server out of memory: the kernel killed processes of it");
                    }
                    Ok(other) => tracing::warn!(?other, "unexpected message from the spawner helper"),
                    Err(_) => break,
                }
            }
        }
    }
    let _ = ending.send(Some(Ending::Lost));
}

/// Writes one request frame.
pub(crate) async fn write_request<W: AsyncWrite + Unpin>(
    w: &mut W,
    req: &Request,
) -> Result<(), SpawnerError> {
    let bytes = frame::encode(req).map_err(|e| SpawnerError::Protocol(e.to_string()))?;
    w.write_all(&bytes)
        .await
        .map_err(|_| SpawnerError::Disconnected)
}

/// Reads one reply frame, checking the length against the cap before allocating.
pub(crate) async fn read_reply<R: AsyncRead + Unpin>(r: &mut R) -> Result<Reply, SpawnerError> {
    let mut header = [0u8; HEADER_LEN];
    r.read_exact(&mut header)
        .await
        .map_err(|_| SpawnerError::Disconnected)?;
    let len = frame::body_len(header).map_err(|e| SpawnerError::Protocol(e.to_string()))?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .await
        .map_err(|_| SpawnerError::Disconnected)?;
    frame::decode(&body).map_err(|e| SpawnerError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    //! The hub's side against a fake helper on the other end of a socketpair: no root,
    //! no sudo, but the real frames.
    use super::*;
    use crate::spawner::client::handshake;
    use crate::spawner::fake::{read_request, reply};
    use crate::spawner::SpawnArgs;
    use sudohub_protocol::spawner::{ErrorKind, ErrorReply};
    use sudohub_protocol::Hello;

    fn args() -> SpawnArgs {
        SpawnArgs {
            user: crate::types::Username::parse("alice").unwrap(),
            server_name: crate::types::ServerName::DEFAULT,
            port: 20000,
            env: vec![("JUPYTERHUB_API_TOKEN".into(), "t".into())],
            profile: String::new(),
        }
    }

    #[tokio::test]
    async fn spawn_status_exit_and_stop() {
        let (hub, mut fake) = UnixStream::pair().unwrap();
        let helper = tokio::spawn(async move {
            assert_eq!(
                read_request(&mut fake).await.unwrap(),
                Request::Hello(Hello::current())
            );
            reply(&mut fake, &Reply::Hello(Hello::current())).await;
            match read_request(&mut fake).await.unwrap() {
                Request::Target(t) => assert_eq!(t.user.as_str(), args().user.as_str()),
                other => panic!("{other:?}"),
            }
            match read_request(&mut fake).await.unwrap() {
                Request::Spawn(s) => assert_eq!((s.port, s.env.len()), (20000, 1)),
                other => panic!("{other:?}"),
            }
            reply(&mut fake, &Reply::Started { pid: 77 }).await;
            assert_eq!(read_request(&mut fake).await.unwrap(), Request::Status);
            reply(&mut fake, &Reply::Status(ServerStatus::Running { pid: 77 })).await;
            assert_eq!(
                read_request(&mut fake).await.unwrap(),
                Request::Stop { grace_ms: 1500 }
            );
            reply(
                &mut fake,
                &Reply::Exited {
                    status: ExitStatus::Code(0),
                },
            )
            .await;
        });
        let handle = handshake(hub, &args()).await.unwrap();
        assert_eq!(handle.pid(), 77);
        assert_eq!(
            handle.status().await.unwrap(),
            ServerStatus::Running { pid: 77 }
        );
        assert_eq!(
            handle.stop(Duration::from_millis(1500)).await.unwrap(),
            ExitStatus::Code(0)
        );
        assert_eq!(handle.ending(), Some(Ending::Exited(ExitStatus::Code(0))));
        helper.await.unwrap();
    }

    #[tokio::test]
    async fn pushed_exit_and_lost_connection_are_seen_at_once() {
        let (hub, mut fake) = UnixStream::pair().unwrap();
        let h = ServerHandle::adopt(hub, 5);
        reply(
            &mut fake,
            &Reply::Exited {
                status: ExitStatus::Signal(9),
            },
        )
        .await;
        assert_eq!(h.ended().await, Ending::Exited(ExitStatus::Signal(9)));

        let (hub, fake) = UnixStream::pair().unwrap();
        let h = ServerHandle::adopt(hub, 6);
        drop(fake);
        assert_eq!(h.ended().await, Ending::Lost);
    }

    #[tokio::test]
    async fn refusals_are_typed() {
        let (hub, mut fake) = UnixStream::pair().unwrap();
        tokio::spawn(async move {
            let _ = read_request(&mut fake).await.unwrap();
            reply(&mut fake, &Reply::Hello(Hello::current())).await;
            let _ = read_request(&mut fake).await.unwrap();
            let e = ErrorReply::new(
                ErrorKind::EnvNotAllowed,
                "environment variable \"PATH\" is not allowed",
            );
            reply(&mut fake, &Reply::Error(e)).await;
        });
        match handshake(hub, &args()).await {
            Err(SpawnerError::Refused {
                kind: ErrorKind::EnvNotAllowed,
                message,
            }) => {
                assert!(message.contains("PATH"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn oversize_replies_are_refused_before_allocating() {
        let (mut hub, mut fake) = UnixStream::pair().unwrap();
        fake.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
        match read_reply(&mut hub).await {
            Err(SpawnerError::Protocol(m)) => assert!(m.contains("exceeds the limit")),
            other => panic!("{other:?}"),
        }
    }
}
