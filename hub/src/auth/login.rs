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

pub use super::outcome::{AuthError, Authenticated};

use super::ldap::LdapClient;
use super::native::NativeLogin;
use super::pam::{PamClient, PamClientConfig};
use super::ratelimit::RateLimiter;
use super::rules::{judge, judge_with, user_groups, Groups, Verdict};
use crate::config::{AuthRules, SourceKind};
use crate::db::Db;
use crate::types::Username;

/// Checks logins against the configured sources.
pub struct Authenticator {
    /// Swapped whole by `sudohub reload` (allowed and admin users and groups, lockouts).
    rules: std::sync::RwLock<Arc<AuthRules>>,
    pam: Option<PamClient>,
    native: Option<NativeLogin>,
    ldap: Option<LdapClient>,
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
    /// own in `db`, the directory of `[auth.ldap]`. An error names what cannot be read.
    pub fn new(pam: PamClientConfig, rules: AuthRules, db: Db) -> Result<Self, String> {
        let wait = pam.timeout;
        let ldap = match (&rules.ldap, rules.uses(SourceKind::Ldap)) {
            (Some(cfg), true) => Some(LdapClient::new(cfg.clone())?),
            _ => None,
        };
        Ok(Self {
            ldap,
            pam: rules.uses(SourceKind::Pam).then(|| PamClient::new(pam)),
            native: rules
                .uses(SourceKind::Native)
                .then(|| NativeLogin::new(db.clone())),
            rules: std::sync::RwLock::new(Arc::new(rules)),
            db,
            limiter: RateLimiter::new(),
            turns: std::sync::Mutex::new(HashMap::new()),
            wait,
            phantoms: std::sync::Mutex::new(HashMap::new()),
            signups: super::ratelimit::SignUpLimiter::default(),
        })
    }

    /// The rules this door applies.
    pub fn rules(&self) -> Arc<AuthRules> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies `rules` from the next login on (`sudohub reload`).
    pub fn set_rules(&self, rules: AuthRules) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rules);
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
        let lockouts = self.rules().allowed_failed_logins > 0;
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
        let mut directory = None;
        let (source, result) = match (account, &self.ldap, &self.pam, &self.native) {
            (Some((n, acct)), _, _, _) => (SourceKind::Native, n.check(acct, password, otp).await),
            (None, Some(l), _, _) => {
                let checked = l.check(user, &password).await;
                (SourceKind::Ldap, checked.map(|d| directory = Some(d)))
            }
            (None, None, Some(pam), _) => (SourceKind::Pam, pam.check(username, password).await),
            // Only accounts of the hub's own, and none of this name: as slow as a wrong
            // password.
            (None, None, None, Some(n)) => (SourceKind::Native, n.no_account(password).await),
            (None, None, None, None) => {
                (SourceKind::Pam, Err(AuthError::Helper("no source".into())))
            }
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
        let rules = self.rules();
        let verdict = match (kind, &directory, &rules.ldap) {
            // Approval is the hub's own allow list; admins by name still apply.
            (SourceKind::Native, _, _) => Verdict::Allowed {
                admin: rules.admin_users.contains(user).then_some(true),
            },
            // root, a daemon or the hub's own account is never a directory's user.
            (SourceKind::Ldap, _, _) if super::rules::is_system_account(user) => {
                Verdict::NotAllowed
            }
            (SourceKind::Ldap, Some(d), Some(l)) => {
                tracing::debug!(user = %username, dn = %d.dn, groups = ?d.groups, "LDAP bind accepted");
                let lists = Groups {
                    allowed: &l.allowed_groups,
                    admin: &l.admin_groups,
                    allow_all: l.allow_all,
                };
                judge_with(&rules, user, &d.groups, &lists)
            }
            _ => judge(&rules, user, &user_groups(username)),
        };
        match verdict {
            Verdict::Allowed { admin } => {
                tracing::info!(user = %username, %client, source, admin, "login accepted");
                Ok(Authenticated {
                    name: user.clone(),
                    admin,
                    source: kind,
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
        let secs = i64::try_from(self.rules().seconds_before_next_try).unwrap_or(i64::MAX);
        if !exists {
            self.phantom_failed(user, secs, now_unix());
            return;
        }
        match self
            .db
            .native()
            .failed(user, self.rules().allowed_failed_logins, secs, now_unix())
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
        if entry.0 >= self.rules().allowed_failed_logins {
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
