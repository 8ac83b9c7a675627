//! The WebSocket tunnels a hub carries. Counted, so a hub that hands over to its
//! successor knows what it still carries, and movable: a tunnel whose two sides are plain
//! TCP (the hub behind nginx, or without TLS) is paused between two reads and its two
//! sockets go to the successor, which carries it on; nothing read is left behind, and
//! neither end notices. Tunnels that cannot move (TLS to the client) stay until they
//! close, or are closed cleanly at the drain deadline (an orderly close, never a reset).

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::idle::IdleTimedOut;

/// A tunnel's two sockets, between two reads: what moves to the successor.
#[derive(Debug)]
pub struct Moved {
    /// The browser's side.
    pub client: TcpStream,
    /// The server's side.
    pub upstream: TcpStream,
}

/// The open tunnels. Cheap to clone; clones share them.
#[derive(Clone)]
pub struct Tunnels {
    tracker: TaskTracker,
    cut: CancellationToken,
    pause: CancellationToken,
    movable: Arc<AtomicUsize>,
    moved: Arc<Mutex<Option<mpsc::UnboundedReceiver<Moved>>>>,
    moved_tx: mpsc::UnboundedSender<Moved>,
    idle: Duration,
}

impl Tunnels {
    /// No tunnels yet; each closes after `idle` of silence both ways.
    pub fn new(idle: Duration) -> Self {
        let (moved_tx, rx) = mpsc::unbounded_channel();
        Self {
            tracker: TaskTracker::new(),
            cut: CancellationToken::new(),
            pause: CancellationToken::new(),
            movable: Arc::new(AtomicUsize::new(0)),
            moved: Arc::new(Mutex::new(Some(rx))),
            moved_tx,
            idle,
        }
    }

    /// Runs one tunnel that cannot move; `run` gets the token that says it must close.
    pub fn spawn<F, Fut>(&self, run: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(run(self.cut.clone()));
    }

    /// Carries a tunnel between two plain TCP sockets (`early` was read from the client
    /// already, `late` from the server), movable to a successor.
    pub fn carry(&self, client: TcpStream, upstream: TcpStream, early: Vec<u8>, late: Vec<u8>) {
        let this = self.clone();
        // One that opens after the hand-over began stays here.
        let movable = !self.pause.is_cancelled();
        if movable {
            self.movable.fetch_add(1, Ordering::SeqCst);
        }
        self.tracker.spawn(async move {
            let outcome = this.pump(client, upstream, early, late, movable).await;
            if movable {
                this.movable.fetch_sub(1, Ordering::SeqCst);
            }
            match outcome {
                Ok(Some(m)) => {
                    let _ = this.moved_tx.send(m);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "websocket closed with an error"),
            }
        });
    }

    async fn pump(
        &self,
        mut client: TcpStream,
        mut upstream: TcpStream,
        early: Vec<u8>,
        late: Vec<u8>,
        movable: bool,
    ) -> io::Result<Option<Moved>> {
        upstream.write_all(&early).await?;
        client.write_all(&late).await?;
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
        let (mut client_open, mut upstream_open) = (true, true);
        let mut last = Instant::now();
        loop {
            if !client_open && !upstream_open {
                return Ok(None);
            }
            // Reads are cancel-safe: a pause or a cut between two reads loses nothing.
            tokio::select! {
                r = cr.read(&mut up), if client_open => match r? {
                    0 => { client_open = false; uw.shutdown().await?; }
                    n => { uw.write_all(&up[..n]).await?; last = Instant::now(); }
                },
                r = ur.read(&mut down), if upstream_open => match r? {
                    0 => { upstream_open = false; cw.shutdown().await?; }
                    n => { cw.write_all(&down[..n]).await?; last = Instant::now(); }
                },
                () = tokio::time::sleep_until(last + self.idle) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, IdleTimedOut(self.idle)));
                }
                () = self.cut.cancelled() => {
                    let _ = tokio::join!(cw.shutdown(), uw.shutdown());
                    return Ok(None);
                }
                () = self.pause.cancelled(), if movable && client_open && upstream_open => break,
            }
        }
        Ok(Some(Moved { client, upstream }))
    }

    /// How many are open.
    pub fn open(&self) -> usize {
        self.tracker.len()
    }

    /// Pauses every movable tunnel between two reads and returns their sockets, for the
    /// successor; the others go on here. Once only.
    pub async fn take_movable(&self) -> Vec<Moved> {
        let Some(mut rx) = self.moved.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Vec::new();
        };
        self.pause.cancel();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut out = Vec::new();
        while self.movable.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        while let Ok(m) = rx.try_recv() {
            out.push(m);
        }
        out
    }

    /// Resolves once every tunnel has closed (new ones may still open meanwhile).
    pub async fn closed(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Closes every tunnel now (the drain deadline).
    pub fn cut(&self) {
        self.cut.cancel();
    }
}
