//! The whole HTTP application: the hub's pages and API under `<base>hub/`, and the proxy
//! for everything else.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::auth::fetch;
use crate::hosts::dns_label;
use crate::lifecycle::StartGate;
use crate::proxy::Proxied;
use crate::state::AppState;
use crate::templates::Message;
use crate::JUPYTERHUB_VERSION;

/// How a request reached the hub: `"https"` on the TLS listener, else `"http"`. The proxy
/// passes it on as `X-Forwarded-Proto`, which is how a server builds its own URLs.
#[derive(Debug, Clone, Copy)]
pub struct Scheme(pub &'static str);

/// The router of one hub.
pub fn router(state: AppState) -> Router {
    let urls = &state.urls;
    let hub = urls.hub_page("").trim_end_matches('/').to_owned();
    // A nested router's "/" matches only the bare prefix, so the trailing-slash forms
    // JupyterHub serves are routed here explicitly.
    let to_hub_slash = urls.hub();
    let routed = Router::new()
        .route(&format!("{}/", urls.api()), get(crate::api::version))
        .route(&to_hub_slash, get(crate::web::root))
        .route(
            &hub,
            get(move || async move { Redirect::permanent(&to_hub_slash) }),
        )
        .nest(
            &urls.api(),
            crate::api::router()
                .route_layer(middleware::from_fn(tag_handler))
                .layer(middleware::from_fn(fetch::guard_api))
                .layer(middleware::from_fn_with_state(state.clone(), handed_over)),
        )
        .nest(
            &hub,
            crate::web::router()
                .route_layer(middleware::from_fn(tag_handler))
                .layer(middleware::from_fn(fetch::guard_pages))
                .layer(middleware::from_fn_with_state(state.clone(), handed_over)),
        )
        .fallback(outside_hub);
    // Only with `subdomain_host`: otherwise every request would pay for a look at `Host`.
    let routed = if state.urls.subdomains().is_some() {
        routed.layer(middleware::from_fn_with_state(state.clone(), by_host))
    } else {
        routed
    };
    routed
        .layer(middleware::from_fn_with_state(state.clone(), log_and_stamp))
        .with_state(state)
}

/// How long a request that may change something waits for a hand-over's outcome.
const HELD_AT_MOST: std::time::Duration = std::time::Duration::from_secs(30);

/// While this hub hands over to its successor, a request to the hub that may change
/// something (any but GET, HEAD and OPTIONS) waits for the outcome: it is served here if
/// the hand-over fails; once the successor serves, it gets a 307 to itself, which the
/// client sends again, body and all, on a new connection (this hub no longer accepts
/// any), so it is the successor that starts, stops or records. Those let in before are
/// counted, and the hand-over waits for them. What the proxy carries is not held: this
/// hub goes on carrying its connections until they end.
async fn handed_over(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if req.method().is_safe() {
        return next.run(req).await;
    }
    let mut resp = match s.servers.pass_gate(HELD_AT_MOST).await {
        Ok(changing) => {
            let resp = next.run(req).await;
            drop(changing);
            return resp;
        }
        Err(StartGate::HandedOver) => {
            let here = req
                .extensions()
                .get::<OriginalUri>()
                .map_or_else(|| req.uri().to_string(), |u| u.0.to_string());
            Redirect::temporary(&here).into_response()
        }
        Err(_) => {
            let mut resp = (
                StatusCode::SERVICE_UNAVAILABLE,
                "The hub is handing over to a new process; try again in a moment.\n",
            )
                .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            resp
        }
    };
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The route pattern that answered (`/hub/api/users/{name}`), the `handler` label of
/// `jupyterhub_request_duration_seconds`: bounded, and free of user names.
#[derive(Debug, Clone)]
struct Handler(String);

async fn tag_handler(req: Request, next: Next) -> Response {
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut resp = next.run(req).await;
    if let Some(p) = pattern {
        resp.extensions_mut().insert(Handler(p));
    }
    resp
}

/// Counts a request the proxy carried (or answered for a target that failed).
fn count_proxied(s: &AppState, route: &crate::proxy::Route, resp: &Response) {
    let upstream_failed = resp.extensions().get::<Proxied>().is_none();
    s.metrics.proxied(route.server.is_some(), upstream_failed);
}

/// With `subdomain_host`, a request to a server's own origin (`<label>.<domain>`) is that
/// server's business only: it goes to the server whose label it is, or the browser goes
/// to the hub's origin for everything else. The hub never answers a server's origin
/// itself, so nothing of the hub's (cookies, pages, XSRF tokens) is ever there.
async fn by_host(
    State(s): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let Some(sub) = s.urls.subdomains() else {
        return next.run(req).await; // not layered without subdomains; kept total
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(label) = sub.label_of(host).map(str::to_ascii_lowercase) else {
        return next.run(req).await;
    };
    let path = req.uri().path().to_owned();
    if let Some(mut route) = s.routes.resolve(&path, s.urls.base()) {
        if route.wants_slash(&path) {
            return slash_redirect(&route, &req);
        }
        if let Some(server) = route
            .server
            .clone()
            .filter(|k| dns_label(k.user.as_str()) == label)
        {
            s.activity.seen(&server);
            route.own_origin = true;
            let scheme = req.extensions().get::<Scheme>().map_or("http", |s| s.0);
            let resp = s.proxy.forward(req, &route, client, scheme).await;
            count_proxied(&s, &route, &resp);
            return resp;
        }
    }
    // Not this server's (or it is not running): the hub's origin sorts it out, with the
    // same path, where a stopped server's URL leads to the page that starts it.
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    Redirect::to(&format!("{}{path}{query}", sub.hub_origin())).into_response()
}

/// `…/user/<name>/<server>` → `…/user/<name>/<server>/`, with the query.
fn slash_redirect(route: &crate::proxy::Route, req: &Request) -> Response {
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    Redirect::to(&format!("{}{query}", route.prefix)).into_response()
}

/// Everything outside `<base>hub/`: a running server's route goes through the proxy;
/// anything else is sent to the hub (a stopped server's URL ends at the 424 page).
async fn outside_hub(
    State(s): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_owned();
    if let Some(route) = s.routes.resolve(&path, s.urls.base()) {
        if route.wants_slash(&path) {
            return slash_redirect(&route, &req);
        }
        if let (Some(server), Some(sub)) = (&route.server, s.urls.subdomains()) {
            // Servers are never served on the hub's origin when they have their own.
            let query = req
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let origin = sub.user_origin(server.user.as_str());
            return Redirect::to(&format!("{origin}{path}{query}")).into_response();
        }
        if let Some(server) = &route.server {
            s.activity.seen(server);
        }
        let scheme = req.extensions().get::<Scheme>().map_or("http", |s| s.0);
        let resp = s.proxy.forward(req, &route, client, scheme).await;
        count_proxied(&s, &route, &resp);
        return resp;
    }
    let Some(rest) = path.strip_prefix(s.urls.base()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if rest.is_empty() {
        return Redirect::to(&s.urls.hub()).into_response();
    }
    if let Some(name) = rest.strip_prefix("user/").filter(|n| !n.contains('/')) {
        return Redirect::permanent(&format!("{}user/{name}/", s.urls.base())).into_response();
    }
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if rest.starts_with("user/") || rest.starts_with("services/") {
        return Redirect::to(&format!("{}{rest}{query}", s.urls.hub())).into_response();
    }
    Message::new("404 Not Found", "There is nothing here.").respond(StatusCode::NOT_FOUND)
}

/// What every response of the hub itself carries (not those of users' servers): no
/// framing, no content sniffing, no referrer to other origins, no caching (pages hold
/// XSRF tokens and the token page a token), and no window shared with another origin.
const HUB_HEADERS: &[(&str, &str)] = &[
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cache-control", "no-store"),
];

/// One log line per request of the hub's own and per failed proxied one (method, path
/// without query string — it may hold tokens —, status, duration), the
/// `X-JupyterHub-Version` header on every response, and the [`HUB_HEADERS`] on the
/// hub's own.
async fn log_and_stamp(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let proxied = resp.extensions().get::<Proxied>().is_some();
    if !proxied {
        let h = resp.headers_mut();
        for (name, value) in HUB_HEADERS {
            h.insert(*name, HeaderValue::from_static(value));
        }
    }
    resp.headers_mut().insert(
        "x-jupyterhub-version",
        HeaderValue::from_static(JUPYTERHUB_VERSION),
    );
    let took = started.elapsed();
    let (status, ms) = (resp.status().as_u16(), took.as_millis() as u64);
    if !proxied {
        let handler = resp
            .extensions()
            .get::<Handler>()
            .map_or("default", |h| h.0.as_str());
        s.metrics.request(method.as_str(), handler, status, took);
    }
    if proxied && status < 500 {
        // Traffic to users' servers: as configurable-http-proxy, no line per request
        // unless asked for (RUST_LOG=sudohub=debug); errors always.
        tracing::debug!(%method, %path, status, ms, "proxied");
    } else {
        tracing::info!(%method, %path, status, ms, "request");
    }
    resp
}
