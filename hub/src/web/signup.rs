//! `/hub/signup`: a new account of the hub's own, waiting for an admin's approval
//! (`[auth] source = "native"`).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sudohub_protocol::Secret;

use super::login::{form_xsrf, form_xsrf_ok};
use crate::auth::client::client_ip;
use crate::auth::native::{self, SignUp, SignUpError};
use crate::config::SourceKind;
use crate::db::AccountStatus;
use crate::error::HubError;
use crate::state::AppState;
use crate::templates::{self, Message};

#[derive(Serialize)]
struct SignUpPage<'a> {
    title: &'static str,
    action: String,
    login: String,
    xsrf: &'a str,
    error: Option<&'a str>,
    name: &'a str,
    email: &'a str,
    ask_email: bool,
    tos: Option<&'a str>,
    min_length: usize,
    open: bool,
}

/// A 404 page unless this hub takes sign-ups.
fn taken_here(s: &AppState) -> Option<Response> {
    let rules = s.auth.rules();
    let on = rules.uses(SourceKind::Native) && rules.native.enable_signup;
    (!on).then(|| {
        Message::error("Not found", "This hub does not take sign-ups.")
            .respond(StatusCode::NOT_FOUND)
    })
}

fn page(
    s: &AppState,
    status: StatusCode,
    error: Option<&str>,
    name: &str,
    email: &str,
) -> Response {
    let (xsrf, cookie) = form_xsrf(s);
    let cfg = &s.auth.rules().native;
    let ctx = SignUpPage {
        title: "Sign up",
        action: s.urls.hub_page("signup"),
        login: s.urls.hub_page("login"),
        xsrf: &xsrf,
        error,
        name,
        email,
        ask_email: cfg.ask_email_on_signup,
        tos: cfg.tos.as_deref(),
        min_length: cfg.minimum_password_length,
        open: cfg.open_signup,
    };
    let page = templates::page(status, "signup.html", ctx);
    ([(header::SET_COOKIE, cookie)], page).into_response()
}

/// `GET /hub/signup`: the form.
pub async fn form(State(s): State<AppState>) -> Response {
    if let Some(r) = taken_here(&s) {
        return r;
    }
    page(&s, StatusCode::OK, None, "", "")
}

/// `POST /hub/signup`: records the sign-up; a refusal shows the form again with what
/// was wrong (the name and email kept, the passwords never).
pub async fn submit(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(r) = taken_here(&s) {
        return r;
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let (name, email) = (field("username"), field("email"));
    let name: String = name.chars().take(64).collect();
    let email: String = email.chars().take(300).collect();
    if form_xsrf_ok(&s, &headers, field("_xsrf")).is_none() {
        let expired = Some("Your form expired; please try again.");
        return page(&s, StatusCode::FORBIDDEN, expired, &name, &email);
    }
    let from = client_ip(peer.ip(), &headers, &s.cfg.trusted_proxies);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if !s.auth.signups.allowed(from, now) {
        tracing::warn!(client = %from, "sign-up refused: too many from this address");
        let busy = Some("Too many sign-ups from your address; please try again later.");
        return page(&s, StatusCode::TOO_MANY_REQUESTS, busy, &name, &email);
    }
    let secret = |k: &str| Secret::new(field(k)).map_err(|_| "The password is too long.");
    let (password, again) = match (secret("password"), secret("password_again")) {
        (Ok(p), Ok(a)) => (p, a),
        (Err(e), _) | (_, Err(e)) => {
            return page(&s, StatusCode::BAD_REQUEST, Some(e), &name, &email)
        }
    };
    let req = SignUp {
        name: name.clone(),
        password,
        again,
        email: Some(email.clone()),
        tos: field("tos") == "on",
    };
    match native::sign_up(&s.db, &s.auth.rules(), req).await {
        Ok((user, status)) => {
            s.auth.signups.count(from, now);
            let login = s.urls.hub_page("login");
            let (title, message) = match status {
                AccountStatus::Approved => (
                    "Signed up",
                    format!("The account {user} is ready: you can sign in now."),
                ),
                _ => (
                    "Waiting for approval",
                    format!("The account {user} is recorded and waits for an administrator's approval. You can sign in once it is approved."),
                ),
            };
            Message::new(title, &message)
                .link(login, "Sign in")
                .respond(StatusCode::OK)
        }
        Err(SignUpError::Refused(why)) => {
            page(&s, StatusCode::BAD_REQUEST, Some(&why), &name, &email)
        }
        Err(SignUpError::Hub(e)) => {
            let e = HubError::internal(e);
            super::error_page(&e)
        }
    }
}
