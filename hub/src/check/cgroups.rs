//! The cgroup part of `sudohub check`: which hierarchy the machine has (v2, the unified
//! one of systemd machines, or v1's separate memory, cpu and pids hierarchies), and, run
//! as root, whether each controller per-server limits need really works: a probe group
//! is made, a limit written and read back, and the group removed.
//!
//! Per-server limits are not enforced yet (they come with the spawner helper's root
//! phase): until then a controller that does not work is reported as a note, not a
//! failure, so that `sudohub check` does not fail an install for what nothing uses.

use std::path::{Path, PathBuf};

use super::Report;

/// The controllers per-server limits use, and the freezer v1 needs to stop a server's
/// processes all at once.
const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "pids", "freezer"];
const V2_CONTROLLERS: &[&str] = &["memory", "cpu", "pids"];

/// What `/proc/self/mountinfo` says of the machine's cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// The unified hierarchy mounted at `/sys/fs/cgroup` (or wherever it is).
    V2(PathBuf),
    /// v1 hierarchies: each controller and where it is mounted.
    V1(Vec<(String, PathBuf)>),
    /// No cgroup controllers mounted.
    None,
}

/// Reads the hierarchy from mountinfo text. A v2 mount counts only if it carries
/// controllers (a hybrid machine's `unified` mount has none of ours).
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

/// Reports the hierarchy and, as root, probes each controller.
pub(super) fn cgroups(r: &mut Report) {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let h = hierarchy_of(&mountinfo, |p| {
        std::fs::read_to_string(p.join("cgroup.controllers")).unwrap_or_default()
    });
    let root = nix::unistd::geteuid().is_root();
    let probe = format!("sudohub-check-{}", std::process::id());
    match h {
        Hierarchy::None => note(
            r,
            "no cgroup controllers are mounted: per-server limits will need cgroup v2 (or v1's memory, cpu and pids hierarchies)".into(),
        ),
        Hierarchy::V2(at) => {
            r.ok(format!("cgroup v2 (unified) at {} with memory, cpu and pids", at.display()));
            if root {
                let dir = at.join(&probe);
                let tried = probe_dir(&dir, &[("memory.max", "67108864"), ("cpu.max", "50000 100000"), ("pids.max", "64")]);
                report_probe(r, "v2 memory, cpu, pids", &at, tried);
            }
        }
        Hierarchy::V1(mounts) => {
            let names: Vec<&str> = mounts.iter().map(|(c, _)| c.as_str()).collect();
            r.ok(format!("cgroup v1 hierarchies: {}", names.join(", ")));
            for c in V1_CONTROLLERS {
                let Some((_, at)) = mounts.iter().find(|(m, _)| m == c) else {
                    note(r, format!("cgroup v1 controller {c} is not mounted: mount it at /sys/fs/cgroup/{c}"));
                    continue;
                };
                if !root {
                    continue;
                }
                let limit: &[(&str, &str)] = match *c {
                    "memory" => &[("memory.limit_in_bytes", "67108864")],
                    "cpu" => &[("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "50000")],
                    "pids" => &[("pids.max", "64")],
                    _ => &[],
                };
                let tried = probe_dir(&at.join(&probe), limit);
                report_probe(r, &format!("v1 {c}"), at, tried);
            }
        }
    }
    if !root {
        r.ok("cgroup controllers not tried (run `sudohub check` as root to try each)".into());
    }
}

fn report_probe(r: &mut Report, what: &str, at: &Path, tried: Result<(), String>) {
    match tried {
        Ok(()) => r.ok(format!(
            "cgroup {what}: a group under {} takes a limit",
            at.display()
        )),
        Err(e) => note(
            r,
            format!("cgroup {what} does not work under {}: {e}", at.display()),
        ),
    }
}

/// What per-server limits will need, said without failing the check (see the module).
fn note(r: &mut Report, text: String) {
    r.ok(format!("note: {text}"));
}

/// Makes `dir`, writes each `(file, value)` and reads it back, and removes `dir` again
/// whatever happened.
fn probe_dir(dir: &Path, limits: &[(&str, &str)]) -> Result<(), String> {
    std::fs::create_dir(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    let result = limits.iter().try_for_each(|(file, value)| {
        let path = dir.join(file);
        std::fs::write(&path, value)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let back = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if back.trim() == *value {
            Ok(())
        } else {
            Err(format!(
                "{} reads {:?} after {value:?} was written",
                path.display(),
                back.trim()
            ))
        }
    });
    let removed =
        std::fs::remove_dir(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()));
    result.and(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw";

    #[test]
    fn v1_v2_and_hybrid_machines_are_told_apart() {
        let h = hierarchy_of(HYBRID, |_| "hugetlb".into());
        let Hierarchy::V1(m) = h else { panic!("{h:?}") };
        let names: Vec<&str> = m.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "freezer", "pids"]);
        let unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate";
        assert_eq!(
            hierarchy_of(unified, |_| "cpuset cpu io memory hugetlb pids rdma".into()),
            Hierarchy::V2("/sys/fs/cgroup".into())
        );
        assert_eq!(hierarchy_of("", |_| String::new()), Hierarchy::None);
        assert_eq!(
            hierarchy_of("garbage\n - \n", |_| String::new()),
            Hierarchy::None
        );
    }
}
