//! `[auth.oauth]`: logins through an identity provider, OpenID Connect (any provider, or
//! Google) or plain OAuth 2 (GitHub, or any provider with a user-data URL), with
//! OAuthenticator's key names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::SourceKind;

/// `[auth.oauth]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSection {
    /// The provider's name on the login button (`login_service`).
    #[serde(default)]
    pub login_service: Option<String>,
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`; better in `client_secret_file`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A file holding the client secret, readable by the hub only.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// OpenID Connect: the issuer, whose `/.well-known/openid-configuration` says the
    /// rest (Google's by default for `source = "google"`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Plain OAuth 2: the provider's authorization page (`authorize_url`).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Plain OAuth 2: its token endpoint (`token_url`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// Plain OAuth 2: where the user's data is read with the token (`userdata_url`).
    #[serde(default)]
    pub userdata_url: Option<String>,
    /// GitHub (or GitHub Enterprise): the web site (`github_url`).
    #[serde(default = "default_github_url")]
    pub github_url: String,
    /// GitHub: its API (`github_api`).
    #[serde(default = "default_github_api")]
    pub github_api: String,
    /// Where the provider sends the browser back (`oauth_callback_url`): the hub's
    /// `/hub/oauth_callback`, from `public_url` when unset.
    #[serde(default)]
    pub oauth_callback_url: Option<String>,
    /// Scopes asked for (`scope`); each source has sensible ones by default.
    #[serde(default)]
    pub scope: Option<Vec<String>>,
    /// The claim that names the user (`username_claim`): `preferred_username` for OIDC,
    /// `email` for Google, `login` for GitHub, `username` for plain OAuth 2.
    #[serde(default)]
    pub username_claim: Option<String>,
    /// Provider names (after `username_claim`) mapped to Unix names, first.
    #[serde(default)]
    pub username_map: BTreeMap<String, String>,
    /// Email domains whose addresses become their local part (`alice@example.org` →
    /// `alice`); addresses of other domains are refused or, with `keep_other_domains`,
    /// keep their domain.
    #[serde(default)]
    pub default_domains: Vec<String>,
    /// Addresses of other domains become `<local>-<domain>` (dots as `-`) instead of
    /// being refused.
    #[serde(default)]
    pub keep_other_domains: bool,
    /// The claim listing the user's groups (`claim_groups_key`).
    #[serde(default = "default_groups_key")]
    pub claim_groups_key: String,
    /// Members of these groups (from that claim) may log in (`allowed_groups`).
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Members of these groups are admins (`admin_groups`).
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// GitHub: members of these organisations, or `org:team` teams, may log in
    /// (`allowed_organizations`).
    #[serde(default)]
    pub allowed_organizations: Vec<String>,
    /// Google: only accounts of these Workspace domains (`hosted_domain`).
    #[serde(default)]
    pub hosted_domain: Vec<String>,
    /// Everyone the provider accepts may log in (`allow_all`).
    #[serde(default)]
    pub allow_all: bool,
    /// Where the browser goes after signing out of the hub (`logout_redirect_url`), e.g.
    /// the provider's own sign-out.
    #[serde(default)]
    pub logout_redirect_url: Option<String>,
    /// The login page sends the browser straight to the provider (`auto_login`).
    #[serde(default)]
    pub auto_login: bool,
    /// A PEM file of CAs the provider's certificate may chain to, besides the system's.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Seconds to wait for each request to the provider.
    #[serde(default = "default_http_timeout")]
    pub http_timeout_secs: u64,
    /// Keep what the provider gave at sign-in (its tokens, the user's claims), sealed
    /// (`c.Authenticator.enable_auth_state`): admins read it through the REST API with
    /// `admin:auth_state`, and servers get the parts `auth_state_env` names.
    #[serde(default)]
    pub enable_auth_state: bool,
    /// The sealing key: 64 hex digits in a file of root's (`JUPYTERHUB_CRYPT_KEY`).
    #[serde(default = "default_auth_state_key")]
    pub auth_state_key_file: PathBuf,
    /// Environment variables a user's servers get from their auth state, by the state's
    /// field (`{ GITHUB_TOKEN = "access_token" }`); helpers.toml `env_allow` must admit
    /// each name.
    #[serde(default)]
    pub auth_state_env: BTreeMap<String, String>,
}

fn default_auth_state_key() -> PathBuf {
    "/etc/sudohub/auth_state.key".into()
}

fn default_github_url() -> String {
    "https://github.com".into()
}

fn default_github_api() -> String {
    "https://api.github.com".into()
}

fn default_groups_key() -> String {
    "groups".into()
}

fn default_http_timeout() -> u64 {
    10
}

/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

impl OAuthSection {
    /// The claim naming users for `kind`.
    pub fn username_claim(&self, kind: SourceKind) -> &str {
        self.username_claim.as_deref().unwrap_or(match kind {
            SourceKind::Google => "email",
            SourceKind::Github => "login",
            SourceKind::Oauth2 => "username",
            _ => "preferred_username",
        })
    }

    /// The scopes asked for with `kind`.
    pub fn scopes(&self, kind: SourceKind) -> Vec<String> {
        if let Some(s) = &self.scope {
            return s.clone();
        }
        let s: &[&str] = match kind {
            SourceKind::Github if self.allowed_organizations.is_empty() => &[],
            SourceKind::Github => &["read:org"],
            SourceKind::Oauth2 => &[],
            _ => &["openid", "email", "profile"],
        };
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The issuer for an OpenID Connect `kind`.
    pub fn issuer(&self, kind: SourceKind) -> Option<&str> {
        match (kind, &self.issuer) {
            (_, Some(i)) => Some(i),
            (SourceKind::Google, None) => Some(GOOGLE_ISSUER),
            _ => None,
        }
    }

    /// The name on the login button.
    pub fn service_name(&self, kind: SourceKind) -> String {
        self.login_service.clone().unwrap_or_else(|| {
            match kind {
                SourceKind::Github => "GitHub",
                SourceKind::Google => "Google",
                _ => "your organisation's account",
            }
            .into()
        })
    }

    /// Checks the values for `kind`: the key at fault and what is wrong.
    pub fn validate(&self, kind: SourceKind) -> Result<(), (&'static str, String)> {
        let bad = |k, m: &str| Err((k, m.to_owned()));
        if self.client_id.trim().is_empty() {
            return bad("auth.oauth.client_id", "must not be empty");
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return bad(
                "auth.oauth.client_secret",
                "give the secret or its file, not both",
            );
        }
        // Plain http only to this machine: over a network, whoever is in the middle could
        // swap the provider's keys and forge its ID tokens.
        let url_ok = |u: &str| match reqwest::Url::parse(u) {
            Ok(url) if url.username().is_empty() && url.password().is_none() => {
                url.scheme() == "https"
                    || url.scheme() == "http"
                        && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
            }
            _ => false,
        };
        let urls = [
            ("auth.oauth.issuer", self.issuer.as_deref()),
            ("auth.oauth.authorize_url", self.authorize_url.as_deref()),
            ("auth.oauth.token_url", self.token_url.as_deref()),
            ("auth.oauth.userdata_url", self.userdata_url.as_deref()),
            ("auth.oauth.github_url", Some(&self.github_url)),
            ("auth.oauth.github_api", Some(&self.github_api)),
            (
                "auth.oauth.oauth_callback_url",
                self.oauth_callback_url.as_deref(),
            ),
            (
                "auth.oauth.logout_redirect_url",
                self.logout_redirect_url.as_deref(),
            ),
        ];
        for (k, u) in urls {
            if u.is_some_and(|u| !url_ok(u)) {
                return bad(k, "must be an https:// URL (http:// only to localhost)");
            }
        }
        match kind {
            SourceKind::Oidc if self.issuer.is_none() => {
                return bad(
                    "auth.oauth.issuer",
                    "`source = \"oidc\"` needs the issuer's URL",
                )
            }
            SourceKind::Oauth2
                if self.authorize_url.is_none()
                    || self.token_url.is_none()
                    || self.userdata_url.is_none() =>
            {
                return bad(
                    "auth.oauth.authorize_url",
                    "`source = \"oauth2\"` needs authorize_url, token_url and userdata_url",
                )
            }
            _ => {}
        }
        if kind != SourceKind::Github && !self.allowed_organizations.is_empty() {
            return bad(
                "auth.oauth.allowed_organizations",
                "is for `source = \"github\"`",
            );
        }
        if kind != SourceKind::Google && !self.hosted_domain.is_empty() {
            return bad("auth.oauth.hosted_domain", "is for `source = \"google\"`");
        }
        if self.auth_state_env.len() > 16 {
            return bad("auth.oauth.auth_state_env", "at most 16 variables");
        }
        if !self.auth_state_env.is_empty() && !self.enable_auth_state {
            return bad(
                "auth.oauth.auth_state_env",
                "needs enable_auth_state = true",
            );
        }
        // Names the hub sets itself (`JUPYTERHUB_*` and the like) would reach the helper
        // twice, and it refuses the whole start.
        let hubs_own = |v: &str| {
            v.starts_with("JUPYTERHUB_") || ["JPY_API_TOKEN", "LANG", "LC_ALL"].contains(&v)
        };
        if let Some(v) = self.auth_state_env.keys().find(|v| {
            v.is_empty()
                || v.len() > 128
                || v.starts_with(|c: char| c.is_ascii_digit())
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || sudohub_helpers_config::hard_denied(v)
                || hubs_own(v)
        }) {
            return Err((
                "auth.oauth.auth_state_env",
                format!("{v:?} is not a name a server's environment may take"),
            ));
        }
        if !(1..=120).contains(&self.http_timeout_secs) {
            return bad("auth.oauth.http_timeout_secs", "must be 1 to 120");
        }
        for (from, to) in &self.username_map {
            if crate::types::Username::parse(to).is_err() {
                return Err((
                    "auth.oauth.username_map",
                    format!("{from:?} maps to {to:?}, which cannot be a user name"),
                ));
            }
        }
        Ok(())
    }
}

