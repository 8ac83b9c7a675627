//! `[limits]`: what each server may use (systemdspawner's names): memory, CPU, processes,
//! a private /tmp. Root's helpers.toml is the only place they are set; the hub can
//! neither set nor raise them.
//!
//! Which values a user's server gets, key by key: the user's own table
//! (`[limits.users.<name>]`) if it sets the key; else the most generous value among the
//! tables of the user's groups (`[limits.groups.<group>]`) that set it; else `[limits]`
//! itself; else no limit.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// One table of limits; an absent key says nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSet {
    /// Memory, bytes (`"4G"`, `"512M"`, or a number of bytes).
    #[serde(default, deserialize_with = "bytes")]
    pub mem_limit: Option<u64>,
    /// CPU, in thousandths of a core (`cpu_limit = 1.5` is 1500).
    #[serde(default, deserialize_with = "millicores")]
    pub cpu_limit: Option<u32>,
    /// Processes and threads.
    #[serde(default)]
    pub pids_limit: Option<u32>,
    /// A private /tmp for each server.
    #[serde(default)]
    pub isolate_tmp: Option<bool>,
}

/// `[limits]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsPolicy {
    /// Where the servers' groups go in each hierarchy: `<cgroup_parent>/<user>/<server>`.
    /// Default `/sudohub`; on a systemd machine with cgroup v2, the root unit's group,
    /// `/system.slice/sudohub-servers.service` (README, "Limits").
    #[serde(default)]
    pub cgroup_parent: Option<String>,
    /// For everyone (`[limits]`'s own keys).
    #[serde(default, deserialize_with = "bytes")]
    pub mem_limit: Option<u64>,
    /// For everyone.
    #[serde(default, deserialize_with = "millicores")]
    pub cpu_limit: Option<u32>,
    /// For everyone.
    #[serde(default)]
    pub pids_limit: Option<u32>,
    /// For everyone.
    #[serde(default)]
    pub isolate_tmp: Option<bool>,
    /// By group name.
    #[serde(default)]
    pub groups: BTreeMap<String, LimitSet>,
    /// By user name.
    #[serde(default)]
    pub users: BTreeMap<String, LimitSet>,
}

impl LimitsPolicy {
    /// `cgroup_parent`, or its default.
    pub fn cgroup_parent(&self) -> &str {
        self.cgroup_parent.as_deref().unwrap_or("/sudohub")
    }

    /// The cgroup controllers some table's limits need (`sudohub check` names a missing one).
    pub fn controllers_needed(&self) -> Vec<&'static str> {
        let tables: Vec<LimitSet> = std::iter::once(self.base())
            .chain(self.groups.values().copied())
            .chain(self.users.values().copied())
            .collect();
        let mut out = Vec::new();
        if tables.iter().any(|t| t.mem_limit.is_some()) {
            out.push("memory");
        }
        if tables.iter().any(|t| t.cpu_limit.is_some()) {
            out.push("cpu");
        }
        if tables.iter().any(|t| t.pids_limit.is_some()) {
            out.push("pids");
        }
        out
    }

    /// Whether anything is set at all.
    pub fn is_empty(&self) -> bool {
        self.base() == LimitSet::default() && self.groups.is_empty() && self.users.is_empty()
    }

    fn base(&self) -> LimitSet {
        LimitSet {
            mem_limit: self.mem_limit,
            cpu_limit: self.cpu_limit,
            pids_limit: self.pids_limit,
            isolate_tmp: self.isolate_tmp,
        }
    }

    /// The limits of `user`, a member of `groups` (see the module for the order).
    pub fn for_user(&self, user: &str, groups: &[String]) -> LimitSet {
        let mine: Vec<&LimitSet> = groups.iter().filter_map(|g| self.groups.get(g)).collect();
        let most = |f: fn(&LimitSet) -> Option<u64>| mine.iter().filter_map(|s| f(s)).max();
        let from_groups = LimitSet {
            mem_limit: most(|s| s.mem_limit),
            cpu_limit: most(|s| s.cpu_limit.map(u64::from)).and_then(|v| u32::try_from(v).ok()),
            pids_limit: most(|s| s.pids_limit.map(u64::from)).and_then(|v| u32::try_from(v).ok()),
            // A private /tmp is the safer side: any group asking for one gets it.
            isolate_tmp: mine.iter().filter_map(|s| s.isolate_tmp).max(),
        };
        let own = self.users.get(user).copied().unwrap_or_default();
        let base = self.base();
        LimitSet {
            mem_limit: own.mem_limit.or(from_groups.mem_limit).or(base.mem_limit),
            cpu_limit: own.cpu_limit.or(from_groups.cpu_limit).or(base.cpu_limit),
            pids_limit: own
                .pids_limit
                .or(from_groups.pids_limit)
                .or(base.pids_limit),
            isolate_tmp: own
                .isolate_tmp
                .or(from_groups.isolate_tmp)
                .or(base.isolate_tmp),
        }
    }

    /// Checks every table: the key at fault and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let parent = self.cgroup_parent();
        let plain = parent.starts_with('/')
            && parent.len() > 1
            && parent.len() <= 200
            && parent[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
            });
        if !plain {
            return Err((
                "limits.cgroup_parent".into(),
                "must be an absolute cgroup path such as \"/sudohub\", without `..`".into(),
            ));
        }
        for (kind, names) in [("groups", self.groups.keys()), ("users", self.users.keys())] {
            if let Some(bad) = names.into_iter().find(|n| !crate::is_posix_name(n)) {
                return Err((format!("limits.{kind}.{bad}"), "is not a valid name".into()));
            }
        }
        let tables = std::iter::once(("limits".to_owned(), self.base()))
            .chain(
                self.groups
                    .iter()
                    .map(|(g, s)| (format!("limits.groups.{g}"), *s)),
            )
            .chain(
                self.users
                    .iter()
                    .map(|(u, s)| (format!("limits.users.{u}"), *s)),
            );
        for (at, s) in tables {
            if s.mem_limit.is_some_and(|m| m < 32 << 20) {
                return Err((format!("{at}.mem_limit"), "must be at least 32M".into()));
            }
            if s.cpu_limit.is_some_and(|c| !(10..=1_024_000).contains(&c)) {
                return Err((
                    format!("{at}.cpu_limit"),
                    "must be 0.01 to 1024 cores".into(),
                ));
            }
            if s.pids_limit.is_some_and(|p| p < 16) {
                return Err((format!("{at}.pids_limit"), "must be at least 16".into()));
            }
        }
        Ok(())
    }
}

