//! The control socket's little protocol: one line each way at a time, read a byte at a
//! time (never buffered past the line, since the sockets of a hand-over follow it on the
//! same connection). And `sudohub upgrade` / `sudohub reload`, its command-line client.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Longest line either side sends.
const MAX_LINE: usize = 256;

/// What the client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Start the installed binary as the successor and hand everything over to it.
    Upgrade,
    /// Read hub.toml and the TLS files again in place.
    Reload,
    /// (The successor.) Send me the sockets.
    Takeover,
}

impl Ask {
    /// Parses a command line.
    pub fn parse(line: &str) -> Option<Self> {
        match line {
            "upgrade" => Some(Self::Upgrade),
            "reload" => Some(Self::Reload),
            "takeover" => Some(Self::Takeover),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Upgrade => "upgrade",
            Self::Reload => "reload",
            Self::Takeover => "takeover",
        }
    }
}

/// Reads one line (without its newline); `None` at a clean end.
pub async fn read_line(s: &mut UnixStream) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        if s.read(&mut b).await? == 0 {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
        if line.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "line too long",
            ));
        }
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))
}

/// Writes one line; newlines inside `text` become spaces.
pub async fn write_line(s: &mut UnixStream, text: &str) -> std::io::Result<()> {
    let mut line = text.replace(['\n', '\r'], " ");
    line.push('\n');
    s.write_all(line.as_bytes()).await
}

/// `sudohub upgrade` / `sudohub reload`: asks the hub listening on `control` and prints
/// its answer. Exit 0 when it says `ok`.
pub fn client(control: &Path, ask: Ask) -> std::process::ExitCode {
    use std::process::ExitCode;
    let mut s = match std::os::unix::net::UnixStream::connect(control) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "sudohub: no hub answers on {}: {e} (is it running, and are you its user?)",
                control.display()
            );
            return ExitCode::from(1);
        }
    };
    // An upgrade waits for the new process to start and take its servers back; each of
    // its steps has a deadline of its own (30 s, 60 s, the starts under way, 60 s), and
    // the hub answers once they are over, so this only guards against a hub that hangs.
    let _ = s.set_read_timeout(Some(Duration::from_secs(600)));
    if let Err(e) = writeln!(s, "{}", ask.word()) {
        eprintln!("sudohub: {e}");
        return ExitCode::from(1);
    }
    let mut answer = Vec::new();
    let mut b = [0u8; 1];
    while answer.len() <= MAX_LINE {
        match s.read(&mut b) {
            Ok(1) if b[0] != b'\n' => answer.push(b[0]),
            Ok(_) => break,
            Err(e) => {
                eprintln!("sudohub: no answer from the hub: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    match answer.strip_prefix("ok") {
        Some(rest) => {
            println!("{}", rest.trim());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "sudohub: {}",
                answer.strip_prefix("error ").unwrap_or(&answer)
            );
            ExitCode::from(1)
        }
    }
}
