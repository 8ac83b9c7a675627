//! Forwarding one request: HTTP/1.1 through a keep-alive pool with streaming bodies, or a
//! WebSocket upgrade followed by a two-way byte copy.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::idle::{splice, IdleBody};
use super::tunnels::Tunnels;
use super::Route;
use crate::error::{HubError, Source};
use crate::templates::Message;
use crate::urls::Urls;

/// Headers that describe one connection, not the message: never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Largest total size of request headers accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most request headers accepted.
const MAX_HEADERS: usize = 100;

/// The proxy's client side.
#[derive(Clone)]
pub struct Proxy {
    client: Client<HttpConnector, IdleBody<Body>>,
    urls: Urls,
    /// Longest wait for an upstream's response headers before answering 504.
    response_timeout: Duration,
    /// Longest silence of a body or an upgraded connection.
    idle_timeout: Duration,
    /// The WebSocket tunnels open.
    tunnels: Tunnels,
}

impl Proxy {
    /// A proxy with a keep-alive pool to upstreams, which waits at most
    /// `response_timeout` for an upstream to start answering, and closes bodies and
    /// WebSockets silent for `idle_timeout`.
    pub fn new(urls: Urls, response_timeout: Duration, idle_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .build(connector);
        Self {
            client,
            urls,
            response_timeout,
            idle_timeout,
            tunnels: Tunnels::new(idle_timeout),
        }
    }

    /// The WebSocket tunnels this proxy carries.
    pub fn tunnels(&self) -> &Tunnels {
        &self.tunnels
    }

    /// Forwards `req` to `route`, from `client` (for `X-Forwarded-For`) over `proto`.
    pub async fn forward(
        &self,
        mut req: Request,
        route: &Route,
        client: SocketAddr,
        proto: &str,
    ) -> Response {
        let headers_size: usize = req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        if req.headers().len() > MAX_HEADERS || headers_size > MAX_HEADER_BYTES {
            return StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE.into_response();
        }
        let is_ws = is_websocket(&req);
        let client_upgrade = is_ws.then(|| hyper::upgrade::on(&mut req));

        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let uri: Uri = match format!("http://{}{path}", route.target).parse() {
            Ok(u) => u,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        };
        let (mut parts, body) = req.into_parts();
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        let host = parts.headers.get(header::HOST).cloned();
        strip_hop_by_hop(&mut parts.headers);
        add_forwarded(&mut parts.headers, client, proto, host.as_ref());
        if is_ws {
            set_websocket_upgrade(&mut parts.headers);
        }
        // A client that stops sending its body mid-way releases the upstream connection.
        let upstream_req = http::Request::from_parts(parts, IdleBody::new(body, self.idle_timeout));

        let resp = match tokio::time::timeout(
            self.response_timeout,
            self.client.request(upstream_req),
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let refused = e.is_connect();
                tracing::warn!(owner = %route.owner, target = %route.target, error = %e, "proxy: upstream error");
                return self.error_page(
                    if refused {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::BAD_GATEWAY
                    },
                    &path,
                );
            }
            Err(_) => return self.error_page(StatusCode::GATEWAY_TIMEOUT, &path),
        };

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return StatusCode::BAD_GATEWAY.into_response();
            };
            let (mut parts, body) = resp.into_parts();
            let upstream_upgrade =
                hyper::upgrade::on(http::Response::from_parts(parts.clone(), body));
            let owner = route.owner.clone();
            let idle = self.idle_timeout;
            let tunnels = self.tunnels.clone();
            tokio::spawn(async move {
                match (client_upgrade.await, upstream_upgrade.await) {
                    (Ok(c), Ok(u)) => tunnel(&tunnels, c, u, idle, owner),
                    (c, u) => {
                        tracing::warn!(owner = %owner, client = c.is_ok(), upstream = u.is_ok(), "websocket upgrade failed")
                    }
                }
            });
            set_websocket_upgrade(&mut parts.headers);
            // Browsers store cookies from a handshake's 101 too.
            route.restrict(&mut parts.headers);
            parts.extensions.insert(Proxied);
            return Response::from_parts(parts, Body::empty());
        }

        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        route.restrict(&mut parts.headers);
        parts.extensions.insert(Proxied);
        // A server that stops sending mid-body ends the response with an error, so the
        // client sees a cut body (never one that looks complete) and the slot is freed.
        Response::from_parts(parts, Body::new(IdleBody::new(body, self.idle_timeout)))
    }

    /// The page shown when a server cannot be reached: HTML, or JSON for API paths.
    fn error_page(&self, status: StatusCode, path: &str) -> Response {
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                "Your server appears to be down. Try restarting it from the hub."
            }
            StatusCode::GATEWAY_TIMEOUT => "Your server did not answer in time.",
            _ => "Your server sent a response the hub could not forward.",
        };
        if path.contains("/api/") {
            return HubError::new(Source::Upstream, status, message).into_response();
        }
        let title = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        Message::error(&title, message)
            .link(self.urls.hub_page("home"), "Go to the hub")
            .respond(status)
    }
}

