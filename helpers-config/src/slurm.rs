//! `[slurm]`: how a user's server is submitted as a Slurm batch job, when
//! `[spawner] backend = "slurm"`. Root writes every line of the job script here; the hub
//! only picks one of the profiles by name and passes allow-listed variables.

use std::path::PathBuf;

use serde::Deserialize;

/// Which way servers run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// On this machine, supervised by the helper (the default).
    #[default]
    Local,
    /// As Slurm batch jobs, submitted by the helper as the user.
    Slurm,
}

impl Backend {
    /// The name as written in the config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Slurm => "slurm",
        }
    }
}

/// `[slurm]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// `sbatch`.
    #[serde(default = "default_sbatch")]
    pub sbatch: PathBuf,
    /// `scancel`.
    #[serde(default = "default_scancel")]
    pub scancel: PathBuf,
    /// The cluster's `slurm.conf`, passed to the commands as `SLURM_CONF`; unset: the
    /// commands' own default (`/etc/slurm/slurm.conf`).
    #[serde(default)]
    pub slurm_conf: Option<PathBuf>,
    /// The program the job runs, then its fixed arguments: by default batchspawner's
    /// wrapper, which picks a free port on the node, reports it to the hub
    /// (`POST /hub/api/batchspawner`) and runs `jupyterhub-singleuser` on it.
    #[serde(default = "default_command")]
    pub command: Vec<String>,
    /// Shell lines run in the job before the server (`module load …`), as root wrote them.
    #[serde(default)]
    pub prologue: String,
    /// The address the server listens on, on its node: it must be reachable from the hub.
    #[serde(default = "default_listen_ip")]
    pub listen_ip: String,
    /// The job's output file (`#SBATCH --output`), relative to the user's home; `%j` is
    /// the job id.
    #[serde(default = "default_output")]
    pub output: String,
    /// What users may choose on the spawn page; the first is the default.
    #[serde(default = "default_profiles")]
    pub profile: Vec<Profile>,
}

/// `[[slurm.profile]]`: one set of `#SBATCH` options users may pick.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Its name, in the form and the request: `[a-z0-9][a-z0-9_-]*`, at most 32.
    pub name: String,
    /// What the form shows.
    #[serde(default)]
    pub description: String,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (Slurm's formats: `minutes`, `hours:minutes:seconds`, `days-hours`, …).
    pub time: Option<String>,
    /// `--mem` (`4G`, `500M`).
    pub mem: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--account`.
    pub account: Option<String>,
    /// More `#SBATCH` options, each one whole option: `"--gres=gpu:1"`.
    #[serde(default)]
    pub extra: Vec<String>,
    /// Unix groups whose members may pick it; empty: everybody allowed a server.
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Profile {
    /// Whether a member of `groups` may use it.
    pub fn allows(&self, groups: &[String]) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g))
    }

    /// Its `#SBATCH` options, in a fixed order.
    pub fn options(&self) -> Vec<String> {
        let mut o = Vec::new();
        let mut add = |flag: &str, v: &Option<String>| {
            if let Some(v) = v {
                o.push(format!("--{flag}={v}"));
            }
        };
        add("partition", &self.partition);
        add("time", &self.time);
        add("mem", &self.mem);
        add("account", &self.account);
        if let Some(c) = self.cpus {
            o.push(format!("--cpus-per-task={c}"));
        }
        o.extend(self.extra.iter().cloned());
        o
    }
}

impl SlurmConfig {
    /// The profile `name` names, `""` being the first.
    pub fn profile(&self, name: &str) -> Option<&Profile> {
        if name.is_empty() {
            return self.profile.first();
        }
        self.profile.iter().find(|p| p.name == name)
    }

