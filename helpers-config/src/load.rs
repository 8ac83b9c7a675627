//! Opening helpers.toml safely and validating what it says.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use serde::{Deserialize, Deserializer};

use crate::HelpersConfig;

/// Largest config file read; anything bigger is not a hand-written config.
const MAX_CONFIG_LEN: u64 = 256 * 1024;

/// Why the configuration cannot be trusted or used. Each message names the file or key
/// and what to do, because an admin reads it in a failed spawn's log.
#[derive(Debug)]
pub enum ConfigError {
    /// The file cannot be opened or read.
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The path is not a regular file (or is a symlink).
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// The file or its directory is not owned by root.
    NotRootOwned {
        /// The file or directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
    },
    /// The file or its directory is writable by group or others.
    Writable {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than any real config.
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The TOML does not parse or has an unknown key or a bad value.
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value parses but is not acceptable.
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::NotRegular { path } => {
                write!(
                    f,
                    "{} is not a regular file (symlinks are refused)",
                    path.display()
                )
            }
            Self::NotRootOwned { path, uid } => write!(
                f,
                "{} is owned by uid {uid}, not root: fix with `chown root:root {}`",
                path.display(),
                path.display()
            ),
            Self::Writable { path, mode } => write!(
                f,
                "{} has mode {mode:04o}, writable by group or others: fix with `chmod go-w {}`",
                path.display(),
                path.display()
            ),
            Self::TooLarge { path } => write!(
                f,
                "{} is larger than {MAX_CONFIG_LEN} bytes",
                path.display()
            ),
            Self::Parse { path, message } => {
                write!(f, "invalid configuration in {}: {message}", path.display())
            }
            Self::Invalid { key, message } => write!(f, "invalid value for `{key}`: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Opens `path` without following symlinks, checks that it and its directory are owned by
/// root and unwritable by group and others, then parses and validates it.
///
/// The checks are made on the opened file descriptor (`fstat`), so the file that was
/// checked is the file that is read.
pub fn load_trusted(path: &Path) -> Result<HelpersConfig, ConfigError> {
    let text = read_trusted(path)?;
    parse(&text, path)
}

/// Whether root's hub.toml next to the helpers' config (`<dir>/hub.toml`, held to the
/// same ownership checks) says `[auth] create_system_users = true`: the admin's one
/// switch for accounts made on demand, in a file the hub cannot write. A missing file
/// says no; one that is not root's, or does not parse, is an error.
pub fn hub_wants_accounts(helpers_config: &Path) -> Result<bool, ConfigError> {
    let path = helpers_config.with_file_name("hub.toml");
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(false);
    }
    let text = read_trusted(&path)?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.clone(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    Ok(table
        .get("auth")
        .and_then(|a| a.get("create_system_users"))
        .and_then(toml::Value::as_bool)
        .unwrap_or(false))
}

/// Reads a config file root owns and only root can change (nor its directory), through
/// no symbolic link, bounded in size.
fn read_trusted(path: &Path) -> Result<String, ConfigError> {
    if let Some(dir) = path.parent() {
        let meta = std::fs::metadata(dir).map_err(|source| ConfigError::Open {
            path: dir.to_owned(),
            source,
        })?;
        check_owner_mode(dir, meta.uid(), meta.mode())?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => ConfigError::NotRegular {
                path: path.to_owned(),
            },
            _ => ConfigError::Open {
                path: path.to_owned(),
                source,
            },
        })?;
    let meta = file.metadata().map_err(|source| ConfigError::Open {
        path: path.to_owned(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(ConfigError::NotRegular {
            path: path.to_owned(),
        });
    }
    check_owner_mode(path, meta.uid(), meta.mode())?;
    if meta.len() > MAX_CONFIG_LEN {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    read_text(&mut file, path)
}

fn check_owner_mode(path: &Path, uid: u32, mode: u32) -> Result<(), ConfigError> {
    if uid != 0 {
        return Err(ConfigError::NotRootOwned {
            path: path.to_owned(),
            uid,
        });
    }
    if mode & 0o022 != 0 {
        return Err(ConfigError::Writable {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

fn read_text(file: &mut File, path: &Path) -> Result<String, ConfigError> {
    let mut text = String::new();
    file.take(MAX_CONFIG_LEN + 1)
        .read_to_string(&mut text)
        .map_err(|source| ConfigError::Open {
            path: path.to_owned(),
            source,
        })?;
    Ok(text)
}

/// Parses and validates config text (no ownership checks: for tests and `sudohub check`).
pub fn parse(text: &str, path: &Path) -> Result<HelpersConfig, ConfigError> {
    let config: HelpersConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string().trim().replace('\n', " "),
    })?;
    validate(&config)?;
    Ok(config)
}

fn validate(c: &HelpersConfig) -> Result<(), ConfigError> {
    let invalid = |key: &str, message: &str| ConfigError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    };
    if !is_posix_name(&c.hub_user) {
        return Err(invalid("hub_user", "must be a valid user name"));
    }
    if !is_posix_name(&c.allowed_group) {
        return Err(invalid("allowed_group", "must be a valid group name"));
    }
    if c.min_uid == 0 {
        return Err(invalid(
            "min_uid",
            "must be above 0: servers never run as root",
        ));
    }
    let s = &c.spawner;
    match s.command.first() {
        Some(program) if program.starts_with('/') => {}
        _ => {
            return Err(invalid(
                "spawner.command",
                "must start with an absolute program path",
            ))
        }
    }
    if s.command.iter().any(|a| a.contains('\0')) {
        return Err(invalid("spawner.command", "must not contain NUL"));
    }
    if s.path.is_empty() || s.path.split(':').any(|d| !d.starts_with('/')) {
        return Err(invalid(
            "spawner.path",
            "must be a list of absolute directories separated by ':'",
        ));
    }
    if s.umask > 0o777 {
        return Err(invalid("spawner.umask", "must be at most 0777"));
    }
    let log_dir = Path::new(&s.log_dir);
    if log_dir.is_absolute()
        || s.log_dir.is_empty()
        || log_dir
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(invalid(
            "spawner.log_dir",
            "must be a relative path below the user's home, without `..`",
        ));
    }
    if !s.reattach_socket.is_absolute() {
        return Err(invalid(
            "spawner.reattach_socket",
            "must be an absolute path",
        ));
    }
    if let Some(url) = &s.hub_api_url {
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && !url.ends_with('/')
            && !url.contains(['?', '#', ' ', '\0']);
        if !ok {
            return Err(invalid(
                "spawner.hub_api_url",
                "must be an http(s) URL without a trailing slash, e.g. \"http://127.0.0.1:8000/hub/api\"",
            ));
        }
    }
    c.limits
        .validate()
        .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
    if let Some(slurm) = &c.slurm {
        slurm
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid { key, message })?;
    }
    if c.spawner.backend == crate::slurm::Backend::Slurm && s.hub_api_url.is_none() {
        return Err(invalid(
            "spawner.hub_api_url",
            "is needed with backend = \"slurm\": the Hub API URL the compute nodes reach, the same as hub.toml's [slurm] hub_api_url",
        ));
    }
    if c.spawner.backend == crate::slurm::Backend::Slurm && c.slurm.is_none() {
        return Err(invalid(
            "spawner.backend",
            "\"slurm\" needs a [slurm] table (its defaults suffice: `[slurm]` alone)",
        ));
    }
    if c.pam.service.is_empty() || c.pam.service.contains(['/', '\0']) {
        return Err(invalid("pam.service", "must be a plain PAM service name"));
    }
    if let Some(a) = &c.accounts {
        let uids = a.uids(c.min_uid);
        if uids.is_empty() || *uids.end() >= 60000 {
            return Err(invalid(
                "accounts.uid_max",
                "must be at least uid_min (and min_uid) and below 60000, where system ids begin again",
            ));
        }
        let plain_abs = |p: &Path| {
            p.is_absolute()
                && p.components().all(|c| {
                    matches!(
                        c,
                        std::path::Component::RootDir | std::path::Component::Normal(_)
                    )
                })
        };
        if !plain_abs(Path::new(&a.shell)) {
            return Err(invalid(
                "accounts.shell",
                "must be an absolute path without `..`",
            ));
        }
        if !plain_abs(&a.home_base) || a.home_base == Path::new("/") {
            return Err(invalid(
                "accounts.home_base",
                "must be an absolute directory below / without `..`",
            ));
        }
        if !plain_abs(&a.skel) {
            return Err(invalid(
                "accounts.skel",
                "must be an absolute path without `..`",
            ));
        }
    }
    Ok(())
}

/// Portable user and group names: `[a-z_][a-z0-9_-]*[$]?`, at most 32 bytes. Stricter than
/// some systems allow, which is the safe direction for a name that reaches PAM and paths.
pub fn is_posix_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    if bytes.len() > 32 || !(first.is_ascii_lowercase() || first == b'_') {
        return false;
    }
    let rest = rest.strip_suffix(b"$").unwrap_or(rest);
    rest.iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A name for an account made by sudohub (sign-up, `create_system_users`): a lowercase
/// letter, then `[a-z0-9_-]`, at most 32 bytes. Narrower than [`is_posix_name`]: no `_`
/// first and no `$` last, the marks of system and machine accounts.
pub fn is_new_account_name(name: &str) -> bool {
    let b = name.as_bytes();
    matches!(b.first(), Some(c) if c.is_ascii_lowercase())
        && b.len() <= 32
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

/// A named server's name, JupyterHub 6's rule (`is_valid_safe_slug`): 1–30 characters of
/// `[a-z0-9-]`, starting with a letter, ending with a letter or digit, no `--`. Such a
/// name is one URL path segment and a safe file name. The default server's name is `""`.
pub fn is_server_name(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=30).contains(&b.len())
        && b.iter().all(|c| alnum(c) || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last().is_some_and(alnum)
        && !name.contains("--")
}

/// The file name of a server's log in the user's log directory: `default.log` for the
/// default server, `server-<name>.log` for a named one (so that a server named `default`
/// has a log of its own).
pub fn server_log_name(server: &str) -> String {
    if server.is_empty() {
        "default.log".to_owned()
    } else {
        format!("server-{server}.log")
    }
}

/// Deserialises an octal mode written as a string (`"0022"`), because TOML has no octal
/// literal that every admin recognises.
pub(crate) fn octal_mode<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let text = String::deserialize(d)?;
    u32::from_str_radix(text.trim_start_matches("0o"), 8).map_err(|_| {
        serde::de::Error::custom(format!("{text:?} is not an octal mode such as \"0022\""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<HelpersConfig, ConfigError> {
        parse(text, Path::new("/etc/sudohub/helpers.toml"))
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = p("hub_user = \"sudohub\"\n").unwrap();
        assert_eq!(c.allowed_group, "jupyterhub");
        assert_eq!(c.min_uid, 1000);
        assert!(c.spawner.no_new_privs);
        assert_eq!(c.spawner.umask, 0o022);
        assert!(c.spawner.env_allowed("JUPYTERHUB_API_TOKEN"));
        assert!(!c.spawner.env_allowed("JUPYTERHUB_SERVICE_URL"));
        assert!(!c.spawner.env_allowed("LD_PRELOAD"));
        assert!(!c.spawner.env_allowed("JUPYTER_CONFIG_DIR"));
    }

    #[test]
    fn unknown_keys_name_the_key() {
        let e = p("hub_user = \"sudohub\"\nhub_usr = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("hub_usr"), "{e}");
    }

    #[test]
    fn hard_denied_names_stay_denied() {
        let c = p("hub_user = \"h\"\n[spawner]\nenv_allow = [\"LD_*\", \"PATH\", \"JUPYTER_*\", \"PYTHON*\", \"MY_*\"]\n").unwrap();
        // The config allows them by pattern; the hard deny list is patterns too.
        for name in [
            "LD_PRELOAD",
            "LD_FOO",
            "PATH",
            "JUPYTER_DATA_DIR",
            "PYTHONWARNINGS",
        ] {
            assert!(!c.spawner.env_allowed(name), "{name}");
        }
        assert!(c.spawner.env_allowed("MY_SETTING"));
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("hub_user = \"Bad User\"", "hub_user"),
            ("hub_user = \"h\"\nmin_uid = 0", "min_uid"),
            (
                "hub_user = \"h\"\n[spawner]\ncommand = [\"python3\"]",
                "spawner.command",
            ),
            (
                "hub_user = \"h\"\n[spawner]\nlog_dir = \"../x\"",
                "spawner.log_dir",
            ),
            ("hub_user = \"h\"\n[spawner]\numask = \"99\"", "umask"),
        ] {
            let e = p(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn posix_names() {
        for ok in ["alice", "_svc", "a-b_c1", "machine$"] {
            assert!(is_posix_name(ok), "{ok}");
        }
        for bad in ["", "-rf", "../x", "Alice", "a/b", "a\0b", &"a".repeat(33)] {
            assert!(!is_posix_name(bad), "{bad}");
        }
    }

    #[test]
    fn new_account_names() {
        for ok in ["alice", "a-b_c1", "z", &"a".repeat(32)] {
            assert!(is_new_account_name(ok), "{ok}");
        }
        let long = "a".repeat(33);
        for bad in [
            "", "_svc", "machine$", "-rf", "1a", "../x", "Alice", "a/b", "a.b", "a b", "a\nb",
            "a\0b", "é", &long,
        ] {
            assert!(!is_new_account_name(bad), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod shipped_file {
    /// The commented `[slurm]` example, uncommented, is a valid Slurm setup.
    #[test]
    fn the_slurm_example_parses_when_uncommented() {
        let text = include_str!("../../etc/helpers.toml");
        let start = text.find("# [slurm]").unwrap();
        let example: String = text[start..]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| {
                l.starts_with('[')
                    || l.split_once(" = ")
                        .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            })
            .map(|l| l.split("  #").next().unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let text = format!("hub_user = \"sudohub\"\n[spawner]\nbackend = \"slurm\"\nhub_api_url = \"http://hub:8081/hub/api\"\n{example}");
        let c = super::parse(&text, std::path::Path::new("example")).unwrap();
        let slurm = c.slurm.unwrap();
        assert_eq!(slurm.profile.len(), 2);
        assert_eq!(
            slurm.profile("gpu").unwrap().options(),
            [
                "--partition=gpu",
                "--time=4:00:00",
                "--cpus-per-task=8",
                "--gres=gpu:1"
            ]
        );
    }

    /// The file install.sh installs must parse and mean the documented defaults.
    #[test]
    fn etc_helpers_toml_parses_to_the_defaults() {
        let text = include_str!("../../etc/helpers.toml");
        let c = super::parse(text, std::path::Path::new("etc/helpers.toml")).unwrap();
        assert_eq!(c.hub_user, "sudohub");
        assert_eq!(c.allowed_group, "jupyterhub");
        assert_eq!(
            c.spawner,
            crate::SpawnerConfig {
                limits: crate::Limits {
                    nofile: Some(65536),
                    core: Some(0),
                    ..Default::default()
                },
                // Pinned in the shipped file (to the shipped hub.toml's API); unset by default.
                hub_api_url: Some("http://127.0.0.1:8000/hub/api".into()),
                ..Default::default()
            }
        );
        assert_eq!(c.pam, crate::PamConfig::default());
    }
}
