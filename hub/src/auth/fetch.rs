//! Who really sent a request, as the browser tells it in fetch metadata
//! (`Sec-Fetch-Site`, `Sec-Fetch-Mode`, `Sec-Fetch-Dest`, `Sec-Fetch-User`).
//!
//! Without `subdomain_host`, every user's server is served from the hub's own origin, and
//! a user controls what their server serves. A page of user B's server that user A opens
//! runs B's JavaScript on the hub's origin: the browser's same-origin rule no longer
//! separates it from the hub's pages. So the hub itself refuses what only such a script
//! would send, before any handler runs:
//!
//! - hub pages load only as top-level navigations (`Sec-Fetch-Mode: navigate`,
//!   `Sec-Fetch-Dest: document`): never into a frame, never read by `fetch()`, so a
//!   script cannot read the XSRF tokens they carry;
//!   (the pages of a stopped server, `/hub/user/<name>/…`, hold no secret and answer
//!   JupyterLab's own API calls with 424 or 503, so scripts may read them);
//! - a form a hub page posts must come from a same-origin navigation the user made
//!   (`Sec-Fetch-Site: same-origin`, `Sec-Fetch-User: ?1`);
//! - the REST API refuses browser requests authenticated by the login cookie unless they
//!   are navigations; the one exception is the read-only progress stream the spawn page
//!   follows with `EventSource`, from the hub's own origin.
//!
//! Clients that send no fetch metadata at all (scripts, `curl`, old browsers) are judged
//! by their credentials alone, as before. `subdomain_host` is the complete fix: see
//! SECURITY.md for what this check cannot stop on a shared origin.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::cookies;
use crate::error::HubError;
use crate::templates::Message;

/// The fetch metadata of a request, if the browser sent any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchMetadata {
    /// `same-origin`, `same-site`, `cross-site` or `none` (typed URL, bookmark).
    pub site: Option<String>,
    /// `navigate`, `cors`, `no-cors`, `same-origin`, `websocket`.
    pub mode: Option<String>,
    /// `document`, `iframe`, `empty`, `script`…
    pub dest: Option<String>,
    /// `?1` when the user activated the navigation (a click, Enter).
    pub user: Option<String>,
}

impl FetchMetadata {
    /// Reads the four headers.
    pub fn of(headers: &HeaderMap) -> Self {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase)
        };
        Self {
            site: get("sec-fetch-site"),
            mode: get("sec-fetch-mode"),
            dest: get("sec-fetch-dest"),
            user: get("sec-fetch-user"),
        }
    }

    /// Whether the browser said anything.
    pub fn present(&self) -> bool {
        self.site.is_some() || self.mode.is_some() || self.dest.is_some()
    }

    /// A top-level navigation: a page loaded into a window, not a frame or a script.
    pub fn is_top_navigation(&self) -> bool {
        self.mode.as_deref() == Some("navigate") && self.dest.as_deref() == Some("document")
    }

    /// A navigation the user made from one of this origin's pages (a form they posted).
    pub fn is_user_form_post(&self) -> bool {
        self.is_top_navigation()
            && self.site.as_deref() == Some("same-origin")
            && self.user.as_deref() == Some("?1")
    }
}

/// Why a request is refused, or `None` to let it through, for the hub page at `path`
/// (relative to `<base>hub`).
pub fn page_refusal(method: &Method, path: &str, meta: &FetchMetadata) -> Option<&'static str> {
    let read = *method == Method::GET || *method == Method::HEAD;
    let no_secrets = path.starts_with("/user/") || path.starts_with("/user-redirect/");
    if !meta.present() || (read && no_secrets) {
        return None;
    }
    if !meta.is_top_navigation() {
        return Some("hub pages load only as a page of their own, not in a frame or a script");
    }
    if !read && !meta.is_user_form_post() {
        return Some("this form must be sent by you from the hub's own page");
    }
    None
}

/// Why an API request is refused, or `None` to let it through.
pub fn api_refusal(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    meta: &FetchMetadata,
) -> Option<&'static str> {
    let cookie = cookies::has_login(headers);
    if !cookie || !meta.present() || meta.is_top_navigation() {
        return None;
    }
    let progress =
        *method == Method::GET && is_progress(path) && meta.site.as_deref() == Some("same-origin");
    if progress {
        return None;
    }
    Some("the API does not accept the login cookie from scripts; use an API token")
}

/// `…/users/<name>/server/progress` or `…/users/<name>/servers/<server>/progress`.
fn is_progress(path: &str) -> bool {
    let Some(rest) = path.strip_suffix("/progress") else {
        return false;
    };
    rest.ends_with("/server")
        || rest
            .rsplit_once('/')
            .is_some_and(|(head, server)| !server.is_empty() && head.ends_with("/servers"))
}

