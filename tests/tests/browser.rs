//! Attacks from a hostile page on the hub's own origin, in a real browser (Debian's
//! chromium driven by playwright-core, `tests/browser/`).
//!
//! Without `subdomain_host`, user mallory's server is served from the hub's origin. Her
//! page (`tests/browser/evil.html`), opened by alice, tries what a script on that origin
//! could do: read hub pages for their XSRF token (fetch, frame, a window of its own),
//! use the API with alice's cookie, and, through the proxy, overwrite the hub's login
//! cookie and plant a session id. (If a window were readable, the page goes on to post
//! the stolen token by fetch, by API and by submitting the hub's own form by script.) Every step must fail, and alice must end with no new token and still be
//! signed in as herself.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use sudohub::auth::cookies::LOGIN_COOKIE;
use sudohub::config::HubConfig;
use sudohub::state::AppState;
use sudohub::types::Username;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use sudohub_tests::chromium::{browser_dir, require_browser};

/// Mallory's "server": whatever she wants on `/user/mallory/…`, here the hostile page,
/// sent with cookies meant to overwrite alice's login and fix her session id.
async fn mallory_server() -> SocketAddr {
    let page = std::fs::read_to_string(browser_dir().join("evil.html")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let _ = conn.read(&mut [0u8; 8192]).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Cross-Origin-Opener-Policy: same-origin\r\n\
                     Set-Cookie: {LOGIN_COOKIE}=evil; Path=/hub/\r\n\
                     Set-Cookie: jupyterhub-session-id=0123456789abcdef0123456789abcdef; Path=/\r\n\
                     Set-Cookie: {LOGIN_COOKIE}=tossed; Domain=localhost; Path=/hub/\r\n\
                     Connection: close\r\n\r\n",
                    page.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(page.as_bytes()).await;
            });
        }
    });
    addr
}