/// `"4G"`, `"512M"`, `"100K"`, `"1.5G"` (1024-based, as JupyterHub's `ByteSpecification`),
/// or a whole number of bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let mult: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("{text:?}: use a number with K, M, G or T")),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: use a number with K, M, G or T"))?;
    let bytes = n * mult as f64;
    if !(n.is_finite() && n > 0.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?} is not a size"));
    }
    Ok(bytes as u64)
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(b) => Ok(Some(b)),
        Size::Text(t) => parse_bytes(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

fn millicores<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let cores = f64::deserialize(d)?;
    if !(cores.is_finite() && cores > 0.0 && cores <= 1024.0) {
        return Err(serde::de::Error::custom(
            "cpu_limit must be 0.01 to 1024 cores",
        ));
    }
    Ok(Some((cores * 1000.0).round() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Result<LimitsPolicy, String> {
        let p: LimitsPolicy = toml::from_str(text).map_err(|e| e.to_string())?;
        p.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(p)
    }

    #[test]
    fn the_most_specific_wins_and_groups_give_their_most() {
        let p = policy(
            r#"
mem_limit = "1G"
cpu_limit = 1
pids_limit = 200
[groups.students]
mem_limit = "2G"
[groups.staff]
mem_limit = "8G"
cpu_limit = 2.5
isolate_tmp = true
[users.alice]
mem_limit = 1073741824
"#,
        )
        .unwrap();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let bob = p.for_user("bob", &g(&["students", "staff"]));
        assert_eq!(bob.mem_limit, Some(8 << 30));
        assert_eq!(bob.cpu_limit, Some(2500));
        assert_eq!(bob.pids_limit, Some(200));
        assert_eq!(bob.isolate_tmp, Some(true));
        let alice = p.for_user("alice", &g(&["staff"]));
        assert_eq!(alice.mem_limit, Some(1 << 30), "her own table wins");
        assert_eq!(alice.cpu_limit, Some(2500));
        let carol = p.for_user("carol", &[]);
        assert_eq!(carol.mem_limit, Some(1 << 30));
        assert_eq!(carol.isolate_tmp, None);
        assert!(LimitsPolicy::default().is_empty() && !p.is_empty());
        assert_eq!(p.controllers_needed(), ["memory", "cpu", "pids"]);
        assert!(LimitsPolicy::default().controllers_needed().is_empty());
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, says) in [
            ("mem_limit = \"4X\"", "K, M, G or T"),
            ("mem_limit = \"1M\"", "limits.mem_limit"),
            ("cpu_limit = 0", "cpu_limit"),
            ("cpu_limit = -1.5", "cpu_limit"),
            ("pids_limit = 3", "limits.pids_limit"),
            (
                "[users.alice]\nmem_limit = \"1K\"",
                "limits.users.alice.mem_limit",
            ),
            ("[groups.x]\nswap = 1", "swap"),
            ("memory = \"4G\"", "memory"),
            ("cgroup_parent = \"/a/../b\"", "cgroup_parent"),
            ("cgroup_parent = \"rel\"", "cgroup_parent"),
            (
                "[users.\"Al ice\"]\nmem_limit = \"1G\"",
                "limits.users.Al ice",
            ),
        ] {
            let e = policy(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert_eq!(parse_bytes("1.5G"), Ok(3 << 29));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
    }
}
