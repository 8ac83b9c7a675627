//! The front door of every password login, whatever the source: one attempt per name
//! at a time, the per-name and per-address delays ([`super::ratelimit`]), the lockout
//! of `allowed_failed_logins` (kept in the database), then the name's source — its
//! account of the hub's own ([`super::native`]) or PAM ([`super::pam`]) — and the rules.
//!
//! Each name belongs to exactly one source: a name with an account of the hub's own is
//! checked only against that account, every other name only by PAM (when PAM is a
//! source). No source can log in as another's user.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sudohub_protocol::pam::DenyReason;
use sudohub_protocol::Secret;

use super::native::NativeLogin;
use super::pam::{PamClient, PamClientConfig};
use super::ratelimit::RateLimiter;
use super::rules::{judge, user_groups, Verdict};
use crate::config::{AuthRules, SourceKind};
use crate::db::Db;
use crate::types::Username;

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user name (the Unix account's).
    pub name: Username,
    /// Admin rights from `admin_users` / `admin_groups`; `None`: as recorded.
    pub admin: Option<bool>,
}

/// Why a login failed. The browser is shown [`AuthError::user_message`] only; the
/// details are for the hub's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The password or the account was refused.
    Denied(DenyReason),
    /// The password is right but the rules do not allow this user.
    NotAllowed,
    /// The password is right; the account waits for an admin's approval.
    Pending,
    /// The password is right; an admin blocked the account.
    Blocked,
    /// The password is right, but a Unix account of the name exists that is not the one
    /// this account is bound to (someone else's, made after the sign-up).
    Unbound,
    /// Too many recent failures for this user name or address.
    RateLimited {
        /// How long until the next attempt is considered.
        retry_after: Duration,
    },
    /// `allowed_failed_logins` failures in a row: the name is locked out for a while.
    LockedOut {
        /// How long until the lockout ends.
        retry_after: Duration,
    },
    /// The username or password cannot even be sent (too long, NUL).
    Invalid(String),
    /// The helper (or the database) failed or refused to work (misconfiguration).
    Helper(String),
    /// The helper did not answer in time.
    Timeout,
}

impl AuthError {
    /// The one message a browser sees. It never says whether a user exists: what
    /// depends on the account is told only to whoever gave its right password.
    pub fn user_message(&self) -> String {
        match self {
            Self::RateLimited { retry_after } | Self::LockedOut { retry_after } => format!(
                "Too many failed attempts. Try again in {} seconds.",
                retry_after.as_secs().max(1)
            ),
            Self::Pending => "Your account is waiting for an administrator's approval.".into(),
            Self::Blocked => {
                "Your account has been blocked. Please contact your administrator.".into()
            }
            Self::Unbound => "Your account cannot sign in: its name belongs to another account on this machine. Please contact your administrator.".into(),
            Self::Helper(_) | Self::Timeout => {
                "Login is not working right now. Please contact your administrator.".into()
            }
            _ => "Invalid username or password".into(),
        }
    }

