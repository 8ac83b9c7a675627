//! The environment allow-list: which variables the hub may pass to a user's server.

use std::fmt;

use serde::Deserialize;

/// Allowed by default: everything jupyterhub-singleuser reads from the hub (compat spec
/// §1.2), the legacy token name, and the locale.
///
/// `JUPYTER_CONFIG_DIR`, `JUPYTER_PATH` and `JUPYTER_DATA_DIR` are deliberately absent:
/// they make the server load Python config from a directory of the caller's choosing,
/// i.e. run the hub's code as the user.
pub const DEFAULT_ENV_ALLOW: &[&str] = &["JUPYTERHUB_*", "JPY_API_TOKEN", "LANG", "LC_ALL"];

/// Never accepted from the hub, whatever helpers.toml says: the helper sets these itself,
/// or they change what code runs (loader, interpreter paths and startup files, import of
/// an arbitrary app, Jupyter's config and data directories, shells' and Node's startup
/// hooks). An entry is an exact name or a pattern with one `*`; an allow-list entry in the
/// config can never re-allow a name these match.
pub const HARD_DENIED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LD_*",
    "PYTHON*",
    "IPYTHONDIR",
    "JUPYTERHUB_SERVICE_URL",
    "JUPYTERHUB_SINGLEUSER_APP",
    "JUPYTER_*_DIR",
    "JUPYTER_PATH",
    "JUPYTER_CONFIG_PATH",
    "GCONV_PATH",
    "LOCPATH",
    "NODE_OPTIONS",
    "NODE_PATH",
    "BASH_ENV",
    "ENV",
];

/// Whether `name` is one of [`HARD_DENIED_ENV`].
pub fn hard_denied(name: &str) -> bool {
    HARD_DENIED_ENV
        .iter()
        .any(|pattern| match pattern.split_once('*') {
            Some((prefix, suffix)) => {
                name.len() >= prefix.len() + suffix.len()
                    && name.starts_with(prefix)
                    && name.ends_with(suffix)
            }
            None => name == *pattern,
        })
}

/// One allow-list entry: an exact name, or a prefix ending in `*`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct EnvPattern {
    text: String,
}

impl EnvPattern {
    /// Parses `NAME` or `PREFIX*`; names are `[A-Za-z_][A-Za-z0-9_]*`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let name = text.strip_suffix('*').unwrap_or(text);
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "invalid env_allow entry {text:?}: expected NAME or PREFIX* with letters, digits and _"
            ));
        }
        Ok(Self { text: text.into() })
    }

    /// Whether `name` is covered by this entry.
    pub fn matches(&self, name: &str) -> bool {
        match self.text.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.text,
        }
    }
}

impl TryFrom<String> for EnvPattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl fmt::Debug for EnvPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_exact() {
        let p = EnvPattern::parse("JUPYTERHUB_*").unwrap();
        assert!(p.matches("JUPYTERHUB_API_TOKEN"));
        assert!(!p.matches("JUPYTER_PATH"));
        let e = EnvPattern::parse("LANG").unwrap();
        assert!(e.matches("LANG") && !e.matches("LANGUAGE"));
    }

    #[test]
    fn hard_denied_names_are_patterns() {
        for bad in [
            "LD_PRELOAD",
            "LD_BIND_NOW",
            "PYTHONPATH",
            "PYTHONWARNINGS",
            "JUPYTER_CONFIG_DIR",
            "JUPYTER_DATA_DIR",
            "JUPYTER_RUNTIME_DIR",
            "JUPYTER_PATH",
            "NODE_OPTIONS",
            "PATH",
        ] {
            assert!(hard_denied(bad), "{bad}");
        }
        for ok in [
            "JUPYTERHUB_API_TOKEN",
            "LANG",
            "LD",
            "PYTHO",
            "JUPYTER_DIR",
            "PATHS",
        ] {
            assert!(!hard_denied(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_odd_entries() {
        for bad in ["", "*", "1ABC", "A-B", "A*B*", "A B"] {
            assert!(EnvPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
