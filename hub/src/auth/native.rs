//! The hub's own accounts (`[auth] source = "native"`, NativeAuthenticator's model):
//! sign-up with the naming and password rules, the login check against the stored
//! argon2id hash, and the account states an admin decides (pending → approved or
//! blocked). The Unix account a user's server runs as is the system's, or made on
//! demand by the account helper.

use sudohub_protocol::pam::DenyReason;
use sudohub_protocol::Secret;

use super::login::AuthError;
use super::password::{self, Checked};
use crate::config::AuthRules;
use crate::db::{AccountStatus, Db, DbResult, NativeAccount, SignedUp};
use crate::types::Username;

/// The login side.
pub struct NativeLogin {
    db: Db,
}

impl NativeLogin {
    /// Checks against the accounts in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// `user`'s account, if it has one.
    pub fn account(&self, user: &Username) -> DbResult<Option<NativeAccount>> {
        self.db.native().get(user)
    }

    /// Checks `password` (and with a second factor on, `otp`, good once) against
    /// `acct`; a right password of an account that is not approved says so (only to
    /// whoever knows the password).
    pub async fn check(
        &self,
        acct: NativeAccount,
        password: Secret,
        otp: Option<&str>,
    ) -> Result<(), AuthError> {
        let found = password::check(&password, &acct.password)
            .await
            .map_err(|e| AuthError::Helper(e.to_string()))?;
        let renewed = match found {
            Checked::Wrong => return Err(AuthError::Denied(DenyReason::BadCredentials)),
            Checked::Matches(renewed) => renewed,
        };
        if let Some(hash) = renewed {
            match self.db.native().set_password(&acct.name, &hash) {
                Ok(_) => {
                    tracing::info!(user = %acct.name, "password hash renewed with today's parameters")
                }
                Err(e) => {
                    tracing::error!(user = %acct.name, error = %e, "cannot renew a password hash")
                }
            }
        }
        match acct.status {
            AccountStatus::Approved => {}
            AccountStatus::Pending => return Err(AuthError::Pending),
            AccountStatus::Blocked => return Err(AuthError::Blocked),
        }
        // The Unix account of this name, if one exists, must be the one this account is
        // bound to (made for it, or given to it by an admin): not one made later for
        // someone else.
        if let Some(sys) = nix::unistd::User::from_name(acct.name.as_str())
            .ok()
            .flatten()
        {
            if acct.unix_uid != Some(sys.uid.as_raw()) {
                return Err(AuthError::Unbound);
            }
        }
        let Some(secret) = &acct.totp else {
            return Ok(());
        };
        let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        let step = otp.and_then(|code| super::totp::matching_step(secret, code, now));
        let taken = match step.and_then(|s| i64::try_from(s).ok()) {
            Some(s) => self
                .db
                .native()
                .take_totp_step(&acct.name, s)
                .map_err(|e| AuthError::Helper(e.to_string()))?,
            None => false,
        };
        if taken {
            Ok(())
        } else {
            // A wrong, missing or replayed code counts as a wrong password.
            Err(AuthError::Denied(DenyReason::BadCredentials))
        }
    }

    /// A name without an account: refused after as long as a wrong password takes.
    pub async fn no_account(&self, password: Secret) -> Result<(), AuthError> {
        let _ = password::check(&password, password::decoy()).await;
        Err(AuthError::Denied(DenyReason::UnknownUser))
    }
}

/// Most sign-ups waiting for approval at once; more are refused until admins decide.
pub const MAX_PENDING: usize = 1000;

/// A sign-up as the form sends it.
pub struct SignUp {
    /// The name asked for.
    pub name: String,
    /// The password.
    pub password: Secret,
    /// The password typed again.
    pub again: Secret,
    /// The email address, when asked for.
    pub email: Option<String>,
    /// Whether the terms were accepted.
    pub tos: bool,
}

/// Why a sign-up was refused.
#[derive(Debug)]
pub enum SignUpError {
    /// Something the person can fix; the message says what.
    Refused(String),
    /// The hub failed (the database).
    Hub(String),
}

/// Checks a name asked for at sign-up: the naming rule, `valid_username_regex`, and
/// the system's accounts. The name, parsed.
pub fn check_new_name(rules: &AuthRules, name: &str) -> Result<Username, String> {
    let invalid = || {
        format!(
            "{:?} cannot be a user name: use a lowercase letter first, then lowercase letters, digits, '-' or '_', at most 32 characters.",
            name.chars().take(40).collect::<String>()
        )
    };
    if !sudohub_helpers_config::is_new_account_name(name) {
        return Err(invalid());
    }
    if let Some(re) = rules.native.name_regex() {
        if !re.is_match(name) {
            return Err(format!(
                "{name:?} is not a user name this hub accepts (valid_username_regex)."
            ));
        }
    }
    let user = Username::parse(name).map_err(|_| invalid())?;
    // Names of the machine's accounts (system or not: a sign-up would get that account's
    // files) and of the configured admins (an admin's account is made by an admin, with
    // `sudohub set-password`) are never signed up. One message for every such name, so
    // that sign-up does not list the machine's accounts.
    let taken = name == "root"
        || rules.admin_users.contains(&user)
        || nix::unistd::User::from_name(name).ok().flatten().is_some()
        || nix::unistd::Group::from_name(name).ok().flatten().is_some();
    if taken {
        return Err(unavailable(name));
    }
    Ok(user)
}

