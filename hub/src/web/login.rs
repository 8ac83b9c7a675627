//! Signing in and out.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;
use sudohub_protocol::Secret;

use super::error_page;
use crate::auth::client::client_ip;
use crate::auth::cookies::{self, LOGIN_COOKIE};
use crate::auth::{AuthError, Authenticated, Session, XsrfForm};
use crate::config::SourceKind;
use crate::db::SESSION_SECS;
use crate::error::HubError;
use crate::secrets::{new_session_id, same};
use crate::state::AppState;
use crate::templates::{self, Confirm};
use crate::types::Username;
use crate::urls::query;

/// How long the login form's XSRF cookie lives.
const FORM_SECS: i64 = 3600;

#[derive(Serialize)]
struct LoginPage<'a> {
    title: &'static str,
    action: String,
    xsrf: &'a str,
    error: Option<&'a str>,
    /// The sign-up page, when sign-ups are taken.
    signup: Option<String>,
    /// Whether system accounts sign in here.
    system_accounts: bool,
    /// Whether a directory's accounts sign in here.
    directory: bool,
    /// Whether the form asks for a second factor's code.
    otp: bool,
    /// Whether a password form is shown (a source checks passwords).
    password_form: bool,
    /// "Sign in with …": the provider's name and the URL that starts it.
    oauth: Option<(String, String)>,
}

pub(super) fn page(
    s: &AppState,
    status: StatusCode,
    next: &str,
    xsrf: &str,
    error: Option<&str>,
) -> Response {
    let rules = s.auth.rules();
    let oauth = s.oauth.as_ref().map(|o| {
        let start = format!(
            "{}{}",
            s.urls.hub_page("oauth_login"),
            query([("next", next)])
        );
        (o.service_name(), start)
    });
    let ctx = LoginPage {
        title: "Sign in",
        action: format!("{}{}", s.urls.hub_page("login"), query([("next", next)])),
        xsrf,
        error,
        signup: (rules.uses(SourceKind::Native) && rules.native.enable_signup)
            .then(|| s.urls.hub_page("signup")),
        system_accounts: rules.uses(SourceKind::Pam),
        directory: rules.uses(SourceKind::Ldap),
        otp: rules.uses(SourceKind::Native) && rules.native.allow_2fa,
        password_form: rules.sources().iter().any(|k| !k.is_oauth()),
        oauth,
    };
    templates::page(status, "login.html", ctx)
}

/// Where to go after logging in: `?next=` if it stays on this hub, else the spawn page.
pub(super) fn next_of(s: &AppState, q: &HashMap<String, String>) -> String {
    q.get("next")
        .filter(|n| s.urls.is_safe_next(n))
        .cloned()
        .unwrap_or_else(|| s.urls.hub_page("spawn"))
}

/// `GET /hub/login`: the form, with a fresh XSRF cookie; a logged-in browser goes on.
pub async fn form(
    State(s): State<AppState>,
    session: Option<Session>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = next_of(&s, &q);
    if session.is_some() {
        return Redirect::to(&next).into_response();
    }
    // `auto_login`: straight to the provider, unless it just sent the browser back with
    // an error to show.
    if s.oauth.as_ref().is_some_and(|o| o.config().auto_login) {
        let start = format!(
            "{}{}",
            s.urls.hub_page("oauth_login"),
            query([("next", next.as_str())])
        );
        return Redirect::to(&start).into_response();
    }
    let (xsrf, cookie) = form_xsrf(&s);
    (
        [(header::SET_COOKIE, cookie)],
        page(&s, StatusCode::OK, &next, &xsrf, None),
    )
        .into_response()
}

/// A new XSRF token for a form shown before any session (login, sign-up), and the
/// cookie that carries it: the form must send back the same value.
pub(super) fn form_xsrf(s: &AppState) -> (String, axum::http::HeaderValue) {
    let xsrf = new_session_id();
    let cookie = cookies::set(
        s.cookies.xsrf(),
        &xsrf,
        s.cookies.hub_path(),
        s.cfg.secure_cookies(),
        Some(FORM_SECS),
    );
    (xsrf, cookie)
}

/// The XSRF token of a pre-session form, if the posted `field` matches its cookie.
pub(super) fn form_xsrf_ok(s: &AppState, headers: &HeaderMap, field: &str) -> Option<String> {
    let xsrf = cookies::read(headers, s.cookies.xsrf()).unwrap_or_default();
    (!xsrf.is_empty() && same(&xsrf, field)).then_some(xsrf)
}

/// `POST /hub/login`: checks the password and starts a session.
pub async fn submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let next = next_of(&s, &q);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let Some(xsrf) = form_xsrf_ok(&s, &headers, field("_xsrf")) else {
        let (xsrf, cookie) = form_xsrf(&s);
        let expired = Some("Your form expired; please try again.");
        let page = page(&s, StatusCode::FORBIDDEN, &next, &xsrf, expired);
        return ([(header::SET_COOKIE, cookie)], page).into_response();
    };
    let who = match Username::parse(field("username").trim()) {
        // A name that cannot be a Unix account never reaches PAM, and is told exactly
        // what a wrong password is told.
        Err(_) => Err(AuthError::Denied(
            sudohub_protocol::pam::DenyReason::UnknownUser,
        )),
        Ok(name) => match Secret::new(field("password")) {
            Ok(pw) => {
                let from = client_ip(peer.ip(), &headers, &s.cfg.trusted_proxies);
                let otp = Some(field("otp")).filter(|c| !c.is_empty());
                s.auth.authenticate(&name, pw, otp, from).await
            }
            Err(e) => Err(AuthError::Invalid(e.to_string())),
        },
    };
    let who = match who {
        Ok(a) => admit(&s, a, &next, || Ok(())).await,
        Err(e) => Err(e),
    };
    match who {
        Ok(resp) => resp,
        Err(e) => {
            s.metrics.login_failed(e.metric_label());
            page(
                &s,
                StatusCode::FORBIDDEN,
                &next,
                &xsrf,
                Some(&e.user_message()),
            )
        }
    }
}

