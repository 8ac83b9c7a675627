//! Client of `sudohub-pam`: one helper process per login attempt.
//!
//! The hub never sees a password hash: it hands the username and password to the setgid
//! helper on a pipe and reads one answer. Around that it adds a timeout and a bound on
//! concurrent attempts; rate limits, lockouts and the group rules are the front door's
//! ([`super::login`]).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sudohub_protocol::frame::{self, HEADER_LEN};
use sudohub_protocol::pam::{PamAnswer, PamRequest};
use sudohub_protocol::{Bounded, Hello, Secret, MAX_FRAME_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::login::AuthError;

/// How to run the helper.
#[derive(Debug, Clone)]
pub struct PamClientConfig {
    /// Path of `sudohub-pam` (installed root:shadow 2755).
    pub helper: PathBuf,
    /// Longest a check may take (PAM modules can be slow, e.g. `pam_faildelay`).
    pub timeout: Duration,
    /// Most checks running at once; more wait their turn.
    pub max_concurrent: usize,
}

impl Default for PamClientConfig {
    fn default() -> Self {
        Self {
            helper: PathBuf::from("/usr/lib/sudohub/sudohub-pam"),
            timeout: Duration::from_secs(10),
            max_concurrent: 8,
        }
    }
}

/// Runs `sudohub-pam`, a bounded number at a time.
#[derive(Debug)]
pub struct PamClient {
    config: PamClientConfig,
    slots: Semaphore,
}

impl PamClient {
    /// A client running `config.helper`.
    pub fn new(config: PamClientConfig) -> Self {
        let slots = Semaphore::new(config.max_concurrent.max(1));
        Self { config, slots }
    }

    /// Asks PAM whether `username`/`password` may log in: `Ok` or why not.
    pub async fn check(&self, username: &str, password: Secret) -> Result<(), AuthError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| AuthError::Helper("shutting down".into()))?;
        tokio::time::timeout(self.config.timeout, self.ask_helper(username, password))
            .await
            .unwrap_or(Err(AuthError::Timeout))
    }

    /// The longest a check may take.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// One helper run: hello + request on stdin, one answer on stdout.
    async fn ask_helper(&self, username: &str, password: Secret) -> Result<(), AuthError> {
        let username =
            Bounded::new(username).map_err(|e| AuthError::Invalid(format!("user name: {e}")))?;
        let mut input = frame::encode(&PamRequest::Hello(Hello::current()))
            .map_err(|e| AuthError::Helper(e.to_string()))?;
        let request = frame::encode(&PamRequest::Authenticate { username, password })
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        input.extend_from_slice(&request);

        let mut child = Command::new(&self.config.helper)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                AuthError::Helper(format!("cannot run {}: {e}", self.config.helper.display()))
            })?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(crate::helper_output::each_line(stderr, |line| {
                tracing::info!(target: "sudohub::pam_helper", line = ?line, "PAM helper");
            }));
        }
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| AuthError::Helper("no stdin".into()))?;
        // The helper may refuse before reading (wrong caller): a broken pipe is not fatal.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
        let mut out = Vec::new();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| AuthError::Helper("no stdout".into()))?;
        stdout
            .take((HEADER_LEN + MAX_FRAME_LEN) as u64)
            .read_to_end(&mut out)
            .await
            .map_err(|e| AuthError::Helper(e.to_string()))?;
        let _ = child.wait().await;
        let answer = match out.get(..HEADER_LEN) {
            Some(h) => {
                let mut header = [0u8; HEADER_LEN];
                header.copy_from_slice(h);
                let len = frame::body_len(header).map_err(|e| AuthError::Helper(e.to_string()))?;
                let body = out
                    .get(HEADER_LEN..HEADER_LEN + len)
                    .ok_or_else(|| AuthError::Helper("truncated answer".into()))?;
                frame::decode::<PamAnswer>(body).map_err(|e| AuthError::Helper(e.to_string()))?
            }
            None => return Err(AuthError::Helper("the PAM helper gave no answer".into())),
        };
        match answer {
            PamAnswer::Ok => Ok(()),
            PamAnswer::Denied { reason } => Err(AuthError::Denied(reason)),
            PamAnswer::Error { kind, message } => {
                Err(AuthError::Helper(format!("{kind:?}: {message}")))
            }
        }
    }
}
