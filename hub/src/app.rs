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
    let proxy = Proxy::new(&cfg.base_url);
    Ok(AppState {
        cfg,
        db,
        key,
        auth,
        servers,
        routes,
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
        return s.proxy.forward(req, &route, client, "http").await;
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
    let state = state(cfg)?;
    state.servers.recover();
    let reattach =
        crate::reattach::bind(&state.cfg.reattach_socket).map_err(StartupError::Reattach)?;
    tokio::spawn(crate::reattach::serve(
        reattach,
        Arc::new(state.servers.clone()),
    ));
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| StartupError::Listen(bind, e))?;
    tracing::info!(%bind, base_url = %state.cfg.base_url, "sudohub listening");
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| StartupError::Listen(bind, e))?;
    tracing::info!("sudohub stopped; user servers keep running");
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
