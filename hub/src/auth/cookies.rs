//! The hub's cookies: their names, the key that signs them, and how they are read and
//! written (with the `cookie` crate, signed jars for the login cookie).
//!
//! The login cookie holds a random session secret, signed under a key derived from the
//! cookie secret file; the database stores only a hash of the secret. A forged or altered
//! cookie fails the signature before any database lookup. XSRF tokens are an HMAC of the
//! session id under the same key, so they need no storage and die with the session.

use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, CookieJar, Key, SameSite};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::urls::Urls;

/// Name of the hub's login cookie (JupyterHub's).
pub const LOGIN_COOKIE: &str = "jupyterhub-hub-login";
/// Name of the session-id cookie single-user servers read for XSRF (compat §1.6).
pub const SESSION_ID_COOKIE: &str = "jupyterhub-session-id";
/// Name of the anonymous XSRF cookie of the login form.
pub const XSRF_COOKIE: &str = "_xsrf";
/// The same three under the `__Host-` prefix (see [`CookieNames`]).
pub const HOST_LOGIN_COOKIE: &str = "__Host-jupyterhub-hub-login";
const HOST_SESSION_ID_COOKIE: &str = "__Host-jupyterhub-session-id";
const HOST_XSRF_COOKIE: &str = "__Host-_xsrf";

/// The names and paths of the hub's cookies for one hub.
///
/// With `subdomain_host` over https, users' servers live on subdomains of the hub's host,
/// and a page there could write a cookie for the parent domain with `document.cookie`
/// (no proxy sees that): a login cookie of the attacker's own, say, to sign a visitor in
/// as the attacker. So the hub's cookies then carry the `__Host-` prefix, which browsers
/// accept only from the hub's own host, `Secure`, without `Domain` and with `Path=/`
/// (as JupyterHub's `cookie_host_prefix_enabled`). Otherwise they keep JupyterHub's names
/// and paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieNames {
    login: &'static str,
    session_id: &'static str,
    xsrf: &'static str,
    hub_path: String,
    base_path: String,
}

impl CookieNames {
    /// The cookies of the hub at `urls`, `__Host-` ones when `host_prefix`.
    pub fn new(urls: &Urls, host_prefix: bool) -> Self {
        if host_prefix {
            Self {
                login: HOST_LOGIN_COOKIE,
                session_id: HOST_SESSION_ID_COOKIE,
                xsrf: HOST_XSRF_COOKIE,
                hub_path: "/".into(),
                base_path: "/".into(),
            }
        } else {
            Self {
                login: LOGIN_COOKIE,
                session_id: SESSION_ID_COOKIE,
                xsrf: XSRF_COOKIE,
                hub_path: urls.hub(),
                base_path: urls.base().to_owned(),
            }
        }
    }

    /// The login cookie (signed under [`LOGIN_COOKIE`] whatever its name).
    pub fn login(&self) -> &'static str {
        self.login
    }

    /// The session-id cookie.
    pub fn session_id(&self) -> &'static str {
        self.session_id
    }

    /// The login form's XSRF cookie.
    pub fn xsrf(&self) -> &'static str {
        self.xsrf
    }

    /// The path of the login and XSRF cookies: `<base>hub/`, or `/`.
    pub fn hub_path(&self) -> &str {
        &self.hub_path
    }

    /// The path of the session-id cookie: `<base>`, or `/`.
    pub fn base_path(&self) -> &str {
        &self.base_path
    }
}

/// Whether the request carries a login cookie under either name.
pub fn has_login(headers: &HeaderMap) -> bool {
    [LOGIN_COOKIE, HOST_LOGIN_COOKIE]
        .iter()
        .any(|n| all(headers, n).next().is_some())
}

/// Shortest cookie secret accepted, in bytes.
const MIN_SECRET: usize = 32;

/// The cookie-signing key. Cheap to clone.
#[derive(Clone)]
pub struct CookieKey(Key);

impl CookieKey {
    /// Reads the secret file, creating it (32 random bytes as hex, mode 0600) if
    /// missing, and refusing one that others can read.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        if !path.exists() {
            let mut bytes = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            std::io::Write::write_all(&mut f, hex::encode(bytes).as_bytes())?;
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
        Self::from_secret(text.trim().as_bytes()).ok_or_else(|| {
            std::io::Error::other(format!("{} holds too short a secret", path.display()))
        })
    }

    /// A key derived from `secret` (at least 32 bytes), or `None` if it is too short.
    pub fn from_secret(secret: &[u8]) -> Option<Self> {
        // `derive_from` insists on 32 bytes of key material: checked here, not assumed.
        (secret.len() >= MIN_SECRET).then(|| Self(Key::derive_from(secret)))
    }

    /// The signed form of cookie `name`'s `value`.
    pub fn sign(&self, name: &str, value: &str) -> String {
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.0)
            .add(Cookie::new(name.to_owned(), value.to_owned()));
        jar.get(name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    }

    /// The value of signed cookie `name`, if its signature is right.
    pub fn verify(&self, name: &str, signed: &str) -> Option<String> {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(name.to_owned(), signed.to_owned()));
        jar.signed(&self.0).get(name).map(|c| c.value().to_owned())
    }

    /// The XSRF token of a session: 32 hex characters of an HMAC of its id.
    pub fn xsrf(&self, session_id: &str) -> String {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(self.0.signing()) else {
            return String::new();
        };
        m.update(b"xsrf:");
        m.update(session_id.as_bytes());
        let mut token = hex::encode(m.finalize().into_bytes());
        token.truncate(32);
        token
    }
}

