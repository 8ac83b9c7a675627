//! The OAuth2 provider that single-user servers log users in through (compat §1.4c, §1.5):
//! authorization-code grant with PKCE, path-only redirect URIs compared exactly, single-use
//! codes valid 300 s, and the server's own API token as the client secret.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::db::{CodeRow, OAUTH_TOKEN_SECS};
use crate::tokens::{hash, new_oauth_secret};
use crate::web::{escape, page, query_escape, session};

/// `GET <base>hub/api/oauth2/authorize`: a page, authenticated by the hub's login cookie.
pub async fn authorize(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(sess) = session::current(&s.db, &s.key, &headers) else {
        // Back here after login, with the same query.
        let query: Vec<String> = q
            .iter()
            .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
            .collect();
        let here = format!("{}api/oauth2/authorize?{}", s.hub_prefix(), query.join("&"));
        return Redirect::to(&format!(
            "{}login?next={}",
            s.hub_prefix(),
            query_escape(&here)
        ))
        .into_response();
    };
    let bad = |msg: &str| {
        (
            StatusCode::BAD_REQUEST,
            Html(page("Bad request", &format!("<p>{}</p>", escape(msg)))),
        )
            .into_response()
    };
    let (Some(client_id), Some(redirect_uri)) = (q.get("client_id"), q.get("redirect_uri")) else {
        return bad("client_id and redirect_uri are required");
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return bad("response_type must be code");
    }
    let Ok(Some((owner, _secret, registered))) = s.db.oauth_client(client_id) else {
        return bad("unknown OAuth client");
    };
    if &registered != redirect_uri {
        return bad("redirect_uri does not match the registered one");
    }
    if owner != sess.user.id {
        return (
            StatusCode::FORBIDDEN,
            Html(page(
                "Forbidden",
                &format!(
                    "<p>You do not have permission to access this server ({}).</p>",
                    escape(client_id)
                ),
            )),
        )
            .into_response();
    }
    let method = q.get("code_challenge_method").cloned();
    if method
        .as_deref()
        .is_some_and(|m| m != "S256" && m != "plain")
    {
        return bad("unsupported code_challenge_method");
    }
    let code = new_oauth_secret();
    let row = CodeRow {
        client_id: client_id.clone(),
        user_id: sess.user.id,
        redirect_uri: redirect_uri.clone(),
        session_id: Some(sess.session_id.clone()),
        challenge: q.get("code_challenge").cloned(),
        challenge_method: method,
    };
    if let Err(e) = s.db.add_code(&code, &row) {
        tracing::error!(error = %e, "cannot store an OAuth code");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut target = format!("{redirect_uri}{sep}code={code}");
    if let Some(state) = q.get("state") {
        target.push_str(&format!("&state={}", query_escape(state)));
    }
    tracing::info!(user = %sess.user.name, client = %client_id, "OAuth code issued");
    Redirect::to(&target).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `POST <base>hub/api/oauth2/token`: a code for an access token.
pub async fn token(State(s): State<AppState>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") != "authorization_code" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code is supported",
        );
    }
    let client_id = get("client_id");
    let Ok(Some((_owner, secret_hash, _))) = s.db.oauth_client(client_id) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    };
    if !session::same(&hash(get("client_secret")), &secret_hash) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "wrong client secret",
        );
    }
    let Ok(Some(code)) = s.db.take_code(get("code")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown, used or expired code",
        );
    };
    if code.client_id != client_id || code.redirect_uri != get("redirect_uri") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code was issued to another client or redirect_uri",
        );
    }
    if let Some(challenge) = &code.challenge {
        let verifier = get("code_verifier");
        let computed = match code.challenge_method.as_deref() {
            Some("plain") => verifier.to_owned(),
            _ => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes())),
        };
        if verifier.is_empty() || !session::same(&computed, challenge) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "PKCE verification failed",
            );
        }
    }
    let access = new_oauth_secret();
    if let Err(e) = s.db.add_token(
        code.user_id,
        &access,
        "oauth",
        Some(client_id),
        code.session_id.as_deref(),
        "",
        Some(OAUTH_TOKEN_SECS),
    ) {
        tracing::error!(error = %e, "cannot store an OAuth token");
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "database error",
        );
    }
    let user =
        s.db.users()
            .ok()
            .and_then(|us| us.into_iter().find(|u| u.id == code.user_id))
            .map(|u| u.name)
            .unwrap_or_default();
    tracing::info!(user = %user, client = %client_id, "OAuth token issued");
    let body = json!({
        "access_token": access, "expires_in": OAUTH_TOKEN_SECS, "token_type": "Bearer",
        "scope": format!("read:users:groups!user read:users:name!user access:servers!server={user}/"),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
