//! A real single-node Slurm cluster (Debian's `slurmctld`, `slurmd` and `munge`) for one
//! test: its own munge key and socket, `slurm.conf`, state and spool in a fresh
//! directory, the daemons on free loopback ports, one node named after the test. No
//! file under /etc is touched: the client commands find the cluster through `SLURM_CONF`.
//! Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::hub::free_port;
use crate::system::TestUser;

/// A running cluster: munged, slurmctld and one slurmd.
pub struct Cluster {
    dir: PathBuf,
    munged: Option<u32>,
    daemons: Vec<Child>,
    /// The node's name in `slurm.conf` (not the host's name).
    pub node: String,
    /// CPUs the node offers: jobs of one CPU each beyond this wait in the queue.
    pub cpus: u32,
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd, and waits until the node is idle.
    pub fn start() -> Self {
        crate::require_root();
        for bin in [
            "/usr/sbin/munged",
            "/usr/sbin/slurmctld",
            "/usr/sbin/slurmd",
            "/usr/bin/sbatch",
        ] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: scripts/test-deps.sh installs slurmctld, slurmd, slurm-client and munge"
            );
        }
        let name = crate::unique_name("slurm");
        let dir = std::env::temp_dir().join(&name);
        let munge = dir.join("munge");
        for d in ["state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::create_dir_all(&munge).unwrap();
        // Every user's Slurm commands read the config and reach munge's socket.
        let root = (nix::unistd::Uid::from_raw(0), nix::unistd::Gid::from_raw(0));
        crate::fs::chown_mode(&dir, root.0, root.1, 0o755);
        let m = nix::unistd::User::from_name("munge")
            .unwrap()
            .expect("the munge package's account");
        let key = munge.join("munge.key");
        let mut secret = vec![0u8; 1024];
        getrandom(&mut secret);
        crate::fs::write_owned(&key, &secret, m.uid, m.gid, 0o400);
        crate::fs::chown_mode(&munge, m.uid, m.gid, 0o711);
        let pidfile = munge.join("munged.pid");
        let out = Command::new("runuser")
            .args(["-u", "munge", "--", "/usr/sbin/munged"])
            .arg(format!("--socket={}", munge.join("munge.socket").display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--log-file={}", munge.join("munged.log").display()))
            .arg(format!("--pid-file={}", pidfile.display()))
            .arg(format!("--seed-file={}", munge.join("seed").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "munged: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let munged = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        let node = name.replace('x', "n");
        let cpus = 2;
        std::fs::write(
            dir.join("slurm.conf"),
            format!(
                "ClusterName=sudohubtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool/%n
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
InactiveLimit=0
KillWait=5
OverTimeLimit=0
NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
",
                ctld = free_port(),
                slurmd = free_port(),
                dir = dir.display(),
                host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .unwrap()
                    .trim(),
            ),
        )
        .unwrap();
        let mut c = Self {
            dir,
            munged,
            daemons: Vec::new(),
            node,
            cpus,
        };
        let conf = c.conf();
        let node = c.node.clone();
        // In the foreground (-D), so that they are this value's children; they log to files.
        for (program, args) in [
            ("/usr/sbin/slurmctld", vec!["-D", "-c", "-f"]),
            ("/usr/sbin/slurmd", vec!["-D", "-N", &node, "-f"]),
        ] {
            let child = Command::new(program)
                .args(args)
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            c.daemons.push(child);
        }
        c.wait_idle();
        c
    }

    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.client("sinfo", &["-h", "-o", "%T"]);
            if String::from_utf8_lossy(&out.stdout).trim() == "idle" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the Slurm node never became idle: sinfo said {:?} {:?}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The cluster's `slurm.conf`, as `SLURM_CONF` for the client commands.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    /// A Slurm client command (`squeue`, `sinfo`, `scontrol`) run as root.
    pub fn client(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .output()
            .unwrap()
    }

    /// A Slurm client command run as `user`.
    pub fn client_as(&self, user: &TestUser, program: &str, args: &[&str]) -> Output {
        user.command(program)
            .args(args)
            .env("SLURM_CONF", self.conf())
            .current_dir(&user.home)
            .output()
            .unwrap()
    }

    /// The state of job `id` as squeue names it (`PENDING`, `RUNNING`, `COMPLETED`,
    /// `TIMEOUT`, …), or None once Slurm has forgotten it.
    pub fn job_state(&self, id: &str) -> Option<String> {
        let out = self.client("squeue", &["-h", "--states=all", "-j", id, "-o", "%T"]);
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    /// The daemons' logs, for failure messages.
    pub fn log(&self) -> String {
        ["slurmctld.log", "slurmd.log"]
            .iter()
            .map(|f| {
                let text =
                    std::fs::read_to_string(self.dir.join("log").join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- {f}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn getrandom(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(buf)
        .unwrap();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Jobs first (their processes belong to slurmd), then the daemons, then munge.
        let _ = self.client("scancel", &["--full", "--partition=debug"]);
        for d in self.daemons.iter_mut().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(d.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(d.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        if let Some(pid) = self.munged {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
