//! Where servers' cgroups live: which hierarchy the machine has, read from
//! `/proc/self/mountinfo`, and the path of one server's group below `[limits]
//! cgroup_parent`. Shared by the spawner helper (which makes the groups as root) and the
//! hub (which only reads their usage and limits, world-readable files).

use std::path::{Path, PathBuf};

/// The v1 controllers a server's group is made in: memory, cpu and pids for the limits,
/// cpuacct for CPU time (a hierarchy of its own on some machines), freezer to stop every
/// process at once.
pub const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids", "freezer"];
/// The v2 controllers the limits need.
pub const V2_CONTROLLERS: &[&str] = &["memory", "cpu", "pids"];

/// What the machine offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy, mounted here, with memory, cpu and pids.
    V2(PathBuf),
    /// v1 hierarchies: each controller and where it is mounted (co-mounted controllers
    /// share a mount point).
    V1(Vec<(String, PathBuf)>),
    /// No usable controllers.
    None,
}

impl Hierarchy {
    /// The machine's, from `/proc/self/mountinfo`.
    pub fn detect() -> Self {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        hierarchy_of(&mountinfo, |p| {
            std::fs::read_to_string(p.join("cgroup.controllers")).unwrap_or_default()
        })
    }

    /// Each distinct directory a server's group is made in, with the controllers mounted
    /// there (v1: one per hierarchy; v2: the one unified directory).
    pub fn server_dirs(
        &self,
        parent: &str,
        user: &str,
        server: &str,
    ) -> Vec<(Vec<String>, PathBuf)> {
        let rel = server_rel(parent, user, server);
        match self {
            Self::V2(root) => vec![(
                V2_CONTROLLERS.iter().map(|c| (*c).to_owned()).collect(),
                root.join(rel),
            )],
            Self::V1(mounts) => {
                let mut out: Vec<(Vec<String>, PathBuf)> = Vec::new();
                for (c, at) in mounts {
                    let dir = at.join(&rel);
                    match out.iter_mut().find(|(_, d)| *d == dir) {
                        Some((cs, _)) => cs.push(c.clone()),
                        None => out.push((vec![c.clone()], dir)),
                    }
                }
                out
            }
            Self::None => Vec::new(),
        }
    }

    /// The directory holding `controller`'s files for this server, if mounted.
    pub fn server_dir(
        &self,
        controller: &str,
        parent: &str,
        user: &str,
        server: &str,
    ) -> Option<PathBuf> {
        self.server_dirs(parent, user, server)
            .into_iter()
            .find(|(cs, _)| cs.iter().any(|c| c == controller))
            .map(|(_, d)| d)
    }
}

/// What one server's group says about it: the limits in force (read back from the
/// kernel, not from the config) and what it uses. Every file is world-readable.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// `memory.limit_in_bytes` / `memory.max`; `None`: no limit.
    pub mem_limit: Option<u64>,
    /// Cores: the CFS quota over its period; `None`: no limit.
    pub cpu_limit: Option<f64>,
    /// `pids.max`; `None`: no limit.
    pub pids_limit: Option<u64>,
    /// Memory in use now, bytes.
    pub memory_bytes: Option<u64>,
    /// CPU time used so far, seconds.
    pub cpu_seconds: Option<f64>,
    /// Processes the kernel killed for the memory limit.
    pub oom_kills: Option<u64>,
    /// Processes and threads now.
    pub tasks: Option<u64>,
}

