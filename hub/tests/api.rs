//! The Hub API, the OAuth provider, the pages' redirects and the proxy, served on a real
//! listener and exercised with a real HTTP client. No root needed: sessions are created
//! in the database directly, and the "servers" are small local HTTP servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use base64::Engine;
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sudohub::config::HubConfig;
use sudohub::db::NewToken;
use sudohub::types::{RecordedState, TokenKind};

mod common;
use common::*;

#[tokio::test]
async fn version_and_whoami_status_codes() {
    let h = hub("/", "").await;
    let c = client();
    for path in ["/hub/api", "/hub/api/"] {
        let r = c.get(url(&h, path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-jupyterhub-version"], "6.1.1");
        assert_eq!(r.json::<Value>().await.unwrap()["version"], "6.1.1");
    }
    // 403, never 401 (compat §0.1), for a missing or bad token; ?token= is not accepted.
    for req in [
        c.get(url(&h, "/hub/api/user")),
        c.get(url(&h, "/hub/api/user"))
            .header("Authorization", "token bad"),
        c.get(url(&h, "/hub/api/user?token=bad")),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], 403);
    }
    // /hub redirects to /hub/ (compat §3.6).
    let r = c.get(url(&h, "/hub")).send().await.unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/hub/");
    let r = c.get(url(&h, "/hub/")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/hub/login?next=%2Fhub%2F");
    // Unknown paths and methods answer JupyterHub's JSON error with a message.
    let r = c.get(url(&h, "/hub/api/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"status": 404, "message": "No such API endpoint: /hub/api/nope"})
    );
    let r = c.put(url(&h, "/hub/api/users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"status": 405, "message": "Method PUT is not allowed on /hub/api/users"})
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn oauth_code_flow_with_pkce() {
    let h = hub("/jl/", "").await;
    let c = client();
    let (cookie, sid) = login(&h, "alice");
    let alice = h.state.db.users().get(&u("alice")).unwrap().unwrap();
    let api_token = "0123456789abcdef0123456789abcdef";
    h.state
        .db
        .servers()
        .register_client(
            &alice,
            &sudohub::types::ServerName::DEFAULT,
            api_token,
            "/jl/user/alice/oauth_callback",
            "Server at /jl/user/alice/",
        )
        .unwrap();
    let verifier = "a".repeat(43);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let authorize = |redirect: &str| {
        url(
            &h,
            &format!(
                "/jl/hub/api/oauth2/authorize?client_id=jupyterhub-user-alice&redirect_uri={}&response_type=code&state=xyz&code_challenge={challenge}&code_challenge_method=S256",
                urlencode(redirect)
            ),
        )
    };
    // Not logged in: to the login page, coming back here.
    let r = c
        .get(authorize("/jl/user/alice/oauth_callback"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/jl/hub/login?next=%2Fjl%2Fhub%2Fapi%2Foauth2%2Fauthorize"));
    // A redirect_uri other than the registered one is refused.
    let r = c
        .get(authorize("/jl/user/alice/evil"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Another user may not authorize alice's server.
    let (bob_cookie, _) = login(&h, "bob");
    let r = c
        .get(authorize("/jl/user/alice/oauth_callback"))
        .header("Cookie", &bob_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let code_for = |cookie: String| {
        let req = c
            .get(authorize("/jl/user/alice/oauth_callback"))
            .header("Cookie", cookie);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            let loc = r.headers()["location"].to_str().unwrap().to_owned();
            assert!(
                loc.starts_with("/jl/user/alice/oauth_callback?code="),
                "{loc}"
            );
            assert!(loc.ends_with("&state=xyz"));
            let code = loc
                .split("code=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_owned();
            assert_eq!(code.len(), 30);
            code
        }
    };
    let get_code = || code_for(cookie.clone());
    let exchange =
        |code: String, verifier: String, secret: &'static str, redirect: &'static str| {
            let c = c.clone();
            let u = url(&h, "/jl/hub/api/oauth2/token");
            async move {
                c.post(u)
                    .header("Authorization", format!("token {api_token}"))
                    .form(&[
                        ("client_id", "jupyterhub-user-alice"),
                        ("client_secret", secret),
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", redirect),
                        ("code_verifier", &verifier),
                    ])
                    .send()
                    .await
                    .unwrap()
            }
        };
    // Wrong verifier, wrong secret, wrong redirect_uri: refused (and the code is spent).
    let r = exchange(
        get_code().await,
        "b".repeat(43),
        api_token,
        "/jl/user/alice/oauth_callback",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let r = exchange(
        get_code().await,
        verifier.clone(),
        "wrong-secret",
        "/jl/user/alice/oauth_callback",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = exchange(
        get_code().await,
        verifier.clone(),
        api_token,
        "/jl/user/alice/other",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The right exchange, once.
    let code = get_code().await;
    let r = exchange(
        code.clone(),
        verifier.clone(),
        api_token,
        "/jl/user/alice/oauth_callback",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tok: Value = r.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    let access = tok["access_token"].as_str().unwrap().to_owned();
    let r = exchange(code, verifier, api_token, "/jl/user/alice/oauth_callback").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a code is single-use");

    // whoami with the OAuth token: the fields and scopes the server checks (compat §1.4d).
    let who_is = |bearer: String| {
        let req = c
            .get(url(&h, "/jl/hub/api/user"))
            .header("Authorization", bearer);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let who = who_is(format!("Bearer {access}")).await;
    assert_eq!(who["name"], "alice");
    assert_eq!(who["kind"], "user");
    assert_eq!(who["session_id"], sid.as_str());
    assert!(who["token_id"].as_str().unwrap().starts_with('a'));
    assert!(who["scopes"]
        .as_array()
        .unwrap()
        .contains(&Value::from("access:servers!server=alice/")));
    for key in ["admin", "groups", "user_info"] {
        assert!(who.get(key).is_some(), "{key}");
    }
    // Logout revokes the OAuth tokens of that session (compat §1.7). A GET only asks
    // (it signs nobody out); the form posts with the session's XSRF token.
    let r = c
        .get(url(&h, "/jl/hub/logout"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Sign out"));
    let whoami = || {
        c.get(url(&h, "/jl/hub/api/user"))
            .header("Authorization", format!("token {access}"))
            .send()
    };
    assert_eq!(
        whoami().await.unwrap().status(),
        StatusCode::OK,
        "still signed in after the GET"
    );
    let r = c
        .post(url(&h, "/jl/hub/logout"))
        .header("Cookie", &cookie)
        .form(&[("_xsrf", h.state.key.xsrf(&sid))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(whoami().await.unwrap().status(), StatusCode::FORBIDDEN);

    // An admin may open alice's server (JupyterHub's `access:servers`): the token that
    // server gets names the admin, opens alice's server only, and cannot act as an admin.
    h.state.db.users().set_admin(&u("bob"), true).unwrap();
    let code = code_for(bob_cookie.clone()).await;
    let r = exchange(
        code,
        "a".repeat(43),
        api_token,
        "/jl/user/alice/oauth_callback",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let admin_access = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {admin_access}");
    let who = who_is(bearer.clone()).await;
    assert_eq!(who["name"], "bob");
    let scopes = who["scopes"].as_array().unwrap();
    assert!(
        scopes.contains(&Value::from("access:servers!server=alice/")),
        "{who}"
    );
    assert!(
        !scopes.contains(&Value::from("access:servers!server=bob/")),
        "{who}"
    );
    assert!(
        !scopes
            .iter()
            .any(|s| s == "admin:users" || s == "access:servers"),
        "{who}"
    );
    // Once bob is no admin, the token no longer opens alice's server.
    h.state.db.users().set_admin(&u("bob"), false).unwrap();
    let who = who_is(bearer.clone()).await;
    assert_eq!(who["name"], "bob");
    assert!(
        !who["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("access:servers")),
        "{who}"
    );
    h.state.db.users().set_admin(&u("bob"), true).unwrap();
    let r = c
        .post(url(&h, "/jl/hub/api/users/alice/tokens"))
        .header("Authorization", &bearer)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn activity_reports_and_user_listing() {
    let h = hub(
        "/",
        "[[services]]\nname = \"probe\"\napi_token = \"service-token-123\"\nadmin = true\n",
    )
    .await;
    let c = client();
    let alice = h.state.db.users().ensure(&u("alice"), Some(false)).unwrap();
    h.state.db.users().ensure(&u("bob"), Some(false)).unwrap();
    h.state.db.servers().starting(&k("alice"), 50000).unwrap();
    h.state
        .db
        .servers()
        .register_client(
            &alice,
            &sudohub::types::ServerName::DEFAULT,
            "alicetoken-0123456789",
            "/user/alice/oauth_callback",
            "d",
        )
        .unwrap();
    h.state.db.servers().running(&k("alice"), 1).unwrap();
    let post = |body: &str, token: &str| {
        c.post(url(&h, "/hub/api/users/alice/activity"))
            .header("Authorization", format!("token {token}"))
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
    };
    let ok = r#"{"servers": {"": {"last_activity": "2026-11-22T10:19:35.734864Z"}}, "last_activity": "2026-11-22T10:19:35.734864Z"}"#;
    let r = post(ok, "alicetoken-0123456789").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "");
    assert_eq!(
        h.state
            .db
            .users()
            .get(&u("alice"))
            .unwrap()
            .unwrap()
            .last_activity
            .as_deref(),
        Some("2026-11-22T10:19:35.734864Z")
    );
    for bad in [
        "[]",
        "{}",
        "not json",
        r#"{"last_activity": "2999-01-01T00:00:00Z"}"#,
        r#"{"servers": {"gpu": {"last_activity": "2026-11-22T10:19:35Z"}}}"#,
    ] {
        assert_eq!(
            post(bad, "alicetoken-0123456789").await.unwrap().status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        post(ok, "nope").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    let list = |accept: Option<&str>, q: &str| {
        let mut r = c
            .get(url(&h, &format!("/hub/api/users{q}")))
            .header("Authorization", "token service-token-123");
        if let Some(a) = accept {
            r = r.header("Accept", a);
        }
        r.send()
    };
    let plain: Value = list(None, "").await.unwrap().json().await.unwrap();
    assert_eq!(plain.as_array().unwrap().len(), 2);
    let paged: Value = list(
        Some("application/json, application/jupyterhub-pagination+json"),
        "?limit=1",
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(paged["items"].as_array().unwrap().len(), 1);
    assert_eq!(paged["_pagination"]["total"], 2);
    assert!(paged["_pagination"]["next"]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://"));
    assert_eq!(
        list(None, "?state=bogus").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        list(None, "?limit=x").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // A user token sees only its owner.
    let r = c
        .get(url(&h, "/hub/api/users/bob"))
        .header("Authorization", "token alicetoken-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn redirects_not_running_pages_and_open_redirects() {
    let h = hub("/", "").await;
    let c = client();
    let (cookie, _) = login(&h, "alice");
    let loc = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();
    // A stopped server's URL falls to the hub, then 424 (HTML, or JSON for API paths).
    let r = c.get(url(&h, "/user/alice/lab?x=1")).send().await.unwrap();
    assert_eq!(loc(&r), "/hub/user/alice/lab?x=1");
    let r = c
        .get(url(&h, "/hub/user/alice/lab"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FAILED_DEPENDENCY);
    assert!(r.text().await.unwrap().contains("not running"));
    let r = c
        .get(url(&h, "/hub/user/alice/api/contents"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FAILED_DEPENDENCY);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], 424);
    // Someone else's server page.
    let r = c
        .get(url(&h, "/hub/user/bob/lab"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Without login: to the login page.
    let r = c.get(url(&h, "/hub/home")).send().await.unwrap();
    assert_eq!(loc(&r), "/hub/login?next=%2Fhub%2Fhome");
    // Logged in, /hub/login sends to `next` only when it stays on this hub.
    for (next, want) in [
        ("%2Fhub%2Fhome", "/hub/home"),
        ("%2F%2Fevil.com%2F", "/hub/spawn"),
        ("https%3A%2F%2Fevil.com%2F", "/hub/spawn"),
        ("%2F%5Cevil.com", "/hub/spawn"),
    ] {
        let r = c
            .get(url(&h, &format!("/hub/login?next={next}")))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(loc(&r), want, "next={next}");
    }
    // The login form needs its XSRF token.
    let r = c
        .post(url(&h, "/hub/login"))
        .form(&[("username", "alice"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The stop form too.
    let r = c
        .post(url(&h, "/hub/stop"))
        .header("Cookie", &cookie)
        .form(&[("_xsrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A forged login cookie is not a session.
    let r = c
        .get(url(&h, "/hub/home"))
        .header("Cookie", "jupyterhub-hub-login=abc.def")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn proxy_streams_and_reports_dead_upstreams() {
    use axum::routing::{get, post};
    let h = hub("/", "").await;
    h.state.db.users().ensure(&u("alice"), Some(false)).unwrap();
    // A real upstream: echoes request headers, counts uploaded bytes, streams a body.
    let upstream = axum::Router::new()
        .route(
            "/user/alice/headers",
            get(|headers: axum::http::HeaderMap| async move {
                let mut v: Vec<String> = headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("")))
                    .collect();
                v.sort();
                v.join("\n")
            }),
        )
        .route(
            "/user/alice/upload",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/user/alice/stream",
            get(|| async {
                let chunks = futures_util::stream::iter((0..100).map(|i| {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(format!("chunk {i}\n")))
                }));
                axum::body::Body::from_stream(chunks)
            }),
        );
    // The upstream accepts any body size; the proxy must stream it, not buffer it.
    let upstream = upstream.layer(axum::extract::DefaultBodyLimit::disable());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, upstream).await.unwrap() });
    h.state.routes.set_server(&k("alice"), up);
    let c = client();
    let r = c
        .get(url(&h, "/user/alice/headers"))
        .header("Connection", "keep-alive, x-drop")
        .header("x-drop", "1")
        .header("x-forwarded-for", "10.0.0.9")
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("x-forwarded-for: 10.0.0.9, 127.0.0.1"),
        "{text}"
    );
    assert!(text.contains("x-forwarded-proto: http"));
    assert!(text.contains(&format!("x-forwarded-host: {}", h.addr)));
    assert!(
        text.contains(&format!("host: {}", h.addr)),
        "Host is preserved: {text}"
    );
    assert!(
        !text.contains("x-drop"),
        "headers named in Connection are dropped"
    );
    let big = vec![7u8; 20 << 20];
    let r = c
        .post(url(&h, "/user/alice/upload"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), (20 << 20).to_string());
    let body = c
        .get(url(&h, "/user/alice/stream"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body.lines().count(), 100);
    // What the proxy carried reaches alice's last_activity at the next flush.
    let before = h
        .state
        .db
        .users()
        .get(&u("alice"))
        .unwrap()
        .and_then(|u| u.last_activity);
    assert_eq!(before, None, "nothing is written per request");
    h.state.activity.flush(&h.state.db);
    let after = h
        .state
        .db
        .users()
        .get(&u("alice"))
        .unwrap()
        .unwrap()
        .last_activity
        .unwrap();
    let at = time::OffsetDateTime::parse(&after, &time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(
        (time::OffsetDateTime::now_utc() - at).whole_seconds().abs() < 60,
        "{after}"
    );
    let r = c
        .get(url(&h, "/user/alice/x"))
        .header("x-big", "a".repeat(70_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // The upstream is gone: 503, as HTML or as JSON for API paths.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    h.state.routes.set_server(&k("alice"), dead);
    let r = c.get(url(&h, "/user/alice/lab")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("appears to be down"));
    let r = c
        .get(url(&h, "/user/alice/api/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], 503);
}

/// A spawn that fails (here: "sudo" exits without running the helper) is reported as
/// such: the progress stream ends with a `failed` event carrying the reason, the server is
/// recorded stopped, and the pending page shows the error.
#[tokio::test]
async fn failed_spawn_is_reported_on_progress_and_page() {
    let h = hub("/", "[spawner]\nsudo = [\"/bin/sh\", \"-c\", \"echo 'sudo: a password is required' >&2; exit 1\", \"sh\"]\n").await;
    let c = client();
    let (cookie, sid) = login(&h, "alice");
    let user = h.state.db.users().get(&u("alice")).unwrap().unwrap();
    h.state
        .servers
        .start(&user, &sudohub::types::ServerName::DEFAULT)
        .unwrap();
    let xsrf = h.state.key.xsrf(&sid);
    let r = c
        .get(url(
            &h,
            &format!("/hub/api/users/alice/server/progress?_xsrf={xsrf}"),
        ))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(std::time::Duration::from_secs(20), r.text())
        .await
        .unwrap()
        .unwrap();
    let events: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["message"], "Server requested");
    let last = events.last().unwrap();
    assert_eq!(last["failed"], true, "{body}");
    assert!(
        last["message"].as_str().unwrap().contains("sudoers"),
        "{last}"
    );
    assert!(
        h.state.db.servers().get(&k("alice")).unwrap().is_none(),
        "a failed spawn leaves no server row"
    );
    // Without the XSRF token, a cookie alone does not authenticate the API.
    let r = c
        .get(url(&h, "/hub/api/users/alice/server/progress"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = c
        .get(url(&h, "/hub/spawn-pending/alice"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("a password is required"));
}

/// The proxy's limits when a server misbehaves: one that accepts and never answers gets
/// the user a 504 after `[proxy] response_timeout_secs` (JSON on API paths), one that dies
/// halfway through a body ends that response early, and the hub keeps serving.
#[tokio::test]
async fn proxy_times_out_silent_upstreams_and_survives_dying_ones() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = hub("/", "[proxy]\nresponse_timeout_secs = 1\n").await;
    let c = client();

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut conn, _)) = silent.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            held.push(conn);
        }
    });
    h.state.routes.set_server(&k("alice"), silent_addr);
    let started = std::time::Instant::now();
    let r = c.get(url(&h, "/user/alice/lab")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900)
            && waited < std::time::Duration::from_secs(10),
        "{waited:?}"
    );
    let r = c
        .get(url(&h, "/user/alice/api/contents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], 504);

    // Headers promise 100000 bytes, 11 arrive, then the server is gone.
    let dying = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dying_addr = dying.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = dying.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nhalf a body")
                .await;
            drop(conn);
        }
    });
    h.state.routes.set_server(&k("alice"), dying_addr);
    let r = c
        .get(url(&h, "/user/alice/files/big"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.bytes().await.is_err(),
        "a body cut short upstream must not look complete downstream"
    );
    let r = c.get(url(&h, "/hub/api/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the hub still serves");
}

/// A throw-away self-signed (end-entity) certificate for 127.0.0.1, made with the openssl command.
fn self_signed(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl, installed by scripts/deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// `ssl_cert`/`ssl_key`: the public listener speaks HTTPS only (HTTP/1.1 by ALPN), a
/// client that never finishes its handshake holds nobody up, cookies are `Secure`, the
/// proxy says `X-Forwarded-Proto: https`, and servers reach the Hub API over plain HTTP on
/// the loopback `hub_bind`. Unusable certificate files are refused with the file named.
#[tokio::test]
async fn tls_serves_https_and_keeps_the_server_api_on_loopback() {
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;
    let dir =
        std::env::temp_dir().join(format!("sudohub-tls-{}-{}", std::process::id(), rand_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir);
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, inner) = (public.local_addr().unwrap(), internal.local_addr().unwrap());
    let text = format!(
        "bind = \"{addr}\"\nhub_bind = \"{inner}\"\nssl_cert = \"{c}\"\nssl_key = \"{k}\"\ndb = \"{d}/db.sqlite\"\ncookie_secret_file = \"{d}/secret\"\n",
        c = cert.display(),
        k = key.display(),
        d = dir.display()
    );
    let cfg = HubConfig::parse(&text, &dir.join("hub.toml")).unwrap();
    assert_eq!(cfg.api_url(), format!("http://{inner}/hub/api"));
    let tls = sudohub::tls::server_config(&cert, &key).unwrap();
    let st = state(cfg).unwrap();
    tokio::spawn(sudohub::serve::serve_on(
        st.clone(),
        public,
        Some(tls),
        Some(internal),
        std::future::pending(),
    ));

    // A client that connects and says nothing must not block the accept loop.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"\x16").await.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls_client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let _ = client();
    let c = reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .tls_backend_preconfigured(tls_client)
        .build()
        .unwrap();
    let r = c
        .get(format!("https://{addr}/hub/api/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.json::<Value>().await.unwrap()["version"], "6.1.1");
    let r = c
        .get(format!("https://{addr}/hub/login"))
        .send()
        .await
        .unwrap();
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = client().get(format!("http://{addr}/hub/api/")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != StatusCode::OK);

    // The servers' side: plain HTTP on the loopback listener.
    let r = client()
        .get(format!("http://{inner}/hub/api/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The proxy tells servers the user came over https.
    let upstream = axum::Router::new().route(
        "/user/alice/headers",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, upstream).await.unwrap() });
    st.routes.set_server(&k("alice"), up);
    let r = c
        .get(format!("https://{addr}/user/alice/headers"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "https");
    drop(idle);

    // `sudohub check` loads the pair, and fails a key others can read.
    let tls_lines = |cfg: &HubConfig| -> Vec<(bool, String)> {
        sudohub::check::run(cfg, &sudohub::check::CheckPaths::below(&dir))
            .into_iter()
            .filter(|f| f.text.contains("TLS"))
            .map(|f| (f.ok, f.text))
            .collect()
    };
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = HubConfig::parse(&text, &dir.join("hub.toml")).unwrap();
    let lines = tls_lines(&cfg);
    assert!(lines.len() == 2 && lines.iter().all(|l| l.0), "{lines:?}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let lines = tls_lines(&cfg);
    assert!(
        lines
            .iter()
            .any(|(ok, t)| !ok && t.contains("has mode 0644")),
        "{lines:?}"
    );

    // Unusable files: each error names the file or the problem.
    let e = sudohub::tls::server_config(&dir.join("missing.pem"), &key)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.pem"), "{e}");
    let e = sudohub::tls::server_config(&key, &key)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
    let e = sudohub::tls::server_config(&cert, &cert)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no PEM private key"), "{e}");
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (_, other_key) = self_signed(&other);
    let e = sudohub::tls::server_config(&cert, &other_key)
        .unwrap_err()
        .to_string();
    assert!(e.contains("rejected"), "a key of another certificate: {e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Just after a hub restart, a server the database records as running has no route until
/// its helper dials back. Its URLs then answer 503 with `Retry-After` (a self-reloading
/// page, or JSON for API paths) instead of the "not running, start it" flow; and at
/// start-up a recorded server whose process is gone is marked stopped at once.
#[tokio::test]
async fn servers_awaiting_reattach_answer_503_and_dead_ones_are_stopped() {
    let h = hub("/", "").await;
    let (cookie, _) = login(&h, "alice");
    let _ = login(&h, "bob");
    // alice: recorded running with a live pid (this test process).
    h.state.db.servers().starting(&k("alice"), 50001).unwrap();
    h.state
        .db
        .servers()
        .running(&k("alice"), std::process::id())
        .unwrap();
    // bob: recorded running with a pid that exited.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    h.state.db.servers().starting(&k("bob"), 50002).unwrap();
    h.state.db.servers().running(&k("bob"), dead).unwrap();
    h.state.servers.recover();
    assert!(
        h.state.db.servers().get(&k("bob")).unwrap().is_none(),
        "a server whose process is gone is forgotten at start-up"
    );
    assert_eq!(
        h.state
            .db
            .servers()
            .get(&k("alice"))
            .unwrap()
            .unwrap()
            .state,
        RecordedState::Running
    );

    let c = client();
    let r = c
        .get(url(&h, "/hub/user/alice/lab"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "2");
    let body = r.text().await.unwrap();
    assert!(body.contains("reconnecting"), "{body}");
    assert!(body.contains("url=/user/alice/lab"), "{body}");
    let r = c
        .get(url(&h, "/hub/user/alice/api/kernels"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], 503);
}

/// Sends a request and reads its JSON body.
/// `/hub/api/users/<name>/tokens`, as admins' scripts use it: issue (201, the secret once),
/// list, read and revoke (204, then the token no longer authenticates). Requests the hub
/// cannot honour (narrower scopes, unknown fields, bad expiry, bad JSON) get 400 and issue
/// nothing; another user gets 404 or 403. The tokens a single-user server holds (OAuth and
/// server tokens) cannot mint tokens or act on servers, even an admin's.
#[tokio::test]
async fn tokens_api_issues_lists_and_revokes() {
    let h = hub("/", "").await;
    let boss = h.state.db.users().ensure(&u("boss"), Some(true)).unwrap();
    let alice = h.state.db.users().ensure(&u("alice"), Some(false)).unwrap();
    let bob = h.state.db.users().ensure(&u("bob"), Some(false)).unwrap();
    let token_of = |user: i64, kind: TokenKind| {
        let t = sudohub::secrets::new_api_token();
        h.state
            .db
            .tokens()
            .add(&NewToken {
                kind,
                ..NewToken::api(user, &t, "test", None)
            })
            .unwrap();
        t
    };
    let (boss_api, bob_api) = (
        token_of(boss.id, TokenKind::Api),
        token_of(bob.id, TokenKind::Api),
    );
    let c = client();
    let call = |method: reqwest::Method, path: &str, token: &str| {
        c.request(method, url(&h, path))
            .header("Authorization", format!("token {token}"))
    };
    use reqwest::Method;

    let r = call(Method::POST, "/hub/api/users/alice/tokens", &boss_api)
        .body(r#"{"note": "nightly backup", "expires_in": 3600}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.unwrap();
    let secret = made["token"].as_str().unwrap().to_owned();
    let id = made["id"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    assert!(id.starts_with('a'));
    assert_eq!(made["kind"], "api_token");
    assert_eq!(made["user"], "alice");
    assert_eq!(made["note"], "nightly backup");
    assert!(made["expires_at"].as_str().unwrap().ends_with('Z'));
    let me: Value = json_of(call(Method::GET, "/hub/api/user", &secret)).await;
    assert_eq!(me["name"], "alice");

    let listed: Value = json_of(call(Method::GET, "/hub/api/users/alice/tokens", &secret)).await;
    let items = listed["api_tokens"].as_array().unwrap();
    assert!(items.iter().any(|t| t["id"] == id.as_str()), "{listed}");
    assert!(
        items.iter().all(|t| t.get("token").is_none()),
        "no secrets in listings"
    );
    let one = call(
        Method::GET,
        &format!("/hub/api/users/alice/tokens/{id}"),
        &secret,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(one.status(), StatusCode::OK);

    // Alice's own request, without a body: JupyterHub's default note.
    let r: Value = json_of(call(Method::POST, "/hub/api/users/alice/tokens", &secret)).await;
    assert_eq!(r["note"], "Requested via api");

    for (body, says) in [
        (
            r#"{"scopes": ["read:everything"]}"#,
            "unknown scope: read:everything",
        ),
        (r#"{"roles": ["user"]}"#, "roles"),
        (r#"{"nope": 1}"#, "nope"),
        (r#"{"expires_in": -5}"#, "expires_in"),
        (r#"{"expires_in": 9223372036854775807}"#, "ten years"),
        (r#"{"note": 7}"#, "note"),
        ("{not json", "Invalid JSON"),
        ("[1]", "object"),
    ] {
        let before = h.state.db.tokens().api_tokens(alice.id).unwrap().len();
        let r = call(Method::POST, "/hub/api/users/alice/tokens", &boss_api)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let m = r.json::<Value>().await.unwrap()["message"].to_string();
        assert!(m.contains(says), "{body}: {m}");
        assert_eq!(
            h.state.db.tokens().api_tokens(alice.id).unwrap().len(),
            before,
            "{body}"
        );
    }

    // Another user: alice's tokens are hidden (404) and cannot be made (403).
    let r = call(Method::GET, "/hub/api/users/alice/tokens", &bob_api)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = call(Method::POST, "/hub/api/users/alice/tokens", &bob_api)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = call(Method::GET, "/hub/api/users/alice/tokens/a999999", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // A server's tokens: an admin's OAuth token, as an admin's visit hands it to a user's
    // server, and a server token. They read their user and nothing more.
    let boss_oauth = token_of(boss.id, TokenKind::OAuth);
    let alice_server = token_of(alice.id, TokenKind::Server);
    let r = call(Method::GET, "/hub/api/user", &boss_oauth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for (method, path, token) in [
        (Method::POST, "/hub/api/users/boss/tokens", &boss_oauth),
        (Method::POST, "/hub/api/users/alice/tokens", &boss_oauth),
        (Method::DELETE, "/hub/api/users/alice/server", &boss_oauth),
        (Method::POST, "/hub/api/users/boss/server", &boss_oauth),
        (Method::POST, "/hub/api/users/alice/tokens", &alice_server),
        (Method::DELETE, "/hub/api/users/alice/server", &alice_server),
    ] {
        let r = call(method.clone(), path, token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    let listed: Value = json_of(call(Method::GET, "/hub/api/users", &boss_oauth)).await;
    let names: Vec<&str> = listed
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["boss"], "{listed}");

    // Revoke: 204, then the token is dead and gone from the list.
    let r = call(
        Method::DELETE,
        &format!("/hub/api/users/alice/tokens/{id}"),
        &boss_api,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = call(Method::GET, "/hub/api/user", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// Idle limits, as pingora tests them: an HTTP/1.0 request asking for an upgrade is
/// proxied as a plain request (upgrades need HTTP/1.1); a WebSocket lives as long as it
/// talks and is closed after `[proxy] idle_timeout_secs` of silence; a server that stalls
/// mid-body and a client that stalls mid-upload are both cut off instead of holding
/// their connections forever.
#[tokio::test]
async fn proxy_idle_limits_for_upgrades_and_bodies() {
    use futures_util::{SinkExt, StreamExt};
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;

    let h = hub("/", "[proxy]\nidle_timeout_secs = 1\n").await;

    // An echoing WebSocket server, which also answers plain requests with the headers it
    // received (so the test sees what the proxy forwarded).
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_addr = ws.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = ws.accept().await {
            tokio::spawn(async move {
                let mut peek = [0u8; 2048];
                let n = conn.peek(&mut peek).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&peek[..n]).to_ascii_lowercase();
                if head.contains("upgrade: websocket") && head.contains("http/1.1") {
                    let mut ws = tokio_tungstenite::accept_async(conn).await.unwrap();
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_text() && ws.send(m).await.is_err() {
                            break;
                        }
                    }
                } else {
                    let mut conn = conn;
                    let _ = conn.read(&mut [0u8; 2048]).await;
                    let body = head.replace("\r\n", "|");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                }
            });
        }
    });
    h.state.routes.set_server(&k("alice"), ws_addr);

    // HTTP/1.0 with Upgrade headers: a plain answer, and the upstream saw no Upgrade.
    let mut raw = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    raw.write_all(
        b"GET /user/alice/api/kernels/k/channels HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(!answer.contains("upgrade: websocket"), "{answer}");

    // A WebSocket that talks every 0.4 s outlives several idle periods...
    let (mut sock, resp) = tokio_tungstenite::connect_async(format!(
        "ws://{}/user/alice/api/kernels/k/channels",
        h.addr
    ))
    .await
    .unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        sock.send(Message::text(format!("m{i}"))).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(2), sock.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), format!("m{i}"));
    }
    // ...and once silent, the hub closes it after about a second.
    let silent = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), sock.next())
        .await
        .expect("the hub closes a silent WebSocket");
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
    assert!(
        silent.elapsed() >= Duration::from_millis(900),
        "{:?}",
        silent.elapsed()
    );

    // A server that sends half a body and stalls: the client's read fails, not hangs.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stall_addr = stall.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut conn, _)) = stall.accept().await {
            let _ = conn.read(&mut [0u8; 4096]).await;
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart")
                .await;
            held.push(conn);
        }
    });
    h.state.routes.set_server(&k("alice"), stall_addr);
    let started = Instant::now();
    let r = client()
        .get(url(&h, "/user/alice/files/slow"))
        .send()
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), r.bytes()).await;
    assert!(body.expect("the hub ends a stalled body").is_err());
    assert!(started.elapsed() < Duration::from_secs(5));

    // A client that promises 100 bytes, sends 10 and stalls: the upstream connection
    // is closed instead of waiting for the rest forever.
    let upload = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upload_addr = upload.local_addr().unwrap();
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut conn, _) = upload.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Read until the hub gives up on the request (EOF or reset).
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let _ = seen_tx.send((got, Instant::now()));
    });
    h.state.routes.set_server(&k("alice"), upload_addr);
    let mut raw = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    raw.write_all(b"POST /user/alice/api/contents/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let sent = Instant::now();
    let (got, closed) = tokio::time::timeout(Duration::from_secs(10), seen_rx)
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&got).ends_with("0123456789"));
    let held = closed.duration_since(sent);
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(5),
        "the upstream was released after {held:?}"
    );
    drop(raw);
}
