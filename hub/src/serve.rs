//! Running the hub: listeners (plain or TLS, and the loopback API listener), the
//! re-attach socket, background tasks, and a clean stop on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::Signal;

use crate::app::{router, Scheme};
use crate::config::HubConfig;
use crate::state::{AppState, StateError};

/// Errors that stop the hub from starting.
#[derive(Debug)]
pub enum StartupError {
    /// Running as root.
    Root,
    /// The database or the cookie secret.
    State(StateError),
    /// Listening.
    Listen(SocketAddr, std::io::Error),
    /// The re-attach socket.
    Reattach(crate::reattach::ReattachError),
    /// The TLS certificate or key.
    Tls(crate::tls::TlsError),
    /// A template of `template_paths`.
    Templates(String),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Root => f.write_str(
                "sudohub refuses to run as root: run it as its service user (systemd's User=sudohub)",
            ),
            Self::State(e) => write!(f, "{e}"),
            Self::Listen(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Self::Reattach(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "{e}"),
            Self::Templates(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartupError {}

/// `sudohub` (serve): logging to stderr, hub.toml from `config` (default
/// [`DEFAULT_PATH`](crate::config::DEFAULT_PATH)), then [`serve`] until a signal.
pub fn main(config: Option<std::path::PathBuf>) -> std::process::ExitCode {
    use std::process::ExitCode;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let path = config.unwrap_or_else(|| crate::config::DEFAULT_PATH.into());
    let config = match crate::config::HubConfig::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sudohub: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sudohub: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sudohub: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the hub until SIGTERM or SIGINT. User servers are not stopped: their helpers
/// re-attach to the next hub.
pub async fn serve(cfg: HubConfig) -> Result<(), StartupError> {
    if nix::unistd::geteuid().is_root() {
        return Err(StartupError::Root);
    }
    // The signals first: from the moment the port is open, a `systemctl reload` or stop
    // must find their handlers, never the default action (SIGHUP would end the hub, and
    // systemd would count that as a clean exit and not restart it).
    let signals = Signals::register();
    let bind = cfg.bind;
    // Listen first: a connection that arrives while the rest starts waits in the backlog
    // and is answered, never refused (after a crash, or an upgrade through install.sh).
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| StartupError::Listen(bind, e))?;
    let tls_on = cfg.ssl_cert.is_some() && cfg.ssl_key.is_some();
    let internal = if tls_on {
        let at = cfg.hub_bind;
        let l = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| StartupError::Listen(at, e))?;
        tracing::info!(%at, "Hub API for servers on this machine (plain HTTP, loopback)");
        Some(l)
    } else {
        None
    };
    let listen_ms = since_exec_ms();
    crate::templates::install(&cfg.template_paths).map_err(StartupError::Templates)?;
    let (tls, certs) = match (&cfg.ssl_cert, &cfg.ssl_key) {
        (Some(cert), Some(key)) => {
            let (config, store) = crate::tls::reloadable(cert, key).map_err(StartupError::Tls)?;
            (Some(config), Some(store))
        }
        _ => (None, None),
    };
    let state = AppState::new(cfg).map_err(StartupError::State)?;
    state.servers.recover();
    tokio::spawn(state.activity.clone().run(
        state.db.clone(),
        Duration::from_secs(state.cfg.proxy.activity_interval_secs),
    ));
    let reattach =
        crate::reattach::bind(&state.cfg.reattach_socket).map_err(StartupError::Reattach)?;
    tokio::spawn(crate::reattach::serve(
        reattach,
        Arc::new(state.servers.clone()),
    ));
    tracing::info!(%bind, tls = tls.is_some(), base_url = %state.cfg.base_url, listen_ms,
        ready_ms = since_exec_ms(), "sudohub listening");
    let managed = crate::managed::Managed::start(&state.cfg);
    if let Some(culler) =
        crate::culler::Culler::new(&state.cfg.culler, state.db.clone(), state.servers.clone())
    {
        culler.spawn();
    }
    let reloadable = match (certs, state.cfg.ssl_cert.clone(), state.cfg.ssl_key.clone()) {
        (Some(store), Some(cert), Some(key)) => Some((store, cert, key)),
        _ => None,
    };
    tokio::spawn(reload_on_sighup(signals.hup, reloadable));
    let asked = state.shutdown.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown_signal(signals.term, signals.int) => {}
            () = asked.notified() => tracing::info!("stopping: asked through the API"),
        }
    };
    let served = serve_on(state, listener, tls, internal, stop).await;
    managed.stop().await;
    served.map_err(|e| StartupError::Listen(bind, e))?;
    tracing::info!("sudohub stopped; user servers keep running");
    Ok(())
}

