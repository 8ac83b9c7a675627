//! The helper's end of a conversation with a hub: its stdin/stdout at first, a connection
//! to the re-attach socket later. Frames only; the meaning is in `supervise`.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use serde::Serialize;
use sudohub_protocol::frame::{self, FrameError};
use sudohub_protocol::spawner::Request;
use sudohub_protocol::FrameDecoder;

/// How long a write to the hub may block before the hub is treated as gone: a hub that
/// stops reading must not stall supervision.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one read from the channel gave.
pub enum Incoming {
    /// Zero or more complete requests (more may follow).
    Requests(Vec<Request>),
    /// The hub closed its end, cleanly between frames.
    Closed,
    /// The hub sent something that is not a valid frame; the stream cannot be resynchronised.
    Bad(FrameError),
}

/// A framed, bidirectional channel over two fds (the same socket twice, or stdin/stdout).
pub struct Channel {
    reader: File,
    writer: File,
    decoder: FrameDecoder,
}

impl Channel {
    /// The channel the hub gave us: stdin for reading, stdout for writing.
    pub fn from_stdio() -> io::Result<Self> {
        let reader = io::stdin().as_fd().try_clone_to_owned()?;
        let writer = io::stdout().as_fd().try_clone_to_owned()?;
        Ok(Self::new(reader, writer))
    }

    /// A channel over a connected socket.
    pub fn from_stream(stream: std::os::unix::net::UnixStream) -> io::Result<Self> {
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let writer: OwnedFd = stream.try_clone()?.into();
        Ok(Self::new(stream.into(), writer))
    }

    fn new(reader: OwnedFd, writer: OwnedFd) -> Self {
        Self {
            reader: File::from(reader),
            writer: File::from(writer),
            decoder: FrameDecoder::new(),
        }
    }

    /// The fd to poll for readability.
    pub fn poll_fd(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }

    /// Reads what is available (call after poll reported readable) and splits frames.
    pub fn read(&mut self) -> Incoming {
        let mut buf = [0u8; 8192];
        match self.reader.read(&mut buf) {
            Ok(0) => match self.decoder.eof_error() {
                Some(e) => Incoming::Bad(e),
                None => Incoming::Closed,
            },
            Ok(n) => {
                self.decoder.push(&buf[..n]);
                let mut out = Vec::new();
                loop {
                    match self.decoder.next_message::<Request>() {
                        Ok(Some(r)) => out.push(r),
                        Ok(None) => return Incoming::Requests(out),
                        Err(e) => return Incoming::Bad(e),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Incoming::Requests(Vec::new()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Incoming::Requests(Vec::new()),
            Err(_) => Incoming::Closed,
        }
    }

    /// Sends one message. An error means the hub is gone.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        let bytes = frame::encode(msg)?;
        self.writer.write_all(&bytes)?;
        self.writer.flush()?;
        Ok(())
    }
}
