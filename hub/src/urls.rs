//! Every URL the hub makes, built in one place from `base_url`.
//!
//! `base_url` is validated by the config (a path that starts and ends with `/`), so the
//! methods here only join. Names go into paths percent-encoded as JupyterHub quotes them.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::hosts::SubdomainHost;
use crate::types::{ServerKey, Username};

/// What JupyterHub leaves unquoted in a path segment (`urllib.parse.quote(safe="@~")`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@');

/// What the OAuth client id of a user's server starts with; their name follows.
pub const CLIENT_PREFIX: &str = "jupyterhub-user-";

/// Percent-encodes a name for a URL path segment.
pub fn quote(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Percent-encodes a whole value for a query string.
pub fn query_escape(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// A query string (`?a=1&b=2`, or empty) from pairs.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let joined: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    if joined.is_empty() {
        String::new()
    } else {
        format!("?{}", joined.join("&"))
    }
}

/// The URL set of one hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    base: String,
    subdomains: Option<SubdomainHost>,
}

impl Urls {
    /// URLs under `base_url` (already validated: `/`, `/jupyterlab/`).
    pub fn new(base_url: &str) -> Self {
        Self {
            base: base_url.to_owned(),
            subdomains: None,
        }
    }

    /// The same, with every user's server on its own origin (`subdomain_host`).
    pub fn with_subdomains(self, subdomains: Option<SubdomainHost>) -> Self {
        Self { subdomains, ..self }
    }

    /// The servers' origins, when they have their own.
    pub fn subdomains(&self) -> Option<&SubdomainHost> {
        self.subdomains.as_ref()
    }

    /// The hub's public origin (`scheme://host[:port]`) when `subdomain_host` sets it.
    pub fn hub_origin(&self) -> Option<String> {
        self.subdomains.as_ref().map(SubdomainHost::hub_origin)
    }

    /// `<base>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<base>hub/`.
    pub fn hub(&self) -> String {
        format!("{}hub/", self.base)
    }

    /// `<base>hub/<page>`, e.g. `home`, `login`, `spawn`.
    pub fn hub_page(&self, page: &str) -> String {
        format!("{}hub/{page}", self.base)
    }

    /// `<base>hub/api` (no trailing slash), the prefix of the REST API.
    pub fn api(&self) -> String {
        format!("{}hub/api", self.base)
    }

    /// The login page, coming back to `next` afterwards.
    pub fn login(&self, next: &str) -> String {
        format!("{}{}", self.hub_page("login"), query([("next", next)]))
    }

    /// `<base>user/<name>/` for a user's default server, `<base>user/<name>/<server>/` for
    /// a named one: its `JUPYTERHUB_SERVICE_PREFIX`, on the hub's origin or on its own.
    pub fn server_prefix(&self, key: &ServerKey) -> String {
        if key.name.is_default() {
            format!("{}user/{}/", self.base, quote(key.user.as_str()))
        } else {
            format!(
                "{}user/{}/{}/",
                self.base,
                quote(key.user.as_str()),
                key.name
            )
        }
    }

    /// `<base>services/<name>/`: where the hub proxies a service.
    pub fn service(&self, name: &str) -> String {
        format!("{}services/{}/", self.base, quote(name))
    }

    /// Where a browser finds a server: [`Self::server_prefix`], preceded by the server's
    /// own origin with `subdomain_host` (JupyterHub's `spawner.url`).
    pub fn server_url(&self, key: &ServerKey) -> String {
        match &self.subdomains {
            Some(s) => format!(
                "{}{}",
                s.user_origin(key.user.as_str()),
                self.server_prefix(key)
            ),
            None => self.server_prefix(key),
        }
    }

    /// `<base>hub/spawn-pending/<name>[/<server>]`, with `next` if given.
    pub fn spawn_pending(&self, key: &ServerKey, next: Option<&str>) -> String {
        let page = self.hub_page(&format!("spawn-pending/{}", Self::user_and_server(key)));
        format!("{page}{}", query(next.map(|n| ("next", n))))
    }

    /// `<base>hub/spawn/<name>[/<server>]?next=…`.
    pub fn spawn_for(&self, key: &ServerKey, next: &str) -> String {
        let page = self.hub_page(&format!("spawn/{}", Self::user_and_server(key)));
        format!("{page}{}", query([("next", next)]))
    }

    fn user_and_server(key: &ServerKey) -> String {
        let user = quote(key.user.as_str());
        if key.name.is_default() {
            user
        } else {
            format!("{user}/{}", key.name)
        }
    }

    /// `<base>hub/api/users/<name>`.
    pub fn api_user(&self, user: &Username) -> String {
        format!("{}/users/{}", self.api(), quote(user.as_str()))
    }

    /// The SSE stream of a spawn's progress: `…/server/progress` for the default
    /// server, `…/servers/<server>/progress` for a named one.
    pub fn progress(&self, key: &ServerKey) -> String {
        let user = self.api_user(&key.user);
        if key.name.is_default() {
            format!("{user}/server/progress")
        } else {
            format!("{user}/servers/{}/progress", key.name)
        }
    }

    /// Where a server's OAuth flow comes back to.
    pub fn oauth_callback(&self, key: &ServerKey) -> String {
        format!("{}oauth_callback", self.server_url(key))
    }

