//! The file a job's API token travels in: one of its own per submit, the user's alone.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sudohub_protocol::spawner::ErrorKind;

use crate::error::HelperError;

/// The token files of a server's jobs are `~/<log_dir>/slurm-<server or "default">-<random>.token`.
fn token_prefix(server: &str) -> String {
    let name = if server.is_empty() { "default" } else { server };
    format!("slurm-{name}-")
}

/// Removes what is left of the token files of `server`'s jobs (a job cancelled before it
/// ran never read its own).
pub(super) fn remove_tokens(home: &Path, log_dir: &str, server: &str) {
    let dir = home.join(log_dir);
    let prefix = token_prefix(server);
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".token") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes the token to a new file of mode 0600, named for this one submit, in a
/// directory of mode 0700 (as the user: a link planted there can only lead to the user's
/// own files, and none is followed). A name of its own per submit: an older job of the
/// same server still queued cannot read the next one's token.
pub(super) fn write_token(
    home: &Path,
    log_dir: &str,
    server: &str,
    token: &str,
) -> Result<PathBuf, HelperError> {
    let fail = |what: &str, e: std::io::Error| {
        HelperError::new(ErrorKind::SpawnFailed, format!("{what}: {e}"))
    };
    let mut random = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .map_err(|e| fail("cannot read /dev/urandom", e))?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let dir = home.join(log_dir);
    let path = dir.join(format!("{}{suffix}.token", token_prefix(server)));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| fail("cannot make the directory for the job's token", e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(|e| fail("cannot create the job's token file", e))?;
    f.write_all(token.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| fail("cannot write the job's token file", e))?;
    Ok(path)
}
