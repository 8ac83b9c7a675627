//! `POST /users/<name>/activity`: what the single-user server reports (compat §1.4b).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

use super::models::ActivityReport;
use super::users::existing;
use super::{json_body, UserPath};
use crate::auth::Caller;
use crate::error::HubError;
use crate::state::AppState;
use crate::types::{ServerKey, ServerName};

/// How far in the future a reported time may be (clock skew).
const MAX_SKEW: time::Duration = time::Duration::minutes(59);

/// Parses one reported time into the API's format.
fn timestamp(t: &str) -> Result<String, HubError> {
    let parsed = crate::timestamp::parse(t)
        .ok_or_else(|| HubError::bad_request(format!("invalid timestamp {t:?}")))?;
    if parsed > time::OffsetDateTime::now_utc() + MAX_SKEW {
        return Err(HubError::bad_request("last_activity is in the future"));
    }
    Ok(crate::timestamp::iso(parsed))
}

/// Records the user's and their servers' last activity; never moves it back.
pub async fn report(
    State(s): State<AppState>,
    caller: Caller,
    UserPath(name): UserPath,
    body: Bytes,
) -> Result<StatusCode, HubError> {
    caller.require(&name, "users:activity", false)?;
    let report: ActivityReport =
        json_body(&body)?.ok_or_else(|| HubError::bad_request("body must be a dict"))?;
    let user = existing(&s, &name)?;
    if report.last_activity.is_none() && report.servers.is_none() {
        return Err(HubError::bad_request(
            "body has neither last_activity nor servers",
        ));
    }
    // Everything is checked before anything is written.
    let user_ts = report.last_activity.as_deref().map(timestamp).transpose()?;
    let mut server_ts = Vec::new();
    for (server, v) in report.servers.iter().flatten() {
        let no_such = || {
            HubError::bad_request(format!(
                "No such server {:?} for user {name}",
                server.chars().take(40).collect::<String>()
            ))
        };
        let key = ServerKey::new(
            name.clone(),
            ServerName::parse(server).map_err(|_| no_such())?,
        );
        // A named server exists while stopped too; the default one while it runs.
        let exists = if key.name.is_default() {
            s.db.servers().get(&key)?.is_some()
        } else {
            s.db.named().get(user.id, &key.name)?.is_some()
        };
        if !exists {
            return Err(no_such());
        }
        if let Some(ts) = v.last_activity.as_deref().map(timestamp).transpose()? {
            server_ts.push((key.name, ts));
        }
    }
    if let Some(ts) = user_ts {
        s.db.users().touch(&name, None, &ts)?;
    }
    for (server, ts) in server_ts {
        s.db.users().touch(&name, Some(&server), &ts)?;
    }
    Ok(StatusCode::OK)
}
