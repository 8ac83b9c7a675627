//! Signals: SIGHUP reloads in place (as `sudohub reload` does), SIGUSR2 upgrades (as
//! `sudohub upgrade` does), SIGTERM and SIGINT stop.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::Signal;

use super::upgrade::{Control, Reload};
use crate::state::AppState;

/// What `reload` (SIGHUP, `systemctl reload`, `sudohub reload`) does in place, without a
/// new process and without dropping anything: the TLS certificate and key are read again
/// and served from the next handshake on. A file that does not load leaves the
/// certificate in use, and says why.
pub(super) fn reloader(certs: Option<Arc<crate::tls::CertStore>>, state: &AppState) -> Reload {
    let files: Option<(PathBuf, PathBuf)> =
        state.cfg.ssl_cert.clone().zip(state.cfg.ssl_key.clone());
    Arc::new(move || {
        let mut done = Vec::new();
        if let (Some(store), Some((cert, key))) = (&certs, &files) {
            store
                .reload(cert, key)
                .map_err(|e| format!("TLS certificate not reloaded; the one in use stays: {e}"))?;
            tracing::info!(cert = %cert.display(), "reload: TLS certificate reloaded");
            done.push("TLS certificate reloaded");
        }
        if done.is_empty() {
            done.push("nothing to reload");
        }
        Ok(done.join("; "))
    })
}

/// SIGHUP: [`reloader`]'s work; SIGUSR2: an upgrade. Never their default actions (which
/// would end the hub).
pub(super) async fn on_signals(
    hup: Option<Signal>,
    usr2: Option<Signal>,
    reload: Reload,
    ctl: Arc<Control>,
) {
    let (Some(mut hup), Some(mut usr2)) = (hup, usr2) else {
        return;
    };
    loop {
        tokio::select! {
            Some(()) = hup.recv() => match reload() {
                Ok(summary) => tracing::info!(%summary, "SIGHUP: reloaded"),
                Err(e) => tracing::error!(error = %e, "SIGHUP: reload failed"),
            },
            Some(()) = usr2.recv() => {
                let ctl = ctl.clone();
                tokio::spawn(async move {
                    match ctl.upgrade().await {
                        Ok(pid) => tracing::info!(successor = pid, "SIGUSR2: upgraded"),
                        Err(e) => tracing::error!(error = %e, "SIGUSR2: upgrade failed; this hub goes on"),
                    }
                });
            }
            else => return,
        }
    }
}

/// The signals the hub handles, registered once, before it listens.
pub(super) struct Signals {
    pub(super) hup: Option<Signal>,
    pub(super) usr2: Option<Signal>,
    pub(super) term: Option<Signal>,
    pub(super) int: Option<Signal>,
}

impl Signals {
    pub(super) fn register() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            hup: signal(SignalKind::hangup()).ok(),
            usr2: signal(SignalKind::user_defined2()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }
}

pub(super) async fn shutdown_signal(term: Option<Signal>, int: Option<Signal>) {
    let (Some(mut term), Some(mut int)) = (term, int) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
