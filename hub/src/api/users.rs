//! `/hub/api/user` and `/hub/api/users[/<name>]`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::models::{PatchUser, ServerModel, ServiceModel, ServiceWhoAmI, UserModel, WhoAmI};
use super::{accepts_pagination, json_body, number, Page, UserPath};
use crate::auth::Caller;
use crate::db::{HavingServer, NamedRow, ServerRow, SortBy, UserQuery, UserRow};
use crate::error::HubError;
use crate::state::AppState;
use crate::types::{ServerKey, Username};

/// The user model of `u`, with the live state of their servers.
pub(super) fn model(s: &AppState, u: &UserRow) -> Result<UserModel, HubError> {
    let extras = s.db.user_extras(u)?;
    Ok(model_with(
        s,
        u,
        extras.default.as_ref(),
        false,
        extras.groups,
        &extras.named,
    ))
}

/// The model of `u` whose server rows were read with it; `with_stopped`: stopped
/// servers are listed too (`include_stopped_servers`).
fn model_with(
    s: &AppState,
    u: &UserRow,
    row: Option<&ServerRow>,
    with_stopped: bool,
    groups: Vec<String>,
    named: &[NamedRow],
) -> UserModel {
    let state = s
        .servers
        .state_given(&ServerKey::default_of(&u.name), row.map(|r| r.state));
    let named = named
        .iter()
        .map(|n| {
            let key = ServerKey::new(u.name.clone(), n.name.clone());
            let state = s
                .servers
                .state_given(&key, n.running.as_ref().map(|r| r.state));
            ServerModel::named(&s.urls, &u.name, n, &state)
        })
        .collect();
    let mut model = UserModel::new(&s.urls, u, &state, row, with_stopped, groups, named);
    for server in model.servers.values_mut().filter(|m| m.ready) {
        if let Ok(name) = crate::types::ServerName::parse(&server.name) {
            server.resources = s.resources(&ServerKey::new(u.name.clone(), name));
        }
    }
    model
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
    // As JupyterHub's: the model holds what the credential may read of its owner, plus
    // what identifies them (`read:users:name`, `read:users:groups`), which every
    // credential may read here.
    let keys = match &caller {
        Caller::User { user, .. } => caller.user_model_keys(&user.name).map(|mut k| {
            k.extend(["kind", "name", "user_info", "admin", "groups"]);
            k
        }),
        Caller::Service { .. } => None,
    };
    Ok(match caller {
        Caller::User { user, token, .. } => {
            let who = WhoAmI {
                user: model(&s, &user)?,
                scopes,
                token_id: token.as_ref().map(|t| format!("a{}", t.id)),
                session_id: token.and_then(|t| t.session_id),
            };
            match keys {
                None => Json(who).into_response(),
                Some(keys) => {
                    let mut v = serde_json::to_value(who)
                        .map_err(|e| HubError::internal(format!("user model: {e}")))?;
                    if let Some(obj) = v.as_object_mut() {
                        obj.retain(|k, _| {
                            keys.contains(&k.as_str())
                                || matches!(k.as_str(), "scopes" | "token_id" | "session_id")
                        });
                    }
                    Json(v).into_response()
                }
            }
        }
        Caller::Service { name, .. } => {
            let svc = s
                .cfg
                .services
                .iter()
                .find(|svc| svc.name == name)
                .ok_or_else(|| HubError::internal("a service token names no service"))?;
            Json(ServiceWhoAmI {
                service: ServiceModel::of(&s.urls, svc),
                scopes,
                token_id: None,
                session_id: None,
            })
            .into_response()
        }
    })
}

/// The listing a `GET /users` asks for: the database query, the `ready` refinement
/// (a live state only this hub knows), and the page.
struct ListRequest {
    query: UserQuery,
    ready_only: bool,
    offset: usize,
    limit: usize,
}

