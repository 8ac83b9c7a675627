//! The server's cgroup: its limits, and containment.
//!
//! Root half, [`prepare`] (in the root phase): a fresh group `<cgroup_parent>/<user>/<server>`
//! in each hierarchy (v1: memory, cpu, cpuacct, pids, freezer; v2: the unified one), every
//! directory and file root's, the limits written, and three kinds of fd opened for later:
//! `cgroup.procs` to join, the freezer (v1) or `cgroup.kill` (v2) to stop everything, all
//! while still root, and one to the group's directory, so that later reads find this
//! group even if the path is someday reused. Whatever an earlier server of that name left
//! is frozen, killed and removed first. Every directory from the hierarchy's root down to
//! the user's must be root's and writable by nobody else.
//!
//! User half, after the drop: the server's child joins through root's fd before it execs
//! (the helper itself never joins, so nothing the server does can kill or starve it), and
//! at stop [`Cgroup::kill_all_and_wait`] kills every process in the group, however it was
//! started (a new session, a double fork), and waits until the group is empty. The empty
//! directory stays until the user's next spawn: removing it needs root, and no root
//! process stays behind for it.
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;
use sudohub_helpers_config::cgroup::Hierarchy;
use sudohub_helpers_config::LimitSet;

use crate::error::HelperError;

mod files;
use files::{failed, io, only_root_writes, open_dir, open_write, read_at, write_file};

/// How long the cgroup may take to empty once everything in it was killed.
const EMPTY_DEADLINE: Duration = Duration::from_secs(10);

/// One server's group in every hierarchy, and root's fds into it.
pub struct Cgroup {
    v2: bool,
    dirs: Vec<(Vec<String>, PathBuf)>,
    /// The group's directory in each hierarchy (same order as `dirs`), opened by root.
    dir_fds: Vec<OwnedFd>,
    join: Vec<OwnedFd>,
    stopper: Option<OwnedFd>,
    /// The limits written.
    pub limits: LimitSet,
    oom_seen: u32,
}

/// Root half: makes the group of `user`'s `server` with `limits`. `Ok(None)` when the
/// machine has no cgroups and no limit is set (the subreaper still reaps everything).
pub fn prepare(
    h: &Hierarchy,
    parent: &str,
    user: &str,
    server: &str,
    limits: LimitSet,
) -> Result<Option<Cgroup>, HelperError> {
    let dirs = h.server_dirs(parent, user, server);
    let has = |c: &str| dirs.iter().any(|(cs, _)| cs.iter().any(|x| x == c));
    for (set, controller) in [
        (limits.mem_limit.is_some(), "memory"),
        (limits.cpu_limit.is_some(), "cpu"),
        (limits.pids_limit.is_some(), "pids"),
    ] {
        if set && !has(controller) {
            return Err(failed(format!(
                "helpers.toml sets a {controller} limit, but this machine has no {controller} cgroup controller (`sudohub check` says which it has)"
            )));
        }
    }
    if dirs.is_empty() {
        return Ok(None);
    }
    let v2 = matches!(h, Hierarchy::V2(_));
    kill_old_group(v2, &dirs);
    let mut cg = Cgroup {
        v2,
        dirs,
        dir_fds: Vec::new(),
        join: Vec::new(),
        stopper: None,
        limits,
        oom_seen: 0,
    };
    for (controllers, dir) in cg.dirs.clone() {
        let user_dir = dir.parent().unwrap_or(&dir).to_path_buf();
        if v2 {
            enable_v2_controllers(h, &user_dir)?;
        } else {
            std::fs::create_dir_all(&user_dir).map_err(|e| io(&user_dir, &e))?;
        }
        only_root_writes(&user_dir)?;
        if dir.exists() {
            std::fs::remove_dir(&dir).map_err(|e| {
                failed(format!(
                    "{}: an earlier server's group cannot be removed ({e}): it still holds processes in the kernel",
                    dir.display()
                ))
            })?;
        }
        std::fs::create_dir(&dir).map_err(|e| io(&dir, &e))?;
        cg.dir_fds.push(open_dir(&dir)?);
        for (file, value) in limit_files(v2, &controllers, &limits) {
            write_file(&dir.join(file), &value)?;
        }
        if controllers.iter().any(|c| c == "memory") && !v2 {
            let h = std::fs::read_to_string(dir.join("memory.use_hierarchy")).unwrap_or_default();
            if h.trim() == "0" {
                return Err(failed(format!(
                    "{}: memory.use_hierarchy is 0, so the limit would not cover the server's own groups",
                    dir.display()
                )));
            }
        }
        cg.join.push(open_write(&dir.join("cgroup.procs"))?);
        if v2 {
            let kill_file = dir.join("cgroup.kill");
            if !kill_file.exists() {
                return Err(failed(
                    "this kernel's cgroup v2 has no cgroup.kill (Linux 5.14 or later has it)"
                        .into(),
                ));
            }
            cg.stopper = Some(open_write(&kill_file)?);
        } else if controllers.iter().any(|c| c == "freezer") {
            cg.stopper = Some(open_write(&dir.join("freezer.state"))?);
        }
    }
    cg.oom_seen = cg.oom_kills().unwrap_or(0);
    Ok(Some(cg))
}

