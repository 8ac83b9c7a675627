//! `[auth]`: where passwords are checked (PAM, the hub's own accounts, or both), who may
//! log in and who is an admin once one was accepted, lockouts, and `[auth.native]`, the
//! sign-up and password rules of the hub's own accounts (NativeAuthenticator's keys).

use serde::Deserialize;

use crate::types::Username;

/// Where a user's password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The system's accounts, through `sudohub-pam`.
    Pam,
    /// The hub's own accounts: sign-up, approval, argon2id hashes in the database.
    Native,
    /// An LDAP directory (`[auth.ldap]`), bound to with the user's password.
    Ldap,
    /// Any OpenID Connect provider (`[auth.oauth] issuer`).
    Oidc,
    /// Google (OpenID Connect, `hosted_domain`).
    Google,
    /// GitHub (OAuth 2 and its API, `allowed_organizations`).
    Github,
    /// A plain OAuth 2 provider with a user-data URL.
    Oauth2,
}

impl SourceKind {
    /// Its name in hub.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pam => "pam",
            Self::Native => "native",
            Self::Ldap => "ldap",
            Self::Oidc => "oidc",
            Self::Google => "google",
            Self::Github => "github",
            Self::Oauth2 => "oauth2",
        }
    }

    /// Whether users sign in at an identity provider's page, not with a password here.
    pub fn is_oauth(self) -> bool {
        matches!(
            self,
            Self::Oidc | Self::Google | Self::Github | Self::Oauth2
        )
    }
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRules {
    /// The one source (`source = "native"`); the same as `sources` with one entry.
    #[serde(default)]
    pub source: Option<SourceKind>,
    /// The sources, on one login page (`sources = ["pam", "native"]`): a name with an
    /// account of the hub's own belongs to `native`, every other name to `pam`.
    #[serde(default)]
    pub sources: Vec<SourceKind>,
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
    /// Failed logins of one name in a row before it is locked out
    /// (NativeAuthenticator's `allowed_failed_logins`); 0: never. Kept in the database:
    /// a hub restart does not lift a lockout.
    #[serde(default)]
    pub allowed_failed_logins: u32,
    /// How long a lockout lasts (`seconds_before_next_try`).
    #[serde(default = "default_lockout_secs")]
    pub seconds_before_next_try: u64,
    /// Give a hub user without a Unix account one, through `sudohub-account`, when they
    /// first log in or an admin adds them (`c.LocalAuthenticator.create_system_users`).
    /// helpers.toml must allow it too (`[accounts] create = true`).
    #[serde(default)]
    pub create_system_users: bool,
    /// Path of `sudohub-account` (the sudoers rule names the same path).
    #[serde(default = "default_account_helper")]
    pub account_helper: std::path::PathBuf,
    /// `[auth.native]`.
    #[serde(default)]
    pub native: NativeSection,
    /// `[auth.ldap]`, for `source = "ldap"`.
    #[serde(default)]
    pub ldap: Option<super::ldap::LdapSection>,
    /// `[auth.oauth]`, for the identity-provider sources.
    #[serde(default)]
    pub oauth: Option<super::oauth::OAuthSection>,
}

fn default_account_helper() -> std::path::PathBuf {
    "/usr/lib/sudohub/sudohub-account".into()
}

fn default_allowed_groups() -> Vec<String> {
    vec!["jupyterhub".into()]
}

fn default_lockout_secs() -> u64 {
    600
}

impl Default for AuthRules {
    fn default() -> Self {
        Self {
            source: None,
            sources: Vec::new(),
            allowed_users: Vec::new(),
            allowed_groups: default_allowed_groups(),
            admin_users: Vec::new(),
            admin_groups: Vec::new(),
            allowed_failed_logins: 0,
            seconds_before_next_try: default_lockout_secs(),
            create_system_users: false,
            account_helper: default_account_helper(),
            native: NativeSection::default(),
            ldap: None,
            oauth: None,
        }
    }
}

impl AuthRules {
    /// The sources in use: `sources`, or `source`, or PAM.
    pub fn sources(&self) -> Vec<SourceKind> {
        match (&self.source, self.sources.is_empty()) {
            (_, false) => self.sources.clone(),
            (Some(one), true) => vec![*one],
            (None, true) => vec![SourceKind::Pam],
        }
    }

    /// The identity-provider source, if one is in use.
    pub fn oauth_kind(&self) -> Option<SourceKind> {
        self.sources().into_iter().find(|s| s.is_oauth())
    }

    /// Whether `kind` is one of the sources.
    pub fn uses(&self, kind: SourceKind) -> bool {
        self.sources().contains(&kind)
    }

