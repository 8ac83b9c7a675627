//! Sign-ins under way at a provider: what the callback needs (the nonce, the PKCE
//! verifier, where to go next), kept in the hub's memory under the `state` value the
//! browser carries in a cookie. Each is taken once, and expires.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a sign-in at the provider may take.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Most sign-ins under way at once.
const MAX_PENDING: usize = 10_000;

/// Most sign-ins under way from one address: a flood from one place cannot fill the
/// table for everyone.
const MAX_PER_ADDRESS: usize = 20;

/// Longest `next` kept (a longer one is replaced by the default page).
pub const MAX_NEXT: usize = 2048;

/// One sign-in under way.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The OpenID Connect nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier of the code challenge sent.
    pub verifier: String,
    /// Where the browser goes once signed in.
    pub next: String,
    from: IpAddr,
    created: Instant,
}

impl Pending {
    /// A sign-in from `from` starting now.
    pub fn new(nonce: String, verifier: String, next: String, from: IpAddr) -> Self {
        Self {
            nonce,
            verifier,
            next,
            from,
            created: Instant::now(),
        }
    }
}

/// The sign-ins under way.
#[derive(Debug, Default)]
pub struct PendingLogins(Mutex<HashMap<String, Pending>>);

impl PendingLogins {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `p` under `state`; false when too many are under way, in all or from its
    /// address.
    pub fn insert(&self, state: String, p: Pending) -> bool {
        let mut m = self.map();
        let from_there =
            |m: &HashMap<String, Pending>| m.values().filter(|q| q.from == p.from).count();
        if m.len() >= MAX_PENDING || from_there(&m) >= MAX_PER_ADDRESS {
            m.retain(|_, p| p.created.elapsed() < PENDING_TTL);
            if m.len() >= MAX_PENDING || from_there(&m) >= MAX_PER_ADDRESS {
                return false;
            }
        }
        m.insert(state, p);
        true
    }

    /// Takes the sign-in of `state`, if it is under way and not expired: a second
    /// callback with the same state finds nothing.
    pub fn take(&self, state: &str) -> Option<Pending> {
        self.map()
            .remove(state)
            .filter(|p| p.created.elapsed() < PENDING_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: [u8; 4]) -> Pending {
        Pending::new("n".into(), "v".into(), "/".into(), IpAddr::from(ip))
    }

    #[test]
    fn one_address_cannot_fill_the_table() {
        let p = PendingLogins::default();
        for i in 0..MAX_PER_ADDRESS {
            assert!(p.insert(format!("s{i}"), at([10, 0, 0, 1])));
        }
        assert!(!p.insert("one-more".into(), at([10, 0, 0, 1])));
        assert!(p.insert("elsewhere".into(), at([10, 0, 0, 2])));
        assert!(p.take("s0").is_some());
        assert!(p.insert("again".into(), at([10, 0, 0, 1])));
    }

    #[test]
    fn taken_once() {
        let p = PendingLogins::default();
        assert!(p.insert("s".into(), at([127, 0, 0, 1])));
        assert_eq!(p.take("s").map(|p| p.nonce), Some("n".into()));
        assert!(p.take("s").is_none());
        assert!(p.take("other").is_none());
    }
}
