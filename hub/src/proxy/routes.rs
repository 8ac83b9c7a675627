//! The route table: one hash lookup per request, whatever the number of users.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use crate::types::{ServerKey, ServerName, Username};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upstream `host:port`.
    pub target: SocketAddr,
    /// The server (`user/name`) or service the route belongs to, for logs.
    pub owner: String,
    /// The server it is; `None` for a service.
    pub server: Option<ServerKey>,
    /// The path prefix the route serves, `<base>user/<name>/[<server>/]` as requested:
    /// the only path its cookies may be set for.
    pub prefix: String,
    /// Whether the request came to the server's own origin (`subdomain_host`), not the
    /// hub's: then its cookies may have any path, but still no `Domain`.
    pub own_origin: bool,
}

impl Route {
    /// Whether `path` is the route's prefix without its trailing slash (a named server's
    /// `…/user/<name>/<server>`): the answer is a redirect to the prefix, as the server
    /// itself serves nothing outside it.
    pub fn wants_slash(&self, path: &str) -> bool {
        self.prefix.strip_suffix('/') == Some(path)
    }

    /// Cuts what the server's response headers may say to the route's scope.
    pub fn restrict(&self, headers: &mut http::HeaderMap) {
        if self.own_origin {
            super::server_headers::keep_to_origin(headers);
        } else {
            super::server_headers::keep_to_prefix(headers, &self.prefix);
        }
    }
}

/// Routes by owner, with their targets.
pub type Targets<K> = Vec<(K, SocketAddr)>;

/// One user's routed servers.
#[derive(Debug, Default)]
struct UserRoutes {
    default: Option<SocketAddr>,
    named: HashMap<ServerName, SocketAddr>,
}

