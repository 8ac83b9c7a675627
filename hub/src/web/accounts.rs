//! The hub's own accounts, from the browser: `/hub/authorize` (admins approve, block
//! or discard sign-ups, NativeAuthenticator's page) and `/hub/change-password` (one's
//! own, with the current password; an admin sets anyone's at
//! `/hub/change-password/<name>`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sudohub_protocol::Secret;

use super::{error_page, forbidden};
use crate::auth::client::client_ip;
use crate::auth::native::{self, SignUpError};
use crate::auth::{AuthError, Session, XsrfForm};
use crate::config::SourceKind;
use crate::db::{AccountStatus, NativeAccount};
use crate::error::HubError;
use crate::state::AppState;
use crate::templates::{self, Message};
use crate::types::Username;

/// Most accounts the page lists (those waiting first).
const LISTED: usize = 1000;

#[derive(Serialize)]
struct Row {
    name: String,
    email: String,
    created: String,
    status: &'static str,
    decided: Option<String>,
    decided_by: Option<String>,
    /// The uid of a Unix account of this name, if one exists: approving binds the
    /// sign-up to it.
    system: Option<u32>,
    action: String,
    actions: Vec<(&'static str, &'static str)>,
}

#[derive(Serialize)]
struct AuthorizePage<'a> {
    title: &'static str,
    wide: bool,
    user: &'a str,
    admin: String,
    home: String,
    xsrf: String,
    notice: Option<&'a str>,
    pending: usize,
    emails: bool,
    accounts: Vec<Row>,
}

/// A 404 page unless the hub has accounts of its own.
fn native_on(s: &AppState) -> Option<Response> {
    (!s.auth.rules().uses(SourceKind::Native)).then(|| {
        Message::error("Not found", "This hub has no accounts of its own.")
            .respond(StatusCode::NOT_FOUND)
    })
}

fn row(s: &AppState, a: NativeAccount) -> Row {
    let actions: &[(&str, &str)] = match a.status {
        AccountStatus::Pending => &[
            ("approve", "Approve"),
            ("block", "Block"),
            ("discard", "Discard"),
        ],
        AccountStatus::Approved => &[("block", "Block")],
        AccountStatus::Blocked => &[("approve", "Approve"), ("discard", "Discard")],
    };
    let system = nix::unistd::User::from_name(a.name.as_str())
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw());
    let (decided, decided_by) = a
        .decided
        .map_or((None, None), |(t, by)| (Some(t), Some(by)));
    Row {
        action: s.urls.hub_page(&format!("authorize/{}", a.name)),
        name: a.name.to_string(),
        email: a.email.unwrap_or_default(),
        created: a.created,
        status: a.status.as_str(),
        decided,
        decided_by,
        system,
        actions: actions.to_vec(),
    }
}

fn authorize_page(s: &AppState, sess: &Session, notice: Option<&str>) -> Response {
    let read =
        s.db.native()
            .list(LISTED)
            .and_then(|l| Ok((l, s.db.native().pending_count()?)));
    let (accounts, pending) = match read {
        Ok(r) => r,
        Err(e) => return error_page(&e.into()),
    };
    let ctx = AuthorizePage {
        title: "Authorize users",
        wide: true,
        user: sess.user.name.as_str(),
        admin: s.urls.hub_page("admin"),
        home: s.urls.hub_page("home"),
        xsrf: sess.xsrf(&s.key),
        notice,
        pending,
        emails: s.auth.rules().native.ask_email_on_signup,
        accounts: accounts.into_iter().map(|a| row(s, a)).collect(),
    };
    templates::page(StatusCode::OK, "authorize.html", ctx)
}

/// `GET /hub/authorize`: every sign-up, those waiting first (admins only).
pub async fn authorize(State(s): State<AppState>, sess: Session) -> Response {
    if let Some(r) = native_on(&s) {
        return r;
    }
    if !sess.user.admin {
        return forbidden("Authorizing users is for admins only.");
    }
    authorize_page(&s, &sess, None)
}

