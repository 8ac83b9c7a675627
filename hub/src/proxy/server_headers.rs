//! What a user's server (or a service) may say in its response headers about the rest
//! of the origin it shares with the hub: only things scoped to its own prefix.

use http::header::{self, HeaderMap, HeaderValue};

/// The names of the hub's own cookies: a server may never set them.
const HUB_COOKIES: &[&str] = &[
    crate::auth::cookies::LOGIN_COOKIE,
    crate::auth::cookies::SESSION_ID_COOKIE,
];

/// What a server's response may say about the rest of the origin, cut to its own
/// prefix: its cookies ([`keep_own_cookies`]); a service worker only for its own paths
/// (`Service-Worker-Allowed: /` would let it intercept the hub's pages, a fake login page
/// included); and no `Clear-Site-Data`, which would sign the visitor out of the hub.
pub fn keep_to_prefix(headers: &mut HeaderMap, prefix: &str) {
    keep_own_cookies(headers, prefix);
    headers.remove("clear-site-data");
    let allowed = headers
        .get("service-worker-allowed")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|scope| scope.starts_with(prefix) && !scope.contains(".."));
    if !allowed {
        headers.remove("service-worker-allowed");
    }
}

/// Drops every `Set-Cookie` of a server's response except those scoped to its own
/// prefix: a server on the hub's origin must not set, overwrite or shadow the hub's
/// cookies (a `Path=/hub/` login cookie, a `Domain=` cookie for every subdomain).
fn keep_own_cookies(headers: &mut HeaderMap, prefix: &str) {
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
        let own = parsed.as_ref().is_some_and(|c| {
            !HUB_COOKIES.contains(&c.name())
                && c.domain().is_none()
                && c.path()
                    .is_none_or(|p| p.starts_with(prefix) || format!("{p}/") == prefix)
        });
        if own {
            headers.append(header::SET_COOKIE, value);
        } else {
            tracing::warn!(prefix, cookie = ?value, "proxy: dropped a Set-Cookie outside the server's prefix");
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
    fn servers_cannot_reach_beyond_their_prefix_with_headers() {
        let mut h = HeaderMap::new();
        h.insert("service-worker-allowed", HeaderValue::from_static("/"));
        h.insert("clear-site-data", HeaderValue::from_static("\"cookies\""));
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
