//! Passwords of the hub's own accounts: the rules a new one must pass, and argon2id
//! hashes in PHC form (the parameters travel with each hash, so raising them later
//! rehashes at the next login). Hashing is slow and takes memory on purpose: it runs on
//! the blocking pool, a few at a time.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sudohub_protocol::Secret;
use tokio::sync::Semaphore;

use crate::config::NativeSection;

/// Memory per hash, KiB (OWASP's second argon2id setting: 12 MiB, 3 passes).
const M_COST: u32 = 12 * 1024;
/// Passes.
const T_COST: u32 = 3;
/// Lanes.
const P_COST: u32 = 1;
/// Hashes computed at once: each takes `M_COST` of memory and a core for ~30 ms.
const AT_ONCE: usize = 2;
/// Longest password taken, in bytes (a bound on the work a request can ask for).
pub const MAX_LEN: usize = 1024;

fn hasher() -> Argon2<'static> {
    // The constants are valid parameters; `Params::DEFAULT` is the fallback if not.
    let params = Params::new(M_COST, T_COST, P_COST, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(AT_ONCE))
}

/// Why a hash could not be made or checked: a fault of the hub, never of the password.
#[derive(Debug)]
pub struct HashError(String);

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "password hashing: {}", self.0)
    }
}

impl std::error::Error for HashError {}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, HashError> {
    // A flood of sign-ups must not hold logins forever: a hash waits a bounded time.
    let _slot = tokio::time::timeout(std::time::Duration::from_secs(10), slots().acquire())
        .await
        .map_err(|_| HashError("too busy: every hashing slot is taken".into()))?
        .map_err(|_| HashError("shutting down".into()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HashError(e.to_string()))
}

/// Today's hash of `pw` with a fresh salt (on the blocking pool).
fn fresh_hash(pw: &[u8]) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(pw, &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// The argon2id hash of `password`, PHC form, with a fresh salt.
pub async fn hash(password: &Secret) -> Result<String, HashError> {
    let pw = password.expose().as_bytes().to_vec();
    blocking(move || fresh_hash(&pw)).await?
}

/// What checking a password against a stored hash found.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// It matches; `Some` holds a new hash when the stored one has weaker parameters
    /// than today's (or another algorithm).
    Matches(Option<String>),
    /// It does not.
    Wrong,
}

/// Checks `password` against `stored` (argon2's comparison is constant-time).
pub async fn check(password: &Secret, stored: &str) -> Result<Checked, HashError> {
    let pw = password.expose().as_bytes().to_vec();
    let stored = stored.to_owned();
    blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| HashError(e.to_string()))?;
        if hasher().verify_password(&pw, &parsed).is_err() {
            return Ok(Checked::Wrong);
        }
        let current = parsed.algorithm.as_str() == "argon2id"
            && Params::try_from(&parsed).is_ok_and(|p| {
                p.m_cost() >= M_COST && p.t_cost() >= T_COST && p.p_cost() >= P_COST
            });
        if current {
            return Ok(Checked::Matches(None));
        }
        Ok(Checked::Matches(Some(fresh_hash(&pw)?)))
    })
    .await?
}

/// A hash that matches no password, checked for names without an account so that the
/// time taken does not say whether a name exists.
pub fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        let random = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(random.as_str().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Checks a new password against the rules of `[auth.native]`: the message says what
/// is wrong. `name` (and `email`) count as easy to guess.
pub fn acceptable(
    cfg: &NativeSection,
    password: &str,
    name: &str,
    email: Option<&str>,
) -> Result<(), String> {
    let len = password.chars().count();
    if len < cfg.minimum_password_length {
        return Err(format!(
            "The password must have at least {} characters.",
            cfg.minimum_password_length
        ));
    }
    if password.len() > MAX_LEN {
        return Err(format!("The password must have at most {MAX_LEN} bytes."));
    }
    if password.chars().any(char::is_control) {
        return Err("The password must not contain control characters.".into());
    }
    if cfg.check_common_password {
        let mut inputs = vec![name];
        inputs.extend(email);
        // zxcvbn's dictionaries hold the 30,000 most common passwords, names and words,
        // and it sees keyboard walks, dates, repeats and l33t spellings of them.
        if (zxcvbn::zxcvbn(password, &inputs).score() as u8) < 2 {
            return Err(
                "This password is too common or too easy to guess; please choose another.".into(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s).unwrap()
    }

    #[tokio::test]
    async fn hashes_check_and_weak_ones_are_renewed() {
        let h = hash(&secret("correct horse battery")).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{h}");
        assert!(!h.contains("correct"));
        assert_eq!(
            check(&secret("correct horse battery"), &h).await.unwrap(),
            Checked::Matches(None)
        );
        assert_eq!(
            check(&secret("correct horse batter"), &h).await.unwrap(),
            Checked::Wrong
        );
        // Salted: the same password hashes differently.
        assert_ne!(hash(&secret("correct horse battery")).await.unwrap(), h);

        // A hash with weaker parameters matches, and a stronger one replaces it.
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw-of-old", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        let Checked::Matches(Some(new)) = check(&secret("pw-of-old"), &weak).await.unwrap() else {
            panic!("not renewed");
        };
        assert!(new.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"));
        assert_eq!(
            check(&secret("pw-of-old"), &new).await.unwrap(),
            Checked::Matches(None)
        );
        // A broken stored hash is the hub's fault, not a wrong password.
        assert!(check(&secret("x"), "not a hash").await.is_err());
        assert_eq!(check(&secret("x"), decoy()).await.unwrap(), Checked::Wrong);
    }

    #[test]
    fn new_passwords_follow_the_rules() {
        let cfg = NativeSection::default();
        let ok = |pw: &str| acceptable(&cfg, pw, "alice", Some("alice@example.org"));
        assert!(ok("purple-Tractor-91-lamp").is_ok());
        for (bad, says) in [
            ("short", "at least 8"),
            ("password1", "too common"),
            ("12345678", "too common"),
            ("qwertyuiop", "too common"),
            ("alice1234", "too common"),
            ("tab\there-long-enough", "control"),
        ] {
            let e = ok(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(ok(&"x".repeat(MAX_LEN + 1))
            .unwrap_err()
            .contains("at most"));
        let lax = NativeSection {
            check_common_password: false,
            minimum_password_length: 4,
            ..NativeSection::default()
        };
        assert!(acceptable(&lax, "password", "alice", None).is_ok());
    }
}
