//! Running `sbatch` or `scancel`, bounded in time, their output read back.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sudohub_protocol::spawner::ErrorKind;

use crate::error::HelperError;

/// How long `sbatch` or `scancel` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a command did.
pub struct Ran {
    /// Whether it exited 0.
    pub ok: bool,
    /// Its output.
    pub stdout: String,
    /// Its error output, one line.
    pub stderr: String,
}

/// Runs `cmd` with `input` on its stdin, within [`COMMAND_TIMEOUT`]; stderr is cut to
/// one line for the hub's log.
pub fn run(mut cmd: Command, input: Option<&[u8]>) -> Result<Ran, HelperError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let fail = |e: std::io::Error| {
        HelperError::new(ErrorKind::SpawnFailed, format!("cannot run {program}: {e}"))
    };
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        stdin.write_all(input).map_err(fail)?;
    }
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().map_err(fail)? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HelperError::new(
                ErrorKind::SpawnFailed,
                format!("{program} did not finish within 60 s"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |r: Option<&mut dyn Read>| {
        let mut s = String::new();
        if let Some(r) = r {
            let _ = r.take(64 * 1024).read_to_string(&mut s);
        }
        s
    };
    let stdout = read(child.stdout.as_mut().map(|r| r as &mut dyn Read));
    let stderr = read(child.stderr.as_mut().map(|r| r as &mut dyn Read));
    let stderr = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    Ok(Ran {
        ok: status.success(),
        stdout,
        stderr,
    })
}