/// Middleware for the hub's pages.
pub async fn guard_pages(req: Request, next: Next) -> Response {
    let meta = FetchMetadata::of(req.headers());
    if let Some(why) = page_refusal(req.method(), req.uri().path(), &meta) {
        tracing::warn!(path = %req.uri().path(), ?meta, "refused by fetch metadata");
        return Message::error("Forbidden", why).respond(StatusCode::FORBIDDEN);
    }
    next.run(req).await
}

/// Middleware for the REST API.
pub async fn guard_api(req: Request, next: Next) -> Response {
    let meta = FetchMetadata::of(req.headers());
    if let Some(why) = api_refusal(req.method(), req.uri().path(), req.headers(), &meta) {
        tracing::warn!(path = %req.uri().path(), ?meta, "refused by fetch metadata");
        return HubError::forbidden(why).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn meta(site: &str, mode: &str, dest: &str, user: Option<&str>) -> FetchMetadata {
        FetchMetadata {
            site: Some(site.into()),
            mode: Some(mode.into()),
            dest: Some(dest.into()),
            user: user.map(Into::into),
        }
    }

    #[test]
    fn pages_only_as_user_navigations() {
        let none = FetchMetadata::default();
        assert_eq!(
            page_refusal(&Method::POST, "/token", &none),
            None,
            "non-browser clients"
        );
        let typed = meta("none", "navigate", "document", Some("?1"));
        assert_eq!(page_refusal(&Method::GET, "/token", &typed), None);
        let link = meta("cross-site", "navigate", "document", None);
        assert_eq!(
            page_refusal(&Method::GET, "/token", &link),
            None,
            "a link from elsewhere"
        );
        let fetched = meta("same-origin", "cors", "empty", None);
        assert!(
            page_refusal(&Method::GET, "/token", &fetched).is_some(),
            "fetch() of a page"
        );
        let framed = meta("same-origin", "navigate", "iframe", None);
        assert!(
            page_refusal(&Method::GET, "/token", &framed).is_some(),
            "a page in a frame"
        );
        let clicked = meta("same-origin", "navigate", "document", Some("?1"));
        assert_eq!(page_refusal(&Method::POST, "/token", &clicked), None);
        let scripted = meta("same-origin", "navigate", "document", None);
        assert!(
            page_refusal(&Method::POST, "/token", &scripted).is_some(),
            "form.submit() by a script"
        );
        assert_eq!(
            page_refusal(&Method::GET, "/user/a/api/kernels", &fetched),
            None,
            "424 for JupyterLab"
        );
        assert!(page_refusal(&Method::POST, "/user/a/api/kernels", &fetched).is_some());
        let elsewhere = meta("cross-site", "navigate", "document", Some("?1"));
        assert!(page_refusal(&Method::POST, "/token", &elsewhere).is_some());
    }

    #[test]
    fn the_api_refuses_cookies_from_scripts() {
        let mut cookie = HeaderMap::new();
        cookie.insert("cookie", HeaderValue::from_static("jupyterhub-hub-login=x"));
        let script = meta("same-origin", "cors", "empty", None);
        let post = &Method::POST;
        assert!(api_refusal(post, "/users/a/tokens", &cookie, &script).is_some());
        assert_eq!(
            api_refusal(post, "/users/a/tokens", &HeaderMap::new(), &script),
            None,
            "tokens, not cookies"
        );
        assert_eq!(
            api_refusal(&Method::GET, "/users/a/server/progress", &cookie, &script),
            None
        );
        assert!(api_refusal(post, "/users/a/server/progress", &cookie, &script).is_some());
        assert_eq!(
            api_refusal(
                &Method::GET,
                "/users/a/servers/gpu/progress",
                &cookie,
                &script
            ),
            None,
            "a named server's progress page"
        );
        for other in [
            "/users/a/servers/gpu",
            "/users/a/servers//progress",
            "/users/a/progress",
        ] {
            assert!(
                api_refusal(&Method::GET, other, &cookie, &script).is_some(),
                "{other}"
            );
        }
        let neighbour = meta("same-site", "cors", "empty", None);
        assert!(
            api_refusal(
                &Method::GET,
                "/users/a/server/progress",
                &cookie,
                &neighbour
            )
            .is_some(),
            "a server's own origin is not the hub's"
        );
        let nav = meta("none", "navigate", "document", Some("?1"));
        assert_eq!(api_refusal(&Method::GET, "/users", &cookie, &nav), None);
        assert_eq!(
            api_refusal(post, "/users/a/tokens", &cookie, &FetchMetadata::default()),
            None
        );
    }
}
