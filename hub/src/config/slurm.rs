//! `[slurm]` of hub.toml: how the hub follows the jobs of `backend = "slurm"` (what the
//! jobs run is root's, in helpers.toml).

use std::path::PathBuf;

use serde::Deserialize;

/// `[slurm]`: following the jobs of `backend = "slurm"` (what they run is helpers.toml's).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    /// The Hub API as the compute nodes reach it (`JUPYTERHUB_API_URL` of the jobs), e.g.
    /// `"http://hub.cluster:8081/hub/api"`: needed with the Slurm backend. Not a loopback
    /// address unless every node is this machine (`sudohub check` says).
    #[serde(default)]
    pub hub_api_url: Option<String>,
    /// `squeue`.
    #[serde(default = "default_squeue")]
    pub squeue: PathBuf,
    /// `sinfo`.
    #[serde(default = "default_sinfo")]
    pub sinfo: PathBuf,
    /// The cluster's `slurm.conf` (`SLURM_CONF`); unset: the commands' default.
    #[serde(default)]
    pub slurm_conf: Option<PathBuf>,
    /// Seconds between two polls (`c.Spawner.poll_interval`; batchspawner runs one
    /// `squeue` per server, here one `squeue` polls them all).
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u64,
    /// Seconds a job may wait in the queue before the start is given up and the job
    /// cancelled; 0: as long as it takes.
    #[serde(default = "default_queue_timeout")]
    pub queue_timeout_secs: u64,
}

impl SlurmSection {
    /// Checks the values: the key at fault and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !self.squeue.is_absolute()
            || !self.sinfo.is_absolute()
            || self.slurm_conf.as_ref().is_some_and(|p| !p.is_absolute())
        {
            return Err((
                "slurm",
                "squeue, sinfo and slurm_conf must be absolute paths",
            ));
        }
        if self.poll_secs == 0 {
            return Err(("slurm.poll_secs", "must be above 0"));
        }
        if let Some(url) = &self.hub_api_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && url.ends_with("/hub/api")
                && !url.contains(['?', '#', ' ', '\0']);
            if !ok {
                return Err((
                    "slurm.hub_api_url",
                    "must be an http(s) URL ending in /hub/api, e.g. \"http://hub.cluster:8081/hub/api\"",
                ));
            }
        }
        Ok(())
    }
}

impl Default for SlurmSection {
    fn default() -> Self {
        Self {
            hub_api_url: None,
            squeue: default_squeue(),
            sinfo: default_sinfo(),
            slurm_conf: None,
            poll_secs: default_poll_secs(),
            queue_timeout_secs: default_queue_timeout(),
        }
    }
}

fn default_squeue() -> PathBuf {
    "/usr/bin/squeue".into()
}
fn default_sinfo() -> PathBuf {
    "/usr/bin/sinfo".into()
}
fn default_poll_secs() -> u64 {
    5
}
fn default_queue_timeout() -> u64 {
    3600
}
