//! The route table: one hash lookup per request, whatever the number of users.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use crate::types::Username;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upstream `host:port`.
    pub target: SocketAddr,
    /// The user (or service) the route belongs to, for logs.
    pub owner: String,
    /// The user whose server it is; `None` for a service.
    pub user: Option<Username>,
    /// The path prefix the route serves, `<base>user/<name>/` as requested: the only
    /// path its cookies may be set for.
    pub prefix: String,
    /// Whether the request came to the server's own origin (`subdomain_host`), not the
    /// hub's: then its cookies may have any path, but still no `Domain`.
    pub own_origin: bool,
}

impl Route {
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

/// Routes of running servers and configured services. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    users: Arc<RwLock<HashMap<Username, SocketAddr>>>,
    services: Arc<RwLock<HashMap<String, SocketAddr>>>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `/user/<user>/` to `target`.
    pub fn set_user(&self, user: &Username, target: SocketAddr) {
        if let Ok(mut m) = self.users.write() {
            m.insert(user.clone(), target);
        }
    }

    /// Removes a user's route; their paths fall through to the hub again.
    pub fn remove_user(&self, user: &Username) {
        if let Ok(mut m) = self.users.write() {
            m.remove(user);
        }
    }

    /// Routes `/services/<name>/` to `target`.
    pub fn set_service(&self, name: &str, target: SocketAddr) {
        if let Ok(mut m) = self.services.write() {
            m.insert(name.to_owned(), target);
        }
    }

    /// Every route: users' servers and services, with their targets.
    pub fn all(&self) -> (Targets<Username>, Targets<String>) {
        let users = self
            .users
            .read()
            .map(|m| m.iter().map(|(u, a)| (u.clone(), *a)).collect())
            .unwrap_or_default();
        let services = self
            .services
            .read()
            .map(|m| m.iter().map(|(n, a)| (n.clone(), *a)).collect())
            .unwrap_or_default();
        (users, services)
    }

    /// The user's route, if any.
    pub fn user(&self, user: &Username) -> Option<SocketAddr> {
        self.users.read().ok()?.get(user).copied()
    }

    /// The route for a request path under `base_url`: `<base>user/<name>/…` or
    /// `<base>services/<name>/…` with a trailing slash after the name.
    pub fn resolve(&self, path: &str, base_url: &str) -> Option<Route> {
        let rest = path.strip_prefix(base_url)?;
        let (kind, raw, is_user) = if let Some(r) = rest.strip_prefix("user/") {
            ("user/", r.split_once('/')?.0, true)
        } else if let Some(r) = rest.strip_prefix("services/") {
            ("services/", r.split_once('/')?.0, false)
        } else {
            return None;
        };
        let prefix = format!("{base_url}{kind}{raw}/");
        let name = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        if is_user {
            let users = self.users.read().ok()?;
            let (user, target) = users.get_key_value(name.as_ref())?;
            return Some(Route {
                target: *target,
                owner: user.to_string(),
                user: Some(user.clone()),
                prefix,
                own_origin: false,
            });
        }
        let target = *self.services.read().ok()?.get(name.as_ref())?;
        Some(Route {
            target,
            owner: name.into_owned(),
            user: None,
            prefix,
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
        let u = |n: &str| Username::parse(n).unwrap();
        t.set_user(&u("alice"), a);
        t.set_user(&u("b_x"), a);
        t.set_service("bench", a);
        assert_eq!(
            t.resolve("/jl/user/alice/lab", "/jl/").unwrap().owner,
            "alice"
        );
        assert_eq!(
            t.resolve("/jl/user/b%5Fx/api", "/jl/").unwrap().owner,
            "b_x"
        );
        assert_eq!(
            t.resolve("/jl/services/bench/x", "/jl/").unwrap().owner,
            "bench"
        );
        assert!(t
            .resolve("/jl/user/alice/lab", "/jl/")
            .unwrap()
            .user
            .is_some());
        assert!(t
            .resolve("/jl/services/bench/x", "/jl/")
            .unwrap()
            .user
            .is_none());
        assert!(
            t.resolve("/jl/user/alice", "/jl/").is_none(),
            "no trailing slash: hub answers"
        );
        assert!(t.resolve("/user/alice/lab", "/jl/").is_none());
        assert!(t.resolve("/jl/user/bob/lab", "/jl/").is_none());
        for i in 0..1000 {
            t.set_user(&u(&format!("u{i}")), a);
        }
        assert_eq!(t.resolve("/jl/user/u999/", "/jl/").unwrap().owner, "u999");
        assert_eq!(
            t.resolve("/jl/user/alice/lab", "/jl/").unwrap().prefix,
            "/jl/user/alice/"
        );
        t.remove_user(&u("alice"));
        assert!(t.resolve("/jl/user/alice/lab", "/jl/").is_none());
    }
}
