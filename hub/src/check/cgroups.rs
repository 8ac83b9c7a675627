//! The cgroup part of `sudohub check`: which hierarchy the machine has (v2, the unified
//! one of systemd machines, or v1's separate memory, cpu and pids hierarchies), and, run
//! as root, whether each controller per-server limits need really works: a probe group
//! is made, a limit written and read back, and the group removed.
//!
//! A controller that a limit in helpers.toml needs and that is missing or does not work
//! is a failure (the spawner helper would refuse every spawn); one that nothing uses yet
//! is a note.

use std::path::Path;

use super::Report;

use sudohub_helpers_config::cgroup::{Hierarchy, V1_CONTROLLERS};

/// Reports the hierarchy and, as root, probes each controller; `needed`: the controllers
/// helpers.toml's limits use.
pub(super) fn cgroups(r: &mut Report, needed: &[&str]) {
    let h = Hierarchy::detect();
    for c in needed {
        let has = match &h {
            Hierarchy::V2(_) => true,
            Hierarchy::V1(m) => m.iter().any(|(x, _)| x == c),
            Hierarchy::None => false,
        };
        if !has {
            r.fail(format!(
                "helpers.toml [limits] needs the {c} cgroup controller, which this machine does not have mounted: every spawn would be refused"
            ));
        }
    }
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
