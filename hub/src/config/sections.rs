//! The tables of hub.toml below the top level, with their defaults.

use std::path::PathBuf;

use serde::Deserialize;

/// `[proxy]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Seconds to wait for a server to start answering a request before the user gets a
    /// 504 page (configurable-http-proxy's `--proxy-timeout`). Long requests that stream
    /// are not cut: this bounds only the wait for the response headers.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_secs: u64,
    /// Seconds between writes of the activity the proxy saw to users' and servers'
    /// `last_activity` (`c.JupyterHub.last_activity_interval`).
    #[serde(default = "default_activity_interval")]
    pub activity_interval_secs: u64,
    /// Seconds a proxied WebSocket or response body may stay silent in both directions
    /// before the proxy closes it, so that vanished clients and hung servers do not hold
    /// connections forever.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
}

impl Default for ProxySection {
    fn default() -> Self {
        Self {
            response_timeout_secs: default_response_timeout(),
            activity_interval_secs: default_activity_interval(),
            idle_timeout_secs: default_idle_timeout(),
        }
    }
}

fn default_response_timeout() -> u64 {
    300
}
fn default_activity_interval() -> u64 {
    300
}
fn default_idle_timeout() -> u64 {
    3600
}

/// `[pam]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PamSection {
    /// Path of `sudohub-pam`.
    #[serde(default = "default_pam_helper")]
    pub helper: PathBuf,
    /// Longest a password check may take, in seconds.
    #[serde(default = "default_pam_timeout")]
    pub timeout_secs: u64,
}

/// `[spawner]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnerSection {
    /// Where servers run: `"local"`, or `"slurm"` as batch jobs (see `[slurm]`); must
    /// say what helpers.toml says.
    #[serde(default)]
    pub backend: sudohub_helpers_config::slurm::Backend,
    /// Path of `sudohub-spawner` (the sudoers rule names the same path).
    #[serde(default = "default_spawner_helper")]
    pub helper: PathBuf,
    /// The sudo command and its options; the hub appends `<helper>`. `[]` runs the helper
    /// directly, for a helper installed setuid root (`root:<hub group>`, mode 4750).
    #[serde(default = "default_sudo")]
    pub sudo: Vec<String>,
    /// Where a user lands in their server (`c.Spawner.default_url`).
    #[serde(default = "default_default_url")]
    pub default_url: String,
    /// Seconds for the helper to start the process (`c.Spawner.start_timeout`).
    #[serde(default = "default_start_timeout")]
    pub start_timeout_secs: u64,
    /// Seconds for the server to answer HTTP once started (`c.Spawner.http_timeout`).
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
    /// Seconds between SIGTERM and SIGKILL when stopping a server.
    #[serde(default = "default_stop_grace")]
    pub stop_grace_secs: u64,
    /// Ports servers may get, inclusive (`c.Spawner.port` is random in JupyterHub).
    #[serde(default = "default_port_range")]
    pub port_range: [u16; 2],
}

/// `[culler]`: the built-in idle culler (what `jupyterhub-idle-culler` does, without
/// running it). Off unless `timeout` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CullerSection {
    /// Seconds without activity after which a server is stopped (`--timeout`); unset:
    /// no culling.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Seconds between passes (`--cull-every`); default: half the timeout, at least 10.
    #[serde(default)]
    pub every: Option<u64>,
    /// Seconds after its start when a server is stopped however active (`--max-age`);
    /// unset: never.
    #[serde(default)]
    pub max_age: Option<u64>,
    /// Whether admins' servers are culled too (`--cull-admin-users`).
    #[serde(default = "default_true")]
    pub cull_admin_users: bool,
    /// Whether users with no server and no activity for `timeout` are deleted from the
    /// hub (`--cull-users`; their Unix accounts are untouched).
    #[serde(default)]
    pub cull_users: bool,
    /// Whether a culled named server is removed too, not only stopped
    /// (`--remove-named-servers`).
    #[serde(default)]
    pub remove_named_servers: bool,
}

fn default_true() -> bool {
    true
}

impl CullerSection {
    /// Checks the values: the key at fault and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.timeout == Some(0) {
            return Err((
                "culler.timeout",
                "must be above 0 (leave it out to cull nothing)",
            ));
        }
        if self.every == Some(0) {
            return Err(("culler.every", "must be above 0"));
        }
        if self.max_age == Some(0) {
            return Err((
                "culler.max_age",
                "must be above 0 (leave it out for no limit)",
            ));
        }
        if self.timeout.is_none()
            && (self.every.is_some()
                || self.max_age.is_some()
                || self.cull_users
                || self.remove_named_servers)
        {
            return Err(("culler.timeout", "is needed for every other culler setting"));
        }
        Ok(())
    }

    /// Seconds between passes.
    pub fn every_secs(&self) -> u64 {
        self.every
            .unwrap_or_else(|| (self.timeout.unwrap_or(600) / 2).max(10))
    }
}

