//! The route table: one hash lookup per request, whatever the number of users.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upstream `host:port`.
    pub target: SocketAddr,
    /// The user (or service) the route belongs to, for logs.
    pub owner: String,
    /// Whether `owner` is a user (a server's route), not a service.
    pub is_user: bool,
}

/// Routes of running servers and configured services. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    users: Arc<RwLock<HashMap<String, SocketAddr>>>,
    services: Arc<RwLock<HashMap<String, SocketAddr>>>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `/user/<user>/` to `target`.
    pub fn set_user(&self, user: &str, target: SocketAddr) {
        if let Ok(mut m) = self.users.write() {
            m.insert(user.to_owned(), target);
        }
    }

    /// Removes a user's route; their paths fall through to the hub again.
    pub fn remove_user(&self, user: &str) {
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

    /// The user's route, if any.
    pub fn user(&self, user: &str) -> Option<SocketAddr> {
        self.users.read().ok()?.get(user).copied()
    }

    /// The route for a request path under `base_url`: `<base>user/<name>/…` or
    /// `<base>services/<name>/…` with a trailing slash after the name.
    pub fn resolve(&self, path: &str, base_url: &str) -> Option<Route> {
        let rest = path.strip_prefix(base_url)?;
        let (table, rest, is_user) = if let Some(r) = rest.strip_prefix("user/") {
            (&self.users, r, true)
        } else if let Some(r) = rest.strip_prefix("services/") {
            (&self.services, r, false)
        } else {
            return None;
        };
        let (raw, _) = rest.split_once('/')?;
        let name = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        let target = *table.read().ok()?.get(name.as_ref())?;
        Some(Route {
            target,
            owner: name.into_owned(),
            is_user,
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
        t.set_user("alice", a);
        t.set_user("b@x", a);
        t.set_service("bench", a);
        assert_eq!(
            t.resolve("/jl/user/alice/lab", "/jl/").unwrap().owner,
            "alice"
        );
        assert_eq!(
            t.resolve("/jl/user/b%40x/api", "/jl/").unwrap().owner,
            "b@x"
        );
        assert_eq!(
            t.resolve("/jl/services/bench/x", "/jl/").unwrap().owner,
            "bench"
        );
        assert!(t.resolve("/jl/user/alice/lab", "/jl/").unwrap().is_user);
        assert!(!t.resolve("/jl/services/bench/x", "/jl/").unwrap().is_user);
        assert!(
            t.resolve("/jl/user/alice", "/jl/").is_none(),
            "no trailing slash: hub answers"
        );
        assert!(t.resolve("/user/alice/lab", "/jl/").is_none());
        assert!(t.resolve("/jl/user/bob/lab", "/jl/").is_none());
        for i in 0..1000 {
            t.set_user(&format!("u{i}"), a);
        }
        assert_eq!(t.resolve("/jl/user/u999/", "/jl/").unwrap().owner, "u999");
        t.remove_user("alice");
        assert!(t.resolve("/jl/user/alice/lab", "/jl/").is_none());
    }
}
