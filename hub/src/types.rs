//! The values the hub passes around, each parsed once where it enters (a login form, an
//! API path, hub.toml, a database row) and carried typed from there on.

use std::borrow::Borrow;
use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A Unix user name the hub may act for, as `useradd` accepts it by default: lower-case
/// letters, digits, `_` and `-`, starting with a letter or `_`, at most 32 bytes. It is what reaches `sudo -u` and
/// the helpers, so nothing that sudo could read as an option or a path gets this type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

/// A hub group's name (JupyterHub's groups): 1 to 255 characters, none of them `/`, a
/// control character or whitespace at either end, so it is one path segment of the API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupName(String);

impl GroupName {
    /// Parses a group name as it comes from outside.
    pub fn parse(name: &str) -> Result<Self, String> {
        let ok = (1..=255).contains(&name.chars().count())
            && name.trim() == name
            && !name.chars().any(|c| c == '/' || c.is_control());
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "invalid group name {name:?}: 1 to 255 characters, no '/', no control characters, no spaces at the ends"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GroupName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<GroupName> for String {
    fn from(g: GroupName) -> Self {
        g.0
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl rusqlite::ToSql for GroupName {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl rusqlite::types::FromSql for GroupName {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = String::column_result(v)?;
        Self::parse(&s).map_err(|e| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

/// Why a string is not a [`Username`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidUsername(pub String);

impl fmt::Display for InvalidUsername {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid user name {:?}: use lower-case letters, digits, '_' or '-', starting with a letter or '_', at most 32",
            self.0
        )
    }
}

impl std::error::Error for InvalidUsername {}

impl Username {
    /// Parses a name as it comes from outside.
    pub fn parse(name: &str) -> Result<Self, InvalidUsername> {
        if sudohub_helpers_config::is_posix_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidUsername(name.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = InvalidUsername;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> Self {
        u.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Username {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Username {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl ToSql for Username {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for Username {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = value.as_str()?;
        Self::parse(s).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// A server's name: `""` for a user's default server, else a named server's name by
/// JupyterHub 6's rule (1–30 of `[a-z0-9-]`, a letter first, no `--`): one URL path
/// segment, a file name, and nothing sudo or a shell could misread.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub struct ServerName(String);

impl ServerName {
    /// The default server's name.
    pub const DEFAULT: Self = Self(String::new());

    /// Parses a named server's name as it comes from outside (never `""`).
    pub fn parse_named(name: &str) -> Result<Self, String> {
        if sudohub_helpers_config::is_server_name(name) {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!(
                "invalid server name {:?}: 1 to 30 of a-z, 0-9 and '-', starting with a letter, ending with a letter or digit, no '--'",
                name.chars().take(40).collect::<String>()
            ))
        }
    }

    /// `""` (the default server) or a named server's name.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            Ok(Self::DEFAULT)
        } else {
            Self::parse_named(name)
        }
    }

    /// Whether this is the default server.
    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ServerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<ServerName> for String {
    fn from(n: ServerName) -> Self {
        n.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql for ServerName {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for ServerName {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Self::parse(value.as_str()?).map_err(|e| FromSqlError::Other(e.into()))
    }
}

/// One server: its owner and its name. Shown as JupyterHub's `full_name`, `<user>/<name>`
/// (`alice/` for the default server), the form `!server=` filters use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerKey {
    /// The owner.
    pub user: Username,
    /// `""` for the default server.
    pub name: ServerName,
}

impl ServerKey {
    /// `user`'s server called `name`.
    pub fn new(user: Username, name: ServerName) -> Self {
        Self { user, name }
    }

    /// `user`'s default server.
    pub fn default_of(user: &Username) -> Self {
        Self::new(user.clone(), ServerName::DEFAULT)
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.user, self.name)
    }
}

/// Maps a small enum to and from its TEXT column, so a row with another value is an error
/// at read time instead of a string compared in handlers.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// The stored and displayed form.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok(Self::$variant),)+
                    other => Err(FromSqlError::Other(
                        format!(concat!("not a ", stringify!($name), ": {:?}"), other).into(),
                    )),
                }
            }
        }
    };
}

text_enum! {
    /// What the database records of a server that is not stopped (a stopped server has no row).
    RecordedState {
        /// A spawn is in progress.
        Starting = "starting",
        /// Started, with a pid.
        Running = "running",
        /// A stop is in progress.
        Stopping = "stopping",
    }
}

text_enum! {
    /// What a token is for, which decides what it may do (JupyterHub's token scopes).
    TokenKind {
        /// Made by a user or admin: carries its owner's rights.
        Api = "api",
        /// A single-user server's own `JUPYTERHUB_API_TOKEN`.
        Server = "server",
        /// Issued to a server through the OAuth flow, for a browser session.
        OAuth = "oauth",
    }
}

/// Where a user's server is in its life cycle, as the hub sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// No server.
    Stopped,
    /// A spawn is in progress.
    Starting,
    /// Running and routed.
    Running,
    /// A stop is in progress.
    Stopping,
    /// The last spawn failed, with this reason.
    Failed(String),
}

impl ServerState {
    /// Whether a server exists in any form (starting, running or stopping).
    pub fn is_active(&self) -> bool {
        !matches!(self, Self::Stopped | Self::Failed(_))
    }

    /// JupyterHub's `pending` field: `spawn` or `stop` while a transition runs.
    pub fn pending(&self) -> Option<&'static str> {
        match self {
            Self::Starting => Some("spawn"),
            Self::Stopping => Some("stop"),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked_once() {
        assert!(Username::parse("alice").is_ok());
        for bad in ["", "-n", "a b", "a/b", "a\nb", &"x".repeat(40)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        let u: Username = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(u.as_str(), "bob");
        assert!(serde_json::from_str::<Username>("\"-rf\"").is_err());
    }

    #[test]
    fn enums_round_trip_through_sqlite() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let k: TokenKind = c
            .query_row("SELECT ?1", [TokenKind::OAuth], |r| r.get(0))
            .unwrap();
        assert_eq!(k, TokenKind::OAuth);
        let bad: rusqlite::Result<RecordedState> = c.query_row("SELECT 'odd'", [], |r| r.get(0));
        assert!(bad.is_err());
    }
}