    /// Checks every value that ends up in the job script: the key at fault and what is
    /// wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, m: &str| Err((k.to_owned(), m.to_owned()));
        for (key, p) in [
            ("slurm.sbatch", &self.sbatch),
            ("slurm.scancel", &self.scancel),
        ] {
            if !p.is_absolute() {
                return err(key, "must be an absolute path");
            }
        }
        if self.slurm_conf.as_ref().is_some_and(|p| !p.is_absolute()) {
            return err("slurm.slurm_conf", "must be an absolute path");
        }
        if !self.command.first().is_some_and(|c| c.starts_with('/'))
            || self.command.iter().any(|a| a.contains(['\0', '\n']))
        {
            return err(
                "slurm.command",
                "must start with an absolute program path, and no argument may hold a newline",
            );
        }
        if self.prologue.contains('\0') {
            return err("slurm.prologue", "must not contain NUL");
        }
        if self.listen_ip.parse::<std::net::IpAddr>().is_err() {
            return err("slurm.listen_ip", "must be an IP address such as 0.0.0.0");
        }
        let out = std::path::Path::new(&self.output);
        if self.output.is_empty()
            || !plain_value(&self.output)
            || out.is_absolute()
            || out
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return err(
                "slurm.output",
                "must be a relative path below the user's home, without `..` or spaces",
            );
        }
        if self.profile.is_empty() {
            return err("slurm.profile", "at least one profile is needed");
        }
        for (i, p) in self.profile.iter().enumerate() {
            let key = |k: &str| format!("slurm.profile[{i}].{k}");
            let name_ok = p.name.len() <= 32
                && p.name
                    .starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !name_ok {
                return Err((key("name"), "must be 1-32 of [a-z0-9_-]".into()));
            }
            if self.profile[..i].iter().any(|q| q.name == p.name) {
                return Err((key("name"), format!("{:?} is used twice", p.name)));
            }
            if p.description.contains(['\n', '\0']) {
                return Err((key("description"), "must be one line".into()));
            }
            for (k, v) in [
                ("partition", &p.partition),
                ("time", &p.time),
                ("mem", &p.mem),
                ("account", &p.account),
            ] {
                if v.as_deref()
                    .is_some_and(|v| v.is_empty() || !plain_value(v))
                {
                    return Err((
                        key(k),
                        "must be a plain value: letters, digits and -_.:,+=%@/".into(),
                    ));
                }
            }
            if p.cpus == Some(0) {
                return Err((key("cpus"), "must be at least 1".into()));
            }
            if let Some(x) = p
                .extra
                .iter()
                .find(|x| !x.starts_with("--") || !plain_value(x))
            {
                return Err((
                    key("extra"),
                    format!("{x:?} must be one `--option=value`, with no spaces or newlines"),
                ));
            }
            if let Some(g) = p.groups.iter().find(|g| !crate::is_posix_name(g)) {
                return Err((key("groups"), format!("{g:?} is not a group name")));
            }
        }
        Ok(())
    }
}

/// A value that is safe on an `#SBATCH` line: no whitespace, no quotes, no shell or
/// line-breaking characters.
fn plain_value(v: &str) -> bool {
    v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.:,+=%@/".contains(c))
}

fn default_sbatch() -> PathBuf {
    PathBuf::from("/usr/bin/sbatch")
}
fn default_scancel() -> PathBuf {
    PathBuf::from("/usr/bin/scancel")
}
fn default_command() -> Vec<String> {
    vec![
        "/opt/sudohub/venv/bin/batchspawner-singleuser".into(),
        "/opt/sudohub/venv/bin/jupyterhub-singleuser".into(),
    ]
}
fn default_listen_ip() -> String {
    "0.0.0.0".into()
}
fn default_output() -> String {
    ".local/state/sudohub/slurm-%j.log".into()
}
fn default_profiles() -> Vec<Profile> {
    vec![Profile {
        name: "default".into(),
        description: "The partition's defaults".into(),
        partition: None,
        time: None,
        mem: None,
        cpus: None,
        account: None,
        extra: Vec::new(),
        groups: Vec::new(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SlurmConfig, String> {
        let c: SlurmConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(c)
    }

    #[test]
    fn profiles_build_their_options_and_refuse_what_could_break_a_line() {
        let c = parse(
            r#"
            [[profile]]
            name = "small"
            partition = "debug"
            time = "1:00:00"
            mem = "2G"
            cpus = 1
            [[profile]]
            name = "gpu"
            extra = ["--gres=gpu:1"]
            groups = ["gpu-users"]
            "#,
        )
        .unwrap();
        assert_eq!(
            c.profile("").unwrap().options(),
            [
                "--partition=debug",
                "--time=1:00:00",
                "--mem=2G",
                "--cpus-per-task=1"
            ]
        );
        let gpu = c.profile("gpu").unwrap();
        assert!(!gpu.allows(&["users".into()]));
        assert!(gpu.allows(&["gpu-users".into()]));
        assert!(c.profile("nope").is_none());
        for bad in [
            "[[profile]]\nname = \"x\"\ntime = \"1:00\\n#SBATCH --uid=0\"",
            "[[profile]]\nname = \"x\"\nextra = [\"--a=b c\"]",
            "[[profile]]\nname = \"x\"\nextra = [\"-Jx\"]",
            "[[profile]]\nname = \"X y\"",
            "[[profile]]\nname = \"x\"\ncpus = 0",
            "output = \"/tmp/x\"",
            "output = \"../x\"",
            "command = [\"batchspawner-singleuser\"]",
            "listen_ip = \"node1\"",
            "profile = []",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("").is_ok());
    }
}
