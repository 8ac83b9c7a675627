//! `/hub/token`: a user's API tokens, made and revoked from a browser.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

use super::error_page;
use crate::auth::{Session, XsrfForm};
use crate::db::{NewToken, TokenSummary};
use crate::secrets::new_api_token;
use crate::state::AppState;
use crate::templates::{self, Message};

/// Longest note kept, in characters.
const MAX_NOTE: usize = 200;
/// Longest expiry offered, in days.
const MAX_DAYS: i64 = 3650;

#[derive(Serialize)]
struct TokenUrls {
    create: String,
    revoke: String,
}

#[derive(Serialize)]
struct Row {
    id: i64,
    note: String,
    created: String,
}

#[derive(Serialize)]
struct TokenPage<'a> {
    title: &'static str,
    xsrf: String,
    new_token: Option<&'a str>,
    tokens: Vec<Row>,
    urls: TokenUrls,
}

fn render(s: &AppState, sess: &Session, new_token: Option<&str>) -> Response {
    let tokens = match s.db.tokens().api_tokens(sess.user.id) {
        Ok(t) => t,
        Err(e) => return error_page(&e.into()),
    };
    let ctx = TokenPage {
        title: "API tokens",
        xsrf: sess.xsrf(&s.key),
        new_token,
        tokens: tokens
            .into_iter()
            .map(
                |TokenSummary {
                     id, note, created, ..
                 }| Row { id, note, created },
            )
            .collect(),
        urls: TokenUrls {
            create: s.urls.hub_page("token"),
            revoke: s.urls.hub_page("token/revoke"),
        },
    };
    templates::page(StatusCode::OK, "token.html", ctx)
}

/// `GET /hub/token`.
pub async fn page(State(s): State<AppState>, sess: Session) -> Response {
    render(&s, &sess, None)
}

/// `POST /hub/token`: a new token, shown once.
pub async fn create(State(s): State<AppState>, form: XsrfForm) -> Response {
    let sess = &form.session;
    let note: String = form
        .fields
        .get("note")
        .map(|n| n.chars().take(MAX_NOTE).collect())
        .unwrap_or_default();
    let days = form
        .fields
        .get("expires_in_days")
        .map(|d| d.trim())
        .filter(|d| !d.is_empty());
    let expires_in = match days.map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if (1..=MAX_DAYS).contains(&n) => Some(n * 86400),
        Some(_) => {
            return Message::error("Bad request", "Expiry must be 1 to 3650 days.")
                .respond(StatusCode::BAD_REQUEST)
        }
    };
    let token = new_api_token();
    let added =
        s.db.tokens()
            .add(&NewToken::api(sess.user.id, &token, &note, expires_in));
    if let Err(e) = added {
        return error_page(&e.into());
    }
    tracing::info!(user = %sess.user.name, "API token created");
    render(&s, sess, Some(&token))
}

/// `POST /hub/token/revoke`.
pub async fn revoke(State(s): State<AppState>, form: XsrfForm) -> Response {
    let sess = &form.session;
    if let Some(id) = form.fields.get("id").and_then(|i| i.parse::<i64>().ok()) {
        match s.db.tokens().delete_api(sess.user.id, id) {
            Ok(_) => tracing::info!(user = %sess.user.name, id, "API token revoked"),
            Err(e) => return error_page(&e.into()),
        }
    }
    Redirect::to(&s.urls.hub_page("token")).into_response()
}