impl ListRequest {
    /// Parses JupyterHub's parameters: `state`, `name_filter`, `sort`, `offset`, `limit`
    /// (default 50 with the pagination envelope, else 200; at most 200).
    fn parse(q: &HashMap<String, String>, paginated: bool) -> Result<Self, HubError> {
        let (having, ready_only) = match q.get("state").map(String::as_str) {
            None => (HavingServer::Any, false),
            Some("active") => (HavingServer::Active, false),
            Some("ready") => (HavingServer::Active, true),
            Some("inactive") => (HavingServer::Inactive, false),
            Some(bad) => {
                return Err(HubError::bad_request(format!(
                    "Unrecognized state filter: {bad:?}"
                )))
            }
        };
        let raw_sort = q.get("sort").map_or("id", String::as_str);
        let (descending, key) = match raw_sort.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, raw_sort),
        };
        let sort = match key {
            "id" => SortBy::Id,
            "name" => SortBy::Name,
            "last_activity" => SortBy::LastActivity,
            "running" => SortBy::Running,
            _ => {
                return Err(HubError::bad_request(format!(
                    "sort must be 'id', 'name', 'last_activity' or 'running', not '{raw_sort}'"
                )))
            }
        };
        let name_contains = q.get("name_filter").filter(|f| !f.is_empty()).cloned();
        Ok(Self {
            query: UserQuery {
                sort,
                descending,
                name_contains,
                having,
            },
            ready_only,
            offset: number(q, "offset", 0)?,
            limit: number(q, "limit", if paginated { 50 } else { 200 })?.clamp(1, 200),
        })
    }
}

/// `GET /users`: the users the caller may read, filtered, sorted and paginated as
/// JupyterHub does (a `ready` filter applies to the page, and the total counts the
/// active users, as there).
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HubError> {
    let paginated = accepts_pagination(&headers);
    let req = ListRequest::parse(&q, paginated)?;
    let with_stopped = include_stopped(&q);
    let users = s.db.users();
    let (total, page) = if caller.may_all("read:users") {
        (
            users.count_matching(&req.query)?,
            users.page(&req.query, req.offset, Some(req.limit))?,
        )
    } else {
        // A caller who may read some users only: their rows, paginated here.
        let visible: Vec<_> = users
            .page(&req.query, 0, None)?
            .into_iter()
            .filter(|(u, _)| caller.may(&u.name, "read:users"))
            .collect();
        let total = visible.len();
        let page = visible
            .into_iter()
            .skip(req.offset)
            .take(req.limit)
            .collect();
        (total, page)
    };
    let ids: Vec<i64> = page.iter().map(|(u, _)| u.id).collect();
    let mut groups = s.db.groups().of_users(&ids)?;
    let mut named = s.db.named().of_users(&ids)?;
    let items: Vec<Visible> = page
        .iter()
        .map(|(u, row)| {
            let g = groups.remove(&u.id).unwrap_or_default();
            let n = named.remove(&u.id).unwrap_or_default();
            model_with(&s, u, row.as_ref(), with_stopped, g, &n)
        })
        // `ready`: users with a server that is running and routed.
        .filter(|m| !req.ready_only || m.servers.values().any(|sv| sv.ready))
        .map(|m| {
            let name = m.name.clone();
            visible(&caller, &name, m)
        })
        .collect::<Result<_, _>>()?;
    if !paginated {
        return Ok(Json(items).into_response());
    }
    let page = Page {
        offset: req.offset,
        limit: req.limit,
        total,
    };
    Ok(Json(page.envelope(&s, &headers, &uri, items)).into_response())
}

