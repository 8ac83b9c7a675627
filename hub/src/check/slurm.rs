//! The Slurm part of `sudohub check`, with `backend = "slurm"`: hub.toml and helpers.toml
//! agree, the commands and the job's program are there, Slurm answers, every profile's
//! partition exists, and the hub's account will see the users' jobs.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use sudohub_helpers_config::slurm::{Backend, SlurmConfig};
use sudohub_helpers_config::HelpersConfig;

use super::{Finding, Report};
use crate::config::HubConfig;

/// The Slurm checks alone.
pub fn slurm_only(cfg: &HubConfig, helpers: &HelpersConfig) -> Vec<Finding> {
    let mut r = Report(Vec::new());
    slurm(cfg, helpers, &mut r);
    r.0
}

pub(super) fn slurm(cfg: &HubConfig, h: &HelpersConfig, r: &mut Report) {
    let (hub, helpers) = (cfg.spawner.backend, h.spawner.backend);
    if hub == Backend::Local && helpers == Backend::Local {
        return;
    }
    r.check(
        hub == helpers,
        format!(
            "hub.toml and helpers.toml both say backend = \"{}\"",
            hub.as_str()
        ),
        format!(
            "hub.toml says [spawner] backend = \"{}\" and helpers.toml \"{}\": make them the same",
            hub.as_str(),
            helpers.as_str()
        ),
    );
    let Some(s) = &h.slurm else {
        return;
    };
    let program = s.command.first().map(String::as_str).unwrap_or_default();
    for (what, path) in [
        ("sbatch", s.sbatch.as_path()),
        ("scancel", s.scancel.as_path()),
        ("squeue", cfg.slurm.squeue.as_path()),
        ("sinfo", cfg.slurm.sinfo.as_path()),
        ("the job's command", Path::new(program)),
    ] {
        let exec = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
        r.check(
            exec,
            format!("{what} {} is there", path.display()),
            format!(
                "{what} {} is missing or not executable (Debian: slurm-client; the venv: scripts/deps.sh)",
                path.display()
            ),
        );
    }
    let conf = cfg.slurm.slurm_conf.as_deref().or(s.slurm_conf.as_deref());
    match run(&cfg.slurm.sinfo, &["-h", "-o", "%R"], conf) {
        Ok(out) => {
            let partitions: Vec<&str> = out.split_whitespace().collect();
            r.ok(format!(
                "Slurm answers; its partitions: {}",
                partitions.join(", ")
            ));
            profiles(s, &partitions, r);
        }
        Err(e) => r.fail(format!("Slurm does not answer sinfo: {e}")),
    }
    api_reach(cfg, &cfg.slurm.sinfo, conf, r);
    if let Ok(config) = run(Path::new("/usr/bin/scontrol"), &["show", "config"], conf) {
        let private = config
            .lines()
            .find(|l| l.trim_start().starts_with("PrivateData"))
            .is_some_and(|l| l.contains("jobs"));
        r.check(
            !private,
            "Slurm shows every job to the hub's account (no PrivateData=jobs)".into(),
            "slurm.conf has PrivateData=jobs: the hub's account cannot see users' jobs, and every start would fail (making it a Slurm operator would give it power over every job: not supported)".into(),
        );
    }
}

/// The Hub API URL the jobs get is not a loopback address while a node is another
/// machine: there, whoever listens on that node's loopback port would get every server's
/// token.
fn api_reach(cfg: &HubConfig, sinfo: &Path, conf: Option<&Path>, r: &mut Report) {
    let Some(url) = &cfg.slurm.hub_api_url else {
        return;
    };
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|hp| match hp.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => hp,
        })
        .unwrap_or_default()
        .trim_matches(['[', ']']);
    let loopback = |h: &str| {
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    };
    if !loopback(host) {
        r.ok(format!("jobs reach the Hub API at {url}"));
        return;
    }
    let Ok(out) = run(sinfo, &["-h", "-a", "-N", "-o", "%o"], conf) else {
        return;
    };
    let remote: Vec<&str> = out.split_whitespace().filter(|a| !loopback(a)).collect();
    r.check(
        remote.is_empty(),
        format!("{url} is a loopback address, and every Slurm node is this machine"),
        format!(
            "[slurm] hub_api_url {url} is a loopback address, but Slurm nodes are elsewhere ({}): their jobs would send their tokens to whatever listens there; use an address the nodes reach",
            remote.join(", ")
        ),
    );
}

/// Every profile's partition is one Slurm has.
fn profiles(s: &SlurmConfig, partitions: &[&str], r: &mut Report) {
    for p in &s.profile {
        if let Some(part) = &p.partition {
            r.check(
                partitions.contains(&part.as_str()),
                format!("profile {} uses partition {part}", p.name),
                format!(
                    "profile {} names partition {part}, which Slurm does not have: every start with it would fail",
                    p.name
                ),
            );
        }
    }
}

fn run(program: &Path, args: &[&str], conf: Option<&Path>) -> Result<String, String> {
    let mut c = Command::new(program);
    c.args(args).env_clear().env("PATH", "/usr/bin:/bin");
    if let Some(conf) = conf {
        c.env("SLURM_CONF", conf);
    }
    let out = c
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " / "))
    }
}
