//! Putting the hub together: shared state, the router, and `serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;

use crate::auth::{PamAuthenticator, PamClientConfig};
use crate::config::HubConfig;
use crate::db::Db;
use crate::lifecycle::Servers;
use crate::proxy::{Proxy, RouteTable};
use crate::web::session::CookieKey;

/// The JupyterHub version whose API this hub speaks (compat spec), sent in
/// `X-JupyterHub-Version` and by `GET /hub/api`.
pub const JUPYTERHUB_VERSION: &str = "6.1.1";

/// Everything request handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The configuration.
    pub cfg: Arc<HubConfig>,
    /// The database.
    pub db: Db,
    /// Signs cookies.
    pub key: CookieKey,
    /// Checks passwords.
    pub auth: Arc<PamAuthenticator>,
    /// Users' servers.
    pub servers: Servers,
    /// Proxy routes.
    pub routes: RouteTable,
    /// Requests the proxy carried to each user's server, written to `last_activity`.
    pub activity: crate::proxy::ActivityLog,
    /// The proxy.
    pub proxy: Proxy,
}

impl AppState {
    /// `<base_url>hub/`.
    pub fn hub_prefix(&self) -> String {
        format!("{}hub/", self.cfg.base_url)
    }
}

/// Errors that stop the hub from starting.
#[derive(Debug)]
pub enum StartupError {
    /// Running as root.
    Root,
    /// The database.
    Db(rusqlite::Error),
    /// The cookie secret.
    Secret(std::io::Error),
    /// Listening.
    Listen(SocketAddr, std::io::Error),
    /// The re-attach socket.
    Reattach(crate::reattach::ReattachError),
    /// The TLS certificate or key.
    Tls(crate::tls::TlsError),
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Root => f.write_str(
                "sudohub refuses to run as root: run it as its service user (systemd's User=sudohub)",
            ),
            Self::Db(e) => write!(f, "database: {e}"),
            Self::Secret(e) => write!(f, "cookie secret: {e}"),
            Self::Listen(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Self::Reattach(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StartupError {}

/// Builds the state from a configuration.
pub fn state(cfg: HubConfig) -> Result<AppState, StartupError> {
    let cfg = Arc::new(cfg);
    let db = Db::open(&cfg.db).map_err(StartupError::Db)?;
    let key = CookieKey::load_or_create(&cfg.cookie_secret_file).map_err(StartupError::Secret)?;
    let routes = RouteTable::new();
    for svc in &cfg.services {
        if let Some(addr) = svc.url.as_deref().and_then(service_addr) {
            routes.set_service(&svc.name, addr);
        }
    }
    let auth = Arc::new(PamAuthenticator::new(
        PamClientConfig {
            helper: cfg.pam.helper.clone(),
            timeout: Duration::from_secs(cfg.pam.timeout_secs),
            max_concurrent: 8,
        },
        cfg.auth.clone(),
    ));
    let servers = Servers::new(cfg.clone(), db.clone(), routes.clone());
    let proxy = Proxy::new(
        &cfg.base_url,
        Duration::from_secs(cfg.proxy.response_timeout_secs),
    );
    Ok(AppState {
        cfg,
        db,
        key,
        auth,
        servers,
        routes,
        activity: crate::proxy::ActivityLog::default(),
        proxy,
    })
}

fn service_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    use std::net::ToSocketAddrs;
    hostport.to_socket_addrs().ok()?.next()
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let hub = format!("{}hub", state.cfg.base_url);
    // A nested router's "/" matches only the bare prefix, so the trailing-slash forms
    // JupyterHub serves are routed here explicitly.
    let to_hub_slash = format!("{hub}/");
    Router::new()
        .route(
            &format!("{hub}/api/"),
            axum::routing::get(crate::api::version),
        )
        .route(&to_hub_slash, axum::routing::get(crate::web::pages::root))
        .route(
            &hub,
            axum::routing::get(move || async move { Redirect::permanent(&to_hub_slash) }),
        )
        .nest(&format!("{hub}/api"), crate::api::router())
        .nest(&hub, crate::web::pages::router())
        .fallback(outside_hub)
        .layer(middleware::from_fn(log_and_stamp))
        .with_state(state)
}

/// Everything outside `<base>hub/`: a running server's route goes through the proxy;
/// anything else is sent to the hub (a stopped server's URL ends at the 424 page).
async fn outside_hub(
    State(s): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(route) = s.routes.resolve(&path, &s.cfg.base_url) {
        if route.is_user {
            s.activity.seen(&route.owner);
        }
        let scheme = req.extensions().get::<Scheme>().map_or("http", |s| s.0);
        return s.proxy.forward(req, &route, client, scheme).await;
    }
    let base = &s.cfg.base_url;
    let Some(rest) = path.strip_prefix(base.as_str()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if rest.is_empty() {
        return Redirect::to(&format!("{base}hub/")).into_response();
    }
    if let Some(name) = rest.strip_prefix("user/").filter(|n| !n.contains('/')) {
        return Redirect::permanent(&format!("{base}user/{name}/")).into_response();
    }
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if rest.starts_with("user/") || rest.starts_with("services/") {
        return Redirect::to(&format!("{base}hub/{rest}{query}")).into_response();
    }
    (
        StatusCode::NOT_FOUND,
        axum::response::Html(crate::web::page(
            "404 Not Found",
            "<p>There is nothing here.</p>",
        )),
    )
        .into_response()
}

/// One log line per request (method, path without query string — it may hold tokens —,
/// status, duration) and the `X-JupyterHub-Version` header on every response.
async fn log_and_stamp(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "x-jupyterhub-version",
        HeaderValue::from_static(JUPYTERHUB_VERSION),
    );
    tracing::info!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    resp
}

/// Runs the hub until SIGTERM or SIGINT. User servers are not stopped: their helpers
/// re-attach to the next hub.
pub async fn serve(cfg: HubConfig) -> Result<(), StartupError> {
    if nix::unistd::geteuid().is_root() {
        return Err(StartupError::Root);
    }
    let bind = cfg.bind;
    let tls = match (&cfg.ssl_cert, &cfg.ssl_key) {
        (Some(cert), Some(key)) => {
            Some(crate::tls::server_config(cert, key).map_err(StartupError::Tls)?)
        }
        _ => None,
    };
    let state = state(cfg)?;
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
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| StartupError::Listen(bind, e))?;
    let internal = match tls {
        Some(_) => {
            let at = state.cfg.hub_bind;
            let l = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| StartupError::Listen(at, e))?;
            tracing::info!(%at, "Hub API for servers on this machine (plain HTTP, loopback)");
            Some(l)
        }
        None => None,
    };
    tracing::info!(%bind, tls = tls.is_some(), base_url = %state.cfg.base_url, "sudohub listening");
    serve_on(state, listener, tls, internal, shutdown_signal())
        .await
        .map_err(|e| StartupError::Listen(bind, e))?;
    tracing::info!("sudohub stopped; user servers keep running");
    Ok(())
}

/// How a request reached the hub: `"https"` on the TLS listener, else `"http"`. The proxy
/// passes it on as `X-Forwarded-Proto`, which is how a server builds its own URLs.
#[derive(Debug, Clone, Copy)]
pub struct Scheme(pub &'static str);

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
                axum::serve(public, app("http"))
                    .with_graceful_shutdown(stopped())
                    .await
            }
        }
    };
    let internal = async {
        match internal {
            Some(l) => {
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

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