/// A hub served in this process (no root needed: sessions are made in its database).
struct Hub {
    state: AppState,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn hub() -> Hub {
    hub_with(|_| String::new()).await
}

/// A hub whose config also gets the keys `extra` returns for its address.
async fn hub_with(extra: impl FnOnce(SocketAddr) -> String) -> Hub {
    let dir = std::env::temp_dir().join(sudohub_tests::unique_name("sh-browser"));
    std::fs::create_dir_all(&dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = format!(
        "{}\nbind = \"{addr}\"\ndb = \"{d}/db.sqlite\"\ncookie_secret_file = \"{d}/secret\"\n",
        extra(addr),
        d = dir.display()
    );
    let state = AppState::new(HubConfig::parse(&text, &dir.join("hub.toml")).unwrap()).unwrap();
    tokio::spawn(sudohub::serve::serve_on(
        state.clone(),
        listener,
        None,
        None,
        std::future::pending(),
    ));
    Hub { state, addr, dir }
}

/// A signed-in user: their row, their signed login cookie and their session id.
fn signed_in(h: &Hub, name: &str) -> (sudohub::db::UserRow, String, String) {
    let user = h
        .state
        .db
        .users()
        .ensure(&Username::parse(name).unwrap(), Some(false))
        .unwrap();
    let (secret, sid) = (
        sudohub::secrets::new_session_id(),
        sudohub::secrets::new_session_id(),
    );
    h.state.db.sessions().add(&secret, user.id, &sid).unwrap();
    let login = h.state.key.sign(LOGIN_COOKIE, &secret);
    (user, login, sid)
}

/// Runs a script of `tests/browser/` against the hub with those cookies; its JSON.
fn browse(h: &Hub, script: &str, login: &str, sid: &str, env: &[(&str, &str)]) -> Value {
    browse_at(&format!("http://{}", h.addr), script, login, sid, env)
}

/// The same, with the hub at `base` (`scheme://host:port`).
fn browse_at(base: &str, script: &str, login: &str, sid: &str, env: &[(&str, &str)]) -> Value {
    sudohub_tests::chromium::run(base, script, login, sid, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_page_on_the_hubs_origin_cannot_act_for_its_visitor() {
    require_browser();
    let h = hub().await;
    // Alice is signed in; mallory's server is running (her route points at her page).
    let (alice, login, sid) = signed_in(&h, "alice");
    // An admin, so that the admin page (which holds an API token) is hers to load.
    h.state.db.users().set_admin(&alice.name, true).unwrap();
    let mallory = Username::parse("mallory").unwrap();
    h.state.db.users().ensure(&mallory, Some(false)).unwrap();
    h.state.routes.set_server(
        &sudohub::types::ServerKey::default_of(&mallory),
        mallory_server().await,
    );
    let report = browse(
        &h,
        "visit.mjs",
        &login,
        &sid,
        &[
            ("SUDOHUB_PAGE", "/user/mallory/evil.html"),
            ("SUDOHUB_THEN", "/hub/home"),
        ],
    );
    let r = &report["results"];

    // Hub pages cannot be read by a script or a frame: no XSRF token leaks that way.
    assert_eq!(r["fetch_token_page"]["status"], 403, "{r}");
    assert!(r["fetch_token_page"]["xsrf"].is_null(), "{r}");
    assert_eq!(r["fetch_home"], 403, "{r}");
    assert_eq!(r["fetch_admin"]["status"], 403, "{r}");
    assert_eq!(r["fetch_admin"]["token"], false, "{r}");
    assert!(r["iframe"]["xsrf"].is_null(), "{r}");
    // The API refuses the login cookie from a script, XSRF token or not.
    assert_eq!(r["api_whoami"], 403, "{r}");
    assert_eq!(r["api_new_token"], 403, "{r}");
    // A window the page opens itself would share the origin; the hub's pages carry
    // `Cross-Origin-Opener-Policy: same-origin`, and the proxy drops that header from a
    // server's page (mallory's sends it, to share a group with the hub's windows), so the
    // browser puts the hub's window in a group of its own: the page cannot read it, nor
    // the admin page's token.
    let w = &r["window"];
    assert_eq!(w["readable"], false, "{w}");
    let w = &r["window_admin"];
    assert_eq!(w["readable"], false, "{w}");
    assert!(w["token"].is_null(), "{w}");
    // Nothing was made for alice.
    assert!(h.state.db.tokens().api_tokens(alice.id).unwrap().is_empty());
    // The proxy dropped mallory's cookies: alice is still herself, with her session.
    let jar = report["cookies"].as_array().unwrap();
    let value = |name: &str| {
        jar.iter()
            .find(|c| c["name"] == name)
            .map(|c| c["value"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(
        value(LOGIN_COOKIE).as_deref(),
        Some(login.as_str()),
        "{jar:?}"
    );
    assert_eq!(
        value("jupyterhub-session-id").as_deref(),
        Some(sid.as_str()),
        "{jar:?}"
    );
    assert_eq!(report["then"]["status"], 200, "{report}");
    assert!(
        report["then"]["text"]
            .as_str()
            .unwrap()
            .contains("Signed in as alice"),
        "{report}"
    );
    // And every response of the hub itself forbids framing.
    sudohub_tests::tls::install_provider();
    let home = reqwest::Client::new()
        .get(format!("http://{}/hub/login", h.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(home.headers()["x-frame-options"], "DENY");
    assert!(home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(home.headers()["x-content-type-options"], "nosniff");
}

/// With `subdomain_host`, mallory's server has an origin of its own
/// (`mallory.localhost:<port>`; chromium resolves every `*.localhost` to the loopback) and
/// the hub never serves it on the hub's. Her page, opened by alice from a link to the
/// hub's origin, ends on her origin, and every attempt on the hub (`localhost:<port>`)
/// from there fails: its responses are unreadable across origins, the cookie the browser
/// still sends to this same-site hub is refused by the fetch-metadata check, and her
/// `Domain=` cookie never reaches the hub. Alice ends with no new token, still herself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_server_on_its_own_origin_cannot_act_for_its_visitor() {
    require_browser();
    let h = hub_with(|addr| format!("subdomain_host = \"http://localhost:{}\"", addr.port())).await;
    let hub_origin = format!("http://localhost:{}", h.addr.port());
    let (alice, login, sid) = signed_in(&h, "alice");
    let mallory = Username::parse("mallory").unwrap();
    h.state.db.users().ensure(&mallory, Some(false)).unwrap();
    h.state.routes.set_server(
        &sudohub::types::ServerKey::default_of(&mallory),
        mallory_server().await,
    );
    let page = format!("/user/mallory/evil.html?hub={hub_origin}");
    let report = browse_at(
        &hub_origin,
        "visit.mjs",
        &login,
        &sid,
        &[("SUDOHUB_PAGE", &page), ("SUDOHUB_THEN", "/hub/home")],
    );
    let r = &report["results"];
    // A link to her server on the hub's origin lands on her own origin.
    let landed = report["pageUrl"].as_str().unwrap();
    assert!(
        landed.starts_with(&format!(
            "http://mallory.localhost:{}/user/mallory/",
            h.addr.port()
        )),
        "{report}"
    );
    // Nothing of the hub's can be read from there, and nothing is done for alice.
    for step in [
        "fetch_token_page",
        "fetch_home",
        "api_whoami",
        "api_new_token",
    ] {
        let v = &r[step];
        let failed = v.as_str().is_some_and(|e| e.starts_with("error:"))
            || v.as_u64() == Some(403)
            || v["status"].as_u64() == Some(403);
        assert!(failed, "{step}: {v}\n{r}");
        assert!(v["xsrf"].is_null(), "{step}: {r}");
    }
    assert_eq!(r["api_no_cors"], "opaque", "{r}");
    assert!(r["iframe"]["xsrf"].is_null(), "{r}");
    assert_eq!(r["window"]["readable"], false, "{r}");
    assert!(h.state.db.tokens().api_tokens(alice.id).unwrap().is_empty());
    // The request the browser sent with alice's cookie was refused by the hub.
    let refused = report["requests"].as_array().unwrap().iter().any(|q| {
        q["method"] == "POST"
            && q["url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{hub_origin}/hub/api/"))
            && q["status"] == 403
    });
    assert!(refused, "{report}");
    // Her cookies stayed on her origin; alice keeps her own on the hub's.
    let jar = report["cookies"].as_array().unwrap();
    let on_hub = |name: &str| {
        jar.iter()
            .filter(|c| c["domain"] == "localhost" && c["name"] == name)
            .map(|c| c["value"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(on_hub(LOGIN_COOKIE), [login.as_str()], "{jar:?}");
    assert_eq!(on_hub("jupyterhub-session-id"), [sid.as_str()], "{jar:?}");
    assert!(
        report["then"]["text"]
            .as_str()
            .unwrap()
            .contains("Signed in as alice"),
        "{report}"
    );
    // The hub's origin never proxies a server; a server's origin never shows the hub.
    sudohub_tests::tls::install_provider();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("mallory.localhost", h.addr)
        .resolve("localhost", h.addr)
        .build()
        .unwrap();
    let at_hub = client
        .get(format!("{hub_origin}/user/mallory/evil.html?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        at_hub.headers()["location"],
        format!(
            "http://mallory.localhost:{}/user/mallory/evil.html?x=1",
            h.addr.port()
        )
    );
    let mallory_origin = format!("http://mallory.localhost:{}", h.addr.port());
    for (path, to) in [
        ("/hub/token", "/hub/token"),
        ("/hub/api/user", "/hub/api/user"),
        ("/user/alice/lab", "/user/alice/lab"),
    ] {
        let resp = client
            .get(format!("{mallory_origin}{path}"))
            .header("cookie", format!("{LOGIN_COOKIE}={login}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(
            resp.headers()["location"],
            format!("{hub_origin}{to}"),
            "{path}"
        );
    }
}

/// The same defences let the real user through: in chromium, a click on the token page
/// makes a token, a click on the sign-out page signs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_still_uses_the_hubs_pages_by_clicking() {
    require_browser();
    let h = hub().await;
    let (alice, login, sid) = signed_in(&h, "alice");
    let report = browse(&h, "user.mjs", &login, &sid, &[]);
    let made = h.state.db.tokens().api_tokens(alice.id).unwrap();
    assert_eq!(made.len(), 1, "{report}");
    assert_eq!(made[0].note, "made by clicking");
    let token = report["afterToken"]["token"].as_str().unwrap();
    let found = h.state.db.tokens().lookup(token).unwrap().unwrap();
    assert_eq!(found.user.id, alice.id);
    let landed = report["afterLogout"]["url"].as_str().unwrap();
    assert!(landed.ends_with("/hub/login"), "{report}");
    let secret = h.state.key.verify(LOGIN_COOKIE, &login).unwrap();
    assert!(
        h.state.db.sessions().get(&secret).unwrap().is_none(),
        "signed out"
    );
}

/// An admin manages users and groups on `/hub/admin` in chromium, by clicking and typing;
/// every change is checked in the hub's database. The page acts through the REST API with
/// its own session-bound token and never sends the login cookie to the API; signing out
/// revokes that token. A non-admin gets 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_users_and_groups_on_the_admin_page() {
    require_browser();
    let h = hub().await;
    let (_, login, sid) = signed_in(&h, "alice");
    let users = h.state.db.users();
    let alice = Username::parse("alice").unwrap();
    users.set_admin(&alice, true).unwrap();
    for i in 0..60 {
        let name = Username::parse(&format!("user{i:03}")).unwrap();
        users.ensure(&name, Some(false)).unwrap();
    }
    let report = browse(&h, "admin.mjs", &login, &sid, &[]);
    assert!(report["failure"].is_null(), "{report}");
    assert_eq!(report["pageStatus"], 200);
    let steps = report["steps"].as_array().unwrap();
    let at = |name: &str| {
        steps
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {report}"))
    };
    let names = |name: &str| -> Vec<String> {
        at(name)["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    // Server-side pages of 50, sorted by name (the page's default).
    let first = names("first page");
    assert_eq!(first.len(), 50);
    assert_eq!(first[0], "alice");
    assert_eq!(at("first page")["range"], "1–50 of 61");
    assert_eq!(names("next page").len(), 11);
    assert_eq!(at("next page")["range"], "51–61 of 61");
    assert_eq!(names("previous page"), first);
    let found: Vec<String> = (50..60).map(|i| format!("user{i:03}")).collect();
    assert_eq!(names("search"), found);
    assert_eq!(names("sorted by name"), found);
    assert_eq!(
        names("search cleared, created order")[..2],
        ["alice", "user000"]
    );
    assert_eq!(names("stopped only").len(), 50, "nobody runs a server");
    assert!(names("running only").is_empty());
    assert!(at("stop all with nothing running")["status"]
        .as_str()
        .unwrap()
        .contains("No server to stop"));
    // Added, with the admin flag.
    assert!(names("add users").contains(&"newa".to_owned()));
    for n in ["newa", "newb"] {
        let row = users.get(&Username::parse(n).unwrap()).unwrap().unwrap();
        assert!(row.admin, "{n}");
    }
    // A bad name: the API's own message, shown as an error; nothing made.
    let bad = at("a bad name is refused");
    assert_eq!(bad["error"], true, "{bad}");
    assert!(
        bad["status"].as_str().unwrap().contains("\"Bad!\""),
        "{bad}"
    );
    // Renamed and made admin; deleted.
    let renamed = users
        .get(&Username::parse("user000x").unwrap())
        .unwrap()
        .unwrap();
    assert!(renamed.admin);
    assert!(users
        .get(&Username::parse("user000").unwrap())
        .unwrap()
        .is_none());
    assert!(users
        .get(&Username::parse("user001").unwrap())
        .unwrap()
        .is_none());
    assert!(report["dialogs"][0]
        .as_str()
        .unwrap()
        .contains("Delete user user001?"));
    // Groups: made, members added and removed, properties set, one deleted.
    let physics = h
        .state
        .db
        .groups()
        .get(&sudohub::types::GroupName::parse("physics").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(physics.users, [Username::parse("user003").unwrap()]);
    assert_eq!(physics.properties["course"], "PHY101");
    assert!(h
        .state
        .db
        .groups()
        .get(&sudohub::types::GroupName::parse("scratch").unwrap())
        .unwrap()
        .is_none());
    // Every API call carried the page's token and no cookie.
    let calls = report["requests"].as_array().unwrap();
    assert!(calls.len() > 20, "{report}");
    for c in calls {
        assert_eq!(c["token"], true, "{c}");
        assert_eq!(c["cookie"], false, "{c}");
    }
    // The page's token is alice's, hidden from her token list, and ends with her session.
    let token = report["token"].as_str().unwrap();
    let row = h.state.db.tokens().lookup(token).unwrap().unwrap();
    assert_eq!(row.user.name, alice);
    assert!(h
        .state
        .db
        .tokens()
        .api_tokens(row.user.id)
        .unwrap()
        .is_empty());
    let secret = h.state.key.verify(LOGIN_COOKIE, &login).unwrap();
    h.state.db.sessions().end(&secret).unwrap();
    assert!(h.state.db.tokens().lookup(token).unwrap().is_none());
    // Not for others.
    let (_, bob_login, _) = signed_in(&h, "bob");
    sudohub_tests::tls::install_provider();
    let resp = reqwest::Client::new()
        .get(format!("http://{}/hub/admin", h.addr))
        .header("cookie", format!("{LOGIN_COOKIE}={bob_login}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
