//! Login sessions, signed cookies and XSRF tokens.
//!
//! The login cookie holds a random session secret plus an HMAC of it under the cookie
//! secret; the database stores only a hash of the secret. A forged or altered cookie fails
//! the HMAC before any database lookup. XSRF tokens are an HMAC of the session id, so they
//! need no storage and die with the session.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use axum::http::{header, HeaderMap, HeaderValue};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::db::{Db, UserRow};
use crate::tokens::hex;

/// Name of the hub's login cookie (JupyterHub's).
pub const LOGIN_COOKIE: &str = "jupyterhub-hub-login";
/// Name of the session-id cookie single-user servers read for XSRF (compat §1.6).
pub const SESSION_ID_COOKIE: &str = "jupyterhub-session-id";
/// Name of the anonymous XSRF cookie of the login form.
pub const XSRF_COOKIE: &str = "_xsrf";

/// The cookie-signing key.
#[derive(Clone)]
pub struct CookieKey(Vec<u8>);

impl CookieKey {
    /// Reads the secret file, creating it (32 random bytes, mode 0600) if missing, and
    /// refusing one that others can read.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if !path.exists() {
            let mut bytes = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            std::io::Write::write_all(&mut f, hex(&bytes).as_bytes())?;
        }
        let mut f = std::fs::File::open(path)?;
        let mode = f.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "{} has mode {mode:04o}: the cookie secret must be 0600 (chmod 600 {})",
                path.display(),
                path.display()
            )));
        }
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        let key = text.trim().as_bytes().to_vec();
        if key.len() < 32 {
            return Err(std::io::Error::other(format!(
                "{} holds too short a secret",
                path.display()
            )));
        }
        Ok(Self(key))
    }

    /// A key for tests.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    fn mac(&self, purpose: &str, value: &str) -> String {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| {
            // HMAC takes keys of any length; this branch cannot happen.
            unreachable!("hmac key")
        });
        m.update(purpose.as_bytes());
        m.update(b":");
        m.update(value.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// `value.signature`.
    pub fn sign(&self, value: &str) -> String {
        format!("{value}.{}", self.mac("cookie", value))
    }

    /// The value of a signed cookie, if the signature is right.
    pub fn verify(&self, signed: &str) -> Option<String> {
        let (value, sig) = signed.rsplit_once('.')?;
        let want = self.mac("cookie", value);
        bool::from(want.as_bytes().ct_eq(sig.as_bytes())).then(|| value.to_owned())
    }

    /// The XSRF token of a session.
    pub fn xsrf(&self, session_id: &str) -> String {
        self.mac("xsrf", session_id)[..32].to_owned()
    }
}

/// Constant-time string comparison.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub user: UserRow,
    /// The session id (shared with single-user servers via their cookie).
    pub session_id: String,
    /// The raw session secret (to end it at logout).
    pub secret: String,
}

/// The session of this request, if its login cookie is valid and live.
pub fn current(db: &Db, key: &CookieKey, headers: &HeaderMap) -> Option<Session> {
    let secret = key.verify(&cookie(headers, LOGIN_COOKIE)?)?;
    let (user, session_id) = db.session(&secret).ok()??;
    Some(Session {
        user,
        session_id,
        secret,
    })
}

/// A `Set-Cookie` header value.
pub fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    secure: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// A `Set-Cookie` header value that deletes a cookie.
pub fn clear_cookie(name: &str, path: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Whether `next` is a safe place to send a browser after login: a path on this hub
/// under `base_url`, never another host (`//evil`, `/\evil`, `https://…`).
pub fn safe_next(next: &str, base_url: &str) -> bool {
    next.starts_with(base_url)
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.contains("/..")
        && !next.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_cookies_resist_tampering() {
        let k = CookieKey::from_bytes(&[7; 32]);
        let s = k.sign("abc");
        assert_eq!(k.verify(&s).as_deref(), Some("abc"));
        assert_eq!(k.verify(&s.replace("abc", "abd")), None);
        assert_eq!(CookieKey::from_bytes(&[8; 32]).verify(&s), None);
        assert_eq!(k.verify("nodot"), None);
    }

    #[test]
    fn next_must_stay_on_the_hub() {
        for ok in ["/hub/home", "/user/a/lab?x=1"] {
            assert!(safe_next(ok, "/"), "{ok}");
        }
        for bad in [
            "//evil.com/x",
            "/\\evil.com",
            "https://evil.com/",
            "evil",
            "/jl/../x",
            "/x\r\nSet-Cookie:a",
        ] {
            assert!(!safe_next(bad, "/"), "{bad}");
        }
        assert!(!safe_next("/hub/home", "/jupyterlab/"));
        assert!(safe_next("/jupyterlab/hub/home", "/jupyterlab/"));
    }

    #[test]
    fn secret_file_is_created_0600_and_checked() {
        let dir = std::env::temp_dir().join(format!("sudohub-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("cookie_secret");
        let a = CookieKey::load_or_create(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = CookieKey::load_or_create(&p).unwrap();
        assert_eq!(a.sign("x"), b.sign("x"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(CookieKey::load_or_create(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
