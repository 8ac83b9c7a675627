//! Signing in at an identity provider: `/hub/oauth_login` sends the browser there,
//! `/hub/oauth_callback` (OAuthenticator's path) brings it back.

use std::collections::HashMap;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::login::{admit, form_xsrf, next_of, page};
use crate::auth::client::client_ip;
use crate::auth::cookies;
use crate::auth::oauth::pending::{MAX_NEXT, PENDING_TTL};
use crate::auth::oauth::{Identity, OAuthError};
use crate::auth::rules::is_system_account;
use crate::auth::{AuthError, Authenticated};
use crate::db::Binding;
use crate::state::AppState;

/// The cookie that carries the `state` of this browser's sign-in under way.
const STATE_COOKIE: &str = "sudohub-oauth-state";

fn state_cookie(s: &AppState) -> &'static str {
    if s.cfg.host_prefixed_cookies() {
        "__Host-sudohub-oauth-state"
    } else {
        STATE_COOKIE
    }
}

/// `GET /hub/oauth_login`: to the provider, with a new `state` in a cookie.
pub async fn start(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(oauth) = s.oauth.clone() else {
        return Redirect::to(&s.urls.hub_page("login")).into_response();
    };
    let mut next = next_of(&s, &q);
    if next.len() > MAX_NEXT {
        next = s.urls.hub_page("spawn");
    }
    let from = client_ip(peer.ip(), &headers, &s.cfg.trusted_proxies);
    match oauth.begin(next.clone(), from).await {
        Ok((url, state)) => {
            let secs = i64::try_from(PENDING_TTL.as_secs()).unwrap_or(600);
            let cookie = cookies::set(
                state_cookie(&s),
                &state,
                s.cookies.hub_path(),
                s.cfg.secure_cookies(),
                Some(secs),
            );
            let mut resp = Redirect::to(&url).into_response();
            resp.headers_mut().append(header::SET_COOKIE, cookie);
            resp
        }
        Err(e) => refused(&s, &e, &next),
    }
}

/// `GET /hub/oauth_callback`: the provider's answer; in, or the login page saying why not.
pub async fn callback(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(oauth) = s.oauth.clone() else {
        return Redirect::to(&s.urls.hub_page("login")).into_response();
    };
    let cookie = cookies::read(&headers, state_cookie(&s));
    let clear = cookies::clear(state_cookie(&s), s.cookies.hub_path());
    let fallback = s.urls.hub_page("spawn");
    let (id, next) = match oauth.finish(cookie.as_deref(), &q).await {
        Ok(done) => done,
        Err(e) => return with_cookie(refused(&s, &e, &fallback), clear),
    };
    let kind = oauth.kind();
    let source = oauth.binding_source();
    // The name: the one this identity was bound to at its first sign-in, else the one
    // its claims map to. The rules judge that very name.
    let named = oauth.name_of(&id).and_then(|mapped| {
        let bound =
            s.db.identities()
                .bound(&source, &id.subject)
                .map_err(|e| OAuthError::Unavailable(format!("database: {e}")))?;
        let fresh = bound.is_none();
        let name = bound.unwrap_or(mapped);
        if is_system_account(&name) {
            return Err(OAuthError::SystemAccount(name));
        }
        // Refused before anything is made for it (a Unix account, a user row).
        let taken = fresh
            && s.db
                .identities()
                .is_taken(&source, &name)
                .map_err(|e| OAuthError::Unavailable(format!("database: {e}")))?;
        if taken {
            return Err(OAuthError::Taken(name));
        }
        let admin = oauth.judge(&s.auth.rules(), &name, &id)?;
        Ok((name, admin))
    });
    let (name, admin) = match named {
        Ok(n) => n,
        Err(e) => return with_cookie(refused(&s, &e, &next), clear),
    };
    let who = Authenticated {
        name: name.clone(),
        admin,
        source: kind,
    };
    // The first sign-in binds the name to this identity, once the user is let in (their
    // Unix account there or made) and before the session starts; another identity
    // whose name maps to it later is refused.
    let bind = || match s.db.identities().bind(&source, &id.subject, &name) {
        Ok(Binding::User(bound)) if bound == name => Ok(()),
        // Bound meanwhile (a sign-in of the same identity racing this one) to another
        // name, or the name is another's: never a session under a name not its own.
        Ok(_) => Err(AuthError::Taken(name.to_string())),
        Err(e) => Err(AuthError::Helper(format!("database: {e}"))),
    };
    let resp = match admit(&s, who, &next, bind).await {
        Ok(resp) => {
            tracing::info!(user = %name, source = kind.as_str(), admin, "login accepted");
            keep_auth_state(&s, &name, &id);
            resp
        }
        Err(e) => {
            tracing::info!(user = %name, source = kind.as_str(), reason = %e, "login refused");
            s.metrics.login_failed(e.metric_label());
            login_page(&s, StatusCode::FORBIDDEN, &next, &e.user_message())
        }
    };
    with_cookie(resp, clear)
}

/// With `enable_auth_state`, seals what the provider gave and keeps it; without,
/// forgets any kept before.
fn keep_auth_state(s: &AppState, name: &crate::types::Username, id: &Identity) {
    let sealed = match &s.auth_state {
        Some(k) => match k.seal(name, &id.auth_state()) {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::error!(user = %name, error = %e, "cannot seal the auth state");
                None
            }
        },
        None => None,
    };
    if let Err(e) = s.db.identities().set_auth_state(name, sealed.as_deref()) {
        tracing::error!(user = %name, error = %e, "cannot keep the auth state");
    }
}

/// The login page saying why the provider's sign-in did not let the user in.
fn refused(s: &AppState, e: &OAuthError, next: &str) -> Response {
    match e {
        OAuthError::Unavailable(_) | OAuthError::Rejected(_) => {
            tracing::error!(error = %e, "sign-in at the provider failed")
        }
        _ => tracing::info!(error = %e, "sign-in at the provider refused"),
    }
    s.metrics.login_failed(e.metric_label());
    let service = s
        .oauth
        .as_ref()
        .map(|o| o.service_name())
        .unwrap_or_default();
    let status = match e {
        OAuthError::Unavailable(_) | OAuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    };
    login_page(s, status, next, &e.user_message(&service))
}

fn login_page(s: &AppState, status: StatusCode, next: &str, message: &str) -> Response {
    let (xsrf, cookie) = form_xsrf(s);
    let page = page(s, status, next, &xsrf, Some(message));
    with_cookie(page, cookie)
}

fn with_cookie(mut resp: Response, cookie: HeaderValue) -> Response {
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}
