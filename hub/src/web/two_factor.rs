//! `/hub/two-factor`: a user of the hub's own accounts turns the second factor on
//! (a new secret shown once as a QR code and a key, confirmed with a code) or off (with
//! the password), when `[auth.native] allow_2fa` is set.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use sudohub_protocol::Secret;

use super::error_page;
use crate::auth::client::client_ip;
use crate::auth::{totp, AuthError, Session, XsrfForm};
use crate::config::SourceKind;
use crate::db::NativeAccount;
use crate::error::HubError;
use crate::state::AppState;
use crate::templates::{self, Message};

#[derive(Serialize, Default)]
struct TwoFactorPage<'a> {
    title: &'static str,
    action: String,
    back: String,
    xsrf: String,
    on: bool,
    secret: Option<&'a str>,
    qr: Option<String>,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

/// The account of the session's user, when second factors are allowed and they have
/// one of the hub's own; else the page that says why not.
fn account(s: &AppState, sess: &Session) -> Result<NativeAccount, Box<Response>> {
    let rules = s.auth.rules();
    if !(rules.uses(SourceKind::Native) && rules.native.allow_2fa) {
        return Err(Box::new(
            Message::error("Not found", "This hub does not offer two-factor sign-in.")
                .respond(StatusCode::NOT_FOUND),
        ));
    }
    match s.db.native().get(&sess.user.name) {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(Box::new(Message::new(
            "Two-factor sign-in",
            "You sign in with your account on this machine; its sign-in is not the hub's to change.",
        )
        .respond(StatusCode::OK))),
        Err(e) => Err(Box::new(error_page(&e.into()))),
    }
}

fn page(
    s: &AppState,
    sess: &Session,
    acct: &NativeAccount,
    secret: Option<&str>,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let qr = secret
        .and_then(|k| totp::otpauth_url(k, acct.name.as_str()))
        .and_then(|url| totp::qr_svg(&url));
    let ctx = TwoFactorPage {
        title: "Two-factor sign-in",
        action: s.urls.hub_page("two-factor"),
        back: s.urls.hub_page("home"),
        xsrf: sess.xsrf(&s.key),
        on: acct.totp.is_some(),
        secret,
        qr,
        error,
        notice,
    };
    templates::page(status, "two_factor.html", ctx)
}

/// `GET /hub/two-factor`.
pub async fn show(State(s): State<AppState>, sess: Session) -> Response {
    match account(&s, &sess) {
        Ok(acct) => page(&s, &sess, &acct, None, StatusCode::OK, None, None),
        Err(r) => *r,
    }
}

/// `POST /hub/two-factor` with `action` = begin, confirm (`code`) or off (`password`).
pub async fn act(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: XsrfForm,
) -> Response {
    let sess = &form.session;
    let acct = match account(&s, sess) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let field = |k: &str| form.fields.get(k).map(String::as_str).unwrap_or("");
    let name = &acct.name;
    let bad = |acct: &NativeAccount, secret: Option<&str>, e: &str| {
        page(
            &s,
            sess,
            acct,
            secret,
            StatusCode::BAD_REQUEST,
            Some(e),
            None,
        )
    };
    match field("action") {
        "begin" if acct.totp.is_none() => {
            let secret = totp::new_secret();
            if let Err(e) = s.db.native().set_totp_pending(name, Some(&secret)) {
                return error_page(&e.into());
            }
            page(&s, sess, &acct, Some(&secret), StatusCode::OK, None, None)
        }
        "confirm" if acct.totp.is_none() => {
            let Some(pending) = acct.totp_pending.clone() else {
                return bad(&acct, None, "Set it up first.");
            };
            let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
            let step = totp::matching_step(&pending, field("code"), now)
                .and_then(|st| i64::try_from(st).ok());
            let Some(step) = step else {
                return bad(
                    &acct,
                    Some(&pending),
                    "That code is not right; try the next one.",
                );
            };
            match s.db.native().confirm_totp(name, step) {
                Ok(_) => {
                    tracing::info!(user = %name, "two-factor sign-in turned on");
                    let acct = NativeAccount {
                        totp: Some(pending),
                        totp_pending: None,
                        ..acct
                    };
                    let done = Some("Two-factor sign-in is on.");
                    page(&s, sess, &acct, None, StatusCode::OK, None, done)
                }
                Err(e) => error_page(&e.into()),
            }
        }
        "off" if acct.totp.is_some() => {
            let Ok(pw) = Secret::new(field("password")) else {
                return bad(&acct, None, "The password is not right.");
            };
            let from = client_ip(peer.ip(), &headers, &s.cfg.trusted_proxies);
            match s.auth.recheck(name, &pw, from).await {
                Ok(()) => {}
                Err(AuthError::Helper(e)) => return error_page(&HubError::internal(e)),
                Err(e @ AuthError::RateLimited { .. }) => {
                    return bad(&acct, None, &e.user_message())
                }
                Err(_) => return bad(&acct, None, "The password is not right."),
            }
            if let Err(e) = s.db.native().disable_totp(name) {
                return error_page(&e.into());
            }
            tracing::info!(user = %name, "two-factor sign-in turned off");
            let acct = NativeAccount {
                totp: None,
                totp_pending: None,
                ..acct
            };
            let done = Some("Two-factor sign-in is off.");
            page(&s, sess, &acct, None, StatusCode::OK, None, done)
        }
        _ => bad(&acct, None, "That action does not apply now."),
    }
}