/// `GET /users/<name>`.
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HubError> {
    caller.require(&name, "read:users", true)?;
    let u =
        s.db.users()
            .get(&name)?
            .ok_or_else(|| HubError::not_found(format!("User {name} does not exist")))?;
    let extras = s.db.user_extras(&u)?;
    let m = model_with(
        &s,
        &u,
        extras.default.as_ref(),
        include_stopped(&q),
        extras.groups,
        &extras.named,
    );
    let seen = visible(&caller, &name, m)?;
    // `auth_state` only for `admin:auth_state` on this user, as JupyterHub.
    if s.auth_state.is_some() && caller.may(&name, "admin:auth_state") {
        let mut v = serde_json::to_value(seen)
            .map_err(|e| HubError::internal(format!("user model: {e}")))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("auth_state".into(), auth_state_of(&s, &name)?);
        }
        return Ok(Json(v).into_response());
    }
    Ok(Json(seen).into_response())
}

/// `name`'s auth state, opened; `null` when there is none.
fn auth_state_of(s: &AppState, name: &Username) -> Result<serde_json::Value, HubError> {
    let (Some(key), Some(blob)) = (&s.auth_state, s.db.identities().auth_state(name)?) else {
        return Ok(serde_json::Value::Null);
    };
    Ok(key.open(name, &blob).unwrap_or_else(|e| {
        tracing::warn!(user = %name, error = %e, "auth state not shown");
        serde_json::Value::Null
    }))
}

/// `?include_stopped_servers` (any value but `0` or `false`).
fn include_stopped(q: &HashMap<String, String>) -> bool {
    q.get("include_stopped_servers")
        .is_some_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "0" | "false"))
}

/// `m` as the caller may see it: whole, or only the fields its scopes on `name` give.
fn visible(caller: &Caller, name: &Username, m: UserModel) -> Result<Visible, HubError> {
    let Some(keys) = caller.user_model_keys(name) else {
        return Ok(Visible::Whole(Box::new(m)));
    };
    let mut v =
        serde_json::to_value(m).map_err(|e| HubError::internal(format!("user model: {e}")))?;
    if let Some(obj) = v.as_object_mut() {
        obj.retain(|k, _| keys.contains(&k.as_str()));
    }
    Ok(Visible::Cut(v))
}

/// A user model as a caller sees it: whole (serialised straight from the struct: an
/// admin's list of 200 users is not built twice), or cut to some of its fields.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Visible {
    Whole(Box<UserModel>),
    Cut(serde_json::Value),
}

/// `DELETE /users/<name>`: stops their servers and forgets them (never their Unix
/// account).
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
    s.servers.stop_all_of(&name).await;
    s.db.users().delete(&name)?;
    tracing::info!(user = %name, by = %caller.describe(), "user deleted via API");
    Ok(StatusCode::NO_CONTENT)
}

/// `PATCH /users/<name>`: admins change a user's admin flag or name. A rename needs the
/// server stopped, and revokes what was issued to the old name (see
/// [`crate::db::Users::rename`]).
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
    body: Bytes,
) -> Result<Json<UserModel>, HubError> {
    caller.require_admin("admin:users")?;
    let req: PatchUser = json_body(&body)?
        .ok_or_else(|| HubError::bad_request("Must specify at least one field to modify."))?;
    existing(&s, &name)?;
    let mut current = name.clone();
    if let Some(raw) = req.name.as_deref().filter(|n| *n != name.as_str()) {
        let to = Username::parse(raw)
            .map_err(|_| HubError::bad_request(format!("Invalid username: {raw:?}")))?;
        if !s.servers.active_of(&name).is_empty() {
            return Err(HubError::bad_request(format!(
                "Stop {name}'s servers before renaming them"
            )));
        }
        if !s.db.users().rename(&name, &to)? {
            return Err(HubError::bad_request(format!(
                "User {to} already exists, username must be unique"
            )));
        }
        tracing::info!(user = %name, to = %to, by = %caller.describe(), "user renamed via API; their sessions and tokens revoked");
        current = to;
    }
    if let Some(admin) = req.admin {
        s.db.users().set_admin(&current, admin)?;
        tracing::info!(user = %current, admin, by = %caller.describe(), "admin flag set via API");
    }
    let u = existing(&s, &current)?;
    Ok(Json(model(&s, &u)?))
}
