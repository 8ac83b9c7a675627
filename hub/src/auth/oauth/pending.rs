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

/// Most sign-ins under way from one address (an IPv6 /64 counts as one): a flood from
/// one place cannot fill the table for everyone, and a campus behind one NAT address
/// still has room.
const MAX_PER_ADDRESS: usize = 200;

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

/// The sign-ins under way, and how many each address has.
#[derive(Debug, Default)]
pub struct PendingLogins(Mutex<Table>);

#[derive(Debug, Default)]
struct Table {
    by_state: HashMap<String, Pending>,
    per_address: HashMap<IpAddr, usize>,
}

/// What counts as one address: an IPv4 address, or an IPv6 /64 (one site's).
fn address_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
    }
}

impl Table {
    fn remove(&mut self, state: &str) -> Option<Pending> {
        let p = self.by_state.remove(state)?;
        let a = address_of(p.from);
        if let Some(n) = self.per_address.get_mut(&a) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_address.remove(&a);
            }
        }
        Some(p)
    }

    fn forget_expired(&mut self) {
        let old: Vec<String> = self
            .by_state
            .iter()
            .filter(|(_, p)| p.created.elapsed() >= PENDING_TTL)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.remove(&k);
        }
    }
}

impl PendingLogins {
    fn map(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `p` under `state`; false when too many are under way, in all or from its
    /// address.
    pub fn insert(&self, state: String, p: Pending) -> bool {
        let mut t = self.map();
        let a = address_of(p.from);
        let full = |t: &Table| {
            t.by_state.len() >= MAX_PENDING
                || t.per_address.get(&a).copied().unwrap_or(0) >= MAX_PER_ADDRESS
        };
        if full(&t) {
            t.forget_expired();
            if full(&t) {
                return false;
            }
        }
        *t.per_address.entry(a).or_insert(0) += 1;
        if let Some(old) = t.by_state.insert(state, p) {
            // A state value never repeats (128 random bits); kept exact anyway.
            let oa = address_of(old.from);
            if let Some(n) = t.per_address.get_mut(&oa) {
                *n = n.saturating_sub(1);
            }
        }
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
        // One IPv6 /64 is one address.
        let v6 = |last: u16| {
            Pending::new(
                "n".into(),
                "v".into(),
                "/".into(),
                IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, last]),
            )
        };
        for i in 0..MAX_PER_ADDRESS {
            assert!(p.insert(format!("v6-{i}"), v6(i as u16)));
        }
        assert!(!p.insert("v6-more".into(), v6(9999)));
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
