//! What a user's server (or a service) may say in its response headers about the rest
//! of the origin it shares with the hub (only things scoped to its own prefix), or, on an
//! origin of its own (`subdomain_host`), about its neighbours (nothing).

use http::header::{self, HeaderMap, HeaderValue};

/// The names of the hub's own cookies: a server may never set them.
const HUB_COOKIES: &[&str] = &[
    crate::auth::cookies::LOGIN_COOKIE,
    crate::auth::cookies::SESSION_ID_COOKIE,
    crate::auth::cookies::HOST_LOGIN_COOKIE,
];

/// What a server's response may say about the rest of the origin, cut to its own
/// prefix: its cookies ([`keep_own_cookies`]); a service worker only for its own paths
/// (`Service-Worker-Allowed: /` would let it intercept the hub's pages, a fake login page
/// included); no `Clear-Site-Data`, which would sign the visitor out of the hub; and no
/// `Cross-Origin-Opener-Policy`: the hub's pages are kept out of reach of a server's
/// windows only because their policy (`same-origin`) differs from the server page's (none),
/// so a server page that claimed `same-origin` too would share a browsing context group
/// with a hub page it opened, and read its XSRF token or the admin page's API token.
pub fn keep_to_prefix(headers: &mut HeaderMap, prefix: &str) {
    keep_own_cookies(headers, prefix);
    headers.remove("clear-site-data");
    headers.remove("cross-origin-opener-policy");
    headers.remove("cross-origin-opener-policy-report-only");
    let allowed = headers
        .get("service-worker-allowed")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|scope| scope.starts_with(prefix) && !scope.contains(".."));
    if !allowed {
        headers.remove("service-worker-allowed");
    }
}

/// What a server on its own origin may not say: a `Domain=` cookie (it would reach the
/// hub's origin and every other server's) or `Clear-Site-Data` (it clears the whole site,
/// the hub's cookies included).
pub fn keep_to_origin(headers: &mut HeaderMap) {
    headers.remove("clear-site-data");
    keep_cookies(headers, "its own origin", |c| c.domain().is_none());
}

/// Drops every `Set-Cookie` of a server's response except those scoped to its own
/// prefix: a server on the hub's origin must not set, overwrite or shadow the hub's
/// cookies (a `Path=/hub/` login cookie, a `Domain=` cookie for every subdomain).
fn keep_own_cookies(headers: &mut HeaderMap, prefix: &str) {
    keep_cookies(headers, prefix, |c| {
        !HUB_COOKIES.contains(&c.name())
            && c.domain().is_none()
            && c.path()
                .is_none_or(|p| p.starts_with(prefix) || format!("{p}/") == prefix)
    });
}

/// Keeps the `Set-Cookie` headers that parse and pass `own`; logs the others with `scope`.
fn keep_cookies(headers: &mut HeaderMap, scope: &str, own: impl Fn(&cookie::Cookie) -> bool) {
    let all: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if all.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for value in all {
        let parsed = value
            .to_str()
            .ok()
            .and_then(|v| cookie::Cookie::parse(v).ok());
        if parsed.as_ref().is_some_and(&own) {
            headers.append(header::SET_COOKIE, value);
        } else {
            tracing::warn!(scope, cookie = ?value, "proxy: dropped a Set-Cookie outside the server's scope");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_keep_only_cookies_for_their_own_prefix() {
        let mut h = HeaderMap::new();
        for c in [
            "_xsrf=1; Path=/user/alice/",
            "jupyterhub-user-alice=2; Path=/user/alice/; HttpOnly",
            "nopath=3",
            "exact=3b; Path=/user/alice",
            "jupyterhub-hub-login=evil; Path=/hub/",
            "jupyterhub-session-id=fixed; Path=/",
            "wide=4; Path=/",
            "sibling=5; Path=/user/alicex/",
            "everywhere=6; Domain=example.org; Path=/user/alice/",
        ] {
            h.append(header::SET_COOKIE, HeaderValue::from_static(c));
        }
        keep_own_cookies(&mut h, "/user/alice/");
        let kept: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split('=').next().unwrap())
            .collect();
        assert_eq!(kept, ["_xsrf", "jupyterhub-user-alice", "nopath", "exact"]);
    }

    #[test]
    fn servers_on_their_own_origin_keep_it_to_themselves() {
        let mut h = HeaderMap::new();
        for c in [
            "__Host-jupyterhub-user-alice=1; Path=/; Secure",
            "jupyterhub-hub-login=2; Path=/hub/",
            "tossed=3; Domain=hub.example.org; Path=/",
            "tossed2=4; Domain=.example.org",
        ] {
            h.append(header::SET_COOKIE, HeaderValue::from_static(c));
        }
        h.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
        h.insert("service-worker-allowed", HeaderValue::from_static("/"));
        keep_to_origin(&mut h);
        let kept: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split('=').next().unwrap())
            .collect();
        // Host-only cookies stay on the server's own origin, whatever their name or path.
        assert_eq!(
            kept,
            ["__Host-jupyterhub-user-alice", "jupyterhub-hub-login"]
        );
        assert!(h.get("clear-site-data").is_none());
        assert_eq!(h["service-worker-allowed"], "/");
    }

    #[test]
    fn servers_cannot_reach_beyond_their_prefix_with_headers() {
        let mut h = HeaderMap::new();
        h.insert("service-worker-allowed", HeaderValue::from_static("/"));
        h.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
        h.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        h.insert(
            "cross-origin-opener-policy-report-only",
            HeaderValue::from_static("same-origin"),
        );
        keep_to_prefix(&mut h, "/user/alice/");
        assert!(h.is_empty(), "{h:?}");
        h.insert(
            "service-worker-allowed",
            HeaderValue::from_static("/user/alice/lab/"),
        );
        keep_to_prefix(&mut h, "/user/alice/");
        assert_eq!(h["service-worker-allowed"], "/user/alice/lab/");
    }
}