/// Serves `state` on listeners that are already bound until `shutdown` completes: the
/// public one (HTTPS when `tls` is given) and, with TLS, the plain loopback one for the
/// servers' API calls (`hub_bind`). Split from [`serve`] so tests run the same code.
pub async fn serve_on(
    state: AppState,
    public: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    internal: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stopped = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let app = |scheme: &'static str| {
        router(state.clone())
            .layer(axum::Extension(Scheme(scheme)))
            .into_make_service_with_connect_info::<SocketAddr>()
    };
    let public = async {
        match tls {
            Some(config) => {
                let listener = crate::tls::TlsListener::new(public, config)?.tap_io(|_| {});
                axum::serve(listener, app("https"))
                    .with_graceful_shutdown(stopped())
                    .await
            }
            None => {
                // No Nagle delay: a response whose headers and body a server sends
                // apart (Tornado does) would otherwise wait for the client's delayed ACK,
                // 40 ms a request. The TLS listener sets it too.
                let public = public.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(public, app("http"))
                    .with_graceful_shutdown(stopped())
                    .await
            }
        }
    };
    let internal = async {
        match internal {
            Some(l) => {
                let l = l.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(l, app("http"))
                    .with_graceful_shutdown(stopped())
                    .await
            }
            None => Ok(()),
        }
    };
    tokio::try_join!(public, internal)?;
    Ok(())
}

/// SIGHUP (`systemctl reload sudohub`, or `kill -HUP`): the TLS certificate and key are
/// read again and served from the next handshake on, without a new process; nothing is
/// dropped. A file that does not load leaves the certificate in use, and says why.
/// Without TLS there is nothing to reload, and SIGHUP is only logged (never the default
/// action, which would end the hub).
async fn reload_on_sighup(
    hup: Option<Signal>,
    tls: Option<(
        Arc<crate::tls::CertStore>,
        std::path::PathBuf,
        std::path::PathBuf,
    )>,
) {
    let Some(mut hup) = hup else {
        return;
    };
    while hup.recv().await.is_some() {
        let Some((store, cert, key)) = &tls else {
            tracing::info!("SIGHUP: no TLS certificate to reload");
            continue;
        };
        match store.reload(cert, key) {
            Ok(()) => tracing::info!(cert = %cert.display(), "SIGHUP: TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the one in use stays")
            }
        }
    }
}

/// Milliseconds since this process was exec'd (its start time in /proc, so loading the
/// binary counts too): what the startup log line reports.
fn since_exec_ms() -> u64 {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)
        .unwrap_or(100) as f64;
    let started = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(19)?
                .parse::<f64>()
                .ok()
        });
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok());
    match (started, uptime) {
        (Some(st), Some(up)) => ((up - st / ticks).max(0.0) * 1000.0) as u64,
        _ => 0,
    }
}

/// The signals the hub handles, registered once, before it listens.
struct Signals {
    hup: Option<Signal>,
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Signals {
    fn register() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            hup: signal(SignalKind::hangup()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }
}

async fn shutdown_signal(term: Option<Signal>, int: Option<Signal>) {
    let (Some(mut term), Some(mut int)) = (term, int) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
