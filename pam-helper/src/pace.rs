//! Pacing password checks per account, in state the hub cannot touch.
//!
//! The hub may be compromised: it can run this helper as often as it likes, in parallel,
//! and kill it as soon as a wrong password makes PAM wait. So the cost of a guess is kept
//! here, per target account, in a file of a directory only root and group `shadow` may
//! enter (this helper is setgid `shadow`; the hub is not in `shadow`):
//!
//! 1. the account's file is locked for the whole check: checks of one account never run
//!    in parallel, while other accounts' checks do;
//! 2. after failures, the next check of that account waits ([`delay`]: 2 s, then longer);
//!    a wait longer than [`MAX_WAIT`] is not waited for: the answer is "too many tries"
//!    without asking PAM;
//! 3. a failure is written *before* PAM is asked, and cleared only by a right password:
//!    killing the helper mid-check still counts as a failure.
//!
//! A file names the account it counts for, so a uid given to a new account starts clean.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

/// The longest wait this helper sits out; beyond it the check is refused at once.
pub const MAX_WAIT: Duration = Duration::from_secs(6);
/// The wait after one failure.
const BASE: Duration = Duration::from_secs(2);
/// The longest wait.
const MAX_DELAY: Duration = Duration::from_secs(300);

/// How long the next check of an account waits after `failures` failures in a row:
/// none after none, 2 s after up to three, then doubling up to five minutes.
pub fn delay(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        1..=3 => BASE,
        n => BASE
            .saturating_mul(1u32.checked_shl(n - 3).unwrap_or(u32::MAX))
            .min(MAX_DELAY),
    }
}

/// Why no check may happen now.
#[derive(Debug)]
pub enum Refusal {
    /// The state directory is missing or not root:shadow without access for others.
    BadState(String),
    /// Too many recent failures: the next check is due later than [`MAX_WAIT`] from now.
    TooSoon,
}

/// An account's turn: its file stays locked until this is dropped.
pub struct Turn {
    file: Flock<File>,
    user: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Checks the directory: a real directory, owned by root, group `shadow_gid`, nothing
/// for others.
fn check_dir(dir: &Path, shadow_gid: u32) -> Result<(), Refusal> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| {
        Refusal::BadState(format!(
            "{}: {e} (install.sh creates it root:shadow 0770)",
            dir.display()
        ))
    })?;
    if !m.is_dir() || m.uid() != 0 || m.gid() != shadow_gid || m.mode() & 0o007 != 0 {
        return Err(Refusal::BadState(format!(
            "{} must be a directory owned by root:shadow with no access for others (mode 0770)",
            dir.display()
        )));
    }
    Ok(())
}

/// Waits for and takes `user`'s (uid `uid`) turn, sits out the delay its failures ask
/// for, and records this check as a failure until [`Turn::succeeded`] says otherwise.
pub fn take_turn(dir: &Path, shadow_gid: u32, uid: u32, user: &str) -> Result<Turn, Refusal> {
    check_dir(dir, shadow_gid)?;
    let path = dir.join(uid.to_string());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o660)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| Refusal::BadState(format!("{}: {e}", path.display())))?;
    let mut file = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| Refusal::BadState(format!("{}: lock: {e}", path.display())))?;
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut fields = text.split_whitespace();
    let (name, failures, last) = (
        fields.next().unwrap_or(""),
        fields
            .next()
            .and_then(|f| f.parse::<u32>().ok())
            .unwrap_or(0),
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0),
    );
    let failures = if name == user { failures } else { 0 };
    let due = last.saturating_add(u64::try_from(delay(failures).as_millis()).unwrap_or(u64::MAX));
    let wait = Duration::from_millis(due.saturating_sub(now_ms()));
    if wait > MAX_WAIT {
        return Err(Refusal::TooSoon);
    }
    std::thread::sleep(wait);
    let mut turn = Turn {
        file,
        user: user.to_owned(),
    };
    turn.write(failures.saturating_add(1))
        .map_err(|e| Refusal::BadState(format!("{}: {e}", path.display())))?;
    Ok(turn)
}

impl Turn {
    fn write(&mut self, failures: u32) -> std::io::Result<()> {
        let line = format!("{} {failures} {}\n", self.user, now_ms());
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }

    /// The password was right: the account's count starts again.
    pub fn succeeded(mut self) {
        let _ = self.write(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_three_failures() {
        assert_eq!(delay(0), Duration::ZERO);
        assert_eq!(delay(1), BASE);
        assert_eq!(delay(3), BASE);
        assert_eq!(delay(4), BASE * 2);
        assert_eq!(delay(5), BASE * 4);
        assert_eq!(delay(40), MAX_DELAY);
    }
}
