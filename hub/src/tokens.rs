//! Secrets the hub makes: API and OAuth tokens, OAuth codes, session ids; and how they
//! are stored (hashed) and compared.
//!
//! Every secret here is at least 128 random bits, so a plain SHA-256 is the right storage
//! hash: it is what makes a stolen database useless, while salts and rounds only matter
//! for low-entropy secrets such as passwords (which the hub never stores).

use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new API token: 32 hex characters, like JupyterHub's `uuid4().hex`.
pub fn new_api_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A new OAuth code or access token: 30 characters of `[A-Za-z0-9]` (~178 bits), like
/// oauthlib's.
pub fn new_oauth_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 30)
}

/// A new session id: 32 hex characters.
pub fn new_session_id() -> String {
    new_api_token()
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// ISO 8601 UTC with microseconds and `Z`, the timestamp format of JupyterHub's API.
pub fn now_iso() -> String {
    iso(time::OffsetDateTime::now_utc())
}

/// Formats a time as [`now_iso`] does.
pub fn iso(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Seconds since the epoch, for expiry columns.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(new_api_token().len(), 32);
        let o = new_oauth_secret();
        assert!(o.len() == 30 && o.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(hash("x").len(), 64);
        assert_ne!(new_api_token(), new_api_token());
        let t = now_iso();
        assert!(t.ends_with('Z') && t.len() == 27, "{t}");
    }
}
