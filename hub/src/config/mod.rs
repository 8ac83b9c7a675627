//! `hub.toml`: the hub's configuration, with the JupyterHub setting each key replaces.
//!
//! Unknown keys and bad values are errors that name the key: a typo must never silently
//! fall back to a default on a security-relevant setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sudohub_helpers_config::slurm::Backend;

mod auth;
mod ldap;
mod oauth;
pub mod roles;
mod sections;
mod slurm;

pub use auth::{AuthRules, NativeSection, SourceKind};
pub use ldap::{LdapSection, TlsStrategy};
pub use oauth::{OAuthSection, GOOGLE_ISSUER};
pub use roles::RoleSection;
pub use sections::{
    CullerSection, PamSection, ProxySection, ServiceSection, SpawnerSection, TrustedNet,
};
pub use slurm::SlurmSection;

use crate::urls::Urls;

/// Where the hub reads its configuration unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/sudohub/hub.toml";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Address and port to listen on (`c.JupyterHub.ip` + `c.JupyterHub.port`).
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// URL prefix of everything the hub serves, with leading and trailing `/`
    /// (`c.JupyterHub.base_url`), e.g. `/jupyterlab/` behind nginx.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The URL users reach the hub at, if it differs from what the hub sees
    /// (`c.JupyterHub.public_url`). An `https` URL makes cookies `Secure`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Serve each user's server on an origin of its own, `<name>.<host>`
    /// (`c.JupyterHub.subdomain_host`, e.g. `"https://hub.example.org"`): what a server
    /// serves then never runs on the hub's origin. Needs wildcard DNS and certificate.
    #[serde(default)]
    pub subdomain_host: Option<String>,
    /// PEM certificate chain, leaf first, to serve HTTPS on `bind` (`c.JupyterHub.ssl_cert`).
    /// Set together with `ssl_key`; cookies are then `Secure`.
    #[serde(default)]
    pub ssl_cert: Option<PathBuf>,
    /// PEM private key of `ssl_cert` (`c.JupyterHub.ssl_key`), readable by the hub's user.
    #[serde(default)]
    pub ssl_key: Option<PathBuf>,
    /// With TLS on: the plain-HTTP, loopback-only address where single-user servers reach
    /// the Hub API (`c.JupyterHub.hub_bind_url`). They run on this machine and would
    /// otherwise have to be taught to trust the public certificate. Unused without TLS.
    #[serde(default = "sections::default_hub_bind")]
    pub hub_bind: SocketAddr,
    /// SQLite database (`c.JupyterHub.db_url`).
    #[serde(default = "default_db")]
    pub db: PathBuf,
    /// File with the secret that signs cookies, mode 0600, created if missing
    /// (`c.JupyterHub.cookie_secret_file`).
    #[serde(default = "default_cookie_secret_file")]
    pub cookie_secret_file: PathBuf,
    /// Unix socket where spawner helpers re-attach after a hub restart; must match
    /// `reattach_socket` in helpers.toml.
    #[serde(default = "default_reattach_socket")]
    pub reattach_socket: PathBuf,
    /// Seconds a hub that handed over to its successor (`sudohub upgrade`) keeps carrying
    /// its open connections and WebSockets before it closes what is left and exits.
    #[serde(default = "sections::default_drain_timeout")]
    pub shutdown_drain_timeout: u64,
    /// Reverse proxies (nginx) whose `X-Forwarded-For` names the real client, for the
    /// per-address login limits (`c.JupyterHub.trusted_downstream_ips`). Requests from
    /// anywhere else are keyed on their own address, whatever they claim.
    #[serde(default = "sections::default_trusted_proxies")]
    pub trusted_proxies: Vec<TrustedNet>,
    /// Who may log in (`c.Authenticator.*`).
    #[serde(default)]
    pub auth: AuthRules,
    /// The PAM helper.
    #[serde(default)]
    pub pam: PamSection,
    /// Spawning servers (`c.Spawner.*`).
    #[serde(default)]
    pub spawner: SpawnerSection,
    /// Following Slurm jobs, with `[spawner] backend = "slurm"`.
    #[serde(default)]
    pub slurm: SlurmSection,
    /// The built-in proxy (what configurable-http-proxy's flags set in JupyterHub).
    #[serde(default)]
    pub proxy: ProxySection,
    /// External services proxied at `/services/<name>/` (`c.JupyterHub.services`).
    #[serde(default)]
    pub services: Vec<ServiceSection>,
    /// Directories whose `.html` files replace the built-in templates of the same name
    /// (`c.JupyterHub.template_paths`); the first directory that has a file wins.
    #[serde(default)]
    pub template_paths: Vec<PathBuf>,
    /// The built-in idle culler.
    #[serde(default)]
    pub culler: CullerSection,
    /// Roles: scopes given to users, groups and services (`c.JupyterHub.load_roles`).
    #[serde(default)]
    pub roles: Vec<RoleSection>,
    /// Whether `/hub/metrics` needs a token with `read:metrics` (an admin's or an admin
    /// service's); `false` serves it to anyone who can reach the hub
    /// (`c.JupyterHub.authenticate_prometheus`).
    #[serde(default = "default_true")]
    pub authenticate_prometheus: bool,
    /// Whether users may have named servers beside their default one, each at
    /// `/user/<name>/<server>/` (`c.JupyterHub.allow_named_servers`).
    #[serde(default)]
    pub allow_named_servers: bool,
    /// Most named servers one user may have, stopped ones included; 0: no limit
    /// (`c.JupyterHub.named_server_limit_per_user`).
    #[serde(default)]
    pub named_server_limit_per_user: usize,
}

