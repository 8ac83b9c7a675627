//! A fake spawner helper for tests: the real frames over a socketpair, a real HTTP server
//! on the port the hub picked, and no sudo, root or Python.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sudohub_protocol::frame::{self, HEADER_LEN};
use sudohub_protocol::spawner::{ErrorKind, ErrorReply, ExitStatus, Reply, Request, ServerStatus};
use sudohub_protocol::Hello;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

use super::client::handshake;
use super::{ServerHandle, SpawnArgs, Spawner, SpawnerError};

/// The user running the tests: the fake's servers listen as that user, so the check
/// that a route only goes to the user's own socket passes for them.
pub fn test_user() -> crate::types::Username {
    let name = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    crate::types::Username::parse(&name).unwrap()
}

/// Reads one request frame, as a helper does.
pub async fn read_request(s: &mut UnixStream) -> Option<Request> {
    let mut header = [0u8; HEADER_LEN];
    s.read_exact(&mut header).await.ok()?;
    let mut body = vec![0u8; frame::body_len(header).ok()?];
    s.read_exact(&mut body).await.ok()?;
    frame::decode(&body).ok()
}

/// Writes one reply frame, as a helper does.
pub async fn reply(s: &mut UnixStream, r: &Reply) {
    let _ = s.write_all(&frame::encode(r).unwrap()).await;
}

/// What the fake helper does with the next spawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Start a server that answers HTTP.
    Serve,
    /// Refuse, as a helper refusing an environment variable does.
    Refuse,
    /// Report the start, then the server's exit before it ever answers HTTP.
    ExitAtOnce,
    /// Serve, and on a stop take [`LINGER`] to exit, as a server shutting down in its
    /// grace period does (status requests are still answered meanwhile).
    LingerOnStop,
    /// Report the start, and answer HTTP only [`LINGER`] later, as a server still
    /// importing its modules does.
    SlowToAnswer,
    /// Take [`LINGER`] before reporting the start at all, as a helper on a loaded
    /// machine does.
    SlowToStart,
}

/// How long a [`Behaviour::LingerOnStop`] server takes to exit after its stop.
pub const LINGER: Duration = Duration::from_millis(600);

/// The fake: every spawn gets a new pid; tests can make a server exit or its helper
/// vanish.
pub struct FakeSpawner {
    behaviour: Mutex<Behaviour>,
    next_pid: AtomicU32,
    /// Per user: ends the server as if it exited by itself (`true`) or cuts the helper's
    /// connection as a hub restart would (`false`).
    enders: Mutex<HashMap<String, oneshot::Sender<bool>>>,
    /// Every spawn's arguments, in order.
    pub spawned: Mutex<Vec<SpawnArgs>>,
    /// `spawn <pid>` and `exit <pid>`, in the order they happened.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl FakeSpawner {
    /// A fake whose spawns behave as `behaviour`.
    pub fn new(behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            behaviour: Mutex::new(behaviour),
            next_pid: AtomicU32::new(1000),
            enders: Mutex::new(HashMap::new()),
            spawned: Mutex::new(Vec::new()),
            log: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Changes what the next spawns do.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// Makes `user`'s server exit by itself.
    pub fn exit(&self, user: &str) {
        if let Some(tx) = self.enders.lock().unwrap().remove(user) {
            let _ = tx.send(true);
        }
    }

    /// Cuts the connection of `user`'s helper without an exit report.
    pub fn lose(&self, user: &str) {
        if let Some(tx) = self.enders.lock().unwrap().remove(user) {
            let _ = tx.send(false);
        }
    }
}

impl Spawner for FakeSpawner {
    fn spawn(
        &self,
        args: SpawnArgs,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<ServerHandle, SpawnerError>> {
        let behaviour = *self.behaviour.lock().unwrap();
        let pid = self.next_pid.fetch_add(1, Ordering::Relaxed);
        let (end_tx, end_rx) = oneshot::channel();
        self.enders
            .lock()
            .unwrap()
            .insert(args.user.as_str().to_owned(), end_tx);
        self.spawned.lock().unwrap().push(args.clone());
        self.log.lock().unwrap().push(format!("spawn {pid}"));
        let log = self.log.clone();
        Box::pin(async move {
            let (hub, helper) = UnixStream::pair().map_err(SpawnerError::Exec)?;
            tokio::spawn(fake_helper(helper, behaviour, pid, end_rx, log));
            tokio::time::timeout(timeout, handshake(hub, &args))
                .await
                .map_err(|_| SpawnerError::Timeout)?
        })
    }

    fn clear<'a>(
        &'a self,
        user: &'a crate::types::Username,
        server: &'a crate::types::ServerName,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<u32, SpawnerError>> {
        self.log
            .lock()
            .unwrap()
            .push(format!("clear {user}/{server}"));
        Box::pin(async { Ok(0) })
    }
}

async fn fake_helper(
    mut s: UnixStream,
    behaviour: Behaviour,
    pid: u32,
    mut end: oneshot::Receiver<bool>,
    log: Arc<Mutex<Vec<String>>>,
) {
    let Some(Request::Hello(_)) = read_request(&mut s).await else {
        return;
    };
    reply(&mut s, &Reply::Hello(Hello::current())).await;
    let Some(Request::Target(_)) = read_request(&mut s).await else {
        return;
    };
    let Some(Request::Spawn(spawn)) = read_request(&mut s).await else {
        return;
    };
    match behaviour {
        Behaviour::Refuse => {
            let e = ErrorReply::new(
                ErrorKind::EnvNotAllowed,
                "environment variable \"X\" is not allowed",
            );
            return reply(&mut s, &Reply::Error(e)).await;
        }
        Behaviour::ExitAtOnce => {
            reply(&mut s, &Reply::Started { pid }).await;
            let status = ExitStatus::Code(1);
            return reply(&mut s, &Reply::Exited { status }).await;
        }
        Behaviour::SlowToAnswer => {
            reply(&mut s, &Reply::Started { pid }).await;
            tokio::time::sleep(LINGER).await;
        }
        Behaviour::SlowToStart => tokio::time::sleep(LINGER).await,
        Behaviour::Serve | Behaviour::LingerOnStop => {}
    }
    let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", spawn.port)).await else {
        let e = ErrorReply::new(ErrorKind::Internal, "port taken");
        return reply(&mut s, &Reply::Error(e)).await;
    };
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let app = axum::Router::new().fallback(|| async { "fake single-user server" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .await;
    });
    if behaviour != Behaviour::SlowToAnswer {
        reply(&mut s, &Reply::Started { pid }).await;
    }
    let never = Duration::from_secs(24 * 3600);
    let exit_at = tokio::time::sleep(never);
    tokio::pin!(exit_at);
    let ending = loop {
        tokio::select! {
            req = read_request(&mut s) => match req {
                Some(Request::Status) => reply(&mut s, &Reply::Status(ServerStatus::Running { pid })).await,
                Some(Request::Stop { .. }) if behaviour == Behaviour::LingerOnStop => {
                    exit_at.as_mut().reset(tokio::time::Instant::now() + LINGER);
                }
                Some(Request::Stop { .. }) => break Some(ExitStatus::Signal(15)),
                _ => break None,
            },
            () = &mut exit_at => break Some(ExitStatus::Signal(15)),
            // A newer spawn for the same user takes the ender: this server goes on.
            Ok(by_itself) = &mut end => break by_itself.then_some(ExitStatus::Code(0)),
        }
    };
    let _ = stop_http.send(());
    if let Some(status) = ending {
        log.lock().unwrap().push(format!("exit {pid}"));
        reply(&mut s, &Reply::Exited { status }).await;
    }
}
