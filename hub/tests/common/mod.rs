//! What the API tests share: a hub on a real listener with a temporary database, a
//! real HTTP client, and sessions created in the database directly.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use reqwest::redirect::Policy;
use serde_json::Value;
use sudohub::app::router;
use sudohub::auth::cookies::LOGIN_COOKIE;
use sudohub::config::HubConfig;
use sudohub::state::AppState;
use sudohub::types::{ServerKey, Username};

pub fn state(cfg: HubConfig) -> Result<AppState, sudohub::state::StateError> {
    AppState::new(cfg)
}

pub fn u(name: &str) -> Username {
    Username::parse(name).unwrap()
}

/// `name`'s default server.
pub fn k(name: &str) -> ServerKey {
    ServerKey::default_of(&u(name))
}

pub struct Hub {
    pub addr: SocketAddr,
    pub state: AppState,
    pub dir: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn hub(base_url: &str, extra: &str) -> Hub {
    let dir =
        std::env::temp_dir().join(format!("sudohub-api-{}-{}", std::process::id(), rand_id()));
    hub_in(dir, base_url, extra).await
}

/// A hub on the database and cookie secret in `dir`: a restart of the hub there.
pub async fn hub_in(dir: PathBuf, base_url: &str, extra: &str) -> Hub {
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = format!(
        "bind = \"{addr}\"\nbase_url = \"{base_url}\"\ndb = \"{d}/db.sqlite\"\ncookie_secret_file = \"{d}/secret\"\n{extra}",
        d = dir.display()
    );
    let cfg = HubConfig::parse(&text, &dir.join("hub.toml")).unwrap();
    let st = state(cfg).unwrap();
    let app = router(st.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hub {
        addr,
        state: st,
        dir,
    }
}

pub fn rand_id() -> String {
    sudohub::secrets::new_session_id()[..8].to_owned()
}

pub fn client() -> reqwest::Client {
    // reqwest's TLS is built without a provider (ring is the one the hub uses).
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// A logged-in user: the cookie header a browser would send to the hub.
pub fn login(h: &Hub, name: &str) -> (String, String) {
    let user = h.state.db.users().ensure(&u(name), Some(false)).unwrap();
    let secret = sudohub::secrets::new_session_id();
    let sid = sudohub::secrets::new_session_id();
    h.state.db.sessions().add(&secret, user.id, &sid).unwrap();
    (
        format!(
            "jupyterhub-hub-login={}",
            h.state.key.sign(LOGIN_COOKIE, &secret)
        ),
        sid,
    )
}

pub fn url(h: &Hub, path: &str) -> String {
    format!("http://{}{path}", h.addr)
}

pub async fn json_of(r: reqwest::RequestBuilder) -> Value {
    r.send().await.unwrap().json().await.unwrap()
}

/// The `name` of each model in a list answer (or in its `items`).
#[allow(dead_code)]
pub fn names_of(v: &serde_json::Value) -> Vec<String> {
    v.get("items")
        .unwrap_or(v)
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

/// `method path` with `body`, as the bearer of `token`: the status and the JSON answer
/// (`null` when it is none).
pub async fn call(
    h: &Hub,
    method: &str,
    path: &str,
    body: &str,
    token: &str,
) -> (reqwest::StatusCode, Value) {
    let r = client()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            url(h, path),
        )
        .header("Authorization", format!("token {token}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A new API token of `name`'s, holding their scopes.
pub fn api_token(h: &Hub, name: &str) -> String {
    let user = h.state.db.users().get(&u(name)).unwrap().unwrap();
    let secret = sudohub::secrets::new_api_token();
    h.state
        .db
        .tokens()
        .add(&sudohub::db::NewToken::api(user.id, &secret, "test", None))
        .unwrap();
    secret
}
