//! The PAM helper's only `unsafe`: closing inherited file descriptors.

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
