//! What request handlers share, built once at startup from the configuration.
//!
//! Handlers take `State<AppState>`; the authentication extractors reach the parts they
//! need through [`AuthState`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::cookies::CookieNames;
use crate::auth::session::AuthState;
use crate::auth::{Authenticator, CookieKey, PamClientConfig};
use crate::config::HubConfig;
use crate::db::Db;
use crate::lifecycle::Servers;
use crate::metrics::Metrics;
use crate::proxy::{ActivityLog, Proxy, RouteTable};
use crate::spawner::{AccountMaker, Spawner, SpawnerClient};
use crate::urls::Urls;

/// Everything request handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The configuration.
    pub cfg: Arc<HubConfig>,
    /// Every URL of this hub.
    pub urls: Urls,
    /// The database.
    pub db: Db,
    /// Signs cookies.
    pub key: CookieKey,
    /// The names and paths of the hub's cookies.
    pub cookies: CookieNames,
    /// Checks passwords.
    pub auth: Arc<Authenticator>,
    /// Makes users' Unix accounts on demand (`create_system_users`).
    pub accounts: Option<AccountMaker>,
    /// The identity-provider source, when one is configured.
    pub oauth: Option<Arc<crate::auth::oauth::OAuthLogin>>,
    /// The key that seals auth states (`enable_auth_state`).
    pub auth_state: Option<Arc<crate::auth::auth_state::AuthStateKey>>,
    /// Users' servers.
    pub servers: Servers,
    /// Proxy routes.
    pub routes: RouteTable,
    /// Requests the proxy carried to each user's server, written to `last_activity`.
    pub activity: ActivityLog,
    /// The proxy.
    pub proxy: Proxy,
    /// What `/hub/metrics` reports.
    pub metrics: Metrics,
    /// The servers' cgroups, read-only (none on a machine without them).
    pub cgroups: Option<Arc<crate::cgroups::ServerCgroups>>,
    /// Notified to stop the hub (`POST /hub/api/shutdown`).
    pub shutdown: Arc<tokio::sync::Notify>,
    /// With `backend = "slurm"`: root's profiles (helpers.toml), for the spawn page's
    /// choice and to refuse a bad one; empty otherwise.
    pub profiles: Arc<Vec<sudohub_helpers_config::slurm::Profile>>,
}

