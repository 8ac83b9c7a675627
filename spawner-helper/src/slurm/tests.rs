//! The job script, from a helpers.toml.
use std::path::Path;

use super::job_script;

#[test]
fn the_script_has_roots_lines_and_reads_the_token_from_its_file() -> Result<(), String> {
    let text = "hub_user = \"sudohub\"\n[spawner]\nbackend = \"slurm\"\nhub_api_url = \"http://hub:8081/hub/api\"\n[slurm]\nprologue = \"module load python\"\ncommand = [\"/opt/v/bin/batchspawner-singleuser\", \"/opt/v/bin/it's\"]\n[[slurm.profile]]\nname = \"p\"\ntime = \"10\"\nextra = [\"--gres=gpu:1\"]";
    let config = sudohub_helpers_config::parse(text, Path::new("helpers.toml"))
        .map_err(|e| e.to_string())?;
    let slurm = config.slurm.ok_or("no [slurm] table")?;
    let p = slurm.profile("").ok_or("no first profile")?;
    let s = job_script(&slurm, p, Path::new("/home/a"), "a", "lab");
    assert!(s.starts_with("#!/bin/bash\n#SBATCH --job-name=sudohub-a-lab\n"));
    assert!(s.contains("#SBATCH --output=/home/a/.local/state/sudohub/slurm-%j.log\n"));
    assert!(s.contains("#SBATCH --time=10\n#SBATCH --gres=gpu:1\nset -eu\nmodule load python\n"));
    assert!(s.contains("rm -f -- \"$SUDOHUB_TOKEN_FILE\""));
    assert!(s.ends_with("exec '/opt/v/bin/batchspawner-singleuser' '/opt/v/bin/it'\\''s'\n"));
    Ok(())
}
