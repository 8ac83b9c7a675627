//! The files of a server's cgroup, read and written by root without following links:
//! the ownership check of the directories above it, and fds opened for later.
#![forbid(unsafe_code)]

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use sudohub_protocol::spawner::ErrorKind;

use crate::error::HelperError;

/// Every directory from the hierarchy's root down to `dir` must be root's and writable
/// by nobody else: otherwise whoever may write there could move servers out of their
/// group (a `cgroup_parent` inside a subtree delegated to someone).
pub(super) fn only_root_writes(dir: &Path) -> Result<(), HelperError> {
    use std::os::unix::fs::MetadataExt;
    for d in dir.ancestors() {
        let m = std::fs::symlink_metadata(d).map_err(|e| io(d, &e))?;
        if m.uid() != 0 || m.mode() & 0o022 != 0 || !m.is_dir() {
            return Err(failed(format!(
                "{} is not root's alone (owner {}, mode {:o}): servers' groups must be below directories only root can write; check [limits] cgroup_parent",
                d.display(),
                m.uid(),
                m.mode() & 0o7777
            )));
        }
        if d.parent()
            .is_some_and(|p| p.as_os_str() == "/sys/fs/cgroup" || p == Path::new("/"))
        {
            break;
        }
    }
    Ok(())
}

pub(super) fn open_dir(path: &Path) -> Result<OwnedFd, HelperError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| io(path, &e))
}

/// Reads `name` below the directory `dir`; `None` once the directory is gone.
pub(super) fn read_at(dir: &OwnedFd, name: &str) -> Option<String> {
    use nix::fcntl::{openat, OFlag};
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).ok()?;
    Some(text)
}

pub(super) fn open_write(path: &Path) -> Result<OwnedFd, HelperError> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| io(path, &e))
}

pub(super) fn write_file(path: &Path, value: &str) -> Result<(), HelperError> {
    if path
        .file_name()
        .is_some_and(|n| n == "memory.memsw.limit_in_bytes" || n == "memory.swap.max")
        && !path.exists()
    {
        return Ok(()); // no swap accounting on this machine: nothing to escape into
    }
    let mut f = std::fs::File::from(open_write(path)?);
    f.write_all(value.as_bytes())
        .map_err(|e| failed(format!("cannot write {value:?} to {}: {e}", path.display())))
}

pub(super) fn io(path: &Path, e: &std::io::Error) -> HelperError {
    failed(format!("{}: {e}", path.display()))
}

pub(super) fn failed(message: String) -> HelperError {
    HelperError::new(ErrorKind::Cgroup, message)
}