/// Root half, for a server whose helper is gone: kills whatever is left in its group and
/// removes the group in every hierarchy. Returns how many processes there were.
pub fn clear(h: &Hierarchy, parent: &str, user: &str, server: &str) -> Result<u32, HelperError> {
    let dirs = h.server_dirs(parent, user, server);
    let v2 = matches!(h, Hierarchy::V2(_));
    let count = dirs
        .iter()
        .find(|(cs, _)| v2 || cs.iter().any(|c| c == "freezer"))
        .and_then(|(_, d)| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .map_or(0, |t| t.lines().count());
    kill_old_group(v2, &dirs);
    for (_, dir) in &dirs {
        if let Some(user_dir) = dir.parent() {
            only_root_writes(user_dir)?;
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(dir, &e)),
        }
    }
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The files and values of `limits` for a group in a hierarchy with `controllers`.
pub(crate) fn limit_files(
    v2: bool,
    controllers: &[String],
    l: &LimitSet,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let here = |c: &str| controllers.iter().any(|x| x == c);
    if v2 {
        if let Some(m) = l.mem_limit {
            out.push(("memory.max", m.to_string()));
            out.push(("memory.swap.max", "0".to_owned()));
        }
        if let Some(c) = l.cpu_limit {
            out.push((
                "cpu.max",
                format!("{} 100000", (u64::from(c) * 100).max(1000)),
            ));
        }
        if let Some(p) = l.pids_limit {
            out.push(("pids.max", p.to_string()));
        }
        return out;
    }
    if let (Some(m), true) = (l.mem_limit, here("memory")) {
        out.push(("memory.limit_in_bytes", m.to_string()));
        // Swap too (memsw must be at least the limit, so second): no escape into swap.
        out.push(("memory.memsw.limit_in_bytes", m.to_string()));
    }
    if let (Some(c), true) = (l.cpu_limit, here("cpu")) {
        out.push(("cpu.cfs_period_us", "100000".to_owned()));
        out.push((
            "cpu.cfs_quota_us",
            (u64::from(c) * 100).max(1000).to_string(),
        ));
    }
    if let (Some(p), true) = (l.pids_limit, here("pids")) {
        out.push(("pids.max", p.to_string()));
    }
    out
}

/// v2: every level from the mount down to `user_dir` exists and passes memory, cpu and
/// pids down to its children.
fn enable_v2_controllers(h: &Hierarchy, user_dir: &Path) -> Result<(), HelperError> {
    let Hierarchy::V2(root) = h else {
        return Ok(());
    };
    let rel = user_dir.strip_prefix(root).unwrap_or(user_dir);
    let mut at = root.clone();
    for part in rel.components() {
        let control = at.join("cgroup.subtree_control");
        let have = std::fs::read_to_string(&control).unwrap_or_default();
        if !["memory", "cpu", "pids"]
            .iter()
            .all(|c| have.split_whitespace().any(|h| h == *c))
        {
            write_file(&control, "+memory +cpu +pids")?;
        }
        at.push(part);
        if !at.exists() {
            std::fs::create_dir(&at).map_err(|e| io(&at, &e))?;
        }
    }
    let control = at.join("cgroup.subtree_control");
    let have = std::fs::read_to_string(&control).unwrap_or_default();
    if !have.contains("memory") {
        write_file(&control, "+memory +cpu +pids")?;
    }
    Ok(())
}

impl Cgroup {
    /// The fds the child writes "0" to, to join (see [`crate::sys::ChildSetup`]).
    pub fn join_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.join.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Closes the join fds once the server has started: nothing else may ever join.
    pub fn close_join(&mut self) {
        self.join.clear();
    }

    /// The group's path holding `controller` (for the log; reads go through the fds).
    pub fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(cs, _)| cs.iter().any(|c| c == controller))
            .map(|(_, d)| d.as_path())
    }

    /// `name` in this group's directory holding `controller`, read through root's fd of
    /// the directory: a later group made at the same path is never read by mistake.
    fn read_file(&self, controller: &str, name: &str) -> Option<String> {
        let i = self
            .dirs
            .iter()
            .position(|(cs, _)| cs.iter().any(|c| c == controller))?;
        read_at(self.dir_fds.get(i)?, name)
    }

    /// Processes the kernel killed in this group for its memory limit, all time.
    pub fn oom_kills(&self) -> Option<u32> {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = self.read_file("memory", file)?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// New OOM kills since the last call (the count before the server started is the
    /// baseline), with the total.
    pub fn new_oom_kills(&mut self) -> Option<u32> {
        let now = self.oom_kills()?;
        (now > self.oom_seen).then(|| {
            self.oom_seen = now;
            now
        })
    }

    /// Kills every process in the group and waits (reaping our children) until it is
    /// empty, or `EMPTY_DEADLINE` has passed; `Err` says what is left.
    pub fn kill_all_and_wait(&self) -> Result<(), String> {
        let until = Instant::now() + EMPTY_DEADLINE;
        loop {
            if self.v2 {
                if let Some(fd) = &self.stopper {
                    let _ = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?)
                        .write_all(b"1");
                }
            } else {
                self.freeze(true);
                self.signal_all();
                self.freeze(false);
            }
            reap_children();
            let left = self.procs();
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!(
                    "{} process(es) still in the cgroup: {left:?}",
                    left.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal_all(&self) {
        for pid in self.procs() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// v1: freezes (or thaws) the group, so nothing forks while it is being killed;
    /// killed tasks die only once thawed. Waits a little for FROZEN (a task in the
    /// kernel can hold it in FREEZING; the kill goes on anyway).
    fn freeze(&self, frozen: bool) {
        let Some(fd) = &self.stopper else {
            return;
        };
        let Ok(fd) = fd.try_clone() else { return };
        let word: &[u8] = if frozen { b"FROZEN" } else { b"THAWED" };
        let _ = std::fs::File::from(fd).write_all(word);
        if frozen {
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                let state = self
                    .read_file("freezer", "freezer.state")
                    .unwrap_or_default();
                if state.trim() == "FROZEN" {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Every pid in the group, in every hierarchy (the group is root's: nobody can make
    /// groups below it).
    pub fn procs(&self) -> Vec<i32> {
        let mut out: Vec<i32> = self
            .dir_fds
            .iter()
            .filter_map(|fd| read_at(fd, "cgroup.procs"))
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// As root, before a new server of the same name: whatever an earlier one left (its
/// helper was killed, or the hub lost track of it) is killed, the pids of a group that
/// cannot change under us: v2 `cgroup.kill`; v1 frozen first (a frozen task can neither
/// exit, so its pid cannot be reused, nor fork), killed, then thawed to die.
fn kill_old_group(v2: bool, dirs: &[(Vec<String>, PathBuf)]) {
    let Some((_, dir)) = dirs
        .iter()
        .find(|(cs, _)| v2 || cs.iter().any(|c| c == "freezer"))
    else {
        return;
    };
    if !dir.is_dir() {
        return;
    }
    let populated = || {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|t| !t.trim().is_empty())
            .unwrap_or(false)
    };
    let until = Instant::now() + EMPTY_DEADLINE;
    while populated() && Instant::now() < until {
        if v2 {
            let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        } else {
            let state = dir.join("freezer.state");
            let _ = std::fs::write(&state, "FROZEN");
            let frozen_by = Instant::now() + Duration::from_millis(500);
            while Instant::now() < frozen_by
                && std::fs::read_to_string(&state).is_ok_and(|s| s.trim() != "FROZEN")
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            let pids = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = std::fs::write(&state, "THAWED");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn reap_children() {
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}
