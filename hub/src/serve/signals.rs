//! Signals: SIGHUP reloads in place (as `sudohub reload` does), SIGUSR2 upgrades (as
//! `sudohub upgrade` does), SIGTERM and SIGINT stop.

use std::sync::Arc;

use tokio::signal::unix::Signal;

use super::upgrade::{Control, Reload};

/// SIGHUP: what `reload` does ([`super::reload`]); SIGUSR2: an upgrade. Never their default actions (which
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
