//! A logged-in browser: its session, found from the signed login cookie, and the axum
//! extractors pages declare to get one.
//!
//! `Session` as an extractor sends a browser without a live session to the login page,
//! coming back to the URL it asked for; `Option<Session>` never rejects.

use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::cookies::{self, CookieKey, CookieNames, LOGIN_COOKIE};
use crate::config::HubConfig;
use crate::db::{Db, UserRow};
use crate::urls::Urls;

/// What the authentication extractors need from the application's state.
pub trait AuthState: Send + Sync {
    /// The configuration (service tokens).
    fn config(&self) -> &HubConfig;
    /// The database (sessions, tokens).
    fn db(&self) -> &Db;
    /// The cookie key.
    fn cookie_key(&self) -> &CookieKey;
    /// The URL set (where the login page is).
    fn urls(&self) -> &Urls;
    /// The names and paths of the hub's cookies.
    fn cookie_names(&self) -> &CookieNames;
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

impl Session {
    /// The session of a request, if its login cookie is valid and live.
    pub fn current(
        db: &Db,
        key: &CookieKey,
        names: &CookieNames,
        headers: &HeaderMap,
    ) -> Option<Self> {
        let secret = key.verify(LOGIN_COOKIE, &cookies::read(headers, names.login())?)?;
        let (user, session_id) = db.sessions().get(&secret).ok()??;
        Some(Self {
            user,
            session_id,
            secret,
        })
    }

    /// The XSRF token forms and API calls of this session must carry.
    pub fn xsrf(&self, key: &CookieKey) -> String {
        key.xsrf(&self.session_id)
    }
}

/// The path and query the browser asked for, as it asked (before routers stripped any
/// prefix): where to come back to after logging in.
pub fn requested(parts: &Parts) -> String {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

impl<S: AuthState> FromRequestParts<S> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let names = state.cookie_names();
        let found = Self::current(state.db(), state.cookie_key(), names, &parts.headers);
        found.ok_or_else(|| {
            let mut resp = Redirect::to(&state.urls().login(&requested(parts))).into_response();
            // A login cookie planted at a longer path: delete every copy on the way up,
            // so that signing in again gives one cookie, the hub's.
            if cookies::ambiguous(&parts.headers, names.login()) {
                let path = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or(parts.uri.path(), |o| o.0.path());
                for c in cookies::clear_up_to(names.login(), path, names.hub_path()) {
                    resp.headers_mut().append(axum::http::header::SET_COOKIE, c);
                }
            }
            resp
        })
    }
}

impl<S: AuthState> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::current(
            state.db(),
            state.cookie_key(),
            state.cookie_names(),
            &parts.headers,
        ))
    }
}
