//! A `cgroup_parent` of a test's own, for the limits tests: the servers' groups below it are
//! killed and removed when the test ends, in every hierarchy.

use std::path::PathBuf;
use std::time::Duration;

use sudohub_helpers_config::cgroup::Hierarchy;

use crate::unique_name;

/// A `[limits]` table with a `cgroup_parent` of the test's own; the groups below it are
/// killed and removed when the value is dropped.
pub struct CgroupParent {
    /// The parent, e.g. `/sudohub-test-cg…`.
    pub parent: String,
}

impl Default for CgroupParent {
    fn default() -> Self {
        Self::new()
    }
}

impl CgroupParent {
    /// A parent unique to this test.
    pub fn new() -> Self {
        Self {
            parent: format!("/{}", unique_name("sudohub-test-cg")),
        }
    }

    /// The config text: `[limits]` with the parent and `extra` (keys, then sub-tables).
    pub fn config(&self, extra: &str) -> String {
        format!("[limits]\ncgroup_parent = {:?}\n{extra}\n", self.parent)
    }

    /// The group directory of `user`'s `server` holding `controller`.
    pub fn dir(&self, controller: &str, user: &str, server: &str) -> PathBuf {
        Hierarchy::detect()
            .server_dir(controller, &self.parent, user, server)
            .unwrap_or_else(|| panic!("no {controller} hierarchy on this machine"))
    }

    /// The trimmed text of `file` in `user`'s default server's group of `controller`.
    pub fn read(&self, controller: &str, user: &str, file: &str) -> String {
        let path = self.dir(controller, user, "").join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_owned()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        fn clean(dir: &std::path::Path) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        clean(&e.path());
                    }
                }
            }
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::SIGKILL,
                    );
                }
            }
            let _ = crate::wait_for(Duration::from_secs(5), || std::fs::remove_dir(dir).ok());
        }
        if let Hierarchy::V1(mounts) = Hierarchy::detect() {
            for (_, at) in mounts {
                clean(&at.join(self.parent.trim_start_matches('/')));
            }
        }
    }
}
