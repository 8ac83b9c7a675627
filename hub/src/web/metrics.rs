//! `/hub/metrics`: Prometheus scrapes it with a token (`read:metrics`: an admin's API
//! token or an admin service's), unless `authenticate_prometheus = false`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::Caller;
use crate::error::HubError;
use crate::metrics::{ServersUsage, ACTIVE_PERIODS};
use crate::state::AppState;
use crate::timestamp::{iso_from_unix, unix_now};

/// The scrape.
pub async fn scrape(
    State(s): State<AppState>,
    caller: Result<Caller, HubError>,
) -> Result<Response, HubError> {
    if s.cfg.authenticate_prometheus {
        caller?.require_admin("read:metrics")?;
    }
    let users = s.db.users();
    let total = users.count()?;
    let mut active = Vec::with_capacity(ACTIVE_PERIODS.len());
    for (period, length) in ACTIVE_PERIODS {
        let secs = i64::try_from(length.as_secs()).unwrap_or(i64::MAX);
        let since = iso_from_unix(unix_now().saturating_sub(secs)).unwrap_or_default();
        active.push((period, users.active_since(&since)?));
    }
    let mut usage = ServersUsage::default();
    for (key, _) in s.routes.all().0 {
        if let Some(u) = s.resources(&key) {
            usage.memory_bytes += u.memory_bytes.unwrap_or(0);
            usage.cpu_seconds += u.cpu_seconds.unwrap_or(0.0);
            usage.oom_kills += u.oom_kills.unwrap_or(0);
        }
    }
    let text = s
        .metrics
        .render(total, s.servers.running_count(), &active, usage);
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(resp)
}
