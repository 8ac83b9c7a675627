//! Running the hub: its sockets (bound, from systemd, or taken over from the hub before
//! it), the re-attach and control sockets, background tasks, and its end: a stop on
//! SIGTERM or SIGINT, or a drain after handing over to a successor (`sudohub upgrade`).

mod control;
mod ending;
mod http;
mod listeners;
mod reload;
mod signals;
mod takeover;
mod upgrade;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::app::{router, Scheme};
use crate::config::HubConfig;
use crate::state::{AppState, StateError};
pub use control::{client, Ask};
use ending::drain;
pub use ending::Background;
pub use http::{Connections, Incoming};
pub use listeners::{control_path, ListenError, Listeners, Origin};
use reload::{reloader, LiveConfig};
use signals::{on_signals, shutdown_signal, Signals};

/// How long a stop waits for the requests in flight.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a successor waits for the helpers its predecessor let go.
const HELPERS_WAIT: Duration = Duration::from_secs(5);

/// Errors that stop the hub from starting.
#[derive(Debug)]
pub enum StartupError {
    /// Running as root.
    Root,
    /// The database or the cookie secret.
    State(StateError),
    /// The sockets.
    Listen(ListenError),
    /// The TLS certificate or key.
    Tls(crate::tls::TlsError),
    /// A template of `template_paths`.
    Templates(String),
    /// Making a socket usable by the runtime.
    Io(std::io::Error),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Root => f.write_str(
                "sudohub refuses to run as root: run it as its service user (systemd's User=sudohub)",
            ),
            Self::State(e) => write!(f, "{e}"),
            Self::Listen(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "{e}"),
            Self::Templates(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartupError {}

impl From<ListenError> for StartupError {
    fn from(e: ListenError) -> Self {
        Self::Listen(e)
    }
}

impl From<std::io::Error> for StartupError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// The binary and the hub.toml this process runs: what a successor is started with.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The binary's path as started (after an install replaced it, the new binary).
    pub exe: PathBuf,
    /// hub.toml.
    pub config: PathBuf,
    /// hub.toml's text as this process read it at start (`reload` compares with it).
    pub text: String,
}

/// `sudohub` (serve): logging to stderr, hub.toml from `config` (default
/// [`DEFAULT_PATH`](crate::config::DEFAULT_PATH)), then [`serve`] until a signal.
pub fn main(config: Option<PathBuf>) -> std::process::ExitCode {
    use std::process::ExitCode;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let path = config.unwrap_or_else(|| crate::config::DEFAULT_PATH.into());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sudohub: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let config = match crate::config::HubConfig::parse(&text, &path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sudohub: {e}");
            return ExitCode::from(2);
        }
    };
    // The path, not /proc/self/exe: after install.sh replaces the binary, a successor
    // must run the new one.
    let exe = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("/usr/bin/sudohub"));
    let config_path = std::fs::canonicalize(&path).unwrap_or(path);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sudohub: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let invocation = Invocation {
        exe,
        config: config_path,
        text,
    };
    match runtime.block_on(serve(config, invocation)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sudohub: {e}");
            ExitCode::from(1)
        }
    }
}

/// How the hub ended.
enum End {
    Stop,
    HandedOver(u32),
}

