//! Pacing password checks per account, in state the hub cannot touch.
//!
//! The hub may be compromised: it can run this helper as often as it likes, in parallel,
//! and kill it as soon as a wrong password makes PAM wait. So the cost of a guess is kept
//! here, per target account, in a file of a directory only root and group `shadow` may
//! enter (this helper is setgid `shadow`; the hub is not in `shadow`):
//!
//! 1. the account's file is locked for the whole check: checks of one account never run
//!    in parallel, while other accounts' checks do;
//! 2. after failures, the next check of that account waits ([`delay`]: 2 s, then up to
//!    [`MAX_WAIT`]); it is slowed, never refused, so nobody can lock an account's owner out
//!    by failing for them now and then;
//! 3. a failure is written *before* PAM is asked, and cleared only by a right password:
//!    killing the helper mid-check still counts as a failure. The record is one small
//!    `pwrite` at offset 0, never a truncate, so no signal or `RLIMIT_FSIZE` (refused in
//!    `harden`) can leave it empty; an existing file that cannot be read as a record counts
//!    as failures.
//!
//! A file names the account it counts for, so a uid given to a new account starts clean.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

/// The longest wait before a check (well within the hub's 10 s timeout).
pub const MAX_WAIT: Duration = Duration::from_secs(6);
/// The wait after one failure.
const BASE: Duration = Duration::from_secs(2);
/// Failures assumed for a record that exists but cannot be read.
const UNREADABLE: u32 = 4;
/// Bytes of a record: name (≤ 32), count and milliseconds, space-padded.
const RECORD: usize = 80;

/// How long the next check of an account waits after `failures` failures in a row:
/// none after none, 2 s after up to three, 4 s after four, then [`MAX_WAIT`].
pub fn delay(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        1..=3 => BASE,
        4 => BASE * 2,
        _ => MAX_WAIT,
    }
}

/// Why no check may happen now.
#[derive(Debug)]
pub enum Refusal {
    /// The state directory is missing or not root:shadow without access for others.
    BadState(String),
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
    let open = |create_new: bool| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create_new)
            .mode(0o660)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
    };
    let bad = |e: std::io::Error| Refusal::BadState(format!("{}: {e}", path.display()));
    // Group-writable whatever the caller's umask, so that a record stays usable when the
    // hub's account is made anew with another uid (a reinstall): `fchmod` on the new file.
    let made = || -> std::io::Result<File> {
        let f = open(true)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o660))?;
        Ok(f)
    };
    // A file made now starts clean; one that exists but says nothing readable was cut
    // short by someone: it counts as failures, never as none. One this account cannot
    // open (left by an earlier hub account, before records were group-writable) is
    // replaced, and counts as failures too.
    let (file, new) = match made() {
        Ok(f) => (f, true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match open(false) {
            Ok(f) => (f, false),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                std::fs::remove_file(&path).map_err(bad)?;
                (made().map_err(bad)?, false)
            }
            Err(e) => return Err(bad(e)),
        },
        Err(e) => return Err(bad(e)),
    };
    let mut file = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| Refusal::BadState(format!("{}: lock: {e}", path.display())))?;
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut fields = text.split_whitespace();
    let record = (
        fields.next(),
        fields.next().and_then(|f| f.parse::<u32>().ok()),
        fields.next().and_then(|f| f.parse::<u64>().ok()),
    );
    let (failures, last) = match record {
        (Some(name), Some(f), Some(t)) if name == user => (f, t),
        // A uid given to a new account starts clean.
        (Some(_), Some(_), Some(_)) => (0, 0),
        _ if new => (0, 0),
        _ => (UNREADABLE, now_ms()),
    };
    let due = last.saturating_add(u64::try_from(delay(failures).as_millis()).unwrap_or(u64::MAX));
    let wait = Duration::from_millis(due.saturating_sub(now_ms())).min(MAX_WAIT);
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
    /// One `pwrite` of a fixed-size record at offset 0: the old record is replaced whole
    /// or not at all, and the file never passes through empty.
    fn write(&mut self, failures: u32) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut line = format!("{} {failures} {}", self.user, now_ms());
        if line.len() >= RECORD {
            return Err(std::io::Error::other("record too long"));
        }
        while line.len() < RECORD - 1 {
            line.push(' ');
        }
        line.push('\n');
        self.file.write_all_at(line.as_bytes(), 0)?;
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
    fn delays_grow_after_three_failures_and_never_lock_out() {
        assert_eq!(delay(0), Duration::ZERO);
        assert_eq!(delay(1), BASE);
        assert_eq!(delay(3), BASE);
        assert_eq!(delay(4), BASE * 2);
        assert_eq!(delay(5), MAX_WAIT);
        assert_eq!(delay(40), MAX_WAIT);
    }
}
