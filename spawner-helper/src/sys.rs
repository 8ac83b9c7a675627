//! Every `unsafe` of the spawner helper, each behind a small safe function.
//!
//! Four things need it: changing signal dispositions, closing inherited fds, the few
//! `prctl`s of the privilege drop that nix lacks, and the code that runs in the child
//! between `fork` and `exec` (where only async-signal-safe calls are allowed, and nothing
//! may allocate, because another thread of the parent could have held the allocator's lock;
//! this helper is single-threaded, but we keep to the rule anyway).

use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{signal, SigHandler, Signal};

/// Ignores `sig` in this process. Used for SIGHUP and SIGINT, which would otherwise reach
/// the helper from the hub's terminal or process group and orphan the server.
pub fn ignore_signal(sig: Signal) -> io::Result<()> {
    // SAFETY: installing SIG_IGN runs no code of ours in signal context; the helper is
    // single-threaded, so no other thread observes the change mid-way.
    unsafe { signal(sig, SigHandler::SigIgn) }
        .map(drop)
        .map_err(io::Error::from)
}

/// Every signal back to its default disposition and an empty mask, except SIGPIPE (kept
/// ignored, as the Rust runtime set it: a closed stderr must not kill the helper). The
/// caller may have started us with SIGCHLD ignored (then no exit could be waited for) or
/// with signals blocked: in setuid mode that caller is the hub.
pub fn reset_signals() -> io::Result<()> {
    nix::sys::signal::SigSet::empty()
        .thread_set_mask()
        .map_err(io::Error::from)?;
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            continue;
        }
        // SAFETY: restoring SIG_DFL runs no code of ours; single-threaded.
        unsafe { signal(sig, SigHandler::SigDfl) }.map_err(io::Error::from)?;
    }
    Ok(())
}

/// Closes every fd above 2: nothing the caller handed in (sudo closes them, a setuid
/// caller need not) stays open in a root process.
pub fn close_inherited_fds() -> io::Result<()> {
    // The raw system call (Linux 5.9), not glibc's wrapper (2.34): older systems get the
    // loop below instead of a helper that cannot start.
    // SAFETY: close_range only closes descriptors; nothing above 2 is in use by this
    // single-threaded process yet (nothing has been opened).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let open: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in open {
        // SAFETY: closing a descriptor number we do not use; the directory's own fd is
        // closed already (EBADF is ignored).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

/// `PR_GET_SECUREBITS`: with `SECBIT_KEEP_CAPS` or `SECBIT_NO_SETUID_FIXUP` set, changing
/// the uid would not clear the capabilities, so the drop refuses to go on.
pub fn securebits() -> io::Result<u32> {
    // SAFETY: PR_GET_SECUREBITS takes no pointer and only returns a value.
    let rc = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    u32::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Drops capability `cap` from the bounding set (`PR_CAPBSET_DROP`). `caps` knows the
/// capabilities of its own release only; this covers every one the kernel has.
pub fn capbset_drop(cap: u32) -> io::Result<()> {
    // SAFETY: PR_CAPBSET_DROP takes the capability number and no pointer.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Leaves `sudo` behind: forks, the parent exits at once with status 0 (so `sudo`, which
/// waits only for the process it started, exits too and frees its memory), and the child
/// goes on in a session of its own. The channel to the hub is the socketpair on
/// stdin/stdout, which the child keeps; sudo's exit status tells the hub nothing it needs.
pub fn leave_sudo() -> io::Result<()> {
    // SAFETY: the helper is single-threaded at this point (nothing has started a thread),
    // so the child is a complete copy and may go on running Rust code normally.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { .. } => {
            // SAFETY: `_exit` ends the process without running atexit handlers or
            // flushing stdio buffers, which belong to the child now (nothing was written).
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Child => {
            nix::unistd::setsid().map_err(io::Error::from)?;
            Ok(())
        }
    }
}

/// What the child must do to itself before `exec`, computed in the parent so the child
/// only makes system calls.
pub struct ChildSetup {
    /// Set no-new-privs.
    pub no_new_privs: bool,
    /// The umask.
    pub umask: u32,
    /// `(resource, limit)` pairs; soft and hard are both set to the limit.
    pub limits: Vec<(Resource, u64)>,
    /// File descriptors open in the parent, above 2, to mark close-on-exec.
    pub inherited_fds: Vec<RawFd>,
    /// `cgroup.procs` of the server's cgroup in each hierarchy, opened by root: writing
    /// "0" moves the child itself in, before anything else happens.
    pub join_fds: Vec<RawFd>,
}

/// Makes `cmd` apply `setup` in the child, in this order:
///
/// 0. into the server's cgroup, so everything it does from here on counts against its
///    limits and is killed with it; a failed join fails the spawn (never unlimited);
/// 1. `setsid`: the server leads its own session and process group, so stopping it can
///    signal the whole group, and no terminal or hub signal reaches it.
/// 2. an empty signal mask and every signal back to its default disposition: blocked and
///    ignored signals survive `exec`, and the helper blocks SIGTERM and SIGCHLD.
/// 3. umask and rlimits.
/// 4. every inherited fd above 2 marked close-on-exec, so nothing of the helper (its
///    channel to the hub, its signalfd) leaks into the server. std's own error pipe is
///    already close-on-exec, so exec failures are still reported to us.
/// 5. no-new-privs last: it changes nothing above, and from here on nothing the server
///    runs can gain privileges through setuid or file capabilities.
pub fn apply_in_child(cmd: &mut Command, setup: ChildSetup) {
    let closure = move || -> io::Result<()> {
        for &fd in &setup.join_fds {
            // SAFETY: write(2) of a static one-byte buffer to a raw fd is async-signal-safe
            // and allocates nothing.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        nix::unistd::setsid().map_err(io::Error::from)?;
        // The helper reads SIGTERM and SIGCHLD from a signalfd, so they are blocked here,
        // and a blocked mask survives exec: without this the server would never see the
        // SIGTERM of a stop and always die by SIGKILL after the grace period.
        nix::sys::signal::SigSet::empty()
            .thread_set_mask()
            .map_err(io::Error::from)?;
        for sig in Signal::iterator() {
            if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
                continue;
            }
            // SAFETY: restoring SIG_DFL runs no code; we are the only thread of the child.
            // Ignored dispositions (SIGHUP, SIGINT, SIGPIPE here) would survive exec too.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(setup.umask));
        for &(resource, limit) in &setup.limits {
            setrlimit(resource, limit, limit).map_err(io::Error::from)?;
        }
        for &fd in &setup.inherited_fds {
            // SAFETY: fcntl(F_SETFD) on a raw fd number is async-signal-safe and touches
            // no memory; an fd closed meanwhile only yields EBADF, which we ignore.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        if setup.no_new_privs {
            nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
        }
        Ok(())
    };
    // SAFETY: the closure only makes async-signal-safe system calls (write, setsid,
    // pthread_sigmask, signal, umask, setrlimit, fcntl, prctl) on values computed before fork, and allocates
    // nothing; errors are plain errno values.
    unsafe {
        cmd.pre_exec(closure);
    }
}