    /// Checks the values: the key at fault and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.source.is_some() && !self.sources.is_empty() {
            return Err(("auth.source", "give `source` or `sources`, not both".into()));
        }
        let mut seen = std::collections::HashSet::new();
        if !self.sources.iter().all(|s| seen.insert(*s)) {
            return Err(("auth.sources", "names a source twice".into()));
        }
        if !self.account_helper.is_absolute() {
            return Err(("auth.account_helper", "must be an absolute path".into()));
        }
        if self.uses(SourceKind::Pam) && self.uses(SourceKind::Ldap) {
            return Err((
                "auth.sources",
                "PAM and LDAP cannot both check passwords: a name would belong to two sources"
                    .into(),
            ));
        }
        match (&self.ldap, self.uses(SourceKind::Ldap)) {
            (Some(l), true) => l.validate()?,
            (None, true) => {
                return Err(("auth.ldap", "`source = \"ldap\"` needs [auth.ldap]".into()))
            }
            (Some(_), false) => {
                return Err(("auth.ldap", "is set but \"ldap\" is not a source".into()))
            }
            (None, false) => {}
        }
        let outside: Vec<_> = self
            .sources()
            .into_iter()
            .filter(|s| *s != SourceKind::Native)
            .collect();
        if outside.len() > 1 {
            return Err((
                "auth.sources",
                "one source besides \"native\": a name must belong to one source".into(),
            ));
        }
        match (&self.oauth, self.oauth_kind()) {
            (Some(o), Some(kind)) => o.validate(kind)?,
            (None, Some(kind)) => {
                return Err((
                    "auth.oauth",
                    format!("`source = \"{}\"` needs [auth.oauth]", kind.as_str()),
                ))
            }
            (Some(_), None) => {
                return Err((
                    "auth.oauth",
                    "is set but no identity-provider source is".into(),
                ))
            }
            (None, None) => {}
        }
        if self.allowed_failed_logins > 0 && self.seconds_before_next_try == 0 {
            return Err(("auth.seconds_before_next_try", "must be above 0".into()));
        }
        self.native.validate()
    }
}

/// `[auth.native]`: the hub's own accounts (NativeAuthenticator's keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeSection {
    /// Whether `/hub/signup` takes sign-ups (`enable_signup`).
    #[serde(default = "yes")]
    pub enable_signup: bool,
    /// New accounts may log in at once, without an admin's approval (`open_signup`).
    #[serde(default)]
    pub open_signup: bool,
    /// The sign-up form asks for an email address (`ask_email_on_signup`).
    #[serde(default)]
    pub ask_email_on_signup: bool,
    /// Terms the user must accept with a checkbox to sign up (`tos`); plain text.
    #[serde(default)]
    pub tos: Option<String>,
    /// Shortest password, in characters (`minimum_password_length`).
    #[serde(default = "default_min_password")]
    pub minimum_password_length: usize,
    /// Refuse passwords that are common or easy to guess (`check_common_password`).
    #[serde(default = "yes")]
    pub check_common_password: bool,
    /// Sign-up names must also match this (`valid_username_regex`), on top of the Unix
    /// naming rule (a lowercase letter first, then `[a-z0-9_-]`, at most 32).
    #[serde(default)]
    pub valid_username_regex: Option<String>,
    /// Users may turn on a second factor: a TOTP code from an authenticator app at
    /// each login (`allow_2fa`).
    #[serde(default)]
    pub allow_2fa: bool,
}

fn yes() -> bool {
    true
}

fn default_min_password() -> usize {
    8
}

impl Default for NativeSection {
    fn default() -> Self {
        Self {
            enable_signup: true,
            open_signup: false,
            ask_email_on_signup: false,
            tos: None,
            minimum_password_length: default_min_password(),
            check_common_password: true,
            valid_username_regex: None,
            allow_2fa: false,
        }
    }
}

impl NativeSection {
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=1024).contains(&self.minimum_password_length) {
            return Err((
                "auth.native.minimum_password_length",
                "must be 1 to 1024".into(),
            ));
        }
        if let Some(re) = &self.valid_username_regex {
            regex::Regex::new(re)
                .map_err(|e| ("auth.native.valid_username_regex", e.to_string()))?;
        }
        Ok(())
    }

    /// The compiled `valid_username_regex`, anchored at both ends as Python's
    /// `re.fullmatch` is not: NativeAuthenticator uses `re.match`, anchored at the start
    /// only, so we anchor the whole name, which is the safe reading.
    pub fn name_regex(&self) -> Option<regex::Regex> {
        anchored(self.valid_username_regex.as_deref())
    }
}

/// `re` anchored at both ends (a whole-name match), if it compiles.
pub(crate) fn anchored(re: Option<&str>) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{})$", re?)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AuthRules, String> {
        let r: AuthRules = toml::from_str(text).map_err(|e| e.to_string())?;
        r.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(r)
    }

    #[test]
    fn sources_and_their_settings_are_checked() {
        assert_eq!(parse("").unwrap().sources(), [SourceKind::Pam]);
        assert_eq!(
            parse("source = \"native\"").unwrap().sources(),
            [SourceKind::Native]
        );
        let both = parse("sources = [\"pam\", \"native\"]").unwrap();
        assert!(both.uses(SourceKind::Pam) && both.uses(SourceKind::Native));
        for (text, says) in [
            ("source = \"native\"\nsources = [\"pam\"]", "auth.source"),
            ("sources = [\"pam\", \"pam\"]", "twice"),
            ("source = \"kerberos\"", "unknown variant"),
            ("source = \"ldap\"", "needs [auth.ldap]"),
            ("sources = [\"pam\", \"ldap\"]", "PAM and LDAP"),
            (
                "[native]\nminimum_password_length = 0",
                "minimum_password_length",
            ),
            (
                "[native]\nvalid_username_regex = \"(\"",
                "valid_username_regex",
            ),
            ("[native]\nbogus = 1", "bogus"),
            (
                "allowed_failed_logins = 3\nseconds_before_next_try = 0",
                "seconds_before_next_try",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        let n = parse("[native]\nvalid_username_regex = \"[a-z]+\"").unwrap();
        let re = n.native.name_regex().unwrap();
        assert!(re.is_match("alice") && !re.is_match("alice1"));
    }
}
