//! The single-node Slurm cluster the Slurm backend is tested on: Debian's slurmctld,
//! slurmd and munge, started by the test as root with a generated `slurm.conf`
//! (tests/src/slurm.rs), runs a batch job as the user who submitted it, queues what does
//! not fit, cancels on `scancel` by that user and refuses it from another.

use std::time::Duration;

use sudohub_tests::slurm::Cluster;
use sudohub_tests::system::TestUser;
use sudohub_tests::{unique_name, wait_for};

fn submit(c: &Cluster, user: &TestUser, script: &str) -> String {
    let path = user.home.join(format!("{}.sh", unique_name("job")));
    std::fs::write(&path, script).unwrap();
    std::process::Command::new("chown")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(&path)
        .status()
        .unwrap();
    let out = c.client_as(user, "sbatch", &["--parsable", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "sbatch: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.chars().all(|c| c.is_ascii_digit()), "job id {id:?}");
    id
}

fn state_becomes(c: &Cluster, id: &str, want: &str) {
    let got = wait_for(Duration::from_secs(60), || {
        c.job_state(id).filter(|s| s == want)
    });
    assert!(
        got.is_some(),
        "job {id} never became {want}: it is {:?}\n{}",
        c.job_state(id),
        c.log()
    );
}

#[test]
fn the_test_cluster_runs_queues_and_cancels_jobs_as_their_user() {
    let c = Cluster::start();
    let alice = TestUser::create(&unique_name("sla"), &[], None);
    let mallory = TestUser::create(&unique_name("slm"), &[], None);

    // A job runs as its user, inside Slurm (its job id in its environment).
    let out = alice.home.join("out.txt");
    let id = submit(
        &c,
        &alice,
        &format!(
            "#!/bin/sh\n#SBATCH --output={}\nid -u; echo \"job=$SLURM_JOB_ID\"\n",
            out.display()
        ),
    );
    state_becomes(&c, &id, "COMPLETED");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, format!("{}\njob={id}\n", alice.uid), "{text}");

    // The node's CPUs taken, the next job waits in the queue.
    let busy = "#!/bin/sh\n#SBATCH --cpus-per-task=1\n#SBATCH --output=/dev/null\nsleep 300\n";
    let running: Vec<String> = (0..c.cpus).map(|_| submit(&c, &alice, busy)).collect();
    for id in &running {
        state_becomes(&c, id, "RUNNING");
    }
    let queued = submit(&c, &alice, busy);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.job_state(&queued).as_deref(), Some("PENDING"));

    // Another user cannot cancel alice's job; alice can.
    let out = c.client_as(&mallory, "scancel", &[&running[0]]);
    assert!(
        !out.status.success() || !String::from_utf8_lossy(&out.stderr).is_empty(),
        "scancel by another user said nothing"
    );
    assert_eq!(c.job_state(&running[0]).as_deref(), Some("RUNNING"));
    let out = c.client_as(&alice, "scancel", &[&running[0]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    state_becomes(&c, &running[0], "CANCELLED");
    // The freed CPU goes to the queued job.
    state_becomes(&c, &queued, "RUNNING");
}
