//! LDAP as a password source: the user's password is checked by binding to the
//! directory as the user, never compared by the hub; group membership is then read from
//! the directory (LDAPAuthenticator's model).
//!
//! Every value that goes into a filter is escaped (RFC 4515) and every value that goes
//! into a DN is escaped (RFC 4514), so a login name like `*)(uid=*` matches nothing. An
//! empty password is refused before the directory is asked: LDAP treats a bind with an
//! empty password as an anonymous bind, which "succeeds" for any DN (RFC 4513 §5.1.2).
//! Every step has a deadline; a directory that is down or silent makes the login say
//! "unavailable", never hang.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{dn_escape, ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope};
use sudohub_protocol::pam::DenyReason;
use sudohub_protocol::Secret;
use tokio_rustls::rustls;

use super::login::AuthError;
use crate::config::{LdapSection, TlsStrategy};
use crate::types::Username;

/// What the directory said about a user whose password it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The DN bound as.
    pub dn: String,
    /// The configured groups (`allowed_groups`, `admin_groups`) the user is a member of.
    pub groups: Vec<String>,
}

/// LDAP's result code for a wrong password or a DN that does not exist.
const INVALID_CREDENTIALS: u32 = 49;

/// Checks passwords against one directory.
pub struct LdapClient {
    cfg: LdapSection,
    tls: Option<Arc<rustls::ClientConfig>>,
    search_password: Option<Secret>,
    name_re: Option<regex::Regex>,
}

impl std::fmt::Debug for LdapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapClient")
            .field("url", &self.cfg.url())
            .finish_non_exhaustive()
    }
}

impl LdapClient {
    /// Reads what `cfg` names (the CA file, the search password's file) once, at start:
    /// an error names the key and the file.
    pub fn new(cfg: LdapSection) -> Result<Self, String> {
        let tls = match (&cfg.tls_strategy, &cfg.tls_ca_file) {
            (TlsStrategy::Insecure, _) | (_, None) => None,
            (_, Some(path)) => Some(Arc::new(client_config(path)?)),
        };
        let search_password = match (
            &cfg.lookup_dn_search_password,
            &cfg.lookup_dn_search_password_file,
        ) {
            (Some(p), _) => Some(
                Secret::new(p.as_str())
                    .map_err(|e| format!("[auth.ldap] lookup_dn_search_password: {e}"))?,
            ),
            (None, Some(f)) => {
                let key = "[auth.ldap] lookup_dn_search_password_file";
                let text = crate::secrets::read_secret_file(key, f)?;
                Some(Secret::new(text).map_err(|e| format!("{key}: {e}"))?)
            }
            (None, None) => None,
        };
        let name_re = cfg.name_regex();
        Ok(Self {
            cfg,
            tls,
            search_password,
            name_re,
        })
    }

    /// Binds as `user` with `password`; on success, the user's DN and groups.
    pub async fn check(
        &self,
        user: &Username,
        password: &Secret,
    ) -> Result<DirectoryUser, AuthError> {
        if password.expose().is_empty() {
            return Err(AuthError::Denied(DenyReason::BadCredentials));
        }
        if self
            .name_re
            .as_ref()
            .is_some_and(|re| !re.is_match(user.as_str()))
        {
            return Err(AuthError::Denied(DenyReason::UnknownUser));
        }
        let mut ldap = self.connect().await?;
        let result = self.check_on(&mut ldap, user, password).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
        result
    }

    /// Connects (with the configured TLS) and binds as the search account, or
    /// anonymously: what `sudohub check` asks of the directory.
    pub async fn probe(&self) -> Result<(), AuthError> {
        let mut ldap = self.connect().await?;
        let result = self.bind_searcher(&mut ldap).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
        result
    }

