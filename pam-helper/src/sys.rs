//! The PAM helper's only `unsafe`: closing inherited file descriptors, and telling PAM not
//! to sleep after a failure.

use std::ffi::{c_int, c_uint, c_void};

use pam_client::{Context, ConversationHandler};

/// Linux-PAM's item for the application's own failure-delay function (`_pam_types.h`).
const PAM_FAIL_DELAY: c_int = 10;

/// The failure delay the helper gives PAM: none. The cost of a wrong guess is the pacing's
/// (`pace`), kept per account across processes; PAM's own sleep only made a wrong password
/// answer later than a right one, which told a caller that kills the helper early which
/// guess was right.
extern "C" fn no_delay(_retval: c_int, _usec_delay: c_uint, _appdata_ptr: *mut c_void) {}

/// Replaces PAM's failure delay (`pam_unix` asks for 2 s) with [`no_delay`]. False if PAM
/// refused the item.
pub fn no_fail_delay<C: ConversationHandler>(ctx: &mut Context<C>) -> bool {
    let delay_fn: extern "C" fn(c_int, c_uint, *mut c_void) = no_delay;
    // SAFETY: for PAM_FAIL_DELAY, Linux-PAM stores the pointer it is given as a function
    // `void (*)(int, unsigned, void *)` and calls it after a failed module; `no_delay` has
    // exactly that C signature, does nothing, and lives for the whole program. `set_item`
    // only passes the pointer on to `pam_set_item` (as pam-client does for its own items).
    unsafe { ctx.set_item(PAM_FAIL_DELAY, delay_fn as *const c_void) }.is_ok()
}

/// Closes every fd above 2 the caller left open, so that no PAM module can read from or
/// write to something the caller handed us (the helper is setgid: its caller is not
/// trusted with what it passes in).
pub fn close_inherited_fds() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&fd| fd > 2)
            .collect(),
        Err(_) => (3..1024).collect(),
    };
    for fd in fds {
        // SAFETY: closing a raw fd number we do not otherwise use; the read_dir handle
        // above is already dropped, and an fd that is not open just yields EBADF.
        unsafe { libc::close(fd) };
    }
}
