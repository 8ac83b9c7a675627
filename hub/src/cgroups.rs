//! The servers' cgroups as the hub sees them: read-only. The spawner helper's root phase
//! makes each server's group with root's limits (helpers.toml `[limits]`); the hub only
//! reads what the kernel says in world-readable files, to show the limits in force and
//! the usage in the API, the admin page and `/hub/metrics`. It cannot change any of it.

use std::path::Path;

use sudohub_helpers_config::cgroup::{Hierarchy, Usage};

use crate::types::ServerKey;

/// Where the servers' groups are on this machine.
#[derive(Debug, Clone)]
pub struct ServerCgroups {
    hierarchy: Hierarchy,
    parent: String,
}

impl ServerCgroups {
    /// From root's helpers.toml (world-readable; read for `cgroup_parent` only) and the
    /// machine's mounts. `None` when the file cannot be read or the machine has no
    /// cgroups: then no usage is shown, and the helper refuses any limit itself.
    pub fn from_helpers_config(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        let config = sudohub_helpers_config::parse(&text, path)
            .map_err(|e| tracing::warn!(error = %e, "helpers.toml: no server usage is shown"))
            .ok()?;
        let hierarchy = Hierarchy::detect();
        if hierarchy == Hierarchy::None {
            return None;
        }
        Some(Self {
            hierarchy,
            parent: config.limits.cgroup_parent().to_owned(),
        })
    }

    /// The limits and usage of `key`'s group, if it has one now.
    pub fn usage(&self, key: &ServerKey) -> Option<Usage> {
        self.hierarchy
            .usage(&self.parent, key.user.as_str(), key.name.as_str())
    }
}
