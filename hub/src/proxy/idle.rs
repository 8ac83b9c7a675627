//! Idle timeouts for what the proxy carries: a body that sends nothing for too long ends
//! with an error, and an upgraded (WebSocket) connection silent both ways is closed. So
//! a vanished client or a hung server never holds a connection (and its upstream
//! connection) forever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// A boxed error, what hyper and axum bodies carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a body ends with when it was silent for too long.
#[derive(Debug)]
pub struct IdleTimedOut(pub Duration);

impl std::fmt::Display for IdleTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nothing was sent for {} s", self.0.as_secs())
    }
}

impl std::error::Error for IdleTimedOut {}

/// A body that fails once no frame has come for `idle`.
pub struct IdleBody<B> {
    inner: B,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> IdleBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer.as_mut().reset(Instant::now() + this.idle);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(IdleTimedOut(this.idle))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Copies both ways between two upgraded connections until either side closes, until
/// nothing has been read from either for `idle`, or until `cut` (a hub that hands over
/// reached its drain deadline): then both sides are shut down in order (a FIN, or TLS's
/// close_notify), never reset.
pub async fn splice<A, B>(a: A, b: B, idle: Duration, cut: CancellationToken) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut a = Stamped::new(a, start, last.clone());
    let mut b = Stamped::new(b, start, last.clone());
    {
        let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
        tokio::pin!(copy);
        loop {
            let quiet_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
            tokio::select! {
                done = &mut copy => return done.map(drop),
                () = tokio::time::sleep_until(quiet_since + idle) => {
                    let latest = start + Duration::from_millis(last.load(Ordering::Relaxed));
                    if latest + idle <= Instant::now() {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, IdleTimedOut(idle)));
                    }
                }
                () = cut.cancelled() => break,
            }
        }
    }
    let (x, y) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(1), a.inner.shutdown()),
        tokio::time::timeout(Duration::from_secs(1), b.inner.shutdown())
    );
    drop((x, y));
    Ok(())
}

/// A connection that notes when it last read something.
struct Stamped<T> {
    inner: T,
    start: Instant,
    last: Arc<AtomicU64>,
}

impl<T> Stamped<T> {
    fn new(inner: T, start: Instant, last: Arc<AtomicU64>) -> Self {
        Self { inner, start, last }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stamped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(ms, Ordering::Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stamped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_fails_after_the_idle_time() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        let frames =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            );
        let body = http_body_util::StreamBody::new(Box::pin(frames));
        let mut b = IdleBody::new(body, Duration::from_secs(10));
        tx.send(Ok(Frame::data(Bytes::from_static(b"x"))))
            .await
            .unwrap();
        assert!(b.frame().await.unwrap().is_ok());
        let err = b.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("10 s"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spliced_connection_lives_while_it_talks_and_closes_when_silent() {
        let (a, mut a_peer) = tokio::io::duplex(64);
        let (b, mut b_peer) = tokio::io::duplex(64);
        let task = tokio::spawn(splice(
            a,
            b,
            Duration::from_secs(30),
            CancellationToken::new(),
        ));
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            a_peer.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            b_peer.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
        }
        assert!(
            !task.is_finished(),
            "100 s of traffic, never 30 s of silence"
        );
        tokio::time::sleep(Duration::from_secs(31)).await;
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
