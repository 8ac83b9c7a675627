//! The OAuth2 provider single-user servers log their users in through (compat §1.5):
//! an authorization-code flow with optional PKCE, one client per server.

use std::collections::HashMap;

use axum::extract::{Form, OriginalUri, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::models::{AccessToken, OAuthError};
use crate::auth::Session;
use crate::db::{CodeRow, NewToken, OAUTH_TOKEN_SECS};
use crate::error::HubError;
use crate::secrets::{hash, new_oauth_secret, same};
use crate::state::AppState;
use crate::templates::Message;
use crate::types::TokenKind;
use crate::urls::query_escape;

fn bad_request(msg: &str) -> Response {
    Message::error("Bad request", msg).respond(StatusCode::BAD_REQUEST)
}

/// `GET <base>hub/api/oauth2/authorize`: a page, authenticated by the hub's login cookie;
/// without one, the login page first, coming back here with the same query.
pub async fn authorize(
    State(s): State<AppState>,
    OriginalUri(here): OriginalUri,
    session: Option<Session>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(sess) = session else {
        let back = here.path_and_query().map_or("", |p| p.as_str());
        return Redirect::to(&s.urls.login(back)).into_response();
    };
    let (Some(client_id), Some(redirect_uri)) = (q.get("client_id"), q.get("redirect_uri")) else {
        return bad_request("client_id and redirect_uri are required");
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return bad_request("response_type must be code");
    }
    let Ok(Some(client)) = s.db.oauth().client(client_id) else {
        return bad_request("unknown OAuth client");
    };
    if &client.redirect_uri != redirect_uri {
        return bad_request("redirect_uri does not match the registered one");
    }
    // One's own server, or another's with `access:servers` on it (an admin's, a role's).
    let may_open = client.user_id == sess.user.id
        || s.db
            .users()
            .by_id(client.user_id)
            .ok()
            .flatten()
            .is_some_and(|owner| {
                crate::auth::caller::user_scopes(&s, &sess.user).allows_on(
                    "access:servers",
                    &owner.name,
                    client.server.as_str(),
                    &[],
                )
            });
    if !may_open {
        let msg = format!("You do not have permission to access this server ({client_id}).");
        return Message::error("Forbidden", &msg).respond(StatusCode::FORBIDDEN);
    }
    let method = q.get("code_challenge_method").cloned();
    if method
        .as_deref()
        .is_some_and(|m| m != "S256" && m != "plain")
    {
        return bad_request("unsupported code_challenge_method");
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
    if let Err(e) = s.db.oauth().add_code(&code, &row) {
        return HubError::from(e).into_response();
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut target = format!("{redirect_uri}{sep}code={code}");
    if let Some(state) = q.get("state") {
        target.push_str(&format!("&state={}", query_escape(state)));
    }
    tracing::info!(user = %sess.user.name, client = %client_id, "OAuth code issued");
    Redirect::to(&target).into_response()
}

fn oauth_error(status: StatusCode, error: &'static str, description: &'static str) -> Response {
    let body = OAuthError {
        error,
        error_description: description,
    };
    (status, Json(body)).into_response()
}

/// Whether `verifier` answers the PKCE `challenge` made with `method`.
fn pkce_ok(challenge: &str, method: Option<&str>, verifier: &str) -> bool {
    let computed = match method {
        Some("plain") => verifier.to_owned(),
        _ => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes())),
    };
    !verifier.is_empty() && same(&computed, challenge)
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
    let Ok(Some(client)) = s.db.oauth().client(client_id) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    };
    if !same(&hash(get("client_secret")), &client.secret_hash) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "wrong client secret",
        );
    }
    let Ok(Some(code)) = s.db.oauth().take_code(get("code")) else {
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
        if !pkce_ok(
            challenge,
            code.challenge_method.as_deref(),
            get("code_verifier"),
        ) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "PKCE verification failed",
            );
        }
    }
    let user = match s.db.users().by_id(code.user_id) {
        Ok(Some(u)) => u,
        _ => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "the user is gone"),
    };
    let access = new_oauth_secret();
    let stored = s.db.tokens().add(&NewToken {
        user_id: code.user_id,
        secret: &access,
        kind: TokenKind::OAuth,
        client_id: Some(client_id),
        session_id: code.session_id.as_deref(),
        note: "",
        expires_in: Some(OAUTH_TOKEN_SECS),
        scopes: None,
    });
    if let Err(e) = stored {
        HubError::from(e).log();
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "database error",
        );
    }
    tracing::info!(user = %user.name, client = %client_id, "OAuth token issued");
    Json(AccessToken {
        access_token: access,
        expires_in: OAUTH_TOKEN_SECS,
        token_type: "Bearer",
        scope: format!(
            "read:users:groups!user read:users:name!user access:servers!server={}/{}",
            s.db.users()
                .by_id(client.user_id)
                .ok()
                .flatten()
                .map_or_else(|| user.name.to_string(), |owner| owner.name.to_string()),
            client.server
        ),
    })
    .into_response()
}
