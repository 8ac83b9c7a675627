//! The environment a single-user server is started with (compat spec §1.2 / §1.9). The
//! helper admits only the allow-listed names of helpers.toml; `JUPYTERHUB_SERVICE_URL`
//! is not here because the helper builds it itself, pinned to 127.0.0.1.

use crate::config::HubConfig;
use crate::types::Username;
use crate::urls::Urls;

/// The variables for `user`'s default server, whose API token is `token`.
pub fn server_env(cfg: &HubConfig, user: &Username, token: &str) -> Vec<(String, String)> {
    let urls = cfg.urls();
    let prefix = urls.user_server(user);
    let api = cfg.api_url();
    let scopes = serde_json::to_string(&[
        format!("access:servers!server={user}/"),
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
        Some(_) => urls.user_url(user),
        None => public
            .as_deref()
            .map(|p| format!("{p}{prefix}"))
            .unwrap_or_default(),
    };
    let mut env = vec![
        ("JUPYTERHUB_API_TOKEN", token.to_owned()),
        ("JPY_API_TOKEN", token.to_owned()),
        ("JUPYTERHUB_CLIENT_ID", Urls::client_id(user)),
        ("JUPYTERHUB_API_URL", api.clone()),
        (
            "JUPYTERHUB_ACTIVITY_URL",
            format!("{api}/users/{}/activity", crate::urls::quote(user.as_str())),
        ),
        ("JUPYTERHUB_BASE_URL", urls.base().to_owned()),
        ("JUPYTERHUB_HOST", urls.hub_origin().unwrap_or_default()),
        ("JUPYTERHUB_SERVICE_PREFIX", prefix.clone()),
        ("JUPYTERHUB_OAUTH_CALLBACK_URL", urls.oauth_callback(user)),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", scopes.clone()),
        ("JUPYTERHUB_OAUTH_SCOPES", scopes),
        ("JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]".to_owned()),
        ("JUPYTERHUB_USER", user.to_string()),
        ("JUPYTERHUB_SERVER_NAME", String::new()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_public_urls_follow_the_config() {
        let cfg = HubConfig::parse(
            "base_url = \"/jl/\"\nbind = \"127.0.0.1:9000\"\npublic_url = \"https://hub.example/\"",
            std::path::Path::new("hub.toml"),
        )
        .unwrap();
        let env: std::collections::HashMap<String, String> =
            server_env(&cfg, &Username::parse("alice").unwrap(), "tok")
                .into_iter()
                .collect();
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
    fn subdomains_give_the_server_its_origin_and_the_hubs() {
        let cfg = HubConfig::parse(
            "bind = \"127.0.0.1:9000\"\nsubdomain_host = \"https://hub.example\"",
            std::path::Path::new("hub.toml"),
        )
        .unwrap();
        let env: std::collections::HashMap<String, String> =
            server_env(&cfg, &Username::parse("alice").unwrap(), "tok")
                .into_iter()
                .collect();
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