    /// The `result` label of `sudohub_login_failures`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::RateLimited { .. } => "rate_limited",
            Self::LockedOut { .. } => "locked_out",
            Self::NotAllowed => "not_allowed",
            Self::Pending => "pending",
            Self::Blocked => "blocked",
            Self::Unbound => "unbound",
            Self::Invalid(_) => "invalid",
            Self::Helper(_) | Self::Timeout => "error",
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Denied(r) => write!(f, "denied: {r:?}"),
            Self::NotAllowed => f.write_str("the user is not in allowed_users or allowed_groups"),
            Self::Pending => f.write_str("the account waits for approval"),
            Self::Blocked => f.write_str("the account is blocked"),
            Self::Unbound => {
                f.write_str("a Unix account of this name exists that the account is not bound to")
            }
            Self::RateLimited { retry_after } => write!(f, "rate limited for {retry_after:?}"),
            Self::LockedOut { retry_after } => write!(f, "locked out for {retry_after:?}"),
            Self::Invalid(m) => write!(f, "invalid credentials: {m}"),
            Self::Helper(m) => write!(f, "cannot check the password: {m}"),
            Self::Timeout => f.write_str("PAM helper timed out"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Checks logins against the configured sources.
pub struct Authenticator {
    rules: AuthRules,
    pam: Option<PamClient>,
    native: Option<NativeLogin>,
    db: Db,
    limiter: RateLimiter,
    turns: std::sync::Mutex<HashMap<Username, Arc<tokio::sync::Mutex<()>>>>,
    /// How long an attempt may wait for its turn.
    wait: Duration,
    /// Lockouts of names that do not exist, kept in memory only (bounded) so that they
    /// are answered exactly as names that do: a lockout must not tell which exist.
    phantoms: std::sync::Mutex<HashMap<Username, (u32, i64)>>,
    /// Recent sign-ups per client address.
    pub signups: super::ratelimit::SignUpLimiter,
}

/// Most names without an account whose failures are remembered.
const MAX_PHANTOMS: usize = 100_000;

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Authenticator {
    /// The front door for `rules`' sources: PAM through `pam`, accounts of the hub's
    /// own in `db`.
    pub fn new(pam: PamClientConfig, rules: AuthRules, db: Db) -> Self {
        let wait = pam.timeout;
        Self {
            pam: rules.uses(SourceKind::Pam).then(|| PamClient::new(pam)),
            native: rules
                .uses(SourceKind::Native)
                .then(|| NativeLogin::new(db.clone())),
            rules,
            db,
            limiter: RateLimiter::new(),
            turns: std::sync::Mutex::new(HashMap::new()),
            wait,
            phantoms: std::sync::Mutex::new(HashMap::new()),
            signups: super::ratelimit::SignUpLimiter::default(),
        }
    }

    /// The rules this door applies.
    pub fn rules(&self) -> &AuthRules {
        &self.rules
    }

    /// Checks `user`/`password` (and `otp`, the code of an account of the hub's own with
    /// a second factor) from `client`. Delays and lockouts first (a refused attempt never
    /// reaches a source), then the name's source, then the rules.
    pub async fn authenticate(
        &self,
        user: &Username,
        password: Secret,
        otp: Option<&str>,
        client: IpAddr,
    ) -> Result<Authenticated, AuthError> {
        let username = user.as_str();
        // One check per name at a time: attempts queued behind a failure see it counted.
        let turn = self.turn(user);
        let Ok(_mine) = tokio::time::timeout(self.wait, turn.lock()).await else {
            tracing::warn!(user = %username, %client, "login rate limited: too many attempts at once");
            return Err(AuthError::RateLimited {
                retry_after: self.wait,
            });
        };
        if let Some(retry_after) = self.limiter.wait_before(username, client, Instant::now()) {
            tracing::warn!(user = %username, %client, ?retry_after, "login rate limited");
            return Err(AuthError::RateLimited { retry_after });
        }
        let lockouts = self.rules.allowed_failed_logins > 0;
        if lockouts {
            let until = self
                .db
                .native()
                .locked_until(user, now_unix())
                .map_err(|e| AuthError::Helper(e.to_string()))?
                .or_else(|| self.phantom_locked(user, now_unix()));
            if let Some(until) = until {
                let retry_after = Duration::from_secs((until - now_unix()).max(1).unsigned_abs());
                tracing::warn!(user = %username, %client, ?retry_after, "login refused: locked out");
                return Err(AuthError::LockedOut { retry_after });
            }
        }
        let _flight = self.limiter.begin(client);
        let account = match &self.native {
            Some(n) => n
                .account(user)
                .map_err(|e| AuthError::Helper(e.to_string()))?
                .map(|a| (n, a)),
            None => None,
        };
        let has_account = account.is_some();
        let (source, result) = match (account, &self.pam, &self.native) {
            (Some((n, acct)), _, _) => (SourceKind::Native, n.check(acct, password, otp).await),
            (None, Some(pam), _) => (SourceKind::Pam, pam.check(username, password).await),
            // Only accounts of the hub's own, and none of this name: as slow as a wrong
            // password.
            (None, None, Some(n)) => (SourceKind::Native, n.no_account(password).await),
            (None, None, None) => (SourceKind::Pam, Err(AuthError::Helper("no source".into()))),
        };
        let kind = source;
        let source = kind.as_str();
        match result {
            Ok(()) => {}
            Err(e @ AuthError::Denied(_)) => {
                self.limiter.failed(username, client, Instant::now());
                tracing::info!(user = %username, %client, source, reason = %e, "login denied");
                if lockouts {
                    let unknown = e == AuthError::Denied(DenyReason::UnknownUser);
                    self.count_failure(user, has_account, unknown);
                }
                return Err(e);
            }
            Err(e @ (AuthError::Pending | AuthError::Blocked | AuthError::Unbound)) => {
                tracing::info!(user = %username, %client, source, reason = %e, "login refused");
                return Err(e);
            }
            Err(e) => {
                tracing::error!(user = %username, %client, source, error = %e, "login could not be checked");
                return Err(e);
            }
        }
        self.limiter.succeeded(username);
        if lockouts {
            if let Err(e) = self.db.native().clear_failures(user) {
                tracing::error!(user = %username, error = %e, "cannot clear login failures");
            }
        }
        let verdict = if kind == SourceKind::Native {
            // Approval is the hub's own allow list; admins by name still apply.
            let admin = self.rules.admin_users.contains(user).then_some(true);
            Verdict::Allowed { admin }
        } else {
            judge(&self.rules, user, &user_groups(username))
        };
        match verdict {
            Verdict::Allowed { admin } => {
                tracing::info!(user = %username, %client, source, admin, "login accepted");
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

    /// Counts a failure towards the lockout of names that exist (an account of the
    /// hub's own or of the system): guesses at random names fill no table.
    fn count_failure(&self, user: &Username, has_account: bool, unknown: bool) {
        // An account of the hub's own (read already), or a system account PAM did not
        // call unknown.
        let exists = has_account
            || (!unknown
                && nix::unistd::User::from_name(user.as_str())
                    .ok()
                    .flatten()
                    .is_some());
        let secs = i64::try_from(self.rules.seconds_before_next_try).unwrap_or(i64::MAX);
        if !exists {
            self.phantom_failed(user, secs, now_unix());
            return;
        }
        match self
            .db
            .native()
            .failed(user, self.rules.allowed_failed_logins, secs, now_unix())
        {
            Ok(Some(_)) => {
                tracing::warn!(user = %user, secs, "login locked out after failed attempts")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(user = %user, error = %e, "cannot count a failed login"),
        }
    }

    /// Checks the password of `user`'s account of the hub's own again (to change the
    /// password or turn off the second factor), under the same per-name and per-address
    /// delays as a login: a session is not a free password oracle.
    pub async fn recheck(
        &self,
        user: &Username,
        password: &Secret,
        client: IpAddr,
    ) -> Result<(), AuthError> {
        if let Some(retry_after) = self
            .limiter
            .wait_before(user.as_str(), client, Instant::now())
        {
            return Err(AuthError::RateLimited { retry_after });
        }
        let acct = self
            .db
            .native()
            .get(user)
            .map_err(|e| AuthError::Helper(e.to_string()))?
            .ok_or(AuthError::Denied(DenyReason::UnknownUser))?;
        match super::password::check(password, &acct.password).await {
            Ok(super::password::Checked::Matches(_)) => Ok(()),
            Ok(super::password::Checked::Wrong) => {
                self.limiter.failed(user.as_str(), client, Instant::now());
                tracing::info!(user = %user, %client, "password check denied");
                Err(AuthError::Denied(DenyReason::BadCredentials))
            }
            Err(e) => Err(AuthError::Helper(e.to_string())),
        }
    }

    fn phantoms(&self) -> std::sync::MutexGuard<'_, HashMap<Username, (u32, i64)>> {
        self.phantoms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Until when a name without an account is locked out, if it is at `now`.
    fn phantom_locked(&self, user: &Username, now: i64) -> Option<i64> {
        self.phantoms()
            .get(user)
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
    }

    /// Counts a failure of a name without an account, as [`crate::db::Native::failed`]
    /// counts the others'.
    fn phantom_failed(&self, user: &Username, secs: i64, now: i64) {
        let mut p = self.phantoms();
        if p.len() >= MAX_PHANTOMS && !p.contains_key(user) {
            p.retain(|_, (_, until)| *until > now);
            if p.len() >= MAX_PHANTOMS {
                p.clear();
            }
        }
        let entry = p.entry(user.clone()).or_insert((0, 0));
        entry.0 += 1;
        if entry.0 >= self.rules.allowed_failed_logins {
            *entry = (0, now + secs);
        }
    }

    /// The lock that makes checks of `user` take turns. Entries nobody waits on are
    /// dropped, so the map holds only names with attempts in progress.
    fn turn(&self, user: &Username) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        turns.retain(|_, t| Arc::strong_count(t) > 1);
        turns.entry(user.clone()).or_default().clone()
    }
}