    async fn check_on(
        &self,
        ldap: &mut Ldap,
        user: &Username,
        password: &Secret,
    ) -> Result<DirectoryUser, AuthError> {
        let dn = if self.cfg.lookup_dn {
            let dn = self.lookup(ldap, user).await?;
            self.bind(ldap, &dn, password.expose()).await?;
            dn
        } else {
            let mut bound = None;
            for template in &self.cfg.bind_dn_template {
                let dn = template.replace("{username}", &dn_escape(user.as_str()));
                match self.bind(ldap, &dn, password.expose()).await {
                    Ok(()) => {
                        bound = Some(dn);
                        break;
                    }
                    Err(AuthError::Denied(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            bound.ok_or(AuthError::Denied(DenyReason::BadCredentials))?
        };
        // Group searches run as the search account when there is one (users often cannot
        // read groups), else as the user just bound.
        if self.cfg.lookup_dn_search_user.is_some() && self.wants_groups() {
            self.bind_searcher(ldap).await?;
        }
        let mut groups = Vec::new();
        for group in self.cfg.allowed_groups.iter().chain(&self.cfg.admin_groups) {
            if !groups.contains(group) && self.is_member(ldap, group, &dn, user).await? {
                groups.push(group.clone());
            }
        }
        Ok(DirectoryUser { dn, groups })
    }

    fn wants_groups(&self) -> bool {
        !(self.cfg.allowed_groups.is_empty() && self.cfg.admin_groups.is_empty())
    }

    async fn connect(&self) -> Result<Ldap, AuthError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.cfg.connect_timeout())
            .set_starttls(self.cfg.tls_strategy == TlsStrategy::BeforeBind);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let url = self.cfg.url();
        let connecting = LdapConnAsync::with_settings(settings, &url);
        let (conn, ldap) = self.deadline("connect", connecting).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        Ok(ldap)
    }

    /// Runs one step of the conversation with the receive timeout; a timeout or a
    /// broken connection is "unavailable".
    async fn deadline<T>(
        &self,
        what: &str,
        step: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, AuthError> {
        match tokio::time::timeout(
            self.cfg.receive_timeout() + self.cfg.connect_timeout(),
            step,
        )
        .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(AuthError::Unavailable(format!(
                "LDAP {what} at {}: {e}",
                self.cfg.url()
            ))),
            Err(_) => Err(AuthError::Unavailable(format!(
                "LDAP {what} at {}: no answer in time",
                self.cfg.url()
            ))),
        }
    }

    /// Binds as `dn`: a wrong password is `Denied`, any other refusal an error.
    async fn bind(&self, ldap: &mut Ldap, dn: &str, password: &str) -> Result<(), AuthError> {
        let res = self
            .deadline("bind", ldap.simple_bind(dn, password))
            .await?;
        match res.rc {
            0 => Ok(()),
            INVALID_CREDENTIALS => Err(AuthError::Denied(DenyReason::BadCredentials)),
            rc => Err(AuthError::Helper(format!(
                "LDAP bind refused (result {rc}: {})",
                res.text
            ))),
        }
    }

    /// Binds as the search account, or anonymously without one.
    async fn bind_searcher(&self, ldap: &mut Ldap) -> Result<(), AuthError> {
        let Some(who) = &self.cfg.lookup_dn_search_user else {
            return Ok(());
        };
        let pw = self.search_password.as_ref().map(Secret::expose);
        match self.bind(ldap, who, pw.unwrap_or("")).await {
            Err(AuthError::Denied(_)) => Err(AuthError::Helper(
                "LDAP refused lookup_dn_search_user's password".into(),
            )),
            other => other,
        }
    }

    /// The DN of the one entry whose `user_attribute` is `user`.
    async fn lookup(&self, ldap: &mut Ldap, user: &Username) -> Result<String, AuthError> {
        self.bind_searcher(ldap).await?;
        let base = self.cfg.user_search_base.as_deref().unwrap_or("");
        let attr = self.cfg.user_attribute.as_str();
        let filter = user_filter(attr, user.as_str());
        let search = ldap.search(base, Scope::Subtree, &filter, vec!["1.1"]);
        let (entries, _) = self
            .deadline("search", search)
            .await?
            .success()
            .map_err(|e| AuthError::Helper(format!("LDAP search under {base:?} failed: {e}")))?;
        // Referrals and intermediate messages are not entries (Active Directory sends
        // several from a domain's root).
        let entries: Vec<_> = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .collect();
        match entries.as_slice() {
            [one] => Ok(ldap3::SearchEntry::construct(one.clone()).dn),
            [] => Err(AuthError::Denied(DenyReason::UnknownUser)),
            more => {
                tracing::warn!(user = %user, entries = more.len(), "LDAP: the login name matches more than one entry; refused");
                Err(AuthError::Denied(DenyReason::UnknownUser))
            }
        }
    }

    /// Whether the group entry `group` lists the user, by `group_search_filter`.
    async fn is_member(
        &self,
        ldap: &mut Ldap,
        group: &str,
        dn: &str,
        user: &Username,
    ) -> Result<bool, AuthError> {
        let filter = group_filter(&self.cfg.group_search_filter, dn, user.as_str());
        let search = ldap.search(group, Scope::Base, &filter, vec!["1.1"]);
        let result = self.deadline("group search", search).await?;
        // A group that does not exist (32) or cannot be read has no members we can see.
        let found = result
            .0
            .iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .count();
        Ok(found == 1 && result.1.rc == 0)
    }
}

/// The filter that finds the entry whose `attr` is `name`, `name` escaped.
fn user_filter(attr: &str, name: &str) -> String {
    format!("({attr}={})", ldap_escape(name))
}

/// `template` with `{userdn}` and `{uid}` (or `{username}`) replaced, each escaped.
fn group_filter(template: &str, dn: &str, name: &str) -> String {
    template
        .replace("{userdn}", &ldap_escape(dn))
        .replace("{uid}", &ldap_escape(name))
        .replace("{username}", &ldap_escape(name))
}

/// A client configuration trusting the CAs in `path` only.
fn client_config(path: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let bad =
        |e: &dyn std::fmt::Display| format!("[auth.ldap] tls_ca_file {}: {e}", path.display());
    let pem = std::fs::read(path).map_err(|e| bad(&e))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    if roots.is_empty() {
        return Err(bad(&"holds no certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped() {
        // Login names never hold these (the Unix naming rule refuses them first), but
        // DNs do, and the escaping must not depend on that rule.
        assert_eq!(user_filter("uid", "*)(uid=*"), "(uid=\\2a\\29\\28uid=\\2a)");
        assert_eq!(
            group_filter(
                "(|(member={userdn})(memberUid={uid}))",
                "cn=a*,o=x(y)",
                "a\\b"
            ),
            "(|(member=cn=a\\2a,o=x\\28y\\29)(memberUid=a\\5cb))"
        );
        assert_eq!(dn_escape("a,b+c"), "a\\2cb\\2bc");
    }
}
