//! The re-attach socket: where spawner helpers whose hub went away dial back in.
//!
//! A restarted hub must get its running servers back without running one `sudo` per
//! server (DESIGN.md, invariant 3). Each helper keeps supervising its server and dials
//! this Unix socket with a [`ReattachHello`] naming its user, server and pid. Any local
//! user can connect, so nothing in the hello is believed on its own:
//!
//! 1. the kernel tells us who connected (`SO_PEERCRED`), and that uid must be the uid of
//!    the user the hello names — a user can only ever claim their own servers;
//! 2. the database must record that server as running with exactly that pid — so a user
//!    cannot claim a route for a process the hub never started.
//!
//! Connections are bounded in number, the hello in size (the protocol's frame cap) and in
//! time, so a local user cannot exhaust the hub through this socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sudohub_protocol::frame::{self, HEADER_LEN};
use sudohub_protocol::spawner::{ReattachAnswer, ReattachHello, ServerStatus};
use sudohub_protocol::{Bounded, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

use crate::types::{ServerName, Username};

/// How long a connection may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections handled at once; more are closed at once (helpers dial again later).
const MAX_CONCURRENT: usize = 32;
/// Connections one uid may have open at once: a local user who opens many and says
/// nothing cannot take every slot from the helpers of other users.
const MAX_PER_UID: usize = 4;

/// A hello that passed the `SO_PEERCRED` check: the uid is the named user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaim {
    /// The user, whose uid matched the peer's.
    pub user: Username,
    /// The server name the helper claims to supervise (`""`: the default server).
    pub server_name: ServerName,
    /// The server's pid as claimed.
    pub pid: u32,
    /// The server's state as the helper reports it.
    pub status: ServerStatus,
}

/// What the hub does with helpers that dial in. The life-cycle code implements it.
pub trait ReattachHandler: Send + Sync + 'static {
    /// Checks a claim against the database: `Ok` only if that server is recorded as
    /// running with that pid and is not attached already. `Err` carries the reason sent
    /// back to the helper.
    fn verify(&self, claim: &VerifiedClaim) -> Result<(), String>;

    /// Takes over an accepted helper connection: restore the route and keep monitoring.
    fn adopt(&self, claim: VerifiedClaim, stream: UnixStream);
}

