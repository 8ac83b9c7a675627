//! Client of `sudohub-account` (`create_system_users`): when a hub user has no Unix
//! account, `sudo -n /usr/lib/sudohub/sudohub-account` makes one in the shape
//! root's helpers.toml gives it. The hub sends the name and nothing else.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sudohub_protocol::account::{AccountAnswer, AccountRefusal, AccountRequest};
use sudohub_protocol::frame::{self, HEADER_LEN};
use sudohub_protocol::{Bounded, Hello, MAX_FRAME_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::types::Username;

/// Longest the helper may take (`useradd` copies the skeleton).
const TIMEOUT: Duration = Duration::from_secs(30);

/// What [`AccountMaker::ensure`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// The account existed.
    Existed,
    /// It was made now, with this uid.
    Created(u32),
}

/// Runs the account helper.
#[derive(Debug, Clone)]
pub struct AccountMaker {
    sudo: Vec<String>,
    helper: PathBuf,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl AccountMaker {
    /// `sudo` is the command and its options (`["sudo", "-n"]`), `helper` the binary the
    /// sudoers rule names.
    pub fn new(sudo: Vec<String>, helper: PathBuf) -> Self {
        Self {
            sudo,
            helper,
            lock: Default::default(),
        }
    }

    /// Makes sure `user` has a Unix account: nothing to do if one exists, else the helper
    /// makes it. The message of a failure is for the hub's log and the admin.
    pub async fn ensure(&self, user: &Username) -> Result<Ensured, String> {
        // One at a time: two logins of a new user must not both ask (the second would be
        // refused as "exists" anyway, but would log a refusal for nothing).
        let _one = self.lock.lock().await;
        if nix::unistd::User::from_name(user.as_str())
            .ok()
            .flatten()
            .is_some()
        {
            return Ok(Ensured::Existed);
        }
        let answer = tokio::time::timeout(TIMEOUT, self.ask(user))
            .await
            .map_err(|_| "the account helper did not answer in time".to_owned())??;
        match answer {
            AccountAnswer::Created { uid } => {
                tracing::info!(user = %user, uid, "Unix account created");
                Ok(Ensured::Created(uid))
            }
            AccountAnswer::Refused {
                kind: AccountRefusal::Exists,
                ..
            } if nix::unistd::User::from_name(user.as_str())
                .ok()
                .flatten()
                .is_some() =>
            {
                Ok(Ensured::Existed)
            }
            AccountAnswer::Refused { kind, message } => {
                Err(format!("the account helper refused ({kind:?}): {message}"))
            }
        }
    }

    async fn ask(&self, user: &Username) -> Result<AccountAnswer, String> {
        let (program, options) = self.sudo.split_first().ok_or("empty sudo command")?;
        let name = Bounded::new(user.as_str()).map_err(|e| e.to_string())?;
        let mut input =
            frame::encode(&AccountRequest::Hello(Hello::current())).map_err(|e| e.to_string())?;
        input.extend_from_slice(
            &frame::encode(&AccountRequest::Create { name }).map_err(|e| e.to_string())?,
        );
        let mut child = Command::new(program)
            .args(options)
            .arg(&self.helper)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(crate::helper_output::each_line(stderr, |line| {
                tracing::info!(target: "sudohub::account_helper", line = ?line, "account helper");
            }));
        }
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        // The helper may refuse before reading: a broken pipe is not the answer.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
        let mut out = Vec::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        stdout
            .take((HEADER_LEN + MAX_FRAME_LEN) as u64)
            .read_to_end(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        let header: [u8; HEADER_LEN] = out
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "the account helper gave no answer ({status}); is its sudoers rule installed?"
                )
            })?;
        let len = frame::body_len(header).map_err(|e| e.to_string())?;
        let body = out
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or("truncated answer")?;
        frame::decode::<AccountAnswer>(body).map_err(|e| e.to_string())
    }
}
