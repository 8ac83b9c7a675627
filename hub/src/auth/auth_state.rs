//! `enable_auth_state`: what the provider gave at sign-in (its tokens, the user's
//! claims), kept sealed with XChaCha20-Poly1305 under a key from a file root owns, the
//! user's name bound in as associated data (a sealed state moved to another user's row
//! does not open). JupyterHub's `JUPYTERHUB_CRYPT_KEY`, as a file instead of an
//! environment variable.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroize;

use crate::types::Username;

const NONCE_LEN: usize = 24;

/// The key that seals auth states.
pub struct AuthStateKey(XChaCha20Poly1305);

impl std::fmt::Debug for AuthStateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthStateKey(..)")
    }
}

impl AuthStateKey {
    /// Reads the key: 64 hex digits (`openssl rand -hex 32`) in a regular file owned by
    /// root, readable by no one but root and its group. An error says what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bad =
            |m: &dyn std::fmt::Display| format!("auth_state_key_file {}: {m}", path.display());
        // Opened without following a link, then checked on the open file itself: what
        // is checked is what is read.
        use std::io::Read as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(path)
            .map_err(|e| bad(&e))?;
        let meta = file.metadata().map_err(|e| bad(&e))?;
        if !meta.file_type().is_file() {
            return Err(bad(&"must be a regular file, not a link"));
        }
        if meta.uid() != 0 || meta.mode() & 0o027 != 0 || meta.len() > 1024 {
            return Err(bad(&"must be owned by root, not writable by its group, and not readable by others (root:sudohub 0640)"));
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| bad(&e))?;
        let decoded = hex::decode(text.trim());
        text.zeroize();
        let mut bytes =
            decoded.map_err(|_| bad(&"must hold 64 hex digits (openssl rand -hex 32)"))?;
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(bad(&"must hold 64 hex digits (openssl rand -hex 32)"));
        }
        let key = XChaCha20Poly1305::new(Key::from_slice(&bytes));
        bytes.zeroize();
        Ok(Self(key))
    }

    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(Key::from_slice(&bytes)))
    }

    /// `state` sealed for `user`: a fresh nonce, then the ciphertext.
    pub fn seal(&self, user: &Username, state: &serde_json::Value) -> Result<Vec<u8>, String> {
        let mut plain = serde_json::to_vec(state).map_err(|e| e.to_string())?;
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self.0.encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: user.as_str().as_bytes(),
            },
        );
        plain.zeroize();
        let sealed = sealed.map_err(|_| "cannot seal the auth state".to_owned())?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// The state `blob` holds, if it was sealed for `user` with this key.
    pub fn open(&self, user: &Username, blob: &[u8]) -> Result<serde_json::Value, String> {
        if blob.len() < NONCE_LEN {
            return Err("the sealed auth state is too short".into());
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let mut plain = self
            .0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: user.as_str().as_bytes(),
                },
            )
            .map_err(|_| "the auth state does not open with this key for this user".to_owned())?;
        let v = serde_json::from_slice(&plain).map_err(|e| e.to_string());
        plain.zeroize();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_for_one_user_under_one_key() {
        let k = AuthStateKey::from_bytes([7; 32]);
        let (a, b) = (
            Username::parse("alice").unwrap(),
            Username::parse("bob").unwrap(),
        );
        let state = serde_json::json!({"access_token": "t0ken"});
        let blob = k.seal(&a, &state).unwrap();
        assert!(!blob.windows(5).any(|w| w == b"t0ken"));
        assert_eq!(k.open(&a, &blob).unwrap(), state);
        assert!(k.open(&b, &blob).is_err(), "moved to another user");
        assert!(AuthStateKey::from_bytes([8; 32]).open(&a, &blob).is_err());
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(k.open(&a, &tampered).is_err());
        assert!(k.open(&a, &blob[..10]).is_err());
    }
}
