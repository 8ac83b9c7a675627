//! Running code in a real Jupyter kernel over its WebSocket, the way JupyterLab does:
//! create the kernel through the REST API, open `…/api/kernels/<id>/channels`, send an
//! `execute_request` on the shell channel, and collect the `stream` output on iopub.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Sends `code` to the kernel at `ws_url` (a `ws://…/channels` URL) with the given
/// `Cookie` header, and returns everything it printed to stdout, once the kernel has
/// replied and gone idle.
pub async fn execute(ws_url: &str, cookie: Option<&str>, code: &str) -> Result<String, String> {
    let request = request(ws_url, cookie)?;
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("websocket connect to {ws_url}: {e}"))?;
    run(ws, code).await
}

/// [`execute`] with an API token (`Authorization: token …`) instead of a cookie, as a
/// script using a server's REST API does.
pub async fn execute_with_token(ws_url: &str, token: &str, code: &str) -> Result<String, String> {
    let mut request = request(ws_url, None)?;
    request.headers_mut().insert(
        "Authorization",
        format!("token {token}")
            .parse()
            .map_err(|e| format!("authorization header: {e}"))?,
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| format!("websocket connect to {ws_url}: {e}"))?;
    run(ws, code).await
}

/// [`execute`] over `wss://`, trusting the certificates of `tls`.
pub async fn execute_tls(
    ws_url: &str,
    cookie: Option<&str>,
    code: &str,
    tls: &crate::tls::ClientTls,
) -> Result<String, String> {
    let request = request(ws_url, cookie)?;
    let host = request.uri().host().unwrap_or_default().to_owned();
    let port = request.uri().port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
    let stream = tls.connect(&host, tcp).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("websocket handshake with {ws_url}: {e}"))?;
    run(ws, code).await
}

/// [`execute`] through a connection to `addr`, whatever `ws_url`'s host resolves to (a
/// server's `<name>.localhost` origin, which only browsers resolve by themselves), over
/// TLS when `tls` is given (`wss://`).
pub async fn execute_via(
    addr: std::net::SocketAddr,
    ws_url: &str,
    cookie: Option<&str>,
    code: &str,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<String, String> {
    let request = request(ws_url, cookie)?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let Some(tls) = tls else {
        let (ws, _) = tokio_tungstenite::client_async(request, tcp)
            .await
            .map_err(|e| format!("websocket handshake with {ws_url}: {e}"))?;
        return run(ws, code).await;
    };
    let host = request.uri().host().unwrap_or_default().to_owned();
    let stream = tls.connect(&host, tcp).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("websocket handshake with {ws_url}: {e}"))?;
    run(ws, code).await
}

fn request(ws_url: &str, cookie: Option<&str>) -> Result<Request, String> {
    let mut request = ws_url
        .into_client_request()
        .map_err(|e| format!("bad websocket url {ws_url}: {e}"))?;
    if let Some(c) = cookie {
        request.headers_mut().insert(
            "Cookie",
            c.parse().map_err(|e| format!("cookie header: {e}"))?,
        );
    }
    Ok(request)
}

/// A kernel WebSocket kept open across several executions, as JupyterLab keeps one.
pub struct Session<S = tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    ws: WebSocketStream<S>,
}

impl Session<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    /// [`Session::open`] over `wss://` through a connection to `addr`, trusting `tls`.
    pub async fn open_tls(
        addr: std::net::SocketAddr,
        ws_url: &str,
        cookie: Option<&str>,
        tls: &crate::tls::ClientTls,
    ) -> Result<Self, String> {
        let request = request(ws_url, cookie)?;
        let host = request.uri().host().unwrap_or_default().to_owned();
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let stream = tls.connect(&host, tcp).await?;
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| format!("websocket handshake with {ws_url}: {e}"))?;
        Ok(Self { ws })
    }
}

impl Session {
    /// Opens the WebSocket at `ws_url` with the given `Cookie` header.
    pub async fn open(ws_url: &str, cookie: Option<&str>) -> Result<Self, String> {
        let (ws, _) = tokio_tungstenite::connect_async(request(ws_url, cookie)?)
            .await
            .map_err(|e| format!("websocket connect to {ws_url}: {e}"))?;
        Ok(Self { ws })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Runs `code` over this same WebSocket: what it printed.
    pub async fn execute(&mut self, code: &str) -> Result<String, String> {
        exchange(&mut self.ws, code).await
    }

    /// Waits for the next frame (or the end) for at most `wait`: `Ok(None)` when the
    /// connection ended in order (a close frame or a clean EOF), `Err` on a reset.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<String>, String> {
        match tokio::time::timeout(wait, self.ws.next()).await {
            Err(_) => Ok(Some("(nothing)".into())),
            Ok(None) => Ok(None),
            Ok(Some(Ok(Message::Close(_)))) => Ok(None),
            Ok(Some(Ok(m))) => Ok(Some(m.to_string())),
            Ok(Some(Err(e))) => Err(e.to_string()),
        }
    }
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut ws: WebSocketStream<S>,
    code: &str,
) -> Result<String, String> {
    let out = exchange(&mut ws, code).await;
    let _ = ws.close(None).await;
    out
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: &str,
) -> Result<String, String> {
    let session = format!("sudohub-test-{}", std::process::id());
    let msg_id = format!("exec-{}", rand_suffix());
    let msg = serde_json::json!({
        "header": {"msg_id": msg_id, "username": "sudohub-test", "session": session,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {"code": code, "silent": false, "store_history": false,
                    "user_expressions": {}, "allow_stdin": false, "stop_on_error": true}
    });
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .map_err(|e| format!("send execute_request: {e}"))?;

    let mut out = String::new();
    let (mut idle, mut replied) = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no idle status and reply within 60 s (idle: {idle}, reply: {replied}); output so far: {out:?}"))?;
        let Some(frame) = next else {
            return Err(format!("websocket closed; output so far: {out:?}"));
        };
        let text = match frame.map_err(|e| format!("websocket read: {e}"))? {
            Message::Text(t) => t.to_string(),
            _ => continue,
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("kernel message not JSON: {e}"))?;
        if v["parent_header"]["msg_id"] != msg_id {
            continue;
        }
        match v["header"]["msg_type"].as_str() {
            Some("stream") if v["content"]["name"] == "stdout" => {
                out.push_str(v["content"]["text"].as_str().unwrap_or_default());
            }
            Some("error") => return Err(format!("kernel error: {}", v["content"])),
            Some("status") if v["content"]["execution_state"] == "idle" => idle = true,
            Some("execute_reply") => replied = true,
            _ => {}
        }
        // The reply (shell channel) and the idle status (iopub) come in either order:
        // wait for both, so that nothing of this execution is left to read after it.
        if idle && replied {
            return Ok(out);
        }
    }
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos)
}
