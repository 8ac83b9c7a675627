//! Leaving nothing of a server behind: after it exits, every process of its group and
//! every descendant re-parented to the helper (its subreaper) is killed and reaped.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// After the server exits: kill what is left of its process group and every descendant
/// that was re-parented to us (we are their subreaper), and reap them all, so that no
/// process of the server outlives it. Bounded in time: a process stuck in the kernel
/// cannot hold the helper forever.
pub fn reap_descendants(server: u32) {
    let _ = killpg(Pid::from_raw(server as i32), Signal::SIGKILL);
    let me = std::process::id();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for pid in children_of(me) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Err(Errno::ECHILD) => return,
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
            _ => {}
        }
    }
}

/// Pids whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(parent)
        })
        .collect()
}