/// One `[[services]]` entry: an external service routed at `/services/<name>/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Its name in the URL.
    pub name: String,
    /// Where it listens, `http://host:port` (the path is not changed when proxying).
    #[serde(default)]
    pub url: Option<String>,
    /// A token the service uses for the Hub API (8–64 characters).
    #[serde(default)]
    pub api_token: Option<String>,
    /// Whether that token has admin rights.
    #[serde(default)]
    pub admin: bool,
    /// A managed service: the program (absolute path) and its arguments, which the hub
    /// runs as its own user, restarts with a back-off when it dies and stops with
    /// itself. It gets a token (`api_token`, or one made at each hub start) and
    /// JupyterHub's `JUPYTERHUB_*` variables in its environment.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Extra environment variables of a managed service.
    #[serde(default)]
    pub environment: std::collections::BTreeMap<String, String>,
    /// Working directory of a managed service (default: `/`).
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
}

impl ServiceSection {
    /// Checks one entry: the key at fault and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let plain = |s: &str, extra: &[u8]| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || extra.contains(&c))
        };
        if !plain(&self.name, b"-") {
            return Err(("services.name", "must be letters, digits, '-' or '_'"));
        }
        if self
            .api_token
            .as_ref()
            .is_some_and(|t| !(8..=64).contains(&t.len()))
        {
            return Err(("services.api_token", "must be 8 to 64 characters"));
        }
        if self.url.as_ref().is_some_and(|u| !u.starts_with("http://")) {
            return Err(("services.url", "must be an http:// URL"));
        }
        if let Some(cmd) = &self.command {
            if !cmd.first().is_some_and(|p| p.starts_with('/')) {
                return Err((
                    "services.command",
                    "must start with an absolute program path",
                ));
            }
            if cmd.iter().any(|a| a.contains('\0')) {
                return Err(("services.command", "must not contain NUL bytes"));
            }
        } else if !self.environment.is_empty() || self.cwd.is_some() {
            return Err(("services.command", "is needed for environment and cwd"));
        }
        if self
            .environment
            .iter()
            .any(|(k, v)| !plain(k, b"") || k.starts_with("JUPYTERHUB_") || v.contains('\0'))
        {
            return Err((
                "services.environment",
                "names must be letters, digits or '_', not JUPYTERHUB_*, values without NUL",
            ));
        }
        if self.cwd.as_ref().is_some_and(|c| !c.is_absolute()) {
            return Err(("services.cwd", "must be an absolute path"));
        }
        Ok(())
    }
}

impl Default for PamSection {
    fn default() -> Self {
        Self {
            helper: default_pam_helper(),
            timeout_secs: default_pam_timeout(),
        }
    }
}

impl Default for SpawnerSection {
    fn default() -> Self {
        Self {
            backend: Default::default(),
            helper: default_spawner_helper(),
            sudo: default_sudo(),
            default_url: default_default_url(),
            start_timeout_secs: default_start_timeout(),
            http_timeout_secs: default_http_timeout(),
            stop_grace_secs: default_stop_grace(),
            port_range: default_port_range(),
        }
    }
}

fn default_pam_helper() -> PathBuf {
    "/usr/lib/sudohub/sudohub-pam".into()
}
fn default_pam_timeout() -> u64 {
    10
}
fn default_spawner_helper() -> PathBuf {
    "/usr/lib/sudohub/sudohub-spawner".into()
}
fn default_sudo() -> Vec<String> {
    vec!["sudo".into(), "-n".into()]
}
fn default_default_url() -> String {
    "/lab".into()
}
fn default_start_timeout() -> u64 {
    60
}
fn default_http_timeout() -> u64 {
    30
}
fn default_stop_grace() -> u64 {
    10
}
fn default_port_range() -> [u16; 2] {
    [49152, 65535]
}

/// A network whose proxies' `X-Forwarded-For` is believed: an address (`127.0.0.1`) or a
/// CIDR block (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustedNet(pub ipnet::IpNet);

impl TryFrom<String> for TrustedNet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(Self)
            .map_err(|_| format!("{s:?} is not an address or a CIDR block such as 10.0.0.0/8"))
    }
}

impl TrustedNet {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        self.0.contains(ip)
    }
}

pub(super) fn default_trusted_proxies() -> Vec<TrustedNet> {
    ["127.0.0.1", "::1"]
        .iter()
        .filter_map(|a| TrustedNet::try_from((*a).to_owned()).ok())
        .collect()
}

pub(super) fn default_drain_timeout() -> u64 {
    300
}

pub(super) fn default_hub_bind() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8081))
}
