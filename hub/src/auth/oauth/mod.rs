//! Logins at an identity provider (`source = "oidc" | "google" | "github" | "oauth2"`):
//! the browser is sent to the provider with a fresh `state`, PKCE challenge and nonce
//! ([`pending`]); the callback must bring back the `state` its own cookie holds, which is
//! then used up; the code is exchanged and the answer verified ([`oidc`], [`plain`]); the
//! provider's name for the user becomes a Unix name ([`names`]); the rules decide.
//!
//! The provider's tokens are used for this one sign-in and then dropped: nothing of them
//! is stored, logged or put in a URL.

mod error;
pub mod http;
pub mod names;
mod oidc;
pub mod pending;
mod plain;

use std::collections::HashMap;

use serde_json::{Map, Value};

pub use self::error::OAuthError;
use self::oidc::Oidc;
use self::pending::{Pending, PendingLogins};
use self::plain::Plain;
use super::rules::{judge_with, Groups, Verdict};
use crate::config::{AuthRules, OAuthSection, SourceKind};
use crate::types::Username;

/// A sign-in sent to the provider.
#[derive(Debug, Clone)]
pub struct Started {
    /// The provider's page, with every parameter.
    pub url: String,
    /// The `state` value.
    pub state: String,
    /// The nonce (OpenID Connect).
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The provider's stable id of the user (`sub`, GitHub's numeric id).
    pub subject: String,
    /// The verified ID token's and user info's claims, or the user data.
    pub claims: Map<String, Value>,
    /// GitHub: the `allowed_organizations` entries the user is a member of.
    pub groups: Vec<String>,
    /// The provider's tokens (`access_token`, `refresh_token`, `id_token`, `scope`,
    /// `token_type`, `expires_at`): kept only with `enable_auth_state`.
    pub tokens: Map<String, Value>,
}

impl Identity {
    /// The auth state kept with `enable_auth_state`: the tokens and, under `user`, the
    /// claims (OAuthenticator's shape).
    pub fn auth_state(&self) -> Value {
        let mut state = self.tokens.clone();
        state.insert("user".into(), Value::Object(self.claims.clone()));
        Value::Object(state)
    }
}

/// The tokens of a token response, as an auth state holds them.
pub(crate) fn token_fields<T: oauth2::TokenResponse>(t: &T) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), Value::String(v));
    };
    put("access_token", t.access_token().secret().clone());
    if let Some(r) = t.refresh_token() {
        put("refresh_token", r.secret().clone());
    }
    if let Some(scopes) = t.scopes() {
        let s: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        put("scope", s.join(" "));
    }
    if let Some(d) = t.expires_in() {
        // The provider's number, added without overflow (a year 10000 must not panic).
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let at = time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_add(secs);
        m.insert("expires_at".into(), Value::from(at));
    }
    m
}

enum Flow {
    Oidc(Box<Oidc>),
    Plain(Box<Plain>),
}

/// The identity-provider source.
pub struct OAuthLogin {
    kind: SourceKind,
    cfg: OAuthSection,
    http: reqwest::Client,
    flow: Flow,
    pending: PendingLogins,
}

