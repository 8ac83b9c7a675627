//! Waiting for a started server to answer HTTP before it gets a route.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::error::{HubError, Source};
use crate::spawner::{Ending, ServerHandle};
use crate::types::ServerName;

/// Longest wait for one probe's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Time between probes. JupyterHub backs off to 5 s; here a probe of a port nobody
/// listens on yet is one refused loopback connect (microseconds of CPU), so probing every
/// 10 ms costs nothing (a few hundred connects over a start of seconds) and the server is
/// routed at most 10 ms after it first answers.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// Waits until `GET <prefix>api` at `addr` answers below 500 (compat §1.3), giving up
/// after `timeout` or as soon as the server exits.
pub async fn wait_http(
    addr: std::net::SocketAddr,
    prefix: &str,
    timeout: Duration,
    handle: &ServerHandle,
    server: &ServerName,
) -> Result<(), HubError> {
    let log = format!(
        "~/.local/state/sudohub/{}",
        sudohub_helpers_config::server_log_name(server.as_str())
    );
    let failed = |status, msg: String| HubError::new(Source::Upstream, status, msg);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("http://{addr}{prefix}api")
        .parse()
        .map_err(|e| HubError::internal(format!("cannot probe the server: {e}")))?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answer = tokio::time::timeout(PROBE_TIMEOUT, client.get(uri.clone())).await;
        if let Ok(Ok(resp)) = answer {
            if resp.status().as_u16() < 500 {
                return Ok(());
            }
        }
        if let Some(Ending::Exited(status)) = handle.ending() {
            return Err(failed(
                http::StatusCode::BAD_GATEWAY,
                format!("the server exited ({status}) while starting; its log is {log}"),
            ));
        }
        if tokio::time::Instant::now() + PROBE_EVERY > deadline {
            return Err(failed(
                http::StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the server did not answer HTTP within {} s (spawner.http_timeout_secs); its log is {log}",
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
