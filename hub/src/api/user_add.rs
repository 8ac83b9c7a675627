//! Admins add users: `POST /users/<name>` and `POST /users` (bulk), with their Unix
//! accounts made first when `create_system_users` is on.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::json_body;
use super::models::{CreateUser, CreateUsers};
use super::users::model;
use crate::auth::Caller;
use crate::error::HubError;
use crate::state::AppState;
use crate::types::Username;

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
    unix_accounts(&s, std::slice::from_ref(&name)).await?;
    let u = s.db.users().ensure(&name, Some(admin))?;
    tracing::info!(user = %name, admin, by = %caller.describe(), "user created via API");
    Ok((StatusCode::CREATED, Json(model(&s, &u)?)).into_response())
}

/// With `create_system_users`, makes the Unix accounts of `names` that have none
/// before the hub records them: a user the hub adds can get a server.
async fn unix_accounts(s: &AppState, names: &[Username]) -> Result<(), HubError> {
    let Some(maker) = &s.accounts else {
        return Ok(());
    };
    for name in names {
        let made = maker.ensure(name).await.map_err(|e| {
            HubError::helper(format!("Cannot create the Unix account of {name}: {e}"))
        })?;
        if let crate::spawner::Ensured::Created(uid) = made {
            s.db.native().bind_uid(name, uid)?;
        }
    }
    Ok(())
}

/// `POST /users`: admins add several users at once (JupyterHub's bulk create). Names
/// that exist already are skipped; an invalid name refuses the whole request.
pub async fn create_many(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, HubError> {
    caller.require_admin("admin:users")?;
    let req: CreateUsers = json_body(&body)?
        .ok_or_else(|| HubError::bad_request("Must specify at least one user to create"))?;
    if req.usernames.is_empty() {
        return Err(HubError::bad_request(
            "Must specify at least one user to create",
        ));
    }
    let mut names = Vec::with_capacity(req.usernames.len());
    let mut invalid = Vec::new();
    for raw in &req.usernames {
        match Username::parse(raw) {
            Ok(n) if !names.contains(&n) => names.push(n),
            Ok(_) => {}
            Err(_) => invalid.push(format!("{raw:?}")),
        }
    }
    match invalid.as_slice() {
        [] => {}
        [one] => return Err(HubError::bad_request(format!("Invalid username: {one}"))),
        many => {
            return Err(HubError::bad_request(format!(
                "Invalid usernames: {}",
                many.join(", ")
            )))
        }
    }
    let admin = req.admin.unwrap_or(false);
    let new: Vec<Username> = names
        .iter()
        .filter(|n| !matches!(s.db.users().get(n), Ok(Some(_))))
        .cloned()
        .collect();
    unix_accounts(&s, &new).await?;
    let created = s.db.users().create_many(&names, admin)?;
    if created.is_empty() {
        return Err(HubError::conflict(format!(
            "All {} users already exist",
            req.usernames.len()
        )));
    }
    for u in &created {
        tracing::info!(user = %u.name, admin, by = %caller.describe(), "user created via API");
    }
    let models = created
        .iter()
        .map(|u| model(&s, u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((StatusCode::CREATED, Json(models)).into_response())
}
