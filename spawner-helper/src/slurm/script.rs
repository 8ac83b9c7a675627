//! The job script: root's `#SBATCH` lines for a profile, the prologue, the token read
//! from its file, the command.
#![forbid(unsafe_code)]

use std::path::Path;

use sudohub_helpers_config::slurm::{Profile, SlurmConfig};

/// The job's name: `sudohub-<user>` or `sudohub-<user>-<server>`.
pub(super) fn job_name(user: &str, server: &str) -> String {
    if server.is_empty() {
        format!("sudohub-{user}")
    } else {
        format!("sudohub-{user}-{server}")
    }
}

/// Single-quotes `s` for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The job script: root's `#SBATCH` lines for the profile, then the prologue, then the
/// token read from its file (and the file removed), then the command.
pub fn job_script(
    slurm: &SlurmConfig,
    profile: &Profile,
    home: &Path,
    user: &str,
    server: &str,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", job_name(user, server)));
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        home.join(&slurm.output).display()
    ));
    s.push_str(&format!("#SBATCH --chdir={}\n", home.display()));
    // A rerun could not read the token (the first run removed it), and the hub follows
    // the job's first run only; the node's limits, not those sbatch inherited.
    s.push_str("#SBATCH --no-requeue\n#SBATCH --propagate=NONE\n");
    for o in profile.options() {
        s.push_str(&format!("#SBATCH {o}\n"));
    }
    s.push_str("set -eu\n");
    if !slurm.prologue.is_empty() {
        s.push_str(&slurm.prologue);
        s.push('\n');
    }
    s.push_str(
        "JUPYTERHUB_API_TOKEN=$(cat -- \"$SUDOHUB_TOKEN_FILE\")\n\
         rm -f -- \"$SUDOHUB_TOKEN_FILE\"\n\
         JPY_API_TOKEN=$JUPYTERHUB_API_TOKEN\n\
         export JUPYTERHUB_API_TOKEN JPY_API_TOKEN\n\
         unset SUDOHUB_TOKEN_FILE\n",
    );
    let cmd: Vec<String> = slurm.command.iter().map(|a| quote(a)).collect();
    s.push_str(&format!("exec {}\n", cmd.join(" ")));
    s
}