/// Routes of running servers and configured services. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    users: Arc<RwLock<HashMap<Username, UserRoutes>>>,
    services: Arc<RwLock<HashMap<String, SocketAddr>>>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes the server's prefix (`/user/<user>/[<server>/]`) to `target`.
    pub fn set_server(&self, key: &ServerKey, target: SocketAddr) {
        if let Ok(mut m) = self.users.write() {
            let routes = m.entry(key.user.clone()).or_default();
            if key.name.is_default() {
                routes.default = Some(target);
            } else {
                routes.named.insert(key.name.clone(), target);
            }
        }
    }

    /// Removes a server's route; its paths fall through to the hub again (or, for a
    /// named server, to its user's default server).
    pub fn remove_server(&self, key: &ServerKey) {
        if let Ok(mut m) = self.users.write() {
            if let Some(routes) = m.get_mut(&key.user) {
                if key.name.is_default() {
                    routes.default = None;
                } else {
                    routes.named.remove(&key.name);
                }
                if routes.default.is_none() && routes.named.is_empty() {
                    m.remove(&key.user);
                }
            }
        }
    }

    /// Routes `/services/<name>/` to `target`.
    pub fn set_service(&self, name: &str, target: SocketAddr) {
        if let Ok(mut m) = self.services.write() {
            m.insert(name.to_owned(), target);
        }
    }

    /// Every route: users' servers and services, with their targets.
    pub fn all(&self) -> (Targets<ServerKey>, Targets<String>) {
        let mut servers = Vec::new();
        if let Ok(m) = self.users.read() {
            for (user, r) in m.iter() {
                if let Some(a) = r.default {
                    servers.push((ServerKey::default_of(user), a));
                }
                for (name, a) in &r.named {
                    servers.push((ServerKey::new(user.clone(), name.clone()), *a));
                }
            }
        }
        let services = self
            .services
            .read()
            .map(|m| m.iter().map(|(n, a)| (n.clone(), *a)).collect())
            .unwrap_or_default();
        (servers, services)
    }

    /// A server's route, if any.
    pub fn server(&self, key: &ServerKey) -> Option<SocketAddr> {
        let m = self.users.read().ok()?;
        let routes = m.get(&key.user)?;
        if key.name.is_default() {
            routes.default
        } else {
            routes.named.get(&key.name).copied()
        }
    }

    /// The route for a request path under `base_url`: `<base>user/<name>/<server>/…` for
    /// a routed named server, else `<base>user/<name>/…` for the default one (as the
    /// longest-prefix match of JupyterHub's proxy), or `<base>services/<name>/…`; each
    /// with a trailing slash after the name.
    pub fn resolve(&self, path: &str, base_url: &str) -> Option<Route> {
        let rest = path.strip_prefix(base_url)?;
        if let Some(r) = rest.strip_prefix("user/") {
            let (raw, after) = r.split_once('/')?;
            let name = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .ok()?;
            let users = self.users.read().ok()?;
            let (user, routes) = users.get_key_value(name.as_ref())?;
            // A server name is plain `[a-z0-9-]`: never percent-encoded. `…/<server>`
            // without its slash is that server's too (see [`Route::wants_slash`]).
            let seg = after.split_once('/').map_or(after, |(seg, _)| seg);
            let named = routes.named.get_key_value(seg).map(|n| (seg, n));
            let (key, target, prefix) = match named {
                Some((seg, (server, target))) => (
                    ServerKey::new(user.clone(), server.clone()),
                    *target,
                    format!("{base_url}user/{raw}/{seg}/"),
                ),
                None => (
                    ServerKey::default_of(user),
                    routes.default?,
                    format!("{base_url}user/{raw}/"),
                ),
            };
            return Some(Route {
                target,
                owner: key.to_string(),
                server: Some(key),
                prefix,
                own_origin: false,
            });
        }
        let r = rest.strip_prefix("services/")?;
        let raw = r.split_once('/')?.0;
        let name = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        let target = *self.services.read().ok()?.get(name.as_ref())?;
        Some(Route {
            target,
            owner: name.into_owned(),
            server: None,
            prefix: format!("{base_url}services/{raw}/"),
            own_origin: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_users_and_services_under_base_url() {
        let t = RouteTable::new();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let u = |n: &str| ServerKey::default_of(&Username::parse(n).unwrap());
        t.set_server(&u("alice"), a);
        t.set_server(&u("b_x"), a);
        t.set_service("bench", a);
        assert_eq!(
            t.resolve("/jl/user/alice/lab", "/jl/").unwrap().owner,
            "alice/"
        );
        assert_eq!(
            t.resolve("/jl/user/b%5Fx/api", "/jl/").unwrap().owner,
            "b_x/"
        );
        assert_eq!(
            t.resolve("/jl/services/bench/x", "/jl/").unwrap().owner,
            "bench"
        );
        assert!(t
            .resolve("/jl/user/alice/lab", "/jl/")
            .unwrap()
            .server
            .is_some());
        assert!(t
            .resolve("/jl/services/bench/x", "/jl/")
            .unwrap()
            .server
            .is_none());
        assert!(
            t.resolve("/jl/user/alice", "/jl/").is_none(),
            "no trailing slash: hub answers"
        );
        assert!(t.resolve("/user/alice/lab", "/jl/").is_none());
        assert!(t.resolve("/jl/user/bob/lab", "/jl/").is_none());
        for i in 0..1000 {
            t.set_server(&u(&format!("u{i}")), a);
        }
        assert_eq!(t.resolve("/jl/user/u999/", "/jl/").unwrap().owner, "u999/");
        assert_eq!(
            t.resolve("/jl/user/alice/lab", "/jl/").unwrap().prefix,
            "/jl/user/alice/"
        );
        t.remove_server(&u("alice"));
        assert!(t.resolve("/jl/user/alice/lab", "/jl/").is_none());
    }

    #[test]
    fn a_named_server_has_its_own_prefix_beside_the_default_one() {
        let t = RouteTable::new();
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:5001".parse().unwrap(),
        );
        let alice = Username::parse("alice").unwrap();
        let gpu = ServerKey::new(alice.clone(), ServerName::parse("gpu").unwrap());
        t.set_server(&gpu, b);
        assert!(
            t.resolve("/user/alice/lab", "/").is_none(),
            "no default server: nothing but /user/alice/gpu/ is routed"
        );
        let r = t.resolve("/user/alice/gpu/api/kernels", "/").unwrap();
        assert_eq!(
            (r.target, r.prefix.as_str(), r.owner.as_str()),
            (b, "/user/alice/gpu/", "alice/gpu")
        );
        assert!(!r.wants_slash("/user/alice/gpu/api/kernels"));
        // Without its trailing slash: the named server's, to be redirected to its prefix.
        let r = t.resolve("/user/alice/gpu", "/").unwrap();
        assert_eq!((r.target, r.prefix.as_str()), (b, "/user/alice/gpu/"));
        assert!(r.wants_slash("/user/alice/gpu"));
        t.set_server(&ServerKey::default_of(&alice), a);
        let r = t.resolve("/user/alice/gpu", "/").unwrap();
        assert_eq!(r.target, b, "the named server's, even beside a default one");
        let r = t.resolve("/user/alice/gpux", "/").unwrap();
        assert_eq!(r.target, a);
        assert!(!r.wants_slash("/user/alice/gpux"));
        let r = t.resolve("/user/alice/gpux/", "/").unwrap();
        assert_eq!((r.target, r.prefix.as_str()), (a, "/user/alice/"));
        assert_eq!(t.resolve("/user/alice/gpu/", "/").unwrap().target, b);
        assert!(
            t.resolve("/user/bob/gpu/", "/").is_none(),
            "another user's path"
        );
        t.remove_server(&gpu);
        assert_eq!(t.resolve("/user/alice/gpu/", "/").unwrap().target, a);
        t.remove_server(&ServerKey::default_of(&alice));
        assert!(t.resolve("/user/alice/gpu/", "/").is_none());
        assert_eq!(t.all().0.len(), 0);
    }
}
