//! Signing in at an identity provider: `/hub/oauth_login` sends the browser there,
//! `/hub/oauth_callback` (OAuthenticator's path) brings it back.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::login::{admit, form_xsrf, next_of, page};
use crate::auth::cookies;
use crate::auth::oauth::{pending::PENDING_TTL, OAuthError};
use crate::auth::Authenticated;
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
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(oauth) = s.oauth.clone() else {
        return Redirect::to(&s.urls.hub_page("login")).into_response();
    };
    let next = next_of(&s, &q);
    match oauth.begin(next.clone()).await {
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
    let judged = oauth.name_of(&id).and_then(|name| {
        let admin = oauth.judge(s.auth.rules(), &name, &id)?;
        Ok((name, admin))
    });
    let (name, admin) = match judged {
        Ok(j) => j,
        Err(e) => return with_cookie(refused(&s, &e, &next), clear),
    };
    // The first sign-in binds the name to this identity; another identity whose name
    // maps to it later is refused.
    let name = match s.db.identities().bind(kind.as_str(), &id.subject, &name) {
        Ok(Binding::User(bound)) => bound,
        Ok(Binding::Taken) => {
            return with_cookie(refused(&s, &OAuthError::Taken(name), &next), clear);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record the sign-in's identity");
            let e = OAuthError::Unavailable("database".into());
            return with_cookie(refused(&s, &e, &next), clear);
        }
    };
    tracing::info!(user = %name, source = kind.as_str(), admin, "login accepted");
    let who = Authenticated {
        name,
        admin,
        source: kind,
    };
    let resp = match admit(&s, who, &next).await {
        Ok(resp) => resp,
        Err(e) => {
            s.metrics.login_failed(e.metric_label());
            login_page(&s, StatusCode::FORBIDDEN, &next, &e.user_message())
        }
    };
    with_cookie(resp, clear)
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