/// The refusal of a name that is taken or reserved, whichever it is.
fn unavailable(name: &str) -> String {
    format!("{name:?} is not available; please choose another name.")
}

/// Checks an email address enough to catch typing slips.
fn check_email(email: &str) -> Result<(), String> {
    let ok = email.len() <= 254
        && email.split('@').count() == 2
        && email.split('@').all(|p| !p.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err("Please give a valid email address.".into())
    }
}

/// Records a sign-up: waiting for an admin, or approved at once with `open_signup`.
pub async fn sign_up(
    db: &Db,
    rules: &AuthRules,
    form: SignUp,
) -> Result<(Username, AccountStatus), SignUpError> {
    let cfg = &rules.native;
    let refused = SignUpError::Refused;
    let name = check_new_name(rules, form.name.trim()).map_err(refused)?;
    let waiting = db
        .native()
        .pending_count()
        .map_err(|e| SignUpError::Hub(e.to_string()))?;
    if !cfg.open_signup && waiting >= MAX_PENDING {
        return Err(refused(
            "Too many sign-ups are waiting for approval; please try again later.".into(),
        ));
    }
    let email = if cfg.ask_email_on_signup {
        let e = form.email.as_deref().map(str::trim).unwrap_or("");
        check_email(e).map_err(refused)?;
        Some(e.to_owned())
    } else {
        None
    };
    if cfg.tos.is_some() && !form.tos {
        return Err(refused(
            "Please accept the terms of service to sign up.".into(),
        ));
    }
    if !crate::secrets::same(form.password.expose(), form.again.expose()) {
        return Err(refused("The two passwords are not the same.".into()));
    }
    password::acceptable(cfg, form.password.expose(), name.as_str(), email.as_deref())
        .map_err(refused)?;
    let hash = password::hash(&form.password)
        .await
        .map_err(|e| SignUpError::Hub(e.to_string()))?;
    let status = if cfg.open_signup {
        AccountStatus::Approved
    } else {
        AccountStatus::Pending
    };
    match db.native().sign_up(&name, &hash, email.as_deref(), status) {
        Ok(SignedUp::New) => {
            tracing::info!(user = %name, status = status.as_str(), "signed up");
            Ok((name, status))
        }
        Ok(SignedUp::Taken) => Err(refused(unavailable(name.as_str()))),
        Err(e) => Err(SignUpError::Hub(e.to_string())),
    }
}

/// Sets `user`'s password after checking it against the rules (the caller checked who
/// asks: the user with their current password, or an admin). Creates an approved account
/// for a hub user without one (an admin giving a user added through the API a password).
/// The message says what was wrong.
pub async fn set_password(
    db: &Db,
    rules: &AuthRules,
    user: &Username,
    new: &Secret,
    again: &Secret,
) -> Result<(), SignUpError> {
    let refused = SignUpError::Refused;
    let hub = |e: rusqlite::Error| SignUpError::Hub(e.to_string());
    let acct = db.native().get(user).map_err(hub)?;
    if !crate::secrets::same(new.expose(), again.expose()) {
        return Err(refused("The two new passwords are not the same.".into()));
    }
    let email = acct.as_ref().and_then(|a| a.email.clone());
    password::acceptable(&rules.native, new.expose(), user.as_str(), email.as_deref())
        .map_err(refused)?;
    let hash = password::hash(new)
        .await
        .map_err(|e| SignUpError::Hub(e.to_string()))?;
    if acct.is_some() {
        db.native().set_password(user, &hash).map_err(hub)?;
    } else {
        db.native()
            .create_for_user(user, &hash)
            .map_err(hub)?
            .then_some(())
            .ok_or_else(|| refused(format!("{:?} is not a user of this hub.", user.as_str())))?;
    }
    tracing::info!(user = %user, "password set");
    Ok(())
}

/// Binds `user`'s account to the Unix account of that name, if one exists: an admin
/// giving the account a password vouches that it is theirs (never a user changing their
/// own: a session must not bind itself to an account made later for someone else).
pub fn bind_existing(db: &Db, user: &Username) -> DbResult<()> {
    if let Some(sys) = nix::unistd::User::from_name(user.as_str()).ok().flatten() {
        db.native().bind_uid(user, sys.uid.as_raw())?;
    }
    Ok(())
}
