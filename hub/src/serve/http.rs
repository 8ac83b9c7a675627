//! The hub's HTTP/1.1 server: accepting, serving each connection with hyper, and the two
//! ways of ending. A stop finishes the requests in flight; a hand-over to a successor
//! ([`super::upgrade`]) drains: it stops accepting, answers every further request on the
//! connections it has with `Connection: close`, keeps carrying WebSockets, and closes
//! whatever is left at the drain deadline. Idle keep-alive connections are not closed
//! when the drain begins: a request racing that close would fail, while a request on a
//! connection that is answered with `Connection: close` never does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use http::header::{HeaderValue, CONNECTION};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// How long connections get to end on their own once they are told to close.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// While draining, a keep-alive connection with no request for this long is closed: its
/// client has moved on (to the successor), and would otherwise keep this process alive.
const DRAIN_IDLE: Duration = Duration::from_secs(5);

/// Where connections come from: a TCP listener, or the TLS acceptor's finished
/// handshakes.
pub enum Incoming {
    /// Plain HTTP.
    Plain(TcpListener),
    /// Connections through their TLS handshake ([`crate::tls::TlsListener`]).
    Tls(mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>),
}

/// The connections of one hub process and how they end. Cheap to clone.
#[derive(Clone, Default)]
pub struct Connections {
    tracker: TaskTracker,
    /// Stop accepting (the successor accepts from now on, or the hub stops).
    stop_accepting: CancellationToken,
    /// Every response from now on closes its connection.
    closing: Arc<AtomicBool>,
    /// Cancelled when `closing` is set: idle connections start counting.
    closing_began: CancellationToken,
    /// Close every connection now (idle ones at once, busy ones after their response).
    close_now: CancellationToken,
}

impl Connections {
    /// `app`, made to close each connection after its response once draining.
    pub fn wrap(&self, app: Router) -> Router {
        let closing = self.closing.clone();
        app.layer(axum::middleware::map_response(
            move |mut resp: axum::response::Response| {
                let closing = closing.load(Ordering::Relaxed);
                async move {
                    // A 101's connection is the tunnel's now: never closed here.
                    if closing && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    resp
                }
            },
        ))
    }

    /// Accepts from `incoming` and serves `app` on each connection until
    /// [`Connections::stop_accepting`]. Returns once it no longer accepts; the
    /// connections go on in the background.
    pub async fn accept(&self, incoming: Incoming, app: Router) {
        match incoming {
            Incoming::Plain(listener) => loop {
                let (tcp, peer) = tokio::select! {
                    biased;
                    () = self.stop_accepting.cancelled() => return,
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                // No Nagle delay: a response whose headers and body a server sends apart
                // (Tornado does) would otherwise wait for the client's delayed ACK.
                let _ = tcp.set_nodelay(true);
                self.serve(tcp, peer, app.clone());
            },
            // The TLS acceptor stops on the same token; handshakes under way still
            // come out of the channel and are served.
            Incoming::Tls(mut ready) => {
                while let Some((tls, peer)) = ready.recv().await {
                    self.serve(tls, peer, app.clone());
                }
            }
        }
    }

    fn serve<I>(&self, io: I, peer: SocketAddr, app: Router)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let close_now = self.close_now.clone();
        let closing = self.closing_began.clone();
        self.tracker.spawn(async move {
            let busy = Arc::new(Busy::default());
            let service = {
                let busy = busy.clone();
                hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    let guard = busy.enter();
                    let answer = app.clone().call(req.map(axum::body::Body::new));
                    // In flight until the body's last byte went out (a download, an event
                    // stream): a draining hub must not take it for an idle connection.
                    async move {
                        let r = answer.await;
                        r.map(|resp| {
                            resp.map(|body| {
                                axum::body::Body::new(Guarded {
                                    body,
                                    _guard: guard,
                                })
                            })
                        })
                    }
                })
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            // When the drain began: a connection idle from before gets DRAIN_IDLE from
            // there, as a client's pooled connection would expect.
            let mut draining: Option<tokio::time::Instant> = None;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::trace!(%peer, error = %e, "connection ended with an error");
                        }
                        return;
                    }
                    () = close_now.cancelled() => break,
                    () = closing.cancelled(), if draining.is_none() => {
                        draining = Some(tokio::time::Instant::now());
                    }
                    () = tokio::time::sleep(Duration::from_millis(500)), if draining.is_some() => {
                        let drained = draining.map_or(Duration::ZERO, |d| d.elapsed());
                        if busy.idle_for().min(drained) >= DRAIN_IDLE {
                            break;
                        }
                    }
                }
            }
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(CLOSE_GRACE, conn).await;
        });
    }

    /// The token the TLS acceptor stops on.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop_accepting.clone()
    }

    /// Stops accepting: the listeners are left to the successor, or closed.
    pub fn stop_accepting(&self) {
        self.stop_accepting.cancel();
    }

    /// From now on each response closes its connection.
    pub fn begin_closing(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.closing_began.cancel();
    }

    /// The connections still open (WebSockets count through their tunnels instead).
    pub fn open(&self) -> usize {
        self.tracker.len()
    }

    /// Resolves once every connection has ended.
    pub async fn ended(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// A stop: requests in flight are answered, idle connections close at once; returns
    /// once all have ended, or after `grace`.
    pub async fn close(&self, grace: Duration) {
        self.begin_closing();
        self.close_now.cancel();
        let _ = tokio::time::timeout(grace, self.ended()).await;
    }
}

/// Requests in flight on one connection, and when it was last busy.
#[derive(Default)]
struct Busy {
    in_flight: std::sync::atomic::AtomicUsize,
    since: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Busy {
    fn enter(self: &Arc<Self>) -> BusyGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        BusyGuard(self.clone())
    }

    /// How long no request has been in flight (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        let mut since = self.since.lock().unwrap_or_else(|p| p.into_inner());
        since
            .get_or_insert_with(tokio::time::Instant::now)
            .elapsed()
    }
}

/// Held while a request is in flight.
struct BusyGuard(Arc<Busy>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        *self.0.since.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that counts as a request in flight until it ends or is dropped.
struct Guarded {
    body: axum::body::Body,
    _guard: BusyGuard,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