/// `POST /hub/authorize/<name>` with `action` = approve, block or discard.
pub async fn decide(
    State(s): State<AppState>,
    Path(name): Path<String>,
    form: XsrfForm,
) -> Response {
    if let Some(r) = native_on(&s) {
        return r;
    }
    let sess = &form.session;
    if !sess.user.admin {
        return forbidden("Authorizing users is for admins only.");
    }
    let Ok(name) = Username::parse(&name) else {
        return error_page(&HubError::not_found("No such account"));
    };
    let action = form.fields.get("action").map(String::as_str).unwrap_or("");
    let done = match action {
        "approve" => {
            s.db.native()
                .decide(&name, AccountStatus::Approved, &sess.user.name)
        }
        "block" => {
            s.db.native()
                .decide(&name, AccountStatus::Blocked, &sess.user.name)
        }
        "discard" => s.db.native().discard(&name),
        _ => {
            return Message::error(
                "Bad request",
                "The action must be approve, block or discard.",
            )
            .respond(StatusCode::BAD_REQUEST)
        }
    };
    match done {
        Ok(true) => {
            if action == "block" {
                // Its sessions and tokens went with the block; its servers go now.
                s.servers.stop_all_of(&name).await;
            }
            tracing::info!(user = %name, by = %sess.user.name, action, "account decided");
            if form.fields.get("back").map(String::as_str) == Some("admin") {
                // Decided from the admin page: back to it.
                return axum::response::Redirect::to(&s.urls.hub_page("admin")).into_response();
            }
            let notice = format!("{name}: {action} done.");
            authorize_page(&s, sess, Some(&notice))
        }
        Ok(false) => error_page(&HubError::not_found(format!(
            "No account {name} that can be {action}d"
        ))),
        Err(e) => error_page(&e.into()),
    }
}

#[derive(Serialize)]
struct PasswordPage<'a> {
    title: &'static str,
    action: String,
    back: String,
    xsrf: String,
    own: bool,
    target: &'a str,
    error: Option<&'a str>,
    done: Option<&'a str>,
    min_length: usize,
}

fn password_page(
    s: &AppState,
    sess: &Session,
    target: &Username,
    status: StatusCode,
    error: Option<&str>,
    done: Option<&str>,
) -> Response {
    let own = target == &sess.user.name;
    let ctx = PasswordPage {
        title: if own {
            "Change password"
        } else {
            "Set a password"
        },
        action: if own {
            s.urls.hub_page("change-password")
        } else {
            s.urls.hub_page(&format!("change-password/{target}"))
        },
        back: s.urls.hub_page(if own { "home" } else { "authorize" }),
        xsrf: sess.xsrf(&s.key),
        own,
        target: target.as_str(),
        error,
        done,
        min_length: s.auth.rules().native.minimum_password_length,
    };
    templates::page(status, "change_password.html", ctx)
}

/// `GET /hub/change-password`: one's own password, if the hub keeps it.
pub async fn own_form(State(s): State<AppState>, sess: Session) -> Response {
    if let Some(r) = native_on(&s) {
        return r;
    }
    match s.db.native().get(&sess.user.name) {
        Ok(Some(_)) => password_page(
            &s,
            &sess,
            &sess.user.name.clone(),
            StatusCode::OK,
            None,
            None,
        ),
        Ok(None) => Message::new(
            "Change password",
            "Your password is your account's on this machine: change it there (passwd).",
        )
        .link(s.urls.hub_page("home"), "Home")
        .respond(StatusCode::OK),
        Err(e) => error_page(&e.into()),
    }
}

