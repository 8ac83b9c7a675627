//! `/etc/sudohub/helpers.toml`: what the privileged helpers obey, and nobody else may edit.
//!
//! Both helpers read this file before doing anything and refuse to run when it is not a
//! regular file owned by root and unwritable by group and others, or when its directory is
//! not. The hub cannot influence anything here; that is the point: the command a user's
//! server runs, its `PATH`, and which environment variables the hub may set all come from
//! this file.
//!
//! The path is fixed at build time ([`CONFIG_PATH`]); only a build for the test suite may
//! point it elsewhere, through the `SUDOHUB_HELPERS_CONFIG` variable *at compile time*.
#![forbid(unsafe_code)]

pub mod cgroup;
mod env_allow;
mod limits;
mod load;
pub mod slurm;

use std::path::PathBuf;

use serde::Deserialize;

pub use env_allow::{hard_denied, EnvPattern, HARD_DENIED_ENV};
pub use limits::{parse_bytes, LimitSet, LimitsPolicy};
pub use load::{
    hub_wants_accounts, is_new_account_name, is_posix_name, is_server_name, load_trusted, parse,
    server_log_name, ConfigError,
};

/// Where the helpers read their configuration. Compiled in: a helper that took the path
/// from its caller would let the hub pick the rules it is judged by.
pub const CONFIG_PATH: &str = match option_env!("SUDOHUB_HELPERS_CONFIG") {
    Some(p) => p,
    None => "/etc/sudohub/helpers.toml",
};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpersConfig {
    /// The service account the hub runs as: the only caller either helper serves.
    pub hub_user: String,
    /// Members of this group may log in and have servers; nobody else.
    #[serde(default = "default_allowed_group")]
    pub allowed_group: String,
    /// Lowest uid a server may run as, to keep system accounts out even if they join the group.
    #[serde(default = "default_min_uid")]
    pub min_uid: u32,
    /// The spawner helper's settings.
    #[serde(default)]
    pub spawner: SpawnerConfig,
    /// What each server may use: memory, CPU, processes (cgroups), a private /tmp.
    #[serde(default)]
    pub limits: LimitsPolicy,
    /// The PAM helper's settings.
    #[serde(default)]
    pub pam: PamConfig,
    /// The account helper's settings; without this table it creates nothing.
    #[serde(default)]
    pub accounts: Option<AccountsConfig>,
    /// How servers are submitted to Slurm, with `[spawner] backend = "slurm"`.
    #[serde(default)]
    pub slurm: Option<slurm::SlurmConfig>,
}

/// `[accounts]`: the shape of the Unix accounts the account helper (`sudohub-account`)
/// creates for the hub's users, when root's hub.toml asks for them
/// (`[auth] create_system_users`) or `create` is set here. Without this table, the
/// defaults below.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// Whether the helper creates accounts even when hub.toml next to this file does not
    /// ask for it (`[auth] create_system_users`, the usual switch).
    #[serde(default)]
    pub create: bool,
    /// Lowest uid given (at least `min_uid`).
    pub uid_min: Option<u32>,
    /// Highest uid given.
    #[serde(default = "default_uid_max")]
    pub uid_max: u32,
    /// Login shell of new accounts.
    #[serde(default = "default_shell")]
    pub shell: String,
    /// Directory the homes are made in (`<home_base>/<name>`, mode 0700).
    #[serde(default = "default_home_base")]
    pub home_base: PathBuf,
    /// What a new home is filled with.
    #[serde(default = "default_skel")]
    pub skel: PathBuf,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            create: false,
            uid_min: None,
            uid_max: default_uid_max(),
            shell: default_shell(),
            home_base: default_home_base(),
            skel: default_skel(),
        }
    }
}

impl AccountsConfig {
    /// The uids new accounts get, given the file's `min_uid`.
    pub fn uids(&self, min_uid: u32) -> std::ops::RangeInclusive<u32> {
        self.uid_min.unwrap_or(min_uid).max(min_uid)..=self.uid_max
    }
}

fn default_uid_max() -> u32 {
    59999
}

fn default_shell() -> String {
    "/bin/bash".into()
}

fn default_home_base() -> PathBuf {
    PathBuf::from("/home")
}

fn default_skel() -> PathBuf {
    PathBuf::from("/etc/skel")
}