/// Carries an upgraded connection: movable to a successor hub when both sides are plain
/// TCP, else spliced here until it closes.
fn tunnel(
    tunnels: &Tunnels,
    client: hyper::upgrade::Upgraded,
    upstream: hyper::upgrade::Upgraded,
    idle: Duration,
    owner: String,
) {
    type Plain = TokioIo<tokio::net::TcpStream>;
    match (client.downcast::<Plain>(), upstream.downcast::<Plain>()) {
        (Ok(c), Ok(u)) => tunnels.carry(
            c.io.into_inner(),
            u.io.into_inner(),
            c.read_buf.to_vec(),
            u.read_buf.to_vec(),
        ),
        (c, u) => tunnels.spawn(|cut| async move {
            use tokio::io::AsyncWriteExt;
            let (mut c, c_early) = side(c);
            let (mut u, u_early) = side(u);
            let spliced = async {
                u.write_all(&c_early).await?;
                c.write_all(&u_early).await?;
                splice(c, u, idle, cut).await
            };
            if let Err(e) = spliced.await {
                tracing::debug!(owner = %owner, error = %e, "websocket closed with an error");
            }
        }),
    }
}

/// Either side of a tunnel that cannot move.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// One side as it came out of [`hyper::upgrade::Upgraded::downcast`], with the bytes
/// already read from it.
fn side(
    r: Result<hyper::upgrade::Parts<TokioIo<tokio::net::TcpStream>>, hyper::upgrade::Upgraded>,
) -> (Box<dyn Io>, bytes::Bytes) {
    match r {
        Ok(p) => (Box::new(p.io.into_inner()), p.read_buf),
        Err(u) => (Box::new(TokioIo::new(u)), bytes::Bytes::new()),
    }
}

fn is_websocket(req: &Request) -> bool {
    let has = |name: HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    req.version() == http::Version::HTTP_11
        && req.method() == http::Method::GET
        && has(header::UPGRADE, "websocket")
        && has(header::CONNECTION, "upgrade")
}

/// Marks a response that came from a user's server or a service, so the hub's own
/// security headers are not put on it.
#[derive(Debug, Clone, Copy)]
pub struct Proxied;

/// `Connection: upgrade` and `Upgrade: websocket`, put back after the hop-by-hop headers
/// were stripped, on the upstream request and on the 101 to the client.
fn set_websocket_upgrade(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for h in HOP_BY_HOP {
        headers.remove(*h);
    }
    for h in named {
        headers.remove(h);
    }
}

fn add_forwarded(
    headers: &mut HeaderMap,
    client: SocketAddr,
    proto: &str,
    host: Option<&HeaderValue>,
) {
    let ip = client.ip().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    if !headers.contains_key("x-forwarded-proto") {
        if let Ok(v) = HeaderValue::from_str(proto) {
            headers.insert("x-forwarded-proto", v);
        }
    }
    if let Some(h) = host {
        if !headers.contains_key("x-forwarded-host") {
            headers.insert("x-forwarded-host", h.clone());
        }
        let port = h
            .to_str()
            .ok()
            .and_then(|s| s.rsplit_once(':'))
            .map(|(_, p)| p.to_owned());
        let port = port.unwrap_or_else(|| {
            if proto == "https" {
                "443".into()
            } else {
                "80".into()
            }
        });
        if let Ok(v) = HeaderValue::from_str(&port) {
            headers.entry("x-forwarded-port").or_insert(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_including_named_ones() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-custom"),
        );
        h.insert("x-custom", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_headers_are_set_and_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        add_forwarded(
            &mut h,
            "127.0.0.1:4000".parse().unwrap(),
            "http",
            Some(&HeaderValue::from_static("hub:8000")),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "hub:8000");
        assert_eq!(h["x-forwarded-port"], "8000");
    }
}
