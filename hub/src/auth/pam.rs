//! Client of `sudohub-pam`: one helper process per login attempt.
//!
//! The hub never sees a password hash: it hands the username and password to the setgid
//! helper on a pipe and reads one answer. Around that it adds what the helper cannot: a
//! timeout, a bound on concurrent attempts, rate limiting, and the group rules.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sudohub_protocol::frame::{self, HEADER_LEN};
use sudohub_protocol::pam::{DenyReason, PamAnswer, PamRequest};
use sudohub_protocol::{Bounded, Hello, Secret, MAX_FRAME_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::ratelimit::RateLimiter;
use super::rules::{judge, user_groups, Verdict};
use crate::config::AuthRules;
use crate::types::Username;

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

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The Unix user name.
    pub name: Username,
    /// Admin rights from `admin_users` / `admin_groups`; `None`: as recorded.
    pub admin: Option<bool>,
}

/// Why a login failed. The browser is shown [`AuthError::user_message`] only; the
/// details are for the hub's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// PAM refused the password or the account.
    Denied(DenyReason),
    /// The password is right but the rules do not allow this user.
    NotAllowed,
    /// Too many recent failures for this user name or address.
    RateLimited {
        /// How long until the next attempt is considered.
        retry_after: Duration,
    },
    /// The username or password cannot even be sent (too long, NUL).
    Invalid(String),
    /// The helper failed or refused to work (misconfiguration).
    Helper(String),
    /// The helper did not answer in time.
    Timeout,
}

impl AuthError {
    /// The one message a browser sees: it never says whether the user exists.
    pub fn user_message(&self) -> String {
        match self {
            Self::RateLimited { retry_after } => format!(
                "Too many failed attempts. Try again in {} seconds.",
                retry_after.as_secs().max(1)
            ),
            Self::Helper(_) | Self::Timeout => {
                "Login is not working right now. Please contact your administrator.".into()
            }
            _ => "Invalid username or password".into(),
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(r) => write!(f, "PAM denied the login: {r:?}"),
            Self::NotAllowed => f.write_str("the user is not in allowed_users or allowed_groups"),
            Self::RateLimited { retry_after } => write!(f, "rate limited for {retry_after:?}"),
            Self::Invalid(m) => write!(f, "invalid credentials: {m}"),
            Self::Helper(m) => write!(f, "PAM helper failed: {m}"),
            Self::Timeout => f.write_str("PAM helper timed out"),
        }
    }
}

impl std::error::Error for AuthError {}

impl AuthError {
    /// The `result` label of `sudohub_login_failures`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotAllowed => "not_allowed",
            Self::Invalid(_) => "invalid",
            Self::Helper(_) | Self::Timeout => "error",
        }
    }
}

/// Checks logins with PAM and the group rules.
#[derive(Debug)]
pub struct PamAuthenticator {
    config: PamClientConfig,
    rules: AuthRules,
    slots: Semaphore,
    limiter: RateLimiter,
    turns: std::sync::Mutex<HashMap<Username, Arc<tokio::sync::Mutex<()>>>>,
}

impl PamAuthenticator {
    /// An authenticator running `config.helper` and applying `rules`.
    pub fn new(config: PamClientConfig, rules: AuthRules) -> Self {
        let slots = Semaphore::new(config.max_concurrent.max(1));
        Self {
            config,
            rules,
            slots,
            limiter: RateLimiter::new(),
            turns: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Checks `username`/`password` from `client`. Rate limits first (a limited attempt
    /// never reaches PAM), then PAM, then the group rules.
    pub async fn authenticate(
        &self,
        user: &Username,
        password: Secret,
        client: IpAddr,
    ) -> Result<Authenticated, AuthError> {
        let username = user.as_str();
        // One check per name at a time: attempts queued behind a failure see it counted.
        let turn = self.turn(user);
        let Ok(_mine) = tokio::time::timeout(self.config.timeout, turn.lock()).await else {
            tracing::warn!(user = %username, %client, "login rate limited: too many attempts at once");
            return Err(AuthError::RateLimited {
                retry_after: self.config.timeout,
            });
        };
        if let Some(retry_after) = self.limiter.wait_before(username, client, Instant::now()) {
            tracing::warn!(user = %username, %client, ?retry_after, "login rate limited");
            return Err(AuthError::RateLimited { retry_after });
        }
        let _flight = self.limiter.begin(client);
        let result = {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| AuthError::Helper("shutting down".into()))?;
            tokio::time::timeout(self.config.timeout, self.ask_helper(username, password))
                .await
                .unwrap_or(Err(AuthError::Timeout))
        };
        match result {
            Ok(()) => {}
            Err(e @ AuthError::Denied(_)) => {
                self.limiter.failed(username, client, Instant::now());
                tracing::info!(user = %username, %client, reason = %e, "login denied");
                return Err(e);
            }
            Err(e) => {
                tracing::error!(user = %username, %client, error = %e, "login could not be checked");
                return Err(e);
            }
        }
        self.limiter.succeeded(username);
        match judge(&self.rules, user, &user_groups(username)) {
            Verdict::Allowed { admin } => {
                tracing::info!(user = %username, %client, admin, "login accepted");
                Ok(Authenticated {
                    name: user.clone(),
                    admin,
                })
            }
            Verdict::NotAllowed => {
                tracing::info!(user = %username, %client, "login refused: not in allowed_users or allowed_groups");
                Err(AuthError::NotAllowed)
            }
        }
    }

    /// The lock that makes checks of `user` take turns. Entries nobody waits on are
    /// dropped, so the map holds only names with attempts in progress.
    fn turn(&self, user: &Username) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.retain(|_, t| Arc::strong_count(t) > 1);
        turns.entry(user.clone()).or_default().clone()
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
