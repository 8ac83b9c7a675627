//! `/hub/api/users/<name>/tokens`: listing, issuing and revoking a user's API tokens, as
//! JupyterHub's `UserTokenListAPIHandler` and `UserTokenAPIHandler` do, for admins'
//! scripts (`POST` a token for a service account, `DELETE` it when done).
//!
//! A token issued here carries its owner's rights, like one made on `/hub/token`, or the
//! `scopes` asked for (JupyterHub's strings, filters included), each of which the owner
//! must hold; at every use it holds only what its owner still holds. `roles` are refused
//! with a clear error rather than ignored: a script that believes it made a narrow token
//! must not get a full one.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::models::{TokenList, TokenModel, TokenRequest};
use super::users::existing;
use super::{json_body, UserPath};
use crate::auth::caller::user_scopes;
use crate::auth::Caller;
use crate::db::{NewToken, TokenSummary, UserRow};
use crate::error::HubError;
use crate::scopes::ScopeSet;
use crate::state::AppState;

/// Longest note accepted, in characters.
const MAX_NOTE: usize = 1000;
/// Longest lifetime a token may be asked for: ten years, in seconds.
const MAX_EXPIRES_IN: i64 = 3650 * 86400;

/// The user `name`, if the caller holds `scope` on them; reads hide what the caller may
/// not see (404), writes say what is missing (403).
fn authorize(
    s: &AppState,
    caller: &Caller,
    name: &crate::types::Username,
    scope: &str,
) -> Result<UserRow, HubError> {
    caller.require(name, scope, scope.starts_with("read:"))?;
    existing(s, name)
}

/// The model of `t`: its own scopes, or its owner's.
fn model(s: &AppState, user: &UserRow, t: &TokenSummary) -> TokenModel {
    let scopes = match &t.scopes {
        Some(own) => ScopeSet::parse(own, Some(&user.name))
            .unwrap_or_default()
            .strings(),
        None => user_scopes(s, user).strings(),
    };
    TokenModel::new(&user.name, t, scopes)
}

/// `GET /users/<name>/tokens`.
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
) -> Result<Json<TokenList>, HubError> {
    let user = authorize(&s, &caller, &name, "read:tokens")?;
    let api_tokens = s.db.tokens().api_tokens(user.id)?;
    Ok(Json(TokenList {
        api_tokens: api_tokens.iter().map(|t| model(&s, &user, t)).collect(),
    }))
}

/// Checks a `POST` body field by field.
fn validate(req: &TokenRequest) -> Result<(), HubError> {
    if req.roles.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(HubError::bad_request(
            "`roles` on tokens are not supported: ask for `scopes`",
        ));
    }
    if req
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE)
    {
        return Err(HubError::bad_request(format!(
            "`note` is over {MAX_NOTE} characters"
        )));
    }
    if req
        .expires_in
        .is_some_and(|e| !(1..=MAX_EXPIRES_IN).contains(&e))
    {
        return Err(HubError::bad_request(format!(
            "`expires_in` must be a whole number of seconds from 1 to {MAX_EXPIRES_IN} (ten years)"
        )));
    }
    Ok(())
}

/// `POST /users/<name>/tokens`: 201 with the token model and, once, the token itself.
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
    body: Bytes,
) -> Result<Response, HubError> {
    let user = authorize(&s, &caller, &name, "tokens")?;
    let req: TokenRequest = json_body(&body)?.unwrap_or_default();
    validate(&req)?;
    let requester = caller.describe();
    let note = req.note.unwrap_or_else(|| {
        if caller.user().is_some_and(|u| u.name == name) {
            "Requested via api".to_owned()
        } else {
            format!("Requested via api by {requester}")
        }
    });
    let asked = req.scopes.filter(|l| !l.is_empty());
    if let Some(list) = &asked {
        let set = ScopeSet::parse(list, Some(&user.name)).map_err(HubError::bad_request)?;
        let missing = set.missing_from(&user_scopes(&s, &user), |_, _| false);
        if !missing.is_empty() {
            return Err(HubError::forbidden(format!(
                "Not assigning requested scopes {} not held by user {name}",
                missing.join(", ")
            )));
        }
    }
    let secret = crate::secrets::new_api_token();
    let id = s.db.tokens().add(&NewToken {
        scopes: asked.as_deref(),
        ..NewToken::api(user.id, &secret, &note, req.expires_in)
    })?;
    tracing::info!(user = %name, by = %requester, token_id = %format!("a{id}"), "api token issued");
    let summary = TokenSummary {
        id,
        note,
        created: crate::timestamp::now_iso(),
        expires_at: req.expires_in.map(|e| crate::timestamp::unix_now() + e),
        scopes: asked,
    };
    let mut m = model(&s, &user, &summary);
    m.token = Some(secret);
    Ok((StatusCode::CREATED, Json(m)).into_response())
}

/// The one live token `id` (`a<row id>`) of `user`.
fn find(s: &AppState, user: &UserRow, id: &str) -> Result<TokenSummary, HubError> {
    let missing = || HubError::not_found(format!("No such token for user {}: {id}", user.name));
    let n: i64 = id
        .strip_prefix('a')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(missing)?;
    s.db.tokens()
        .api_tokens(user.id)?
        .into_iter()
        .find(|t| t.id == n)
        .ok_or_else(missing)
}

/// `GET /users/<name>/tokens/<id>`.
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<TokenModel>, HubError> {
    let user = authorize(&s, &caller, &name, "read:tokens")?;
    let t = find(&s, &user, &id)?;
    Ok(Json(model(&s, &user, &t)))
}

/// `DELETE /users/<name>/tokens/<id>`: 204.
pub async fn delete_one(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, HubError> {
    let user = authorize(&s, &caller, &name, "tokens")?;
    let t = find(&s, &user, &id)?;
    s.db.tokens().delete_api(user.id, t.id)?;
    tracing::info!(user = %name, token_id = %id, by = %caller.describe(), "api token revoked");
    Ok(StatusCode::NO_CONTENT)
}
