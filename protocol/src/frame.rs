//! Length-prefixed postcard frames: a `u32` little-endian body length, then the body.
//!
//! The length is checked against [`MAX_FRAME_LEN`] before any buffer is sized from it,
//! and a body must decode with no bytes left over. Buffers that held a frame are zeroed
//! when dropped, because spawn requests carry API tokens and PAM requests passwords.

use std::fmt;
use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::MAX_FRAME_LEN;

/// Size of the length prefix.
pub const HEADER_LEN: usize = 4;

/// Everything that can go wrong reading or writing a frame.
#[derive(Debug)]
pub enum FrameError {
    /// The announced or produced body is larger than [`MAX_FRAME_LEN`].
    TooLarge {
        /// The length, in bytes.
        len: usize,
    },
    /// The stream ended inside a frame.
    Truncated {
        /// Bytes the frame needed.
        expected: usize,
        /// Bytes that arrived.
        got: usize,
    },
    /// The body is not a valid value of the expected message type.
    Malformed(postcard::Error),
    /// The body decoded, but bytes were left over.
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The underlying reader or writer failed.
    Io(io::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => {
                write!(
                    f,
                    "frame of {len} bytes exceeds the limit of {MAX_FRAME_LEN}"
                )
            }
            Self::Truncated { expected, got } => {
                write!(f, "truncated frame: expected {expected} bytes, got {got}")
            }
            Self::Malformed(e) => write!(f, "malformed frame: {e}"),
            Self::TrailingBytes { count } => write!(f, "malformed frame: {count} trailing bytes"),
            Self::Io(e) => write!(f, "i/o error on the channel: {e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Reads the body length out of a header, refusing lengths over the limit.
///
/// Async readers call this on the four header bytes before allocating the body.
pub fn body_len(header: [u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len });
    }
    Ok(len)
}

/// Serialises `msg` into a complete frame (header and body).
pub fn encode<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut out = Zeroizing::new(vec![0u8; HEADER_LEN]);
    let body = Zeroizing::new(postcard::to_stdvec(msg).map_err(FrameError::Malformed)?);
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len: body.len() });
    }
    // The cast cannot truncate: the length is at most MAX_FRAME_LEN.
    out[..HEADER_LEN].copy_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes one whole body; bytes left over are an error.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (value, rest) = postcard::take_from_bytes::<T>(body).map_err(FrameError::Malformed)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { count: rest.len() });
    }
    Ok(value)
}

/// Writes `msg` as one frame and flushes.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let frame = encode(msg)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame body. `Ok(None)` means the stream ended cleanly before a new frame.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Option<Zeroizing<Vec<u8>>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_full(r, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if got < HEADER_LEN {
        return Err(FrameError::Truncated {
            expected: HEADER_LEN,
            got,
        });
    }
    let len = body_len(header)?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    let got = read_full(r, &mut body)?;
    if got < len {
        return Err(FrameError::Truncated { expected: len, got });
    }
    Ok(Some(body))
}

/// Reads one frame and decodes it as `T`. `Ok(None)` on a clean end of stream.
pub fn read_message<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Option<T>, FrameError> {
    match read_frame(r)? {
        Some(body) => decode(&body).map(Some),
        None => Ok(None),
    }
}

/// Fills `buf` as far as the stream allows; returns how many bytes arrived.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Incremental frame splitter for a poll loop: feed it whatever bytes a non-blocking
/// read returned, then take out complete bodies.
///
/// It never buffers more than one header plus [`MAX_FRAME_LEN`] bytes of a frame: an
/// oversize length is reported as soon as its header is complete.
#[derive(Default)]
pub struct FrameDecoder {
    buf: Zeroizing<Vec<u8>>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the channel.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// True when no partial frame is buffered, i.e. an end of stream here is clean.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How many bytes are buffered.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next complete body out, if one has fully arrived.
    pub fn next_body(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, FrameError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(header);
        let len = body_len(h)?;
        if self.buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let body = Zeroizing::new(self.buf[HEADER_LEN..HEADER_LEN + len].to_vec());
        self.buf.drain(..HEADER_LEN + len);
        Ok(Some(body))
    }

    /// Takes the next complete message out and decodes it as `T`.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_body()? {
            Some(body) => decode(&body).map(Some),
            None => Ok(None),
        }
    }

    /// The error to report when the stream ends now: `None` if it ended between frames.
    pub fn eof_error(&self) -> Option<FrameError> {
        if self.buf.is_empty() {
            return None;
        }
        let expected = match self.buf.get(..HEADER_LEN) {
            Some(h) => {
                let mut a = [0u8; HEADER_LEN];
                a.copy_from_slice(h);
                HEADER_LEN + u32::from_le_bytes(a) as usize
            }
            None => HEADER_LEN,
        };
        Some(FrameError::Truncated {
            expected,
            got: self.buf.len(),
        })
    }
}
