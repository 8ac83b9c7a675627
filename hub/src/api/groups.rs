//! `/groups[/<name>[/users|/properties]]`: JupyterHub's groups, for admins.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{accepts_pagination, json_body, number, Page};
use crate::auth::Caller;
use crate::db::{GroupError, GroupRow};
use crate::error::HubError;
use crate::state::AppState;
use crate::types::{GroupName, Username};

/// The group model.
#[derive(Debug, Serialize)]
pub struct GroupModel {
    /// Always `group`.
    kind: &'static str,
    name: GroupName,
    /// Roles (none: roles come with issue #13's roles and scopes).
    roles: Vec<String>,
    users: Vec<Username>,
    properties: serde_json::Value,
}

impl From<GroupRow> for GroupModel {
    fn from(g: GroupRow) -> Self {
        Self {
            kind: "group",
            name: g.name,
            roles: Vec::new(),
            users: g.users,
            properties: g.properties,
        }
    }
}

/// `{"users": [...]}`, and for the bulk create `{"groups": [...], "users": [...]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    groups: Option<Vec<String>>,
    users: Option<Vec<String>>,
}

fn group_name(raw: &str) -> Result<GroupName, HubError> {
    GroupName::parse(raw).map_err(HubError::bad_request)
}

fn user_names(raw: &[String]) -> Result<Vec<Username>, HubError> {
    raw.iter()
        .map(|n| {
            Username::parse(n).map_err(|_| HubError::bad_request(format!("No such user: {n}")))
        })
        .collect()
}

fn failed(e: GroupError) -> HubError {
    match e {
        GroupError::Db(e) => e.into(),
        GroupError::Exists(g) => HubError::conflict(format!("Group {g} already exists")),
        GroupError::NoGroup(g) => HubError::not_found(format!("No such group: {g}")),
        GroupError::NoUser(u) => HubError::bad_request(format!("No such user: {u}")),
    }
}

fn existing(s: &AppState, name: &GroupName) -> Result<GroupRow, HubError> {
    s.db.groups()
        .get(name)?
        .ok_or_else(|| HubError::not_found(format!("No such group: {name}")))
}

/// `GET /groups` (`list:groups`), paginated as `/users` is.
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, HubError> {
    caller.require_admin("list:groups")?;
    let paginated = accepts_pagination(&headers);
    let offset = number(&q, "offset", 0)?;
    let limit = number(&q, "limit", if paginated { 50 } else { 200 })?.clamp(1, 200);
    let (rows, total) = s.db.groups().page(offset, limit)?;
    let items: Vec<GroupModel> = rows.into_iter().map(GroupModel::from).collect();
    if !paginated {
        return Ok(Json(items).into_response());
    }
    let page = Page {
        offset,
        limit,
        total,
    };
    Ok(Json(page.envelope(&s, &headers, &uri, items)).into_response())
}

/// `POST /groups` (`admin:groups`): several groups at once, all or none.
pub async fn create_many(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, HubError> {
    caller.require_admin("admin:groups")?;
    let req: GroupBody = json_body(&body)?.unwrap_or_default();
    let names = req
        .groups
        .filter(|g| !g.is_empty())
        .ok_or_else(|| HubError::bad_request("Must specify at least one group to create"))?
        .iter()
        .map(|g| group_name(g))
        .collect::<Result<Vec<_>, _>>()?;
    let users = user_names(req.users.as_deref().unwrap_or_default())?;
    s.db.groups().create(&names, &users).map_err(failed)?;
    tracing::info!(groups = ?names, by = %caller.describe(), "groups created via API");
    let models = names
        .iter()
        .map(|n| existing(&s, n).map(GroupModel::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((StatusCode::CREATED, Json(models)).into_response())
}

/// `GET /groups/<name>` (`read:groups`).
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<GroupModel>, HubError> {
    caller.require_admin("read:groups")?;
    Ok(Json(existing(&s, &group_name(&raw)?)?.into()))
}

/// `POST /groups/<name>` (`admin:groups`), optionally with `users`.
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Response, HubError> {
    caller.require_admin("admin:groups")?;
    let name = group_name(&raw)?;
    let req: GroupBody = json_body(&body)?.unwrap_or_default();
    if req.groups.is_some() {
        return Err(HubError::bad_request("`groups` belongs in POST /groups"));
    }
    let users = user_names(req.users.as_deref().unwrap_or_default())?;
    s.db.groups()
        .create(std::slice::from_ref(&name), &users)
        .map_err(failed)?;
    tracing::info!(group = %name, by = %caller.describe(), "group created via API");
    let model: GroupModel = existing(&s, &name)?.into();
    Ok((StatusCode::CREATED, Json(model)).into_response())
}

/// `DELETE /groups/<name>` (`delete:groups`).
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, HubError> {
    caller.require_admin("delete:groups")?;
    let name = group_name(&raw)?;
    if !s.db.groups().delete(&name)? {
        return Err(HubError::not_found(format!("No such group: {name}")));
    }
    tracing::info!(group = %name, by = %caller.describe(), "group deleted via API");
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    s: AppState,
    caller: Caller,
    raw: String,
    body: Bytes,
    add: bool,
) -> Result<Json<GroupModel>, HubError> {
    caller.require_admin("groups")?;
    let name = group_name(&raw)?;
    let req: GroupBody = json_body(&body)?.unwrap_or_default();
    let verb = if add { "add" } else { "delete" };
    let users = user_names(
        req.users
            .as_deref()
            .ok_or_else(|| HubError::bad_request(format!("Must specify users to {verb}")))?,
    )?;
    s.db.groups()
        .change_members(&name, &users, add)
        .map_err(failed)?;
    tracing::info!(group = %name, users = ?users, add, by = %caller.describe(), "group members changed via API");
    Ok(Json(existing(&s, &name)?.into()))
}

/// `POST /groups/<name>/users` (`groups`): adds members.
pub async fn add_users(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<GroupModel>, HubError> {
    members(s, caller, raw, body, true).await
}

/// `DELETE /groups/<name>/users` (`groups`): removes members.
pub async fn remove_users(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<GroupModel>, HubError> {
    members(s, caller, raw, body, false).await
}

/// `PUT /groups/<name>/properties` (`groups`): replaces the properties (a JSON object).
pub async fn set_properties(
    State(s): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<GroupModel>, HubError> {
    caller.require_admin("groups")?;
    let name = group_name(&raw)?;
    let props: serde_json::Map<String, serde_json::Value> =
        json_body(&body)?.ok_or_else(|| HubError::bad_request("Must specify properties"))?;
    if !s
        .db
        .groups()
        .set_properties(&name, &serde_json::Value::Object(props))?
    {
        return Err(HubError::not_found(format!("No such group: {name}")));
    }
    Ok(Json(existing(&s, &name)?.into()))
}
