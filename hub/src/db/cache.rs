//! What the hub reads on nearly every API call, kept between calls: a token's row, and a
//! user's server row and groups (every whoami of every single-user server).
//!
//! An entry is used only while the database is as it was when the entry was read: each
//! release of the connection publishes SQLite's count of rows this connection has ever
//! changed (`total_changes`, see [`super::Locked`]), and an entry read at another count
//! is read again. Any write by the hub (a revoked token, a renamed user, a server that
//! stopped, an activity report) thus ends every entry before the next request. Entries
//! also expire after [`MAX_AGE`], so an edit made outside the hub (an admin's `sqlite3`)
//! is seen within that time.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long an entry is trusted at most.
pub const MAX_AGE: Duration = Duration::from_secs(5);
/// Entries kept at most; beyond that, stale ones go, then all.
const MAX_ENTRIES: usize = 4096;

struct Entry<V> {
    at_changes: u64,
    read: Instant,
    value: V,
}

impl<V> Entry<V> {
    fn valid(&self, changes: u64) -> bool {
        self.at_changes == changes && self.read.elapsed() < MAX_AGE
    }
}

/// Values by key, each valid while the database's change count is the one it was read at.
pub struct ReadCache<V> {
    entries: RwLock<HashMap<String, Entry<V>>>,
}

impl<V: Clone> ReadCache<V> {
    /// An empty cache.
    pub fn new() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The value of `key`, if it was read when the change count was `changes`.
    pub fn get(&self, key: &str, changes: u64) -> Option<V> {
        let map = self.entries.read().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|e| e.valid(changes))
            .map(|e| e.value.clone())
    }

    /// Keeps `value`, read when the change count was `changes`.
    pub fn put(&self, key: String, changes: u64, value: V) {
        let mut map = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, e| e.valid(changes));
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(
            key,
            Entry {
                at_changes: changes,
                read: Instant::now(),
                value,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_while_the_count_stays() {
        let c = ReadCache::new();
        c.put("a".into(), 7, 1);
        assert_eq!(c.get("a", 7), Some(1));
        assert_eq!(c.get("a", 8), None, "the database changed");
        assert_eq!(c.get("b", 7), None);
        for i in 0..MAX_ENTRIES + 10 {
            c.put(format!("k{i}"), 9, i);
        }
        assert!(c.entries.read().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(c.get("k4100", 9), Some(4100));
    }
}
