//! The successor's side of a hand-over. Started by the running hub with
//! [`TAKEOVER_ENV`], it asks that hub for its sockets over the control socket instead of
//! binding them, sets itself up, says when it can take the helpers (the old hub lets them
//! go and they dial the re-attach socket, now accepted here), and says when it serves,
//! after which the old hub stops accepting and drains.

use std::path::Path;
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UnixStream;

use super::control::{read_line, write_line};
use super::listeners::{ListenError, Listeners};
use crate::proxy::Tunnels;

/// Set by the running hub in its successor's environment.
pub const TAKEOVER_ENV: &str = "SUDOHUB_TAKEOVER";

/// The longest wait for the old hub at each step.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// The conversation with the old hub, after the sockets came.
pub struct Takeover {
    stream: UnixStream,
}

/// Whether this process was started as a successor.
pub fn asked() -> bool {
    std::env::var_os(TAKEOVER_ENV).is_some_and(|v| v == "1")
}

fn err(e: impl std::fmt::Display) -> ListenError {
    ListenError::Takeover(e.to_string())
}

/// Connects to the hub at `control` and receives its sockets.
pub async fn take(control: &Path) -> Result<(Listeners, Takeover), ListenError> {
    let mut stream = UnixStream::connect(control)
        .await
        .map_err(|e| ListenError::Takeover(format!("cannot reach {}: {e}", control.display())))?;
    // Sockets only from a hub of this account.
    crate::handover::check_peer(&stream).map_err(err)?;
    write_line(&mut stream, "takeover").await.map_err(err)?;
    let fds = tokio::time::timeout(
        STEP_TIMEOUT,
        stream.async_io(Interest::READABLE, || crate::handover::recv_fds(&stream)),
    )
    .await
    .map_err(|_| err("no sockets came"))?
    .map_err(err)?;
    let listeners = Listeners::from_fds(fds)?;
    Ok((listeners, Takeover { stream }))
}

impl Takeover {
    async fn expect(&mut self, prefix: &str) -> Result<String, ListenError> {
        let line = tokio::time::timeout(STEP_TIMEOUT, read_line(&mut self.stream))
            .await
            .map_err(|_| err(format!("no '{prefix}' from the old hub")))?
            .map_err(err)?
            .ok_or_else(|| err("the old hub hung up"))?;
        if let Some(rest) = line.strip_prefix("error ") {
            return Err(err(rest));
        }
        line.strip_prefix(prefix)
            .map(|r| r.trim().to_owned())
            .ok_or_else(|| err(format!("'{prefix}' expected, '{line}' came")))
    }

    /// Ready to take the helpers: the old hub finishes the starts under way, lets its
    /// helpers go and says how many.
    pub async fn attach(&mut self) -> Result<usize, ListenError> {
        write_line(&mut self.stream, "attach").await.map_err(err)?;
        self.expect("released").await?.parse().map_err(err)
    }

    /// Serving now: the old hub moves its WebSockets here (carried on by `tunnels`) and
    /// stops accepting. Returns how many came. Once the old hub has heard "serving" this
    /// process is the hub, so nothing after that is an error that could stop it: a
    /// WebSocket that does not come is logged and lost, the hub serves on.
    pub async fn serving(mut self, tunnels: &Tunnels) -> Result<usize, ListenError> {
        write_line(&mut self.stream, "serving").await.map_err(err)?;
        let mut came = 0;
        if let Err(e) = self.carry(tunnels, &mut came).await {
            tracing::warn!(error = %e, came, "takeover: not every WebSocket came over");
        }
        Ok(came)
    }

    async fn carry(&mut self, tunnels: &Tunnels, came: &mut usize) -> Result<(), ListenError> {
        let n: usize = self.expect("tunnels").await?.parse().map_err(err)?;
        for _ in 0..n {
            let stream = &self.stream;
            let fds = tokio::time::timeout(
                STEP_TIMEOUT,
                stream.async_io(Interest::READABLE, || crate::handover::recv_fds(stream)),
            )
            .await
            .map_err(|_| err("a WebSocket's sockets did not come"))?
            .map_err(err)?;
            let mut it = fds.into_iter();
            let (Some(c), Some(u), None) = (it.next(), it.next(), it.next()) else {
                return Err(err("a WebSocket comes as two sockets"));
            };
            let (c, u) = (std::net::TcpStream::from(c), std::net::TcpStream::from(u));
            c.set_nonblocking(true).map_err(err)?;
            u.set_nonblocking(true).map_err(err)?;
            let c = tokio::net::TcpStream::from_std(c).map_err(err)?;
            let u = tokio::net::TcpStream::from_std(u).map_err(err)?;
            tunnels.carry(c, u, Vec::new(), Vec::new());
            *came += 1;
        }
        self.expect("bye").await?;
        Ok(())
    }
}
