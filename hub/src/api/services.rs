//! `/services[/<name>]`: the configured services, as JupyterHub's service model.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;

use super::models::ServiceModel;
use crate::auth::Caller;
use crate::error::HubError;
use crate::state::AppState;

/// `GET /services`: every service by name (admins: `list:services`).
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<BTreeMap<String, ServiceModel>>, HubError> {
    caller.require_admin("list:services")?;
    Ok(Json(
        s.cfg
            .services
            .iter()
            .map(|svc| (svc.name.clone(), ServiceModel::of(&s.urls, svc)))
            .collect(),
    ))
}

/// `GET /services/<name>` (admins: `read:services`).
pub async fn get_one(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ServiceModel>, HubError> {
    caller.require_admin("read:services")?;
    s.cfg
        .services
        .iter()
        .find(|svc| svc.name == name)
        .map(|svc| Json(ServiceModel::of(&s.urls, svc)))
        .ok_or_else(|| HubError::not_found(format!("No such service: {name}")))
}