/// Runs the hub until SIGTERM or SIGINT, or until it handed over to a successor and
/// drained. User servers are never stopped: their helpers re-attach to the next hub.
pub async fn serve(cfg: HubConfig, me: Invocation) -> Result<(), StartupError> {
    if nix::unistd::geteuid().is_root() {
        return Err(StartupError::Root);
    }
    // The signals first: from the moment the port is open, a `systemctl reload` or stop
    // must find their handlers, never the default action (SIGHUP would end the hub, and
    // systemd would count that as a clean exit and not restart it).
    let signals = Signals::register();
    let tls_on = cfg.ssl_cert.is_some() && cfg.ssl_key.is_some();
    // Listen first: a connection that arrives while the rest starts waits in the backlog
    // and is answered, never refused (after a crash, or during an upgrade).
    let (listeners, mut takeover) = if takeover::asked() {
        let (l, t) = takeover::take(&control_path(&cfg)).await?;
        if let Err(e) = l.fit(&cfg, tls_on) {
            // Said before the old hub hears the hang-up, so its log has why.
            tracing::error!(error = %e, "this successor refuses to take over");
            drop(t);
            return Err(e.into());
        }
        (l, Some(t))
    } else {
        (Listeners::open(&cfg, tls_on)?, None)
    };
    let listen_ms = since_exec_ms();
    let origin = listeners.origin;
    crate::templates::install(&cfg.template_paths).map_err(StartupError::Templates)?;
    let (tls, certs) = match (&cfg.ssl_cert, &cfg.ssl_key) {
        (Some(cert), Some(key)) => {
            let (config, store) = crate::tls::reloadable(cert, key).map_err(StartupError::Tls)?;
            (Some(config), Some(store))
        }
        _ => (None, None),
    };
    let state = AppState::new(cfg).map_err(StartupError::State)?;
    tokio::spawn(state.activity.clone().run(
        state.db.clone(),
        Duration::from_secs(state.cfg.proxy.activity_interval_secs),
    ));
    let keep = listeners.try_clone()?;
    let Listeners {
        public,
        internal,
        reattach,
        control,
        ..
    } = listeners;
    let (reattach_open, gate) = tokio::sync::watch::channel(true);
    tokio::spawn(crate::reattach::serve_while(
        tokio_unix(reattach)?,
        Arc::new(state.servers.clone()),
        gate,
    ));
    match &mut takeover {
        // The old hub finishes its starts and lets its helpers go; they dial here.
        Some(t) => {
            let released = t.attach().await?;
            state.servers.recover();
            let deadline = tokio::time::Instant::now() + HELPERS_WAIT;
            while state.servers.attached() < released && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tracing::info!(
                released,
                attached = state.servers.attached(),
                "takeover: helpers back"
            );
        }
        None => state.servers.recover(),
    }
    let conns = Connections::default();
    let app = |scheme: &'static str| {
        conns.wrap(router(state.clone()).layer(axum::Extension(Scheme(scheme))))
    };
    let public = tcp(public)?;
    let bind = public.local_addr()?;
    let incoming = match tls.clone() {
        Some(config) => Incoming::Tls(crate::tls::accept(public, config, conns.stop_token())),
        None => Incoming::Plain(public),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    tokio::spawn({
        let (conns, app) = (conns.clone(), app(scheme));
        async move { conns.accept(incoming, app).await }
    });
    if let Some(internal) = internal {
        let internal = tcp(internal)?;
        tracing::info!(at = %internal.local_addr()?, "Hub API for servers on this machine (plain HTTP, loopback)");
        let (conns, app) = (conns.clone(), app("http"));
        tokio::spawn(async move { conns.accept(Incoming::Plain(internal), app).await });
    }
    if let Some(t) = takeover {
        let moved = t.serving(state.proxy.tunnels()).await?;
        tracing::info!(websockets = moved, "takeover: WebSockets carried on here");
    }
    // systemd (Type=notify): ready, and after a hand-over this process is the main one.
    let _ = sd_notify::notify(
        false,
        &[
            sd_notify::NotifyState::MainPid(std::process::id()),
            sd_notify::NotifyState::Ready,
        ],
    );
    tracing::info!(%bind, tls = tls.is_some(), base_url = %state.cfg.base_url, sockets = %origin,
        listen_ms, ready_ms = since_exec_ms(), pid = std::process::id(), "sudohub listening");
    let background = Arc::new(Background::new(state.clone()));
    background.start();
    let reload = reloader(certs, &state, LiveConfig::new(me.config.clone(), me.text));
    let (handed_over, mut successor) = tokio::sync::watch::channel(None);
    let ctl = upgrade::Control::new(
        me.exe,
        me.config,
        keep,
        state.clone(),
        reattach_open,
        background.clone(),
        reload.clone(),
        handed_over,
    );
    tokio::spawn(ctl.clone().run(tokio_unix(control)?));
    tokio::spawn(on_signals(signals.hup, signals.usr2, reload, ctl));
    let asked = state.shutdown.clone();
    let end = tokio::select! {
        () = shutdown_signal(signals.term, signals.int) => End::Stop,
        () = asked.notified() => {
            tracing::info!("stopping: asked through the API");
            End::Stop
        }
        Ok(pid) = successor.wait_for(Option::is_some) => End::HandedOver(pid.unwrap_or(0)),
    };
    let tunnels = state.proxy.tunnels().clone();
    conns.stop_accepting();
    match end {
        End::Stop => {
            conns.close(STOP_GRACE).await;
            tunnels.cut();
            background.stop().await;
            tracing::info!("sudohub stopped; user servers keep running");
        }
        End::HandedOver(pid) => {
            drain(&conns, &tunnels, pid, state.cfg.shutdown_drain_timeout).await
        }
    }
    let log = state.activity.clone();
    let db = state.db.clone();
    let _ = tokio::task::spawn_blocking(move || log.flush(&db)).await;
    Ok(())
}

fn tcp(l: std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    l.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(l)
}

fn tokio_unix(l: std::os::unix::net::UnixListener) -> std::io::Result<tokio::net::UnixListener> {
    l.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(l)
}

/// Serves `state` on listeners that are already bound until `shutdown` completes: the
/// public one (HTTPS when `tls` is given) and, with TLS, the plain loopback one for the
/// servers' API calls (`hub_bind`). The same connection handling as [`serve`], for tests.
pub async fn serve_on(
    state: AppState,
    public: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    internal: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let conns = Connections::default();
    let app = |scheme: &'static str| {
        conns.wrap(router(state.clone()).layer(axum::Extension(Scheme(scheme))))
    };
    let incoming = match tls {
        Some(config) => Incoming::Tls(crate::tls::accept(public, config, conns.stop_token())),
        None => Incoming::Plain(public),
    };
    let scheme = if matches!(incoming, Incoming::Tls(_)) {
        "https"
    } else {
        "http"
    };
    let (c, a) = (conns.clone(), app(scheme));
    tokio::spawn(async move { c.accept(incoming, a).await });
    if let Some(internal) = internal {
        let (c, a) = (conns.clone(), app("http"));
        tokio::spawn(async move { c.accept(Incoming::Plain(internal), a).await });
    }
    shutdown.await;
    conns.stop_accepting();
    conns.close(STOP_GRACE).await;
    state.proxy.tunnels().cut();
    Ok(())
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