    /// The OAuth client id of a server (compat §1.2): `jupyterhub-user-<name>`, and
    /// `.<server>` after it for a named one. JupyterHub joins with `-`, which makes user
    /// `a-b`'s server and user `a`'s server `b` one client; no user or server name holds
    /// a `.`, so here every server has a client id of its own.
    pub fn client_id(key: &ServerKey) -> String {
        if key.name.is_default() {
            format!("{CLIENT_PREFIX}{}", quote(key.user.as_str()))
        } else {
            format!("{CLIENT_PREFIX}{}.{}", quote(key.user.as_str()), key.name)
        }
    }

    /// Whether `next` is a safe place to send a browser after login: a path on this hub
    /// under `base_url`, never another host (`//evil`, `/\evil`, `https://…`), or with
    /// `subdomain_host` the same under a user server's origin.
    pub fn is_safe_next(&self, next: &str) -> bool {
        let path = match &self.subdomains {
            Some(s) if s.is_user_url(next) => {
                let after_scheme = next.split_once("://").map_or(next, |(_, r)| r);
                after_scheme.find('/').map_or("", |i| &after_scheme[i..])
            }
            _ => next,
        };
        let next = path;
        next.starts_with(&self.base)
            && next.starts_with('/')
            && !next.starts_with("//")
            && !next.contains('\\')
            && !next.contains("/..")
            && !next.chars().any(|c| c.is_control())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ServerName;

    #[test]
    fn urls_follow_base_url() {
        let u = Urls::new("/jl/");
        let alice = ServerKey::default_of(&Username::parse("alice").unwrap());
        let gpu = ServerKey::new(alice.user.clone(), ServerName::parse("gpu").unwrap());
        assert_eq!(u.hub(), "/jl/hub/");
        assert_eq!(u.api(), "/jl/hub/api");
        assert_eq!(u.server_prefix(&alice), "/jl/user/alice/");
        assert_eq!(u.server_prefix(&gpu), "/jl/user/alice/gpu/");
        assert_eq!(u.login("/jl/hub/"), "/jl/hub/login?next=%2Fjl%2Fhub%2F");
        assert_eq!(u.spawn_pending(&alice, None), "/jl/hub/spawn-pending/alice");
        assert_eq!(
            u.spawn_pending(&gpu, None),
            "/jl/hub/spawn-pending/alice/gpu"
        );
        assert_eq!(
            u.progress(&alice),
            "/jl/hub/api/users/alice/server/progress"
        );
        assert_eq!(
            u.progress(&gpu),
            "/jl/hub/api/users/alice/servers/gpu/progress"
        );
        assert_eq!(u.oauth_callback(&gpu), "/jl/user/alice/gpu/oauth_callback");
        assert_eq!(Urls::client_id(&alice), "jupyterhub-user-alice");
        assert_eq!(Urls::client_id(&gpu), "jupyterhub-user-alice.gpu");
        let other = ServerKey::default_of(&Username::parse("alice-gpu").unwrap());
        assert_ne!(Urls::client_id(&other), Urls::client_id(&gpu));
        let machine = ServerKey::default_of(&Username::parse("host$").unwrap());
        assert_eq!(Urls::client_id(&machine), "jupyterhub-user-host%24");
        assert_eq!(quote("a b@c~d/e"), "a%20b@c~d%2Fe");
    }

    #[test]
    fn next_must_stay_on_the_hub() {
        let root = Urls::new("/");
        for ok in ["/hub/home", "/user/a/lab?x=1"] {
            assert!(root.is_safe_next(ok), "{ok}");
        }
        for bad in [
            "//evil.com/x",
            "/\\evil.com",
            "https://evil.com/",
            "evil",
            "/jl/../x",
            "/x\r\nSet-Cookie:a",
        ] {
            assert!(!root.is_safe_next(bad), "{bad}");
        }
        let jl = Urls::new("/jupyterlab/");
        assert!(!jl.is_safe_next("/hub/home"));
        assert!(jl.is_safe_next("/jupyterlab/hub/home"));
        assert!(!jl.is_safe_next("https://alice.hub.org/jupyterlab/user/alice/"));
    }

    #[test]
    fn subdomains_give_servers_full_urls() {
        let sub = SubdomainHost::parse("https://hub.org").unwrap();
        let u = Urls::new("/jl/").with_subdomains(Some(sub));
        let alice = ServerKey::default_of(&Username::parse("alice").unwrap());
        assert_eq!(u.server_prefix(&alice), "/jl/user/alice/");
        assert_eq!(u.server_url(&alice), "https://alice.hub.org/jl/user/alice/");
        assert_eq!(
            u.oauth_callback(&alice),
            "https://alice.hub.org/jl/user/alice/oauth_callback"
        );
        assert_eq!(u.hub_origin().as_deref(), Some("https://hub.org"));
        assert!(u.is_safe_next("https://alice.hub.org/jl/user/alice/lab"));
        assert!(u.is_safe_next("/jl/hub/home"));
        for bad in [
            "https://alice.hub.org/other/",
            "https://alice.hub.org/jl/../x",
            "https://hub.org.evil/jl/",
            "https://evil.org/jl/",
            "https://a.b.hub.org/jl/",
        ] {
            assert!(!u.is_safe_next(bad), "{bad}");
        }
    }
}