/// Why the shared state cannot be built.
#[derive(Debug)]
pub enum StateError {
    /// The database.
    Db(rusqlite::Error),
    /// The cookie secret.
    Secret(std::io::Error),
    /// A login source's files (`[auth.ldap]`'s CA or password file).
    Auth(String),
    /// The Slurm backend's settings.
    Slurm(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Db(e) => write!(f, "database: {e}"),
            Self::Secret(e) => write!(f, "cookie secret: {e}"),
            Self::Auth(e) | Self::Slurm(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for StateError {}

impl AppState {
    /// The limits and usage of `key`'s cgroup, for a running server.
    pub fn resources(
        &self,
        key: &crate::types::ServerKey,
    ) -> Option<sudohub_helpers_config::cgroup::Usage> {
        self.cgroups.as_ref()?.usage(key)
    }

    /// The state of a hub that spawns with sudo and the spawner helper.
    pub fn new(cfg: HubConfig) -> Result<Self, StateError> {
        let mut spawner = SpawnerClient::new(cfg.spawner.sudo.clone(), cfg.spawner.helper.clone());
        let mut profiles = Vec::new();
        if cfg.spawner.backend == sudohub_helpers_config::slurm::Backend::Slurm {
            profiles = crate::slurm::profiles::load(std::path::Path::new(
                sudohub_helpers_config::CONFIG_PATH,
            ))
            .map_err(StateError::Slurm)?;
            spawner = spawner.with_slurm(crate::slurm::JobWatch::start(cfg.slurm.clone()));
        }
        let mut state = Self::with_spawner(cfg, Arc::new(spawner))?;
        state.profiles = Arc::new(profiles);
        Ok(state)
    }

    /// The state of a hub that spawns with `spawner`.
    pub fn with_spawner(mut cfg: HubConfig, spawner: Arc<dyn Spawner>) -> Result<Self, StateError> {
        crate::managed::give_tokens(&mut cfg);
        let cfg = Arc::new(cfg);
        let urls = cfg.urls();
        let db = Db::open(&cfg.db).map_err(StateError::Db)?;
        let key = CookieKey::load_or_create(&cfg.cookie_secret_file).map_err(StateError::Secret)?;
        let routes = RouteTable::new();
        for svc in &cfg.services {
            if let Some(addr) = svc.url.as_deref().and_then(service_addr) {
                routes.set_service(&svc.name, addr);
            }
        }
        let auth = Arc::new(
            Authenticator::new(
                PamClientConfig {
                    helper: cfg.pam.helper.clone(),
                    timeout: Duration::from_secs(cfg.pam.timeout_secs),
                    max_concurrent: 8,
                },
                cfg.auth.clone(),
                db.clone(),
            )
            .map_err(StateError::Auth)?,
        );
        let oauth = match (cfg.auth.oauth_kind(), &cfg.auth.oauth) {
            (Some(kind), Some(o)) => {
                let callback = cfg.oauth_callback_url().ok_or_else(|| {
                    StateError::Auth(
                        "[auth.oauth] needs oauth_callback_url, or public_url to make it from"
                            .into(),
                    )
                })?;
                let login = crate::auth::oauth::OAuthLogin::new(kind, o, &callback)
                    .map_err(StateError::Auth)?;
                Some(Arc::new(login))
            }
            _ => None,
        };
        let auth_state = match &cfg.auth.oauth {
            Some(o) if o.enable_auth_state && cfg.auth.oauth_kind().is_some() => Some(Arc::new(
                crate::auth::auth_state::AuthStateKey::load(&o.auth_state_key_file)
                    .map_err(StateError::Auth)?,
            )),
            _ => None,
        };
        let accounts = cfg
            .auth
            .create_system_users
            .then(|| AccountMaker::new(cfg.spawner.sudo.clone(), cfg.auth.account_helper.clone()));
        let metrics = Metrics::new();
        let servers = Servers::new(
            cfg.clone(),
            db.clone(),
            routes.clone(),
            spawner,
            metrics.clone(),
        );
        if let Some(k) = &auth_state {
            servers.set_auth_state(k.clone());
        }
        let proxy = Proxy::new(
            urls.clone(),
            Duration::from_secs(cfg.proxy.response_timeout_secs),
            Duration::from_secs(cfg.proxy.idle_timeout_secs),
        );
        let cookies = CookieNames::new(&urls, cfg.host_prefixed_cookies());
        Ok(Self {
            cfg,
            urls,
            db,
            key,
            cookies,
            auth,
            accounts,
            oauth,
            auth_state,
            servers,
            routes,
            activity: ActivityLog::default(),
            proxy,
            metrics,
            cgroups: crate::cgroups::ServerCgroups::from_helpers_config(std::path::Path::new(
                sudohub_helpers_config::CONFIG_PATH,
            ))
            .map(Arc::new),
            shutdown: Arc::new(tokio::sync::Notify::new()),
            profiles: Arc::new(Vec::new()),
        })
    }
}

fn service_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    use std::net::ToSocketAddrs;
    hostport.to_socket_addrs().ok()?.next()
}

impl AuthState for AppState {
    fn config(&self) -> &HubConfig {
        &self.cfg
    }
    fn db(&self) -> &Db {
        &self.db
    }
    fn cookie_key(&self) -> &CookieKey {
        &self.key
    }
    fn urls(&self) -> &Urls {
        &self.urls
    }
    fn cookie_names(&self) -> &CookieNames {
        &self.cookies
    }
}
