//! `PATCH /users/<name>/servers/<server>`: rename a stopped server, set its display
//! name (JupyterHub 5.3's).

use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;

use super::json_body;
use super::models::ServerModel;
use super::servers::{
    check_display_name, create_named, log_name, named_allowed, server_model, ServerPath,
};
use super::users::existing;
use crate::auth::Caller;
use crate::db::Renamed;
use crate::error::HubError;
use crate::state::AppState;
use crate::types::{ServerKey, ServerName, ServerState};

/// What `PATCH` of a server may carry (JupyterHub 5.3's): a new name, a new display
/// name, user options (accepted and not used, as for a start).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerPatch {
    name: Option<String>,
    display_name: Option<String>,
    #[allow(dead_code)]
    user_options: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `PATCH /users/<name>/servers/<server>`: renames a stopped server and/or sets its
/// display name; 200 with its model. Renaming the default server makes a named server
/// of that name (within the limit), as JupyterHub's does.
pub async fn patch(
    State(s): State<AppState>,
    caller: Caller,
    path: ServerPath,
    body: Bytes,
) -> Result<axum::Json<ServerModel>, HubError> {
    let key = path.key_or_404()?;
    caller.require_server(&key, "start:servers", false)?;
    let user = existing(&s, &key.user)?;
    named_allowed(&s)?;
    let req: ServerPatch = json_body(&body)?.unwrap_or_default();
    if req.name.is_none() && req.display_name.is_none() && req.user_options.is_none() {
        return Err(HubError::bad_request(
            "Must specify at least one field to modify.",
        ));
    }
    let new_name = req
        .name
        .as_deref()
        .map(|n| ServerName::parse(n).map_err(HubError::bad_request))
        .transpose()?;
    if new_name.as_ref().is_some_and(ServerName::is_default) {
        return Err(HubError::bad_request(
            "A server cannot be renamed to the default server",
        ));
    }
    let display = req.display_name.as_deref().filter(|d| !d.is_empty());
    if let Some(d) = display {
        check_display_name(d)?;
    }
    server_model(&s, &user, &key)?; // 404 unless it exists
    if s.servers.state(&key) != ServerState::Stopped
        && !matches!(s.servers.state(&key), ServerState::Failed(_))
    {
        return Err(HubError::bad_request(format!(
            "{} is active. Please stop it before modifying it.",
            log_name(&key)
        )));
    }
    let mut now = key.clone();
    if let Some(new) = new_name.filter(|n| *n != key.name) {
        let taken = || {
            HubError::conflict(format!(
                "User {} already has server {:?}",
                key.user,
                new.as_str()
            ))
        };
        if key.name.is_default() {
            if !create_named(
                &s,
                &user,
                &ServerKey::new(key.user.clone(), new.clone()),
                display,
            )? {
                return Err(taken());
            }
        } else {
            // The check that it is stopped and the rename are one step against starts.
            let renamed = s
                .servers
                .with_stopped(&key, || s.db.named().rename(user.id, &key.name, &new))
                .ok_or_else(|| {
                    HubError::bad_request(format!(
                        "{} is active. Please stop it before modifying it.",
                        log_name(&key)
                    ))
                })?;
            match renamed? {
                Renamed::Done => {}
                Renamed::Taken => return Err(taken()),
                Renamed::Missing => {
                    return Err(HubError::not_found(format!(
                        "{} has no server named '{}'",
                        key.user, key.name
                    )))
                }
            }
        }
        tracing::info!(server = %key, to = %new, "server renamed");
        now = ServerKey::new(key.user.clone(), new);
    }
    if let Some(d) = display.filter(|_| !now.name.is_default()) {
        s.db.named().set_display_name(user.id, &now.name, d)?;
    }
    Ok(axum::Json(server_model(&s, &user, &now)?))
}
