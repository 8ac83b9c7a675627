//! Dialling a restarted hub. The helper outlives its hub; when its channel closes it dials
//! the hub's re-attach socket with backoff and introduces itself. It claims only; the hub
//! checks the claim against `SO_PEERCRED` and its database.
#![forbid(unsafe_code)]

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use sudohub_protocol::frame::{read_message, write_frame};
use sudohub_protocol::spawner::{ReattachAnswer, ReattachHello};

use crate::channel::Channel;

/// First wait between attempts; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between attempts: a hub back from a crash has every helper again within
/// about a second (dialling a Unix socket that is not there costs next to nothing).
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long the hub has to answer a hello.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Result of one attempt.
pub enum Dial {
    /// The hub accepted: the conversation continues on this channel.
    Accepted(Channel),
    /// The hub refused the claim: do not dial again.
    Refused(String),
    /// No hub yet (or it failed mid-way): try again later.
    Retry(String),
}

/// When to dial next.
pub struct Backoff {
    next_at: Instant,
    wait: Duration,
}

impl Backoff {
    /// Dial at once, then back off.
    pub fn start() -> Self {
        Self {
            next_at: Instant::now(),
            wait: FIRST_BACKOFF,
        }
    }

    /// When the next attempt is due.
    pub fn next_at(&self) -> Instant {
        self.next_at
    }

    /// Records a failed attempt.
    pub fn failed(&mut self) {
        self.next_at = Instant::now() + self.wait;
        self.wait = (self.wait * 2).min(MAX_BACKOFF);
    }
}

/// One attempt: connect, send `hello`, read the answer.
pub fn dial(socket: &Path, hello: &ReattachHello) -> Dial {
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => return Dial::Retry(format!("connect {}: {e}", socket.display())),
    };
    if let Err(e) = stream.set_read_timeout(Some(ANSWER_TIMEOUT)) {
        return Dial::Retry(e.to_string());
    }
    if let Err(e) = write_frame(&mut stream, hello) {
        return Dial::Retry(format!("send hello: {e}"));
    }
    match read_message::<_, ReattachAnswer>(&mut stream) {
        Ok(Some(ReattachAnswer::Accepted)) => {
            if let Err(e) = stream.set_read_timeout(None) {
                return Dial::Retry(e.to_string());
            }
            match Channel::from_stream(stream) {
                Ok(c) => Dial::Accepted(c),
                Err(e) => Dial::Retry(e.to_string()),
            }
        }
        Ok(Some(ReattachAnswer::Refused { message })) => Dial::Refused(message.into_inner()),
        Ok(None) => Dial::Retry("the hub closed the connection without answering".into()),
        Err(e) => Dial::Retry(format!("read answer: {e}")),
    }
}