/// `GET /hub/change-password/<name>`: an admin sets `name`'s password.
pub async fn admin_form(
    State(s): State<AppState>,
    Path(name): Path<String>,
    sess: Session,
) -> Response {
    if let Some(r) = native_on(&s) {
        return r;
    }
    if !sess.user.admin {
        return forbidden("Setting another user's password is for admins only.");
    }
    let Ok(name) = Username::parse(&name) else {
        return error_page(&HubError::not_found("No such user"));
    };
    password_page(&s, &sess, &name, StatusCode::OK, None, None)
}

/// `POST /hub/change-password`.
pub async fn own_submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: XsrfForm,
) -> Response {
    let me = form.session.user.name.clone();
    let from = client_ip(peer.ip(), &headers, &s.cfg.trusted_proxies);
    submit(s, form, me, Some(from)).await
}

/// `POST /hub/change-password/<name>`.
pub async fn admin_submit(
    State(s): State<AppState>,
    Path(name): Path<String>,
    form: XsrfForm,
) -> Response {
    if !form.session.user.admin {
        return forbidden("Setting another user's password is for admins only.");
    }
    let Ok(name) = Username::parse(&name) else {
        return error_page(&HubError::not_found("No such user"));
    };
    submit(s, form, name, None).await
}

/// Sets `target`'s password: one's own (`own_from` is the client, the current password
/// is checked under the login delays) or, without it, an admin's setting.
async fn submit(
    s: AppState,
    form: XsrfForm,
    target: Username,
    own_from: Option<IpAddr>,
) -> Response {
    if let Some(r) = native_on(&s) {
        return r;
    }
    let sess = &form.session;
    let field = |k: &str| form.fields.get(k).map(String::as_str).unwrap_or("");
    let secret = |k: &str| Secret::new(field(k)).map_err(|_| "The password is too long.");
    let page = |status, error: Option<&str>, done: Option<&str>| {
        password_page(&s, sess, &target, status, error, done)
    };
    let (new, again) = match (secret("password"), secret("password_again")) {
        (Ok(n), Ok(a)) => (n, a),
        (Err(e), _) | (_, Err(e)) => return page(StatusCode::BAD_REQUEST, Some(e), None),
    };
    if let Some(from) = own_from {
        let old = match secret("old_password") {
            Ok(o) => o,
            Err(e) => return page(StatusCode::BAD_REQUEST, Some(e), None),
        };
        match s.auth.recheck(&target, &old, from).await {
            Ok(()) => {}
            Err(e @ AuthError::RateLimited { .. }) => {
                return page(StatusCode::TOO_MANY_REQUESTS, Some(&e.user_message()), None)
            }
            Err(AuthError::Helper(e)) => return error_page(&HubError::internal(e)),
            Err(_) => {
                let wrong = Some("The current password is not right.");
                return page(StatusCode::BAD_REQUEST, wrong, None);
            }
        }
    } else {
        // An admin must not turn a system account's user into one of the hub's own.
        let system = nix::unistd::User::from_name(target.as_str())
            .ok()
            .flatten()
            .is_some();
        let has_own = matches!(s.db.native().get(&target), Ok(Some(_)));
        if system && !has_own && s.auth.rules().uses(SourceKind::Pam) {
            return page(
                StatusCode::BAD_REQUEST,
                Some("This user signs in with their account on this machine; its password is not the hub's to set."),
                None,
            );
        }
    }
    let set = native::set_password(&s.db, &s.auth.rules(), &target, &new, &again).await;
    let set = match (set, own_from) {
        (Ok(()), None) => {
            native::bind_existing(&s.db, &target).map_err(|e| SignUpError::Hub(e.to_string()))
        }
        (set, _) => set,
    };
    match set {
        Ok(()) => {
            tracing::info!(user = %target, by = %sess.user.name, "password changed");
            page(StatusCode::OK, None, Some("The password is changed."))
        }
        Err(SignUpError::Refused(why)) => page(StatusCode::BAD_REQUEST, Some(&why), None),
        Err(SignUpError::Hub(e)) => error_page(&HubError::internal(e)),
    }
}