/// The value of cookie `name` in the request.
///
/// A script on the hub's origin can set cookies of the same name for longer paths, which
/// the browser then sends first. So a name sent with two different values is ambiguous
/// and reads as absent: no planted login cookie or XSRF token is ever taken for the
/// hub's own.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut values = all(headers, name);
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

/// Every value of cookie `name` in the request, in the order the browser sent them.
fn all<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Whether `name` was sent with more than one value (see [`read`]).
pub fn ambiguous(headers: &HeaderMap, name: &str) -> bool {
    let mut values = all(headers, name);
    values
        .next()
        .is_some_and(|first| values.any(|v| v != first))
}

/// `Set-Cookie` values that delete `name` at `path` and every path above it up to
/// `stop` (a planted copy at a longer path is gone with them).
pub fn clear_up_to(name: &str, path: &str, stop: &str) -> Vec<HeaderValue> {
    let mut out = Vec::new();
    let mut p = path.to_owned();
    while p.starts_with(stop) && p.len() >= stop.len() {
        out.push(clear(name, &p));
        if p.ends_with('/') {
            p.pop();
        } else {
            match p.rfind('/') {
                Some(i) => p.truncate(i + 1),
                None => break,
            }
        }
    }
    out
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` when asked, and
/// `Max-Age` when given (else a browser-session cookie).
pub fn set(name: &str, value: &str, path: &str, secure: bool, max_age: Option<i64>) -> HeaderValue {
    let mut c = Cookie::build((name.to_owned(), value.to_owned()))
        .path(path.to_owned())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age));
    }
    header_value(c.build())
}

/// A `Set-Cookie` value that deletes cookie `name` at `path`.
pub fn clear(name: &str, path: &str) -> HeaderValue {
    let c = Cookie::build((name.to_owned(), ""))
        .path(path.to_owned())
        // Browsers take a `__Host-` cookie, even an expired one, only when it is `Secure`.
        .secure(name.starts_with("__Host-"))
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::ZERO);
    header_value(c.build())
}

fn header_value(c: Cookie<'_>) -> HeaderValue {
    // Names are constants and values are signed hex/base64: always valid header text.
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_subdomains_give_the_hub_host_only_cookies() {
        let urls = Urls::new("/jl/");
        let plain = CookieNames::new(&urls, false);
        assert_eq!(
            (plain.login(), plain.hub_path(), plain.base_path()),
            (LOGIN_COOKIE, "/jl/hub/", "/jl/")
        );
        let host = CookieNames::new(&urls, true);
        assert_eq!(
            (host.login(), host.session_id(), host.xsrf()),
            (
                HOST_LOGIN_COOKIE,
                "__Host-jupyterhub-session-id",
                "__Host-_xsrf"
            )
        );
        // What browsers require of a `__Host-` cookie: Path=/, Secure, no Domain.
        assert_eq!((host.hub_path(), host.base_path()), ("/", "/"));
        let v = set(host.login(), "v", host.hub_path(), true, None);
        let v = v.to_str().unwrap();
        assert!(
            v.ends_with("Path=/") && v.contains("Secure") && !v.contains("Domain"),
            "{v}"
        );
        let gone = clear(host.login(), "/");
        assert!(gone.to_str().unwrap().contains("Secure"), "{gone:?}");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-jupyterhub-hub-login=x"),
        );
        assert!(has_login(&h));
    }

    #[test]
    fn signed_cookies_resist_tampering() {
        let k = CookieKey::from_secret(&[7; 32]).unwrap();
        let s = k.sign(LOGIN_COOKIE, "abc");
        assert_eq!(k.verify(LOGIN_COOKIE, &s).as_deref(), Some("abc"));
        assert_eq!(k.verify(LOGIN_COOKIE, &s.replace("abc", "abd")), None);
        let other = CookieKey::from_secret(&[8; 32]).unwrap();
        assert_eq!(other.verify(LOGIN_COOKIE, &s), None);
        assert_eq!(k.verify(LOGIN_COOKIE, "nodot"), None);
        assert!(CookieKey::from_secret(&[1; 31]).is_none());
        assert_eq!(k.xsrf("sid").len(), 32);
        assert_ne!(k.xsrf("sid"), other.xsrf("sid"));
    }

    #[test]
    fn a_name_sent_twice_with_different_values_reads_as_absent() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("_xsrf=planted; a=1; _xsrf=real"),
        );
        assert_eq!(read(&h, XSRF_COOKIE), None);
        assert!(ambiguous(&h, XSRF_COOKIE));
        assert_eq!(read(&h, "a").as_deref(), Some("1"));
        let mut same = HeaderMap::new();
        same.insert(header::COOKIE, HeaderValue::from_static("_xsrf=x; _xsrf=x"));
        assert_eq!(read(&same, XSRF_COOKIE).as_deref(), Some("x"));
        let paths: Vec<String> = clear_up_to(LOGIN_COOKIE, "/hub/token/x", "/hub/")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(paths.len(), 4, "{paths:?}");
        for (v, p) in paths
            .iter()
            .zip(["/hub/token/x", "/hub/token/", "/hub/token", "/hub/"])
        {
            assert!(
                v.contains(&format!("Path={p};")) || v.ends_with(&format!("Path={p}")),
                "{v}"
            );
        }
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; _xsrf=xyz"));
        assert_eq!(read(&h, XSRF_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(read(&h, "b"), None);
        let v = set(LOGIN_COOKIE, "v", "/hub/", true, Some(60));
        let v = v.to_str().unwrap();
        for part in [
            "jupyterhub-hub-login=v",
            "Path=/hub/",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Max-Age=60",
        ] {
            assert!(v.contains(part), "{v}");
        }
        assert!(clear(XSRF_COOKIE, "/")
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
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
        assert_eq!(a.xsrf("x"), b.xsrf("x"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(CookieKey::load_or_create(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
