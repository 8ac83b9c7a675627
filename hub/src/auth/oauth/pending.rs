//! Sign-ins under way at a provider: what the callback needs (the nonce, the PKCE
//! verifier, where to go next), kept in the hub's memory under the `state` value the
//! browser carries in a cookie. Each is taken once, and expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a sign-in at the provider may take.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// Most sign-ins under way at once.
const MAX_PENDING: usize = 10_000;

/// One sign-in under way.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The OpenID Connect nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier of the code challenge sent.
    pub verifier: String,
    /// Where the browser goes once signed in.
    pub next: String,
    created: Instant,
}

impl Pending {
    /// A sign-in starting now.
    pub fn new(nonce: String, verifier: String, next: String) -> Self {
        Self {
            nonce,
            verifier,
            next,
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

    /// Keeps `p` under `state`; false when too many are under way.
    pub fn insert(&self, state: String, p: Pending) -> bool {
        let mut m = self.map();
        if m.len() >= MAX_PENDING {
            m.retain(|_, p| p.created.elapsed() < PENDING_TTL);
            if m.len() >= MAX_PENDING {
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

    #[test]
    fn taken_once() {
        let p = PendingLogins::default();
        assert!(p.insert("s".into(), Pending::new("n".into(), "v".into(), "/".into())));
        assert_eq!(p.take("s").map(|p| p.nonce), Some("n".into()));
        assert!(p.take("s").is_none());
        assert!(p.take("other").is_none());
    }
}
