//! Secrets the hub makes: API and OAuth tokens, OAuth codes, session ids; and how they
//! are stored (hashed) and compared.
//!
//! Every secret here is at least 128 random bits, so a plain SHA-256 is the right storage
//! hash: it is what makes a stolen database useless, while salts and rounds only matter
//! for low-entropy secrets such as passwords (which the hub never stores).

use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new API token: 32 hex characters, like JupyterHub's `uuid4().hex`.
pub fn new_api_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new OAuth code or access token: 30 characters of `[A-Za-z0-9]` (~178 bits), like
/// oauthlib's.
pub fn new_oauth_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 30)
}

/// A new session id or session secret: 32 hex characters.
pub fn new_session_id() -> String {
    new_api_token()
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time comparison of two secrets.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A secret kept in a file of its own (a password, a client secret): its text without
/// the line ending an editor leaves; an error names the key and the file.
pub fn read_secret_file(key: &str, path: &std::path::Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
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
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
