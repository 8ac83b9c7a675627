//! The hub itself: `/proxy` (its routing table), `/shutdown`, and the deprecated
//! `/authorizations/token/<token>`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::json_body;
use super::models::ServiceModel;
use crate::auth::Caller;
use crate::error::HubError;
use crate::state::AppState;

/// `GET /proxy` (`proxy`: admins): the routing table, as configurable-http-proxy's
/// routes look through JupyterHub: `routespec → {routespec, target, data}`.
pub async fn routes(State(s): State<AppState>, caller: Caller) -> Result<Json<Value>, HubError> {
    caller.require_admin("proxy")?;
    let (users, services) = s.routes.all();
    let mut table = BTreeMap::new();
    let hub = s.urls.base().to_owned();
    table.insert(
        hub.clone(),
        json!({"routespec": hub, "target": s.cfg.api_url().trim_end_matches("hub/api").to_owned(),
               "data": {"hub": true}}),
    );
    for (server, addr) in users {
        let spec = s.urls.server_prefix(&server);
        table.insert(
            spec.clone(),
            json!({"routespec": spec, "target": format!("http://{addr}"),
                   "data": {"user": server.user.as_str(), "server_name": server.name.as_str()}}),
        );
    }
    for (name, addr) in services {
        let spec = s.urls.service(&name);
        table.insert(
            spec.clone(),
            json!({"routespec": spec, "target": format!("http://{addr}"),
                   "data": {"service": name}}),
        );
    }
    Ok(Json(Value::Object(table.into_iter().collect())))
}

/// `POST /proxy`: JupyterHub re-sends its routes to the proxy. Here the routes are
/// the proxy's own memory: they are always in step, so there is nothing to do.
pub async fn sync(caller: Caller) -> Result<StatusCode, HubError> {
    caller.require_admin("proxy")?;
    Ok(StatusCode::OK)
}

/// `PATCH /proxy`: JupyterHub points itself at another proxy. The proxy is built into
/// sudohub: there is none to point at.
pub async fn repoint(caller: Caller) -> Result<StatusCode, HubError> {
    caller.require_admin("proxy")?;
    Err(HubError::bad_request(
        "the proxy is built into sudohub: there is no other proxy to point the hub at",
    ))
}

/// The body of `POST /shutdown`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownRequest {
    /// Stop every user's server too (default: they keep running and re-attach).
    servers: Option<bool>,
    /// Stop the proxy too: it is part of the hub, so it always stops with it.
    proxy: Option<bool>,
}

/// `POST /shutdown` (`shutdown`: admins): the hub stops; users' servers keep running
/// unless `servers` is true, and re-attach when it is started again.
pub async fn shutdown(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, HubError> {
    caller.require_admin("shutdown")?;
    let req: ShutdownRequest = json_body(&body)?.unwrap_or_default();
    if req.proxy == Some(false) {
        return Err(HubError::bad_request(
            "the proxy is built into the hub and stops with it: proxy cannot be false",
        ));
    }
    let stop_servers = req.servers.unwrap_or(false);
    tracing::warn!(by = %caller.describe(), stop_servers, "shutdown requested through the API");
    let servers = s.servers.clone();
    let all: Vec<_> = s.db.servers().all()?.iter().map(|r| r.key()).collect();
    let trigger = s.shutdown.clone();
    tokio::spawn(async move {
        if stop_servers {
            for key in &all {
                servers.stop(key).await;
            }
        }
        trigger.notify_one();
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "Shutting down Hub"})),
    )
        .into_response())
}

/// `GET /authorizations/token/<token>` (deprecated since JupyterHub 2.0, still used by
/// old services): the model of the token's owner, for any authenticated caller.
pub async fn token_owner(
    State(s): State<AppState>,
    _caller: Caller,
    Path(token): Path<String>,
) -> Result<Response, HubError> {
    tracing::warn!(
        "/authorizations/token/:token is deprecated since JupyterHub 2.0; use /api/user"
    );
    if let Some(svc) = crate::auth::service_by_token(&s.cfg, &token) {
        return Ok(Json(ServiceModel::of(&s.urls, svc)).into_response());
    }
    let row =
        s.db.tokens()
            .lookup(&token)?
            .ok_or_else(|| HubError::not_found("No such token"))?;
    Ok(Json(super::users::model(&s, &row.user)?).into_response())
}

/// `POST /authorizations/token`: removed in JupyterHub 2.0, as there.
pub async fn token_create_removed() -> HubError {
    HubError::not_found(
        "Deprecated endpoint /hub/api/authorizations/token is removed in JupyterHub 2.0. \
         Use /hub/api/users/:user/tokens instead.",
    )
}
