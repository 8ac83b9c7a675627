//! The environment a single-user server is started with (compat spec §1.2 / §1.9). The
//! helper admits only the allow-listed names of helpers.toml; `JUPYTERHUB_SERVICE_URL`
//! is not here because the helper builds it itself, pinned to 127.0.0.1.

use crate::config::HubConfig;
use crate::types::ServerKey;
use crate::urls::Urls;

/// The variables for a server whose API token is `token`.
pub fn server_env(cfg: &HubConfig, key: &ServerKey, token: &str) -> Vec<(String, String)> {
    let urls = cfg.urls();
    let prefix = urls.server_prefix(key);
    let api = cfg.server_api_url();
    let user = &key.user;
    let scopes = serde_json::to_string(&[
        format!("access:servers!server={key}"),
        format!("access:servers!user={user}"),
    ])
    .unwrap_or_else(|_| "[]".to_owned());
    // The hub's public origin: `public_url`'s, else `subdomain_host` (as JupyterHub's
    // `hub.public_host`). With subdomains the server's own URLs carry its origin.
    let public = cfg
        .public_url
        .as_deref()
        .map(|p| p.trim_end_matches('/').to_owned())
        .or_else(|| urls.hub_origin());
    let server_public = match urls.subdomains() {
        Some(_) => urls.server_url(key),
        None => public
            .as_deref()
            .map(|p| format!("{p}{prefix}"))
            .unwrap_or_default(),
    };
    let mut env = vec![
        ("JUPYTERHUB_API_TOKEN", token.to_owned()),
        ("JPY_API_TOKEN", token.to_owned()),
        ("JUPYTERHUB_CLIENT_ID", Urls::client_id(key)),
        ("JUPYTERHUB_API_URL", api.clone()),
        (
            "JUPYTERHUB_ACTIVITY_URL",
            format!("{api}/users/{}/activity", crate::urls::quote(user.as_str())),
        ),
        ("JUPYTERHUB_BASE_URL", urls.base().to_owned()),
        ("JUPYTERHUB_HOST", urls.hub_origin().unwrap_or_default()),
        ("JUPYTERHUB_SERVICE_PREFIX", prefix.clone()),
        ("JUPYTERHUB_OAUTH_CALLBACK_URL", urls.oauth_callback(key)),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", scopes.clone()),
        ("JUPYTERHUB_OAUTH_SCOPES", scopes),
        ("JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]".to_owned()),
        ("JUPYTERHUB_USER", user.to_string()),
        ("JUPYTERHUB_SERVER_NAME", key.name.to_string()),
        ("JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED", "0".to_owned()),
        ("JUPYTERHUB_PUBLIC_URL", server_public),
        (
            "JUPYTERHUB_PUBLIC_HUB_URL",
            public
                .map(|p| format!("{p}{}", urls.hub()))
                .unwrap_or_default(),
        ),
        ("JUPYTERHUB_DEFAULT_URL", cfg.spawner.default_url.clone()),
    ];
    if let Ok(lang) = std::env::var("LANG") {
        env.push(("LANG", lang));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The variables `auth_state_env` gives `user`'s servers from their auth state: each
/// named field that is a string. A state that is missing or does not open gives none.
pub fn auth_state_env(
    cfg: &HubConfig,
    db: &crate::db::Db,
    key: &crate::auth::auth_state::AuthStateKey,
    user: &crate::types::Username,
) -> Vec<(String, String)> {
    let Some(wanted) = cfg.auth.oauth.as_ref().map(|o| &o.auth_state_env) else {
        return Vec::new();
    };
    if wanted.is_empty() {
        return Vec::new();
    }
    let state = match db.identities().auth_state(user) {
        Ok(Some(blob)) => key.open(user, &blob),
        Ok(None) => return Vec::new(),
        Err(e) => Err(e.to_string()),
    };
    let state = match state {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(user = %user, error = %e, "auth state not passed to the server");
            return Vec::new();
        }
    };
    wanted
        .iter()
        .filter_map(|(var, field)| {
            let v = state.get(field)?.as_str()?;
            // What the helper would refuse (and with it the whole start) is left out.
            if v.len() > sudohub_protocol::spawner::MAX_ENV_VALUE || v.contains('\0') {
                tracing::warn!(user = %user, var = %var, "auth state field too long for the environment; left out");
                return None;
            }
            Some((var.clone(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn alice() -> ServerKey {
        ServerKey::default_of(&crate::types::Username::parse("alice").unwrap())
    }

    /// The environment of server `key` with hub.toml `config`, by name.
    fn env_of(config: &str, key: &ServerKey) -> HashMap<String, String> {
        let cfg = HubConfig::parse(config, std::path::Path::new("hub.toml")).unwrap();
        server_env(&cfg, key, "tok").into_iter().collect()
    }

    #[test]
    fn urls_and_public_urls_follow_the_config() {
        let env = env_of(
            "base_url = \"/jl/\"\nbind = \"127.0.0.1:9000\"\npublic_url = \"https://hub.example/\"",
            &alice(),
        );
        assert_eq!(
            env["JUPYTERHUB_API_URL"],
            "http://127.0.0.1:9000/jl/hub/api"
        );
        assert_eq!(
            env["JUPYTERHUB_ACTIVITY_URL"],
            "http://127.0.0.1:9000/jl/hub/api/users/alice/activity"
        );
        assert_eq!(env["JUPYTERHUB_SERVICE_PREFIX"], "/jl/user/alice/");
        assert_eq!(
            env["JUPYTERHUB_PUBLIC_URL"],
            "https://hub.example/jl/user/alice/"
        );
        assert_eq!(
            env["JUPYTERHUB_PUBLIC_HUB_URL"],
            "https://hub.example/jl/hub/"
        );
        assert_eq!(
            env["JUPYTERHUB_OAUTH_SCOPES"],
            "[\"access:servers!server=alice/\",\"access:servers!user=alice\"]"
        );
        assert_eq!(env["JUPYTERHUB_API_TOKEN"], "tok");
        assert_eq!(env["JUPYTERHUB_HOST"], "");
    }

    #[test]
    fn a_named_server_has_its_own_prefix_client_and_scopes() {
        let key = ServerKey::new(
            alice().user,
            crate::types::ServerName::parse("gpu").unwrap(),
        );
        let env = env_of("bind = \"127.0.0.1:9000\"", &key);
        assert_eq!(env["JUPYTERHUB_SERVER_NAME"], "gpu");
        assert_eq!(env["JUPYTERHUB_SERVICE_PREFIX"], "/user/alice/gpu/");
        assert_eq!(env["JUPYTERHUB_CLIENT_ID"], "jupyterhub-user-alice.gpu");
        assert_eq!(
            env["JUPYTERHUB_OAUTH_CALLBACK_URL"],
            "/user/alice/gpu/oauth_callback"
        );
        assert_eq!(
            env["JUPYTERHUB_OAUTH_ACCESS_SCOPES"],
            "[\"access:servers!server=alice/gpu\",\"access:servers!user=alice\"]"
        );
        assert_eq!(
            env["JUPYTERHUB_ACTIVITY_URL"],
            "http://127.0.0.1:9000/hub/api/users/alice/activity"
        );
    }

    #[test]
    fn subdomains_give_the_server_its_origin_and_the_hubs() {
        let env = env_of(
            "bind = \"127.0.0.1:9000\"\nsubdomain_host = \"https://hub.example\"",
            &alice(),
        );
        // The browser goes to the hub's origin to log in, and comes back to its own.
        assert_eq!(env["JUPYTERHUB_HOST"], "https://hub.example");
        assert_eq!(
            env["JUPYTERHUB_OAUTH_CALLBACK_URL"],
            "https://alice.hub.example/user/alice/oauth_callback"
        );
        assert_eq!(env["JUPYTERHUB_SERVICE_PREFIX"], "/user/alice/");
        assert_eq!(
            env["JUPYTERHUB_PUBLIC_URL"],
            "https://alice.hub.example/user/alice/"
        );
        assert_eq!(env["JUPYTERHUB_PUBLIC_HUB_URL"], "https://hub.example/hub/");
        // The API stays on the machine.
        assert_eq!(env["JUPYTERHUB_API_URL"], "http://127.0.0.1:9000/hub/api");
    }
}
