//! `[auth.ldap]`: an LDAP directory or Active Directory as the password source, with
//! LDAPAuthenticator's key names.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How the connection to the directory is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TlsStrategy {
    /// Plain LDAP, then StartTLS before anything is sent (port 389).
    #[default]
    BeforeBind,
    /// LDAPS: TLS from the first byte (port 636).
    OnConnect,
    /// No TLS at all: passwords cross the network in the clear. For a directory on
    /// loopback only.
    Insecure,
}

/// `[auth.ldap]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSection {
    /// Host name or address of the directory (`server_address`).
    pub server_address: String,
    /// Its port (`server_port`): 389, or 636 with `tls_strategy = "on_connect"`.
    #[serde(default)]
    pub server_port: Option<u16>,
    /// `tls_strategy`.
    #[serde(default)]
    pub tls_strategy: TlsStrategy,
    /// PEM file of the CAs the directory's certificate is checked against; the system's
    /// roots when unset (`tls_kwargs` `ca_certs_file`).
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// DNs to bind as, `{username}` standing for the login name (`bind_dn_template`);
    /// tried in order.
    #[serde(default)]
    pub bind_dn_template: Vec<String>,
    /// Find the user's DN by a search first, then bind as it (`lookup_dn`).
    #[serde(default)]
    pub lookup_dn: bool,
    /// Where users are searched for (`user_search_base`).
    #[serde(default)]
    pub user_search_base: Option<String>,
    /// The attribute that holds the login name (`user_attribute`).
    #[serde(default = "default_user_attribute")]
    pub user_attribute: String,
    /// Who searches (`lookup_dn_search_user`); anonymous when unset.
    #[serde(default)]
    pub lookup_dn_search_user: Option<String>,
    /// That account's password (`lookup_dn_search_password`); better in a file.
    #[serde(default)]
    pub lookup_dn_search_password: Option<String>,
    /// A file holding that password, readable by the hub only.
    #[serde(default)]
    pub lookup_dn_search_password_file: Option<PathBuf>,
    /// Group DNs whose members may log in (`allowed_groups`).
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Group DNs whose members are admins.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// How membership of a group is found, searched with the group's DN as base
    /// (`group_search_filter`): `{userdn}` and `{uid}` are replaced, RFC 4515-escaped.
    #[serde(default = "default_group_filter")]
    pub group_search_filter: String,
    /// Everyone the directory accepts may log in (`allow_all`); else only
    /// `allowed_groups` members and `[auth] allowed_users`/`admin_users`.
    #[serde(default)]
    pub allow_all: bool,
    /// Login names must also match this (`valid_username_regex`).
    #[serde(default)]
    pub valid_username_regex: Option<String>,
    /// Seconds to wait for the connection (`server_connect_timeout`).
    #[serde(default = "default_connect_timeout")]
    pub server_connect_timeout: u64,
    /// Seconds to wait for each answer (`server_receive_timeout`).
    #[serde(default = "default_receive_timeout")]
    pub server_receive_timeout: u64,
}

fn default_user_attribute() -> String {
    "uid".into()
}

fn default_group_filter() -> String {
    "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))".into()
}

fn default_connect_timeout() -> u64 {
    5
}

fn default_receive_timeout() -> u64 {
    10
}

impl LdapSection {
    /// The URL connected to.
    pub fn url(&self) -> String {
        let (scheme, port) = match self.tls_strategy {
            TlsStrategy::OnConnect => ("ldaps", 636),
            _ => ("ldap", 389),
        };
        let host = if self.server_address.contains(':') {
            format!("[{}]", self.server_address)
        } else {
            self.server_address.clone()
        };
        format!("{scheme}://{host}:{}", self.server_port.unwrap_or(port))
    }

