//! `/hub/api/users/<name>/tokens`: listing, issuing and revoking a user's API tokens, as
//! JupyterHub's `UserTokenListAPIHandler` and `UserTokenAPIHandler` do, for admins'
//! scripts (`POST` a token for a service account, `DELETE` it when done).
//!
//! A token issued here carries its owner's rights, like one made on `/hub/token`. Asking
//! for narrower `scopes` or `roles` is refused with a clear error rather than silently
//! ignored: a script that believes it made a read-only token must not get a full one.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{caller_for, error, json_response, scopes, Caller};
use crate::app::AppState;
use crate::db::{TokenSummary, UserRow};

/// Longest note accepted, in characters.
const MAX_NOTE: usize = 1000;

/// The caller, if it holds `scope` on `name` (see [`caller_for`]), and the user `name`,
/// or JupyterHub's error answer.
fn authorize(
    s: &AppState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    name: &str,
    scope: &str,
) -> Result<(Caller, UserRow), Response> {
    let c = caller_for(s, headers, q, name, scope, scope.starts_with("read:"))?;
    match s.db.user(name) {
        Ok(Some(u)) => Ok((c, u)),
        _ => Err(error(
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {name}")),
        )),
    }
}

/// The token model (compat: JupyterHub's `token_model`), without the secret.
fn model(user: &UserRow, t: &TokenSummary) -> Value {
    let (id, note, created, expires_at) = t;
    let expires = expires_at
        .and_then(|e| time::OffsetDateTime::from_unix_timestamp(e).ok())
        .map(crate::tokens::iso);
    json!({
        "kind": "api_token",
        "id": format!("a{id}"),
        "user": user.name,
        "note": note,
        "scopes": scopes(user, None),
        "roles": [],
        "created": created,
        "expires_at": expires,
        "last_activity": null,
        "session_id": null,
        "oauth_client": null,
    })
}

/// A user's tokens that have not expired (expired ones are deleted at their next use).
fn live_tokens(s: &AppState, user: &UserRow) -> Result<Vec<TokenSummary>, Response> {
    let now = crate::tokens::unix_now();
    s.db.api_tokens(user.id)
        .map(|rows| {
            rows.into_iter()
                .filter(|t| t.3.is_none_or(|e| e >= now))
                .collect()
        })
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, Some(&e.to_string())))
}

/// `a<row id>`, JupyterHub's API id of an API token.
fn parse_id(id: &str) -> Option<i64> {
    id.strip_prefix('a')?.parse().ok().filter(|n| *n > 0)
}

/// `GET /users/<name>/tokens`.
pub async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let user = match authorize(&s, &headers, &q, &name, "read:tokens") {
        Ok((_, u)) => u,
        Err(r) => return r,
    };
    match live_tokens(&s, &user) {
        Ok(rows) => {
            let items: Vec<Value> = rows.iter().map(|t| model(&user, t)).collect();
            json_response(StatusCode::OK, &json!({ "api_tokens": items }))
        }
        Err(r) => r,
    }
}

/// What a `POST` body may say, checked field by field.
struct Request {
    note: Option<String>,
    expires_in: Option<i64>,
}

fn parse_request(body: &[u8]) -> Result<Request, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request {
            note: None,
            expires_in: None,
        });
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| "Invalid JSON in body of request")?;
    let Some(obj) = v.as_object() else {
        return Err("the body must be a JSON object".into());
    };
    for key in obj.keys() {
        match key.as_str() {
            "note" | "expires_in" => {}
            "scopes" | "roles" => {
                let empty = obj[key].as_array().is_some_and(Vec::is_empty) || obj[key].is_null();
                if !empty {
                    return Err(format!(
                        "`{key}` are not supported: tokens carry their owner's permissions"
                    ));
                }
            }
            other => return Err(format!("unknown field `{other}`")),
        }
    }
    let note = match obj.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) if n.chars().count() <= MAX_NOTE => Some(n.clone()),
        Some(Value::String(_)) => return Err(format!("`note` is over {MAX_NOTE} characters")),
        Some(_) => return Err("`note` must be a string".into()),
    };
    let expires_in = match obj.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) if n > 0 => Some(n),
            _ => return Err("`expires_in` must be a whole number of seconds above 0".into()),
        },
    };
    Ok(Request { note, expires_in })
}

/// `POST /users/<name>/tokens`: 201 with the token model and, once, the token itself.
pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (c, user) = match authorize(&s, &headers, &q, &name, "tokens") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let req = match parse_request(&body) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, Some(&m)),
    };
    let requester = match &c {
        Caller::User { user, .. } => format!("user {}", user.name),
        Caller::Service { name, .. } => format!("service {name}"),
    };
    let note = req.note.unwrap_or_else(|| {
        if requester == format!("user {name}") {
            "Requested via api".to_owned()
        } else {
            format!("Requested via api by {requester}")
        }
    });
    let secret = crate::tokens::new_api_token();
    let id = match s
        .db
        .add_token(user.id, &secret, "api", None, None, &note, req.expires_in)
    {
        Ok(id) => id,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, Some(&e.to_string())),
    };
    tracing::info!(user = %name, by = %requester, token_id = %format!("a{id}"), "api token issued");
    let expires_at = req.expires_in.map(|e| crate::tokens::unix_now() + e);
    let mut m = model(&user, &(id, note, crate::tokens::now_iso(), expires_at));
    m["token"] = json!(secret);
    json_response(StatusCode::CREATED, &m)
}

/// The one token `id` of `name`, for `GET` and `DELETE` on `/users/<name>/tokens/<id>`.
fn find_token(s: &AppState, user: &UserRow, id: &str) -> Result<TokenSummary, Response> {
    let missing = || {
        error(
            StatusCode::NOT_FOUND,
            Some(&format!("No such token for user {}: {id}", user.name)),
        )
    };
    let n = parse_id(id).ok_or_else(missing)?;
    live_tokens(s, user)?
        .into_iter()
        .find(|t| t.0 == n)
        .ok_or_else(missing)
}

/// `GET /users/<name>/tokens/<id>`.
pub async fn get_one(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let found = authorize(&s, &headers, &q, &name, "read:tokens")
        .and_then(|(_, user)| find_token(&s, &user, &id).map(|t| (user, t)));
    match found {
        Ok((user, t)) => json_response(StatusCode::OK, &model(&user, &t)),
        Err(r) => r,
    }
}

/// `DELETE /users/<name>/tokens/<id>`: 204.
pub async fn delete_one(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let found = authorize(&s, &headers, &q, &name, "tokens")
        .and_then(|(_, user)| find_token(&s, &user, &id).map(|t| (user, t)));
    let (user, token) = match found {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.db.delete_api_token(user.id, token.0) {
        Ok(_) => {
            tracing::info!(user = %name, token_id = %id, "api token revoked");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, Some(&e.to_string())),
    }
}
