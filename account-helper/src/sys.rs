//! The account helper's only `unsafe`: closing the file descriptors it inherited.

/// Closes every fd above 2, so that nothing the caller handed in reaches `useradd`.
pub fn close_inherited_fds() -> std::io::Result<()> {
    // SAFETY: close_range only closes descriptors; none above 2 is in use by this
    // single-threaded process at this point (nothing has been opened yet).
    let rc = unsafe { libc::close_range(3, libc::c_uint::MAX, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