/// Errors setting up the socket.
#[derive(Debug)]
pub enum ReattachError {
    /// The socket could not be created.
    Bind {
        /// Its path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl std::fmt::Display for ReattachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind { path, source } => write!(
                f,
                "cannot listen on the re-attach socket {}: {source} (its directory must exist \
                 and be writable by the hub user, e.g. /run/sudohub owned by sudohub)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReattachError {}

/// Binds the socket at `path`, replacing a stale one left by a previous hub, and makes it
/// connectable by every local user (helpers run as the users; the checks above decide).
pub fn bind(path: &Path) -> Result<UnixListener, ReattachError> {
    let err = |source| ReattachError::Bind {
        path: path.to_owned(),
        source,
    };
    let listener = crate::handover::bind_unix(path, 0o666).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    UnixListener::from_std(listener).map_err(err)
}

/// Open connections per peer uid.
#[derive(Default)]
struct PerUid(Mutex<HashMap<u32, usize>>);

/// One connection counted for its uid until dropped.
struct UidSlot(Arc<PerUid>, u32);

impl PerUid {
    fn take(self: &Arc<Self>, uid: u32) -> Option<UidSlot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(uid).or_insert(0);
        if *n >= MAX_PER_UID {
            return None;
        }
        *n += 1;
        Some(UidSlot(self.clone(), uid))
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut m = self.0 .0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Accepts helpers forever, handing verified ones to `handler`. The kernel names each
/// peer (`SO_PEERCRED`) before it gets a slot: one uid holds at most [`MAX_PER_UID`] of
/// the [`MAX_CONCURRENT`] slots, and a connection without a slot is closed at once.
pub async fn serve(listener: UnixListener, handler: Arc<dyn ReattachHandler>) {
    let (_open, gate) = tokio::sync::watch::channel(true);
    serve_while(listener, handler, gate).await;
}

/// [`serve`], accepting only while `open` says so: a hub handing over to its successor
/// stops accepting here before it lets its helpers go, so that they dial the successor
/// (the listening socket is the same), and accepts again if the hand-over fails.
pub async fn serve_while(
    listener: UnixListener,
    handler: Arc<dyn ReattachHandler>,
    mut open: tokio::sync::watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let per_uid = Arc::new(PerUid::default());
    loop {
        if open.wait_for(|o| *o).await.is_err() {
            return;
        }
        let accepted = tokio::select! {
            biased;
            changed = open.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "re-attach accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Only accounts get a slot: uids without a passwd entry (a user's subordinate
        // uids, say) could otherwise fill the slots from many uids at once.
        let Some(uid) = stream.peer_cred().ok().map(|c| c.uid()).filter(|uid| {
            nix::unistd::User::from_uid((*uid).into())
                .ok()
                .flatten()
                .is_some()
        }) else {
            continue;
        };
        let Some(uid_slot) = per_uid.take(uid) else {
            tracing::warn!(
                peer_uid = uid,
                "re-attach: too many connections from this uid; closed"
            );
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(peer_uid = uid, "re-attach: every slot is busy; closed");
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Some((claim, stream)) = handle(stream, handler.as_ref()).await {
                handler.adopt(claim, stream);
            }
            drop((permit, uid_slot));
        });
    }
}

/// Reads and judges one helper's hello; answers it; returns the connection if accepted.
async fn handle(
    mut stream: UnixStream,
    handler: &dyn ReattachHandler,
) -> Option<(VerifiedClaim, UnixStream)> {
    let peer_uid = match stream.peer_cred() {
        Ok(cred) => cred.uid(),
        Err(e) => {
            tracing::warn!(error = %e, "re-attach: no peer credentials; dropped");
            return None;
        }
    };
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut stream)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(reason)) => {
            tracing::warn!(peer_uid, %reason, "re-attach: bad hello; dropped");
            return None;
        }
        Err(_) => {
            tracing::warn!(peer_uid, "re-attach: no hello in time; dropped");
            return None;
        }
    };
    let verdict = judge(peer_uid, hello, handler);
    let answer = match &verdict {
        Ok(_) => ReattachAnswer::Accepted,
        Err(reason) => ReattachAnswer::Refused {
            message: Bounded::new(truncate(reason)).unwrap_or_default(),
        },
    };
    let frame = frame::encode(&answer).ok()?;
    if let Err(e) = stream.write_all(&frame).await {
        tracing::warn!(peer_uid, error = %e, "re-attach: cannot answer");
        return None;
    }
    match verdict {
        Ok(claim) => {
            tracing::info!(user = %claim.user, server = %claim.server_name, pid = claim.pid,
                "re-attach: helper accepted");
            Some((claim, stream))
        }
        Err(reason) => {
            tracing::warn!(peer_uid, %reason, "re-attach: helper refused");
            None
        }
    }
}

/// The two checks of the module docs, in order.
fn judge(
    peer_uid: u32,
    hello: ReattachHello,
    handler: &dyn ReattachHandler,
) -> Result<VerifiedClaim, String> {
    if hello.version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} is not the hub's {PROTOCOL_VERSION}",
            hello.version
        ));
    }
    let user = Username::parse(hello.user.as_str()).map_err(|e| e.to_string())?;
    let uid = nix::unistd::User::from_name(user.as_str())
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
        .ok_or_else(|| format!("unknown user {user:?}"))?;
    if uid != peer_uid {
        return Err(format!(
            "peer uid {peer_uid} may not speak for user {user:?} (uid {uid})"
        ));
    }
    let server_name = ServerName::parse(hello.server_name.as_str())?;
    let claim = VerifiedClaim {
        user,
        server_name,
        pid: hello.pid,
        status: hello.status,
    };
    handler.verify(&claim)?;
    Ok(claim)
}

async fn read_hello(stream: &mut UnixStream) -> Result<ReattachHello, String> {
    let mut header = [0u8; HEADER_LEN];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| format!("reading header: {e}"))?;
    let len = frame::body_len(header).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("reading body: {e}"))?;
    frame::decode(&body).map_err(|e| e.to_string())
}

fn truncate(reason: &str) -> String {
    reason
        .chars()
        .take(sudohub_protocol::spawner::MAX_MESSAGE / 4)
        .collect()
}

#[cfg(test)]
mod tests;