impl OAuthLogin {
    /// The source `kind` configured by `cfg`, calling back at `callback`. Reads the
    /// client secret's file; an error names the key.
    pub fn new(kind: SourceKind, cfg: &OAuthSection, callback: &str) -> Result<Self, String> {
        let secret = match (&cfg.client_secret, &cfg.client_secret_file) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(f)) => Some(crate::secrets::read_secret_file(
                "[auth.oauth] client_secret_file",
                f,
            )?),
            (None, None) => None,
        };
        let scopes = cfg.scopes(kind);
        let flow = match (kind, cfg.issuer(kind)) {
            (SourceKind::Oidc | SourceKind::Google, Some(issuer)) => Flow::Oidc(Box::new(
                Oidc::new(issuer, &cfg.client_id, secret, callback, scopes)?,
            )),
            (SourceKind::Github, _) => {
                let web = cfg.github_url.trim_end_matches('/');
                let api = cfg.github_api.trim_end_matches('/');
                let (a, t, u) = (
                    format!("{web}/login/oauth/authorize"),
                    format!("{web}/login/oauth/access_token"),
                    format!("{api}/user"),
                );
                Flow::Plain(Box::new(Plain::new(
                    (&a, &t, &u),
                    &cfg.client_id,
                    secret,
                    callback,
                    scopes,
                    Some(api.to_owned()),
                )?))
            }
            _ => {
                let url = |u: &Option<String>| u.clone().unwrap_or_default();
                Flow::Plain(Box::new(Plain::new(
                    (
                        &url(&cfg.authorize_url),
                        &url(&cfg.token_url),
                        &url(&cfg.userdata_url),
                    ),
                    &cfg.client_id,
                    secret,
                    callback,
                    scopes,
                    None,
                )?))
            }
        };
        let http = http::client(
            std::time::Duration::from_secs(cfg.http_timeout_secs),
            cfg.tls_ca_file.as_deref(),
        )?;
        Ok(Self {
            kind,
            cfg: cfg.clone(),
            http,
            flow,
            pending: PendingLogins::default(),
        })
    }

    /// Asks the provider what a sign-in needs first (OpenID Connect: its discovery
    /// document and keys): what `sudohub check` asks of it. Plain OAuth 2 providers have
    /// nothing to ask before a sign-in.
    pub async fn probe(&self) -> Result<String, OAuthError> {
        match &self.flow {
            Flow::Oidc(o) => o.probe(&self.http).await,
            Flow::Plain(_) => Ok("endpoints as configured".into()),
        }
    }

    /// Which provider source this is.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// `[auth.oauth]`.
    pub fn config(&self) -> &OAuthSection {
        &self.cfg
    }

    /// What identities are bound under: the source and the provider's own address, so
    /// that moving to another issuer (or GitHub Enterprise) binds afresh and numeric ids
    /// of two providers never meet.
    pub fn binding_source(&self) -> String {
        let at = match self.kind {
            SourceKind::Github => self.cfg.github_api.as_str(),
            SourceKind::Oauth2 => self.cfg.userdata_url.as_deref().unwrap_or(""),
            k => self.cfg.issuer(k).unwrap_or(""),
        };
        format!("{}:{}", self.kind.as_str(), at.trim_end_matches('/'))
    }

    /// The provider's name, for pages.
    pub fn service_name(&self) -> String {
        self.cfg.service_name(self.kind)
    }

    /// Starts a sign-in from `from` that goes on to `next`: the provider's URL and the
    /// `state` the browser must bring back (its cookie).
    pub async fn begin(
        &self,
        next: String,
        from: std::net::IpAddr,
    ) -> Result<(String, String), OAuthError> {
        let started = match &self.flow {
            Flow::Oidc(o) => o.begin(&self.http).await?,
            Flow::Plain(p) => p.begin(),
        };
        let pending = Pending::new(started.nonce, started.verifier, next, from);
        if !self.pending.insert(started.state.clone(), pending) {
            return Err(OAuthError::Busy);
        }
        Ok((started.url, started.state))
    }

    /// Finishes the sign-in the callback's `params` belong to, if `cookie` (the state
    /// this browser was given) matches: who signed in, and where to go next.
    pub async fn finish(
        &self,
        cookie: Option<&str>,
        params: &HashMap<String, String>,
    ) -> Result<(Identity, String), OAuthError> {
        let state = params.get("state").map(String::as_str).unwrap_or("");
        let ours = cookie.is_some_and(|c| !c.is_empty() && crate::secrets::same(c, state));
        let pending = ours.then(|| self.pending.take(state)).flatten();
        let Some(pending) = pending else {
            return Err(OAuthError::Expired);
        };
        if let Some(e) = params.get("error") {
            let e: String = e
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            return Err(OAuthError::Refused(e));
        }
        let code = params.get("code").map(String::as_str).unwrap_or("");
        if code.is_empty() || code.len() > 4096 {
            return Err(OAuthError::Rejected("no code in the callback".into()));
        }
        let id = match &self.flow {
            Flow::Oidc(o) => {
                o.finish(&self.http, code, &pending.nonce, &pending.verifier)
                    .await?
            }
            Flow::Plain(p) => {
                let claim = self.cfg.username_claim(self.kind);
                p.finish(
                    &self.http,
                    code,
                    &pending.verifier,
                    &self.cfg.allowed_organizations,
                    claim,
                )
                .await?
            }
        };
        Ok((id, pending.next))
    }

    /// The Unix name `id`'s claims map to, after the provider's own checks (a verified
    /// email, Google's hosted domain). A sign-in bound before keeps its bound name.
    pub fn name_of(&self, id: &Identity) -> Result<Username, OAuthError> {
        let claim = self.cfg.username_claim(self.kind);
        let text = |k: &str| id.claims.get(k).and_then(Value::as_str);
        let verified = match id.claims.get("email_verified") {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(s == "true"),
            _ => None,
        };
        let value = text(claim)
            .ok_or_else(|| OAuthError::BadName(format!("the provider gave no {claim}")))?;
        // An address only counts once the provider has verified it.
        if (claim == "email" || value.contains('@') || self.kind == SourceKind::Google)
            && verified != Some(true)
        {
            return Err(OAuthError::BadName(
                "its email address is not verified".into(),
            ));
        }
        if self.kind == SourceKind::Google && !self.cfg.hosted_domain.is_empty() {
            let hd = text("hd").unwrap_or("");
            if !self
                .cfg
                .hosted_domain
                .iter()
                .any(|d| d.eq_ignore_ascii_case(hd))
            {
                return Err(OAuthError::BadName(format!(
                    "it is not an account of {}",
                    self.cfg.hosted_domain.join(" or ")
                )));
            }
        }
        names::unix_name(&self.cfg, value).map_err(OAuthError::BadName)
    }

    /// What the rules say about `name`, signed in as `id`: admin rights if allowed.
    pub fn judge(
        &self,
        rules: &AuthRules,
        name: &Username,
        id: &Identity,
    ) -> Result<Option<bool>, OAuthError> {
        let (groups, allowed): (Vec<String>, &[String]) = if self.kind == SourceKind::Github {
            (id.groups.clone(), &self.cfg.allowed_organizations)
        } else {
            let groups = match id.claims.get(&self.cfg.claim_groups_key) {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                Some(Value::String(s)) => vec![s.clone()],
                _ => Vec::new(),
            };
            (groups, &self.cfg.allowed_groups)
        };
        let lists = Groups {
            allowed,
            admin: &self.cfg.admin_groups,
            allow_all: self.cfg.allow_all,
        };
        match judge_with(rules, name, &groups, &lists) {
            Verdict::Allowed { admin } => Ok(admin),
            Verdict::NotAllowed => Err(OAuthError::NotAllowed(name.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_expires_in_does_not_panic() {
        let t: oauth2::basic::BasicTokenResponse = serde_json::from_str(
            r#"{"access_token": "a", "token_type": "bearer", "expires_in": 999999999999999}"#,
        )
        .unwrap();
        let m = super::token_fields(&t);
        assert!(m["expires_at"].as_i64().unwrap() > 0);
        assert_eq!(m["access_token"], "a");
    }
}