/// `[spawner]`: what a user's server runs and how it is confined.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpawnerConfig {
    /// Where servers run: `"local"` (here, supervised by the helper) or `"slurm"` (as
    /// batch jobs, see `[slurm]`).
    #[serde(default)]
    pub backend: slurm::Backend,
    /// Absolute path of the program, then fixed arguments. The hub can add none.
    #[serde(default = "default_command")]
    pub command: Vec<String>,
    /// `PATH` of the server.
    #[serde(default = "default_path")]
    pub path: String,
    /// Environment variable names the hub may set: exact names or `PREFIX*`.
    /// Names in [`HARD_DENIED_ENV`] are refused whatever this says.
    #[serde(default = "default_env_allow")]
    pub env_allow: Vec<EnvPattern>,
    /// Set no-new-privs on the server, so nothing it runs can gain privilege through
    /// setuid binaries or file capabilities.
    #[serde(default = "default_true")]
    pub no_new_privs: bool,
    /// umask of the server, written as an octal string such as `"0022"`.
    #[serde(default = "default_umask", deserialize_with = "load::octal_mode")]
    pub umask: u32,
    /// Resource limits of the server.
    #[serde(default)]
    pub limits: Limits,
    /// Directory for the server's log files, relative to the user's home.
    #[serde(default = "default_log_dir")]
    pub log_dir: String,
    /// A log file larger than this is rotated (one old generation, `.1`) at spawn.
    #[serde(default = "default_log_max_bytes")]
    pub log_max_bytes: u64,
    /// The hub's re-attach socket, dialled by a helper whose hub went away.
    #[serde(default = "default_reattach_socket")]
    pub reattach_socket: PathBuf,
    /// Longest stop grace period a hub may ask for, in milliseconds.
    #[serde(default = "default_max_grace_ms")]
    pub max_grace_ms: u32,
    /// How long a helper whose server exited while the hub was away keeps trying to
    /// report it, in seconds, before it gives up and exits.
    #[serde(default = "default_orphan_report_secs")]
    pub orphan_report_secs: u32,
    /// The Hub API the servers must talk to (`JUPYTERHUB_API_URL`), e.g.
    /// `http://127.0.0.1:8000/hub/api`. When set, the helper sets it itself and refuses a
    /// request whose `JUPYTERHUB_API_URL` or `JUPYTERHUB_ACTIVITY_URL` points elsewhere:
    /// the hub cannot send a server's token and activity to an address of its choosing.
    #[serde(default)]
    pub hub_api_url: Option<String>,
}

/// `[spawner.limits]`: `setrlimit` values for the server; an absent key leaves the limit
/// as inherited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// `RLIMIT_NOFILE`.
    pub nofile: Option<u64>,
    /// `RLIMIT_NPROC`.
    pub nproc: Option<u64>,
    /// `RLIMIT_AS`, bytes.
    pub address_space: Option<u64>,
    /// `RLIMIT_CPU`, seconds.
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_CORE`, bytes.
    pub core: Option<u64>,
}

/// `[pam]`: the PAM helper's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PamConfig {
    /// The PAM service name (`/etc/pam.d/<service>`).
    #[serde(default = "default_pam_service")]
    pub service: String,
    /// Where the PAM helper paces checks per account: a directory of root and group
    /// `shadow` only (mode 0770), so the hub, which is not in `shadow`, can neither read
    /// nor reset it.
    #[serde(default = "default_pam_state_dir")]
    pub state_dir: PathBuf,
}

impl Default for SpawnerConfig {
    fn default() -> Self {
        Self {
            backend: slurm::Backend::Local,
            command: default_command(),
            path: default_path(),
            env_allow: default_env_allow(),
            no_new_privs: true,
            umask: default_umask(),
            limits: Limits::default(),
            log_dir: default_log_dir(),
            log_max_bytes: default_log_max_bytes(),
            reattach_socket: default_reattach_socket(),
            max_grace_ms: default_max_grace_ms(),
            orphan_report_secs: default_orphan_report_secs(),
            hub_api_url: None,
        }
    }
}

impl Default for PamConfig {
    fn default() -> Self {
        Self {
            service: default_pam_service(),
            state_dir: default_pam_state_dir(),
        }
    }
}

impl SpawnerConfig {
    /// Whether the hub may set `name`.
    pub fn env_allowed(&self, name: &str) -> bool {
        !hard_denied(name) && self.env_allow.iter().any(|p| p.matches(name))
    }
}

fn default_allowed_group() -> String {
    "jupyterhub".into()
}
fn default_min_uid() -> u32 {
    1000
}
fn default_command() -> Vec<String> {
    vec!["/opt/sudohub/venv/bin/jupyterhub-singleuser".into()]
}
fn default_path() -> String {
    "/opt/sudohub/venv/bin:/usr/local/bin:/usr/bin:/bin".into()
}
fn default_env_allow() -> Vec<EnvPattern> {
    env_allow::DEFAULT_ENV_ALLOW
        .iter()
        .filter_map(|p| EnvPattern::parse(p).ok())
        .collect()
}
fn default_true() -> bool {
    true
}
fn default_umask() -> u32 {
    0o022
}
fn default_log_dir() -> String {
    ".local/state/sudohub".into()
}
fn default_log_max_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_reattach_socket() -> PathBuf {
    PathBuf::from("/run/sudohub/spawners.sock")
}
fn default_max_grace_ms() -> u32 {
    60_000
}
fn default_orphan_report_secs() -> u32 {
    600
}
fn default_pam_service() -> String {
    "sudohub".into()
}

fn default_pam_state_dir() -> PathBuf {
    "/var/lib/sudohub-pam".into()
}