/// Lets `who`, whom a source accepted, in: with `create_system_users` their first login
/// makes their Unix account, else a directory's or a provider's user must have one; then
/// `before_session` (the binding of a provider's identity), a new session, and on to
/// `next`.
pub(super) async fn admit(
    s: &AppState,
    who: Authenticated,
    next: &str,
    before_session: impl FnOnce() -> Result<(), AuthError>,
) -> Result<Response, AuthError> {
    let from_outside = !matches!(who.source, SourceKind::Pam | SourceKind::Native);
    match &s.accounts {
        Some(maker) => match maker.ensure(&who.name).await {
            Ok(made) => {
                if let crate::spawner::Ensured::Created(uid) = made {
                    // The account made for this user is theirs: bound to it.
                    if let Err(e) = s.db.native().bind_uid(&who.name, uid) {
                        HubError::from(e).log();
                    }
                }
            }
            Err(e) => {
                tracing::error!(user = %who.name, error = %e, "cannot create the Unix account");
                return Err(AuthError::Helper(e));
            }
        },
        None if from_outside && !unix_account_exists(&who.name) => {
            tracing::info!(user = %who.name, source = who.source.as_str(), "login refused: no Unix account of this name");
            return Err(AuthError::NoUnixAccount);
        }
        None => {}
    }
    before_session()?;
    Ok(match start_session(s, &who.name, who.admin) {
        Ok(cookies) => {
            let mut resp = Redirect::to(next).into_response();
            for c in cookies {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => error_page(&e),
    })
}

/// Whether the system knows an account called `name`.
fn unix_account_exists(name: &Username) -> bool {
    nix::unistd::User::from_name(name.as_str())
        .ok()
        .flatten()
        .is_some()
}

/// Records the user and a new session; the cookies that carry it.
///
/// The session id is always new: one the browser sent (set by anyone who could plant a
/// cookie, such as a server on this origin) is never taken over, so nobody can know a
/// session's id, and with it its XSRF token, before it exists.
fn start_session(
    s: &AppState,
    name: &Username,
    admin: Option<bool>,
) -> Result<[axum::http::HeaderValue; 2], HubError> {
    let user = s.db.users().ensure(name, admin)?;
    let secret = new_session_id();
    let sid = new_session_id();
    s.db.sessions().add(&secret, user.id, &sid)?;
    let secure = s.cfg.secure_cookies();
    let signed = s.key.sign(LOGIN_COOKIE, &secret);
    Ok([
        cookies::set(
            s.cookies.login(),
            &signed,
            s.cookies.hub_path(),
            secure,
            Some(SESSION_SECS),
        ),
        cookies::set(
            s.cookies.session_id(),
            &sid,
            s.cookies.base_path(),
            secure,
            None,
        ),
    ])
}

/// `GET /hub/logout`: a page with the button that signs out (a GET changes nothing, so
/// a link or an image elsewhere cannot sign anyone out); without a session, on to the
/// login page.
pub async fn logout_page(State(s): State<AppState>, session: Option<Session>) -> Response {
    let Some(sess) = session else {
        return signed_out(&s);
    };
    Confirm {
        title: "Sign out",
        message: &format!("Signed in as {}.", sess.user.name),
        action: s.urls.hub_page("logout"),
        xsrf: sess.xsrf(&s.key),
        button: "Sign out",
        back: Some(s.urls.hub_page("home")),
        back_text: "Home",
        options: Vec::new(),
        options_legend: "",
    }
    .respond()
}

/// `POST /hub/logout`: ends the session (and the OAuth tokens issued in it).
pub async fn logout(State(s): State<AppState>, form: XsrfForm) -> Response {
    let sess = form.session;
    if let Err(e) = s.db.sessions().end(&sess.secret) {
        HubError::from(e).log();
    }
    tracing::info!(user = %sess.user.name, "logout");
    signed_out(&s)
}

/// To the login page (or the provider's `logout_redirect_url`), with the hub's cookies
/// cleared.
fn signed_out(s: &AppState) -> Response {
    let to = s
        .oauth
        .as_ref()
        .and_then(|o| o.config().logout_redirect_url.clone())
        .unwrap_or_else(|| s.urls.hub_page("login"));
    let mut resp = Redirect::to(&to).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookies::clear(s.cookies.login(), s.cookies.hub_path()),
    );
    h.append(
        header::SET_COOKIE,
        cookies::clear(s.cookies.session_id(), s.cookies.base_path()),
    );
    h.append(
        header::SET_COOKIE,
        cookies::clear(s.cookies.xsrf(), s.cookies.hub_path()),
    );
    resp
}
