//! Slowing down password guessing without locking anyone out.
//!
//! Failures are counted per user name and per client address. After a few free failures,
//! each further attempt for that key must wait twice as long as the last (1 s, 2 s, 4 s …,
//! at most 5 min); an attempt made earlier is answered "too many attempts" without asking
//! PAM. A success clears the user name's count. Nothing is ever locked: the owner of an
//! account only has to wait, and other user names are not affected. Addresses get more
//! free failures than names, because many users may share one address.
//!
//! Attempts still waiting for PAM count too: checks of one name run one at a time (the
//! PAM client takes turns per name), and an address whose failures and attempts in flight
//! reach its free count gets no more concurrent attempts, so a burst of parallel
//! requests cannot slip past counts that are only written once PAM has answered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Free failures per user name before delays start.
const FREE_PER_USER: u32 = 5;
/// Free failures per client address before delays start.
const FREE_PER_ADDR: u32 = 30;
/// First delay.
const BASE_DELAY: Duration = Duration::from_secs(1);
/// Longest delay.
const MAX_DELAY: Duration = Duration::from_secs(300);
/// A key with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Most keys remembered; the oldest are dropped beyond this, so memory stays bounded.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// The counters.
#[derive(Debug, Default)]
pub struct RateLimiter {
    entries: Mutex<HashMap<Key, Entry>>,
    in_flight: Mutex<HashMap<IpAddr, u32>>,
}

/// An attempt from one address, counted until dropped.
pub struct Flight<'a> {
    limiter: &'a RateLimiter,
    addr: IpAddr,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut m = self.limiter.flights();
        if let Some(n) = m.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.addr);
            }
        }
    }
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    fn flights(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt from `addr` as in flight until the guard is dropped.
    pub fn begin(&self, addr: IpAddr) -> Flight<'_> {
        *self.flights().entry(addr).or_insert(0) += 1;
        Flight {
            limiter: self,
            addr,
        }
    }

    /// How long `user` from `addr` must still wait before PAM is asked again.
    pub fn wait_before(&self, user: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let flying = self.flights().get(&addr).copied().unwrap_or(0);
        let entries = self.entries.lock().ok()?;
        let wait = |key: Key, free: u32| {
            let e = entries.get(&key)?;
            let due = e.last + delay(e.failures, free)?;
            due.checked_duration_since(now).filter(|d| !d.is_zero())
        };
        let a = wait(Key::User(user.to_owned()), FREE_PER_USER);
        let b = wait(Key::Addr(addr), FREE_PER_ADDR);
        let failed = entries.get(&Key::Addr(addr)).map_or(0, |e| e.failures);
        let c =
            (flying > 0 && failed.saturating_add(flying) >= FREE_PER_ADDR).then_some(BASE_DELAY);
        a.max(b).max(c)
    }

    /// Counts a failed password for `user` from `addr`.
    pub fn failed(&self, user: &str, addr: IpAddr, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_KEYS {
            entries.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
            if entries.len() >= MAX_KEYS {
                entries.clear();
            }
        }
        for key in [Key::User(user.to_owned()), Key::Addr(addr)] {
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last: now,
            });
            if now.duration_since(e.last) >= FORGET_AFTER {
                e.failures = 0;
            }
            e.failures = e.failures.saturating_add(1);
            e.last = now;
        }
    }

    /// Clears the count of `user` after a correct password.
    pub fn succeeded(&self, user: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&Key::User(user.to_owned()));
        }
    }
}

/// The delay after `failures` failures with `free` free ones, if any.
fn delay(failures: u32, free: u32) -> Option<Duration> {
    let over = failures.checked_sub(free)?.checked_sub(1)?;
    let factor = 1u32.checked_shl(over.min(16)).unwrap_or(u32::MAX);
    Some(BASE_DELAY.saturating_mul(factor).min(MAX_DELAY))
}

/// Sign-ups one address may record per [`SIGNUP_WINDOW`] seconds.
const SIGNUPS_PER_ADDR: usize = 5;
/// The window of [`SIGNUPS_PER_ADDR`], seconds.
const SIGNUP_WINDOW: i64 = 3600;

/// Recent sign-ups per client address (unix seconds), bounded like [`RateLimiter`].
#[derive(Debug, Default)]
pub struct SignUpLimiter {
    times: Mutex<HashMap<IpAddr, Vec<i64>>>,
}

impl SignUpLimiter {
    /// Whether `client` may sign up at `now`: fewer than [`SIGNUPS_PER_ADDR`] sign-ups
    /// from that address were recorded in the last hour.
    pub fn allowed(&self, client: IpAddr, now: i64) -> bool {
        let mut m = self.times.lock().unwrap_or_else(|p| p.into_inner());
        m.get_mut(&client).is_none_or(|times| {
            times.retain(|t| now - t < SIGNUP_WINDOW);
            times.len() < SIGNUPS_PER_ADDR
        })
    }

    /// Counts a recorded sign-up from `client` at `now`.
    pub fn count(&self, client: IpAddr, now: i64) {
        let mut m = self.times.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_KEYS && !m.contains_key(&client) {
            m.retain(|_, times| times.iter().any(|t| now - t < SIGNUP_WINDOW));
        }
        m.entry(client).or_default().push(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn delays_grow_after_the_free_failures_and_stay_per_user() {
        let rl = RateLimiter::new();
        let t0 = Instant::now();
        for _ in 0..FREE_PER_USER {
            assert_eq!(rl.wait_before("alice", ADDR, t0), None);
            rl.failed("alice", ADDR, t0);
        }
        assert_eq!(rl.wait_before("alice", ADDR, t0), None);
        rl.failed("alice", ADDR, t0);
        assert_eq!(
            rl.wait_before("alice", ADDR, t0),
            Some(Duration::from_secs(1))
        );
        rl.failed("alice", ADDR, t0);
        assert_eq!(
            rl.wait_before("alice", ADDR, t0),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            rl.wait_before("bob", ADDR, t0),
            None,
            "other names are not slowed"
        );
        assert_eq!(
            rl.wait_before("alice", ADDR, t0 + Duration::from_secs(3)),
            None
        );
        rl.succeeded("alice");
        assert_eq!(rl.wait_before("alice", ADDR, t0), None);
    }

    #[test]
    fn attempts_in_flight_count_against_the_address() {
        let rl = RateLimiter::new();
        let t0 = Instant::now();
        for i in 0..FREE_PER_ADDR - 2 {
            rl.failed(&format!("u{i}"), ADDR, t0);
        }
        let first = rl.begin(ADDR);
        assert_eq!(rl.wait_before("x", ADDR, t0), None);
        let second = rl.begin(ADDR);
        assert!(
            rl.wait_before("y", ADDR, t0).is_some(),
            "a third concurrent attempt would pass the free count"
        );
        drop((first, second));
        assert_eq!(rl.wait_before("y", ADDR, t0), None);
    }

    #[test]
    fn delay_is_capped() {
        assert_eq!(delay(1000, 5), Some(MAX_DELAY));
        assert_eq!(delay(5, 5), None);
        assert_eq!(delay(6, 5), Some(BASE_DELAY));
    }
}