fn default_true() -> bool {
    true
}

fn default_bind() -> SocketAddr {
    // Loopback: plain HTTP must not carry passwords across the network.
    SocketAddr::from(([127, 0, 0, 1], 8000))
}

fn default_base_url() -> String {
    "/".into()
}

fn default_db() -> PathBuf {
    "/var/lib/sudohub/sudohub.sqlite".into()
}

fn default_cookie_secret_file() -> PathBuf {
    "/var/lib/sudohub/cookie_secret".into()
}

fn default_reattach_socket() -> PathBuf {
    "/run/sudohub/spawners.sock".into()
}

/// Why the configuration cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file cannot be read.
    Read(PathBuf, std::io::Error),
    /// The TOML is invalid, or a key is unknown or has a value of the wrong type.
    Parse(PathBuf, String),
    /// A value is not acceptable.
    Invalid(&'static str, String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            Self::Parse(p, m) => write!(f, "invalid configuration in {}: {m}", p.display()),
            Self::Invalid(k, m) => write!(f, "invalid value for `{k}`: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl HubConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let c: Self = toml::from_str(text).map_err(|e| {
            ConfigError::Parse(path.to_owned(), e.to_string().trim().replace('\n', " "))
        })?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |k, m: &str| Err(ConfigError::Invalid(k, m.to_owned()));
        let b = &self.base_url;
        if !b.starts_with('/')
            || !b.ends_with('/')
            || b.contains("//")
            || b.contains(['?', '#', '"', '<', '>', ' '])
        {
            return bad(
                "base_url",
                "must be a path starting and ending with '/', e.g. \"/\" or \"/jupyterlab/\"",
            );
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return bad("public_url", "must start with http:// or https://");
            }
        }
        if let Some(h) = &self.subdomain_host {
            if let Err(e) = crate::hosts::SubdomainHost::parse(h) {
                return bad("subdomain_host", &e);
            }
        }
        match (&self.ssl_cert, &self.ssl_key) {
            (Some(_), None) => return bad("ssl_key", "must be set with ssl_cert"),
            (None, Some(_)) => return bad("ssl_cert", "must be set with ssl_key"),
            _ => {}
        }
        if self.tls() {
            if !self.hub_bind.ip().is_loopback() {
                return bad(
                    "hub_bind",
                    "must be a loopback address (127.0.0.1:port): it serves plain HTTP",
                );
            }
            if self.hub_bind.port() == self.bind.port() {
                return bad("hub_bind", "must use another port than `bind`");
            }
        }
        let s = &self.spawner;
        if s.sudo.first().is_some_and(|p| p.is_empty()) {
            return bad(
                "spawner.sudo",
                "must name the sudo command, or be [] for a setuid-root helper",
            );
        }
        if !s.default_url.starts_with('/') {
            return bad("spawner.default_url", "must start with '/'");
        }
        if s.port_range[0] < 1024 || s.port_range[0] > s.port_range[1] {
            return bad(
                "spawner.port_range",
                "must be [low, high] with 1024 <= low <= high",
            );
        }
        if self.proxy.response_timeout_secs == 0 {
            return bad("proxy.response_timeout_secs", "must be above 0");
        }
        if self.proxy.activity_interval_secs == 0 {
            return bad("proxy.activity_interval_secs", "must be above 0");
        }
        if self.proxy.idle_timeout_secs == 0 {
            return bad("proxy.idle_timeout_secs", "must be above 0");
        }
        if s.start_timeout_secs == 0 || s.http_timeout_secs == 0 {
            return bad("spawner.start_timeout_secs", "timeouts must be above 0");
        }
        if let Err((key, message)) = self.slurm.validate() {
            return bad(key, message);
        }
        if s.backend == Backend::Slurm && self.slurm.hub_api_url.is_none() {
            return bad(
                "slurm.hub_api_url",
                "is needed with backend = \"slurm\": the Hub API URL the compute nodes reach",
            );
        }
        if self.template_paths.iter().any(|p| !p.is_absolute()) {
            return bad("template_paths", "must be absolute directories");
        }
        if let Err((key, message)) = self.culler.validate() {
            return bad(key, message);
        }
        if let Err((key, message)) = self.auth.validate() {
            return bad(key, &message);
        }
        let mut names = std::collections::HashSet::new();
        for svc in &self.services {
            if let Err((key, message)) = svc.validate() {
                return bad(key, message);
            }
            if !names.insert(svc.name.as_str()) {
                return bad("services.name", "names a service twice");
            }
        }
        let services: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        let mut roles = std::collections::HashSet::new();
        for role in &self.roles {
            if let Err(e) = role.validate(&services) {
                return bad("roles", &e);
            }
            if !roles.insert(role.name.as_str()) {
                return bad("roles.name", "names a role twice");
            }
        }
        Ok(())
    }

    /// The URL set of this hub, from `base_url`.
    pub fn urls(&self) -> Urls {
        let subdomains = self
            .subdomain_host
            .as_deref()
            .and_then(|h| crate::hosts::SubdomainHost::parse(h).ok());
        Urls::new(&self.base_url).with_subdomains(subdomains)
    }

    /// Whether the hub serves HTTPS itself (`ssl_cert` and `ssl_key` set).
    pub fn tls(&self) -> bool {
        self.ssl_cert.is_some() && self.ssl_key.is_some()
    }

    /// Whether cookies must be `Secure`: the hub serves TLS, or users reach it over https.
    pub fn secure_cookies(&self) -> bool {
        self.tls()
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
            || self
                .subdomain_host
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }

    /// Whether the hub's cookies take the `__Host-` prefix: servers live on subdomains of
    /// an https hub (`auth::cookies::CookieNames`).
    pub fn host_prefixed_cookies(&self) -> bool {
        self.subdomain_host
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// The Hub API URL servers are given: `[slurm] hub_api_url` for jobs on compute nodes,
    /// else [`Self::api_url`].
    pub fn server_api_url(&self) -> String {
        match (&self.spawner.backend, &self.slurm.hub_api_url) {
            (Backend::Slurm, Some(url)) => url.clone(),
            _ => self.api_url(),
        }
    }

    /// The hub's own API URL as servers on this machine reach it: the public listener
    /// over plain HTTP, or `hub_bind` when the public listener speaks TLS.
    pub fn api_url(&self) -> String {
        let addr = if self.tls() { self.hub_bind } else { self.bind };
        let ip = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            match addr.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            }
        };
        format!("http://{ip}:{}{}hub/api", addr.port(), self.base_url)
    }
}

/// The commented default file printed by `sudohub generate-config`.
pub const GENERATED: &str = include_str!("generated.toml");

#[cfg(test)]
mod tests;
