//! The login sources' part of `sudohub check`: the LDAP directory answers (with its TLS
//! and the search account), the identity provider's discovery works, the files they
//! name (CA, passwords, client secret, the auth-state key) can be read and are safe.

use super::Report;
use crate::auth::auth_state::AuthStateKey;
use crate::auth::ldap::LdapClient;
use crate::auth::oauth::OAuthLogin;
use crate::config::HubConfig;

/// Checks the directory and the provider `cfg` names, if any.
pub(super) fn sources(cfg: &HubConfig, r: &mut Report) {
    let ldap = cfg.auth.uses(crate::config::SourceKind::Ldap);
    if !ldap && cfg.auth.oauth_kind().is_none() {
        return;
    }
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        r.fail("cannot start a runtime to reach the login sources".into());
        return;
    };
    if let (Some(l), true) = (
        &cfg.auth.ldap,
        cfg.auth.uses(crate::config::SourceKind::Ldap),
    ) {
        let url = l.url();
        match LdapClient::new(l.clone()) {
            Err(e) => r.fail(format!("{e}: fix the file or the key in [auth.ldap]")),
            Ok(client) => match rt.block_on(client.probe()) {
                Ok(()) => r.ok(format!(
                    "the LDAP directory at {url} answers ({:?}, bound as {})",
                    l.tls_strategy,
                    l.lookup_dn_search_user.as_deref().unwrap_or("anonymous")
                )),
                Err(e) => r.fail(format!(
                    "the LDAP directory at {url} does not let the hub in: {e}; check server_address, server_port, tls_strategy, tls_ca_file and the search account"
                )),
            },
        }
    }
    let (Some(kind), Some(o)) = (cfg.auth.oauth_kind(), &cfg.auth.oauth) else {
        return;
    };
    let Some(callback) = cfg.oauth_callback_url() else {
        r.fail("[auth.oauth] needs oauth_callback_url, or public_url to make it from".into());
        return;
    };
    match OAuthLogin::new(kind, o, &callback) {
        Err(e) => r.fail(format!("{e}: fix [auth.oauth]")),
        Ok(login) => match rt.block_on(login.probe()) {
            Ok(what) => r.ok(format!(
                "the {} provider: {what}; register {callback} as its redirect URL",
                kind.as_str()
            )),
            Err(e) => r.fail(format!(
                "the {} provider cannot be used: {e}; check issuer (or the URLs), tls_ca_file and the network",
                kind.as_str()
            )),
        },
    }
    if o.enable_auth_state {
        match AuthStateKey::load(&o.auth_state_key_file) {
            Ok(_) => r.ok(format!(
                "the auth-state key {} is root's and readable by the hub only",
                o.auth_state_key_file.display()
            )),
            Err(e) => r.fail(format!(
                "{e}: `openssl rand -hex 32 > {0} && chown root:sudohub {0} && chmod 0640 {0}`",
                o.auth_state_key_file.display()
            )),
        }
    }
}
