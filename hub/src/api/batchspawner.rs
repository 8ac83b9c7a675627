//! `POST /batchspawner`: a Slurm job's server reports the port it picked on its node
//! (batchspawner's `batchspawner-singleuser` sends `{"port": N}` with the server's own API
//! token). Only the token of a server the hub is starting as a Slurm job is heard, and
//! only once; the node comes from Slurm, never from the job.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::json_body;
use crate::auth::Caller;
use crate::error::HubError;
use crate::state::AppState;
use crate::types::TokenKind;

#[derive(Deserialize)]
struct Report {
    port: u16,
}

/// Takes the port of the caller's server.
pub async fn report(
    State(s): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, HubError> {
    let key = match &caller {
        Caller::User { token: Some(t), .. } if t.kind == TokenKind::Server => t.server.clone(),
        _ => None,
    }
    .ok_or_else(|| {
        HubError::forbidden("only a single-user server's own API token may report its port")
    })?;
    let report: Report = json_body(&body)
        .map_err(|_| HubError::bad_request("body must be {\"port\": <1024-65535>}"))?
        .ok_or_else(|| HubError::bad_request("body must be {\"port\": <1024-65535>}"))?;
    if report.port < 1024 {
        return Err(HubError::bad_request(format!(
            "port {} is below 1024",
            report.port
        )));
    }
    s.servers
        .report_port(&key, report.port)
        .map_err(HubError::bad_request)?;
    tracing::info!(server = %key, port = report.port, "the job's server reported its port");
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"message": "BatchSpawner data configured"})),
    )
        .into_response())
}
