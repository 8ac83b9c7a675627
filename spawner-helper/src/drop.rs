//! The end of the root phase: becoming the user for good, and proving it.
//!
//! Order matters, and every step runs while still root:
//! 1. refuse securebits that would keep capabilities across the uid change;
//! 2. clear the ambient and inheritable sets, then the bounding set (dropping from it
//!    needs CAP_SETPCAP, so before the uid change), every capability the kernel knows;
//! 3. the user's supplementary groups, then `setresgid`, then `setresuid`: with
//!    keep-caps off the kernel empties the permitted and effective sets here;
//! 4. no-new-privs, and not dumpable again (a credential change resets the flag);
//! 5. read everything back from the kernel, and try to get root back: any success or any
//!    difference ends the helper before it reads another byte from the hub.
#![forbid(unsafe_code)]

use caps::CapSet;
use nix::unistd::{getgroups, getresgid, getresuid, Gid, Uid, User};
use sudohub_protocol::spawner::ErrorKind;

use crate::error::HelperError;
use crate::sys;

const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
const SECBIT_KEEP_CAPS: u32 = 1 << 4;

/// Drops from root to `user` irrevocably (see the module for the steps).
pub fn to_user(user: &User) -> Result<(), HelperError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        HelperError::new(
            ErrorKind::Internal,
            format!("dropping privileges: {what}: {e}"),
        )
    };
    if threads() != Some(1) {
        return Err(fail("threads", &"the helper must be single-threaded here"));
    }
    // With fs.suid_dumpable = 1 the kernel makes us dumpable again at the uid change, and
    // a process of the user could attach before the next line makes us not dumpable.
    let suid_dumpable = std::fs::read_to_string("/proc/sys/fs/suid_dumpable").unwrap_or_default();
    if suid_dumpable.trim() == "1" {
        return Err(fail(
            "fs.suid_dumpable",
            &"is 1 (debug), which lets the user trace the helper while it drops; set it to 0 or 2",
        ));
    }
    let bits = sys::securebits().map_err(|e| fail("securebits", &e))?;
    if bits & (SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP) != 0 {
        return Err(fail(
            "securebits",
            &format!("{bits:#x} would keep capabilities"),
        ));
    }
    for set in [CapSet::Ambient, CapSet::Inheritable] {
        caps::clear(None, set).map_err(|e| fail("clearing a capability set", &e))?;
    }
    // Every number a capability mask can hold; EINVAL means this kernel has no such one.
    for cap in 0..64 {
        match sys::capbset_drop(cap) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(fail(&format!("bounding capability {cap}"), &e)),
        }
    }
    let name = std::ffi::CString::new(user.name.as_str()).map_err(|e| fail("user name", &e))?;
    nix::unistd::initgroups(&name, user.gid).map_err(|e| fail("initgroups", &e))?;
    nix::unistd::setresgid(user.gid, user.gid, user.gid).map_err(|e| fail("setresgid", &e))?;
    nix::unistd::setresuid(user.uid, user.uid, user.uid).map_err(|e| fail("setresuid", &e))?;
    caps::clear(None, CapSet::Permitted).map_err(|e| fail("permitted set", &e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| fail("no-new-privs", &e))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| fail("dumpable", &e))?;
    verify(user).map_err(|e| fail("check after the drop", &e))
}

/// What the kernel says now, compared with what the drop promised.
fn verify(user: &User) -> Result<(), String> {
    let (u, g) = (user.uid, user.gid);
    let r = getresuid().map_err(|e| e.to_string())?;
    if (r.real, r.effective, r.saved) != (u, u, u) {
        return Err(format!("uids are {r:?}"));
    }
    let r = getresgid().map_err(|e| e.to_string())?;
    if (r.real, r.effective, r.saved) != (g, g, g) {
        return Err(format!("gids are {r:?}"));
    }
    if getgroups()
        .map_err(|e| e.to_string())?
        .contains(&Gid::from_raw(0))
    {
        return Err("group root is still a supplementary group".into());
    }
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    for (key, want) in [
        ("CapInh", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapEff", "0000000000000000"),
        ("CapBnd", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
        ("NoNewPrivs", "1"),
    ] {
        let got = field(&status, key);
        if got != Some(want) {
            return Err(format!("{key} is {got:?}"));
        }
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok()
        || nix::unistd::setgid(Gid::from_raw(0)).is_ok()
        || nix::unistd::setgroups(&[Gid::from_raw(0)]).is_ok()
    {
        return Err("root could be regained".into());
    }
    Ok(())
}

/// The value of `key:` in `/proc/self/status` text.
pub fn field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

fn threads() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    field(&status, "Threads")?.parse().ok()
}
