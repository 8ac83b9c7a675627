//! `/hub/api/user` and `/hub/api/users[/<name>]`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::models::{CreateUser, NextPage, Paginated, Pagination, ServiceModel, UserModel, WhoAmI};
use super::{json_body, UserPath};
use crate::auth::Caller;
use crate::db::{ServerRow, UserRow};
use crate::error::HubError;
use crate::state::AppState;
use crate::types::{ServerState, Username};

/// The user model of `u`, with the live state of their server.
pub(super) fn model(s: &AppState, u: &UserRow) -> Result<UserModel, HubError> {
    let row = s.db.servers().get(&u.name)?;
    Ok(model_with(s, u, row.as_ref()))
}

/// The model of `u` whose server row was read with it.
fn model_with(s: &AppState, u: &UserRow, row: Option<&ServerRow>) -> UserModel {
    let state = s.servers.state_given(&u.name, row.map(|r| r.state));
    UserModel::new(&s.urls, u, &state, row)
}

/// A user by name, or 404 saying so.
pub(super) fn existing(s: &AppState, name: &Username) -> Result<UserRow, HubError> {
    s.db.users()
        .get(name)?
        .ok_or_else(|| HubError::not_found(format!("No such user: {name}")))
}

/// `GET /user`: who the credential belongs to, and what it may do.
pub async fn whoami(State(s): State<AppState>, caller: Caller) -> Result<Response, HubError> {
    let scopes = caller.scopes();
    Ok(match caller {
        Caller::User { user, token } => Json(WhoAmI {
            user: model(&s, &user)?,
            scopes,
            token_id: token.as_ref().map(|t| format!("a{}", t.id)),
            session_id: token.and_then(|t| t.session_id),
        })
        .into_response(),
        Caller::Service { name, admin } => Json(ServiceModel {
            kind: "service",
            name,
            admin,
            roles: Vec::new(),
            scopes: Vec::new(),
            token_id: None,
            session_id: None,
        })
        .into_response(),
    })
}

/// Which server states a listing keeps.
type StateFilter = fn(&ServerState) -> bool;

/// The `?state=` filter of the user list.
fn state_filter(q: &HashMap<String, String>) -> Result<Option<StateFilter>, HubError> {
    Ok(match q.get("state").map(String::as_str) {
        None => None,
        Some("ready") => Some(|st| *st == ServerState::Running),
        Some("active") => Some(ServerState::is_active),
        Some("inactive") => Some(|st| !st.is_active()),
        Some(bad) => {
            return Err(HubError::bad_request(format!(
                "Unrecognized state filter: {bad:?}"
            )))
        }
    })
}

/// A whole-number query parameter; negative values count from zero as JupyterHub's do.
fn number(q: &HashMap<String, String>, key: &str, default: usize) -> Result<usize, HubError> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .map(|n| usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX))
            .map_err(|_| HubError::bad_request(format!("{key} must be an integer"))),
    }
}

/// `GET /users`: the users the caller may read, filtered and paginated.
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HubError> {
    let filter = state_filter(&q)?;
    let paginated = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .any(|t| t.trim() == "application/jupyterhub-pagination+json")
        });
    let offset = number(&q, "offset", 0)?;
    let limit = number(&q, "limit", if paginated { 50 } else { 200 })?.clamp(1, 200);
    let users = s.db.users();
    // An admin's unfiltered page is one query for the page and a count, whatever the
    // number of users; anything else is one query and a filter in memory.
    let (total, page) = if filter.is_none() && caller.may_all("read:users") {
        (users.count()?, users.with_servers(offset, Some(limit))?)
    } else {
        // A ready server has a row: `?state=ready` (what the idle culler asks) reads
        // only the users with one.
        let candidates = if q.get("state").is_some_and(|v| v == "ready") {
            users.having_servers()?
        } else {
            users.with_servers(0, None)?
        };
        let visible: Vec<_> = candidates
            .into_iter()
            .filter(|(u, row)| {
                caller.may(&u.name, "read:users")
                    && filter.is_none_or(|f| {
                        f(&s.servers
                            .state_given(&u.name, row.as_ref().map(|r| r.state)))
                    })
            })
            .collect();
        let total = visible.len();
        (
            total,
            visible.into_iter().skip(offset).take(limit).collect(),
        )
    };
    let items: Vec<UserModel> = page
        .iter()
        .map(|(u, row)| model_with(&s, u, row.as_ref()))
        .collect();
    if !paginated {
        return Ok(Json(items).into_response());
    }
    let next = (offset + limit < total).then(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        NextPage {
            offset: offset + limit,
            limit,
            url: format!(
                "http://{host}{}/users?limit={limit}&offset={}",
                s.urls.api(),
                offset + limit
            ),
        }
    });
    let pagination = Pagination {
        offset,
        limit,
        total,
        next,
    };
    Ok(Json(Paginated { items, pagination }).into_response())
}

/// `GET /users/<name>`.
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
) -> Result<Json<UserModel>, HubError> {
    caller.require(&name, "read:users", true)?;
    let u =
        s.db.users()
            .get(&name)?
            .ok_or_else(|| HubError::not_found(format!("User {name} does not exist")))?;
    Ok(Json(model(&s, &u)?))
}

/// `POST /users/<name>`: admins add a user (who still needs a Unix account in the
/// allowed group to get a server).
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, HubError> {
    caller.require_admin("admin:users")?;
    let name = Username::parse(&raw)
        .map_err(|_| HubError::bad_request(format!("Invalid username: {raw:?}")))?;
    let req: CreateUser = json_body(&body)?.unwrap_or_default();
    if s.db.users().get(&name)?.is_some() {
        return Err(HubError::conflict(format!("User {name} already exists")));
    }
    let admin = req.admin.unwrap_or(false);
    let u = s.db.users().ensure(&name, Some(admin))?;
    tracing::info!(user = %name, admin, by = %caller.describe(), "user created via API");
    Ok((StatusCode::CREATED, Json(model(&s, &u)?)).into_response())
}

/// `DELETE /users/<name>`: stops their server and forgets them.
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
) -> Result<StatusCode, HubError> {
    caller.require_admin("delete:users")?;
    if caller.user().is_some_and(|u| u.name == name) {
        return Err(HubError::bad_request("Cannot delete yourself!"));
    }
    if s.db.users().get(&name)?.is_none() {
        return Err(HubError::not_found(format!("User {name} does not exist")));
    }
    s.servers.stop(&name).await;
    s.db.users().delete(&name)?;
    tracing::info!(user = %name, by = %caller.describe(), "user deleted via API");
    Ok(StatusCode::NO_CONTENT)
}
