//! The tables of hub.toml below the top level, with their defaults.

use std::path::PathBuf;

use serde::Deserialize;

use crate::types::Username;

/// `[auth]`: who may log in, and who is an admin, once a password was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRules {
    /// Users allowed whatever their groups (`c.Authenticator.allowed_users`).
    #[serde(default)]
    pub allowed_users: Vec<Username>,
    /// Members of these groups are allowed (`c.Authenticator.allowed_groups`); the
    /// sudoers rule names the same group, so others could not get a server anyway.
    #[serde(default = "default_allowed_groups")]
    pub allowed_groups: Vec<String>,
    /// Admins by name (`c.Authenticator.admin_users`); admins are allowed.
    #[serde(default)]
    pub admin_users: Vec<Username>,
    /// Members of these groups are admins (`c.Authenticator.admin_groups`).
    #[serde(default)]
    pub admin_groups: Vec<String>,
}

fn default_allowed_groups() -> Vec<String> {
    vec!["jupyterhub".into()]
}

impl Default for AuthRules {
    fn default() -> Self {
        Self {
            allowed_users: Vec::new(),
            allowed_groups: default_allowed_groups(),
            admin_users: Vec::new(),
            admin_groups: Vec::new(),
        }
    }
}

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
    /// Path of `sudohub-spawner` (the sudoers rule names the same path).
    #[serde(default = "default_spawner_helper")]
    pub helper: PathBuf,
    /// The sudo command and its options; the hub appends `-u <user> <helper>`.
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
