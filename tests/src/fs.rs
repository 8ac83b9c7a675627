//! Writing files with exact owners and modes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::unistd::{Gid, Uid};

/// Writes `bytes` to `path`, then sets owner and mode (chown before chmod: chown clears
/// setgid bits).
pub fn write_owned(path: &Path, bytes: &[u8], uid: Uid, gid: Gid, mode: u32) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    chown_mode(path, uid, gid, mode);
}

/// Sets owner and mode of an existing path.
pub fn chown_mode(path: &Path, uid: Uid, gid: Gid, mode: u32) {
    nix::unistd::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A directory made for one test with its owner and mode, removed (with what is in it)
/// when dropped.
pub struct OwnedDir {
    /// Where it is.
    pub path: std::path::PathBuf,
}

impl OwnedDir {
    /// Makes `path` (and its parents) owned by `uid`:`gid` with `mode`.
    pub fn create(path: impl Into<std::path::PathBuf>, uid: Uid, gid: Gid, mode: u32) -> Self {
        let path = path.into();
        std::fs::create_dir_all(&path).unwrap();
        chown_mode(&path, uid, gid, mode);
        Self { path }
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A file removed when dropped (one a test put in a system directory).
pub struct RemovedFile(pub std::path::PathBuf);

impl Drop for RemovedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