    /// `server_connect_timeout`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.server_connect_timeout)
    }

    /// `server_receive_timeout`.
    pub fn receive_timeout(&self) -> Duration {
        Duration::from_secs(self.server_receive_timeout)
    }

    /// The compiled `valid_username_regex`, anchored at both ends.
    pub fn name_regex(&self) -> Option<regex::Regex> {
        super::auth::anchored(self.valid_username_regex.as_deref())
    }

    /// Checks the values: the key at fault and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let bad = |k, m: &str| Err((k, m.to_owned()));
        let addr = self.server_address.trim();
        if addr.is_empty() || addr.contains(['/', ' ', '@', '?', '#']) {
            return bad("auth.ldap.server_address", "must be a host name or address");
        }
        let loopback = ["localhost", "127.0.0.1", "::1"].contains(&addr);
        if self.tls_strategy == TlsStrategy::Insecure && !loopback {
            return bad(
                "auth.ldap.tls_strategy",
                "\"insecure\" sends passwords in the clear: only for a directory on this machine (localhost)",
            );
        }
        match (self.lookup_dn, self.bind_dn_template.is_empty()) {
            (true, false) => {
                return bad(
                    "auth.ldap.bind_dn_template",
                    "give `bind_dn_template` or `lookup_dn = true`, not both",
                )
            }
            (false, true) => {
                return bad(
                    "auth.ldap.bind_dn_template",
                    "give `bind_dn_template` (a list of DNs with {username}) or `lookup_dn = true`",
                )
            }
            _ => {}
        }
        if let Some(t) = self
            .bind_dn_template
            .iter()
            .find(|t| !t.contains("{username}"))
        {
            return Err((
                "auth.ldap.bind_dn_template",
                format!("{t:?} has no {{username}}"),
            ));
        }
        if self.lookup_dn && self.user_search_base.as_deref().unwrap_or("").is_empty() {
            return bad("auth.ldap.user_search_base", "`lookup_dn` needs it");
        }
        if self.user_attribute.is_empty()
            || !self
                .user_attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        {
            return bad("auth.ldap.user_attribute", "must be an attribute name");
        }
        if self.lookup_dn_search_password.is_some() && self.lookup_dn_search_password_file.is_some()
        {
            return bad(
                "auth.ldap.lookup_dn_search_password",
                "give the password or its file, not both",
            );
        }
        if !(self.group_search_filter.starts_with('(') && self.group_search_filter.ends_with(')')) {
            return bad(
                "auth.ldap.group_search_filter",
                "must be an LDAP filter in parentheses",
            );
        }
        for (k, v) in [
            (
                "auth.ldap.server_connect_timeout",
                self.server_connect_timeout,
            ),
            (
                "auth.ldap.server_receive_timeout",
                self.server_receive_timeout,
            ),
        ] {
            if !(1..=300).contains(&v) {
                return bad(k, "must be 1 to 300 seconds");
            }
        }
        if let Some(re) = &self.valid_username_regex {
            regex::Regex::new(re).map_err(|e| ("auth.ldap.valid_username_regex", e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LdapSection, String> {
        let s: LdapSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(s)
    }

    #[test]
    fn urls_and_bad_values() {
        let base = "server_address = \"ldap.example.org\"\n";
        let s = parse(&format!(
            "{base}bind_dn_template = [\"uid={{username}},ou=people,dc=x\"]"
        ))
        .unwrap();
        assert_eq!(s.url(), "ldap://ldap.example.org:389");
        let s = parse(&format!(
            "{base}tls_strategy = \"on_connect\"\nlookup_dn = true\nuser_search_base = \"dc=x\""
        ))
        .unwrap();
        assert_eq!(s.url(), "ldaps://ldap.example.org:636");
        for (text, says) in [
            ("", "bind_dn_template"),
            ("bind_dn_template = [\"uid=x\"]", "has no {username}"),
            ("lookup_dn = true", "user_search_base"),
            (
                "lookup_dn = true\nuser_search_base = \"dc=x\"\nbind_dn_template = [\"uid={username}\"]",
                "not both",
            ),
            ("tls_strategy = \"sometimes\"", "unknown variant"),
            (
                "tls_strategy = \"insecure\"\nbind_dn_template = [\"uid={username}\"]",
                "in the clear",
            ),
            (
                "bind_dn_template = [\"uid={username}\"]\nserver_receive_timeout = 0",
                "server_receive_timeout",
            ),
            (
                "bind_dn_template = [\"uid={username}\"]\ngroup_search_filter = \"member={userdn}\"",
                "group_search_filter",
            ),
        ] {
            let e = parse(&format!("{base}{text}")).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let e = parse("server_address = \"ldap://x\"\nlookup_dn = true").unwrap_err();
        assert!(e.contains("server_address"), "{e}");
    }
}