impl Hierarchy {
    /// The usage and limits of a server's group, `None` when it has none (a machine
    /// without cgroups, or a server that is not running).
    pub fn usage(&self, parent: &str, user: &str, server: &str) -> Option<Usage> {
        let dir = |c: &str| self.server_dir(c, parent, user, server);
        let mem = dir("memory")?;
        if !mem.is_dir() {
            return None;
        }
        let read = |d: Option<PathBuf>, f: &str| {
            std::fs::read_to_string(d?.join(f))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        let num = |d: Option<PathBuf>, f: &str| read(d, f)?.parse::<u64>().ok();
        let keyed = |d: Option<PathBuf>, f: &str, key: &str| {
            read(d, f)?.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse::<u64>().ok()).flatten()
            })
        };
        let pids_limit = num(dir("pids"), "pids.max");
        let tasks = num(dir("pids"), "pids.current");
        Some(match self {
            Self::V2(_) => {
                let cpu_limit = read(dir("cpu"), "cpu.max").and_then(|t| {
                    let (q, p) = t.split_once(' ')?;
                    Some(q.parse::<f64>().ok()? / p.parse::<f64>().ok()?)
                });
                Usage {
                    mem_limit: num(dir("memory"), "memory.max"),
                    cpu_limit,
                    pids_limit,
                    memory_bytes: num(dir("memory"), "memory.current"),
                    cpu_seconds: keyed(dir("cpu"), "cpu.stat", "usage_usec")
                        .map(|u| u as f64 / 1e6),
                    oom_kills: keyed(dir("memory"), "memory.events", "oom_kill"),
                    tasks,
                }
            }
            _ => {
                let quota =
                    read(dir("cpu"), "cpu.cfs_quota_us").and_then(|q| q.parse::<i64>().ok());
                let period = num(dir("cpu"), "cpu.cfs_period_us");
                let cpu_limit = match (quota, period) {
                    (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
                    _ => None,
                };
                Usage {
                    // v1 says "no limit" with the largest page-aligned number.
                    mem_limit: num(dir("memory"), "memory.limit_in_bytes").filter(|&m| m < 1 << 62),
                    cpu_limit,
                    pids_limit,
                    memory_bytes: num(dir("memory"), "memory.usage_in_bytes"),
                    cpu_seconds: num(dir("cpuacct"), "cpuacct.usage").map(|n| n as f64 / 1e9),
                    oom_kills: keyed(dir("memory"), "memory.oom_control", "oom_kill"),
                    tasks,
                }
            }
        })
    }
}

/// `<parent>/<user>/<server>` relative to a hierarchy's root; the default server is
/// `_default`, a name no named server can have.
pub fn server_rel(parent: &str, user: &str, server: &str) -> PathBuf {
    let server = if server.is_empty() {
        "_default"
    } else {
        server
    };
    Path::new(parent.trim_start_matches('/'))
        .join(user)
        .join(server)
}

/// Reads the hierarchy from mountinfo text. A v2 mount counts only if it carries the
/// controllers the limits need (a hybrid machine's `unified` mount has none of them).
pub fn hierarchy_of(mountinfo: &str, v2_controllers: impl Fn(&Path) -> String) -> Hierarchy {
    let mut v1 = Vec::new();
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let point = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let (fstype, _source, options) = (r.next(), r.next(), r.next().unwrap_or(""));
        match fstype {
            Some("cgroup2") => {
                let have = v2_controllers(Path::new(point));
                if V2_CONTROLLERS
                    .iter()
                    .all(|c| have.split_whitespace().any(|h| h == *c))
                {
                    v2 = Some(PathBuf::from(point));
                }
            }
            Some("cgroup") => {
                for c in options.split(',') {
                    if V1_CONTROLLERS.contains(&c) {
                        v1.push((c.to_owned(), PathBuf::from(point)));
                    }
                }
            }
            _ => {}
        }
    }
    match (v2, v1.is_empty()) {
        (Some(p), _) => Hierarchy::V2(p),
        (None, false) => Hierarchy::V1(v1),
        (None, true) => Hierarchy::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    #[test]
    fn v1_v2_and_hybrid_machines_are_told_apart() {
        let h = hierarchy_of(HYBRID, |_| "hugetlb".into());
        let Hierarchy::V1(m) = &h else {
            panic!("{h:?}")
        };
        let names: Vec<&str> = m.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["cpu", "cpuacct", "memory", "freezer", "pids"]);
        assert_eq!(
            h.server_dir("memory", "/sudohub", "alice", ""),
            Some("/sys/fs/cgroup/memory/sudohub/alice/_default".into())
        );
        let unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        let v2 = hierarchy_of(unified, |_| "cpuset cpu io memory hugetlb pids rdma".into());
        assert_eq!(v2, Hierarchy::V2("/sys/fs/cgroup".into()));
        assert_eq!(
            v2.server_dirs("/system.slice/sudohub-servers.service", "bob", "gpu")[0].1,
            Path::new("/sys/fs/cgroup/system.slice/sudohub-servers.service/bob/gpu")
        );
        assert_eq!(hierarchy_of("", |_| String::new()), Hierarchy::None);
        assert_eq!(
            hierarchy_of("garbage\n - \n", |_| String::new()),
            Hierarchy::None
        );
    }

    #[test]
    fn co_mounted_controllers_share_one_directory() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        let h = hierarchy_of(text, |_| String::new());
        let dirs = h.server_dirs("sudohub", "al", "");
        assert_eq!(dirs.len(), 2);
        assert_eq!(dirs[0].0, ["cpu", "cpuacct"]);
    }
}