impl super::HubConfig {
    /// Where an identity provider sends the browser back: `[auth.oauth]
    /// oauth_callback_url`, else `public_url`'s origin with `base_url`'s
    /// `hub/oauth_callback`; `None` when neither says.
    pub fn oauth_callback_url(&self) -> Option<String> {
        if let Some(u) = self
            .auth
            .oauth
            .as_ref()
            .and_then(|o| o.oauth_callback_url.clone())
        {
            return Some(u);
        }
        let p = self.public_url.as_deref()?;
        let rest = p.split_once("://").map_or("", |(_, r)| r);
        let origin = &p[..p.len() - rest.len() + rest.find('/').unwrap_or(rest.len())];
        Some(format!(
            "{origin}{}",
            self.urls().hub_page("oauth_callback")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: SourceKind, text: &str) -> Result<OAuthSection, String> {
        let s: OAuthSection = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate(kind).map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(s)
    }

    #[test]
    fn each_source_gets_its_defaults_and_bad_values_are_named() {
        let g = check(
            SourceKind::Google,
            "client_id = \"x\"\nhosted_domain = [\"example.org\"]",
        )
        .unwrap();
        assert_eq!(g.issuer(SourceKind::Google), Some(GOOGLE_ISSUER));
        assert_eq!(g.username_claim(SourceKind::Google), "email");
        let gh = check(
            SourceKind::Github,
            "client_id = \"x\"\nallowed_organizations = [\"o:t\"]",
        )
        .unwrap();
        assert_eq!(gh.scopes(SourceKind::Github), ["read:org"]);
        assert_eq!(gh.username_claim(SourceKind::Github), "login");
        for (kind, text, says) in [
            (SourceKind::Oidc, "client_id = \"x\"", "needs the issuer"),
            (SourceKind::Oauth2, "client_id = \"x\"\nauthorize_url = \"https://a\"", "needs authorize_url"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"ftp://x\"", "auth.oauth.issuer"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"http://sso.example.org\"", "https://"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"http://localhost.evil.org\"", "https://"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"http://127.0.0.1:80@evil.org/\"", "https://"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"https://x\"\nenable_auth_state = true\nauth_state_env = { JUPYTERHUB_API_TOKEN = \"access_token\" }", "auth_state_env"),
            (SourceKind::Oidc, "client_id = \"\"\nissuer = \"https://x\"", "client_id"),
            (SourceKind::Google, "client_id = \"x\"\nallowed_organizations = [\"o\"]", "is for `source = \"github\"`"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"https://x\"\nusername_map = { a = \"Not A Name\" }", "username_map"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"https://x\"\nclient_secret = \"s\"\nclient_secret_file = \"/f\"", "not both"),
            (SourceKind::Oidc, "client_id = \"x\"\nissuer = \"https://x\"\nbogus = 1", "bogus"),
        ] {
            let e = check(kind, text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
