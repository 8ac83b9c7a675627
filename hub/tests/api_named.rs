//! Named servers through the REST API and the home page, as JupyterHub 6 answers them:
//! off unless `allow_named_servers`, names by its rule, `named_server_limit_per_user`,
//! created (PUT) and listed while stopped, removed with `{"remove": true}`, and no user
//! reaching another's. Starting them for real is in tests/tests/hub_e2e.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use reqwest::StatusCode;
use serde_json::{json, Value};

async fn setup(extra: &str) -> Hub {
    let h = hub("/", extra).await;
    let users = h.state.db.users();
    users.ensure(&u("boss"), Some(true)).unwrap();
    for n in ["alice", "bob"] {
        users.ensure(&u(n), Some(false)).unwrap();
    }
    h
}

const ENABLED: &str = "allow_named_servers = true\nnamed_server_limit_per_user = 2\n";

#[tokio::test]
async fn named_servers_are_refused_unless_enabled() {
    let h = setup("").await;
    let alice = api_token(&h, "alice");
    for method in ["PUT", "POST", "DELETE"] {
        let (status, v) = call(&h, method, "/hub/api/users/alice/servers/gpu", "", &alice).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method}: {v}");
        assert_eq!(v["message"], "Named servers are not enabled.", "{method}");
    }
    assert!(h.state.db.named().of_users(&[1, 2, 3]).unwrap().is_empty());
}

#[tokio::test]
async fn create_list_limit_and_remove() {
    let h = setup(ENABLED).await;
    let alice = api_token(&h, "alice");
    let path = "/hub/api/users/alice/servers";

    let (status, m) = call(&h, "PUT", &format!("{path}/gpu"), "", &alice).await;
    assert_eq!(status, StatusCode::CREATED, "{m}");
    assert_eq!(m["name"], "gpu");
    assert_eq!(m["display_name"], "gpu");
    assert_eq!(m["full_name"], "alice/gpu");
    assert_eq!(m["url"], "/user/alice/gpu/");
    assert_eq!(
        m["progress_url"],
        "/hub/api/users/alice/servers/gpu/progress"
    );
    assert_eq!(
        (m["ready"].clone(), m["stopped"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(m["pending"], Value::Null);
    let (status, m) = call(&h, "PUT", &format!("{path}/gpu"), "", &alice).await;
    assert_eq!(status, StatusCode::CONFLICT, "{m}");
    assert_eq!(m["message"], "User alice already has server gpu");
    let (status, m) = call(
        &h,
        "PUT",
        &format!("{path}/cpu"),
        r#"{"display_name": "My CPU box"}"#,
        &alice,
    )
    .await;
    assert_eq!(
        (status, m["display_name"].clone()),
        (StatusCode::CREATED, json!("My CPU box"))
    );

    // Bad names and bodies say what is wrong, and create nothing.
    for bad in ["Gpu", "a--b", "-a", "a-", "1a", "a_b", &"a".repeat(31)] {
        let (status, m) = call(&h, "PUT", &format!("{path}/{bad}"), "", &alice).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {m}");
        assert!(
            m["message"]
                .as_str()
                .unwrap()
                .contains("invalid server name"),
            "{bad}: {m}"
        );
    }
    for body in [
        r#"{"display_name": " x"}"#,
        r#"{"display_name": 3}"#,
        "[1]",
        "{",
    ] {
        let (status, m) = call(&h, "PUT", &format!("{path}/other"), body, &alice).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {m}");
    }
    // The limit counts stopped servers too; the default server is not one of them.
    let (status, m) = call(&h, "PUT", &format!("{path}/third"), "", &alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{m}");
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("maximum of 2 named servers"),
        "{m}"
    );
    let (status, m) = call(&h, "PUT", "/hub/api/users/alice/servers/", "", &alice).await;
    assert_eq!(
        status,
        StatusCode::METHOD_NOT_ALLOWED,
        "the default server is not created: {m}"
    );

    // Stopped servers are listed with include_stopped_servers, as JupyterHub lists them.
    let (_, me) = call(&h, "GET", "/hub/api/users/alice", "", &alice).await;
    assert_eq!(me["servers"], json!({}), "{me}");
    let (_, all) = call(
        &h,
        "GET",
        "/hub/api/users?include_stopped_servers=1",
        "",
        &api_token(&h, "boss"),
    )
    .await;
    let alice_model = all
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "alice")
        .unwrap();
    let mut names: Vec<&str> = alice_model["servers"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["", "cpu", "gpu"]);
    let (status, m) = call(&h, "GET", &format!("{path}/gpu"), "", &alice).await;
    assert_eq!((status, m["name"].clone()), (StatusCode::OK, json!("gpu")));
    let (status, _) = call(&h, "GET", &format!("{path}/nope"), "", &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&h, "GET", &format!("{path}/nope/progress"), "", &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, m) = call(&h, "GET", &format!("{path}/gpu/progress"), "", &alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "never started: {m}");
    assert_eq!(m["message"], "alice:gpu is not starting...");

    // Removal: the default server cannot be removed; a named one goes and frees its slot.
    let (status, m) = call(
        &h,
        "DELETE",
        "/hub/api/users/alice/server",
        r#"{"remove": true}"#,
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{m}");
    let (status, m) = call(
        &h,
        "DELETE",
        &format!("{path}/gpu"),
        r#"{"remove": 1}"#,
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a non-bool remove: {m}");
    let (status, _) = call(
        &h,
        "DELETE",
        &format!("{path}/gpu"),
        r#"{"remove": true}"#,
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&h, "GET", &format!("{path}/gpu"), "", &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&h, "DELETE", &format!("{path}/gpu"), "", &alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&h, "PUT", &format!("{path}/third"), "", &alice).await;
    assert_eq!(status, StatusCode::CREATED);
    // A user's named servers go with the user.
    let (status, _) = call(
        &h,
        "DELETE",
        "/hub/api/users/alice",
        "",
        &api_token(&h, "boss"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(h
        .state
        .db
        .named()
        .of_users(&[1, 2, 3, 4])
        .unwrap()
        .is_empty());
}

/// No user reaches another's named servers; a token filtered to one server reaches that
/// one and not its sibling.
#[tokio::test]
async fn nobody_reaches_anothers_named_servers() {
    let h = setup(ENABLED).await;
    let (alice, bob) = (api_token(&h, "alice"), api_token(&h, "bob"));
    let path = "/hub/api/users/alice/servers";
    for n in ["gpu", "cpu"] {
        assert_eq!(
            call(&h, "PUT", &format!("{path}/{n}"), "", &alice).await.0,
            StatusCode::CREATED
        );
    }
    for (method, p, expect) in [
        ("GET", "gpu", StatusCode::NOT_FOUND),
        ("GET", "gpu/progress", StatusCode::NOT_FOUND),
        ("PUT", "bobs", StatusCode::FORBIDDEN),
        ("POST", "gpu", StatusCode::FORBIDDEN),
        ("DELETE", "gpu", StatusCode::FORBIDDEN),
    ] {
        let (status, m) = call(&h, method, &format!("{path}/{p}"), "", &bob).await;
        assert_eq!(status, expect, "bob {method} {p}: {m}");
    }
    assert_eq!(
        h.state.db.named().of_users(&[3]).unwrap().len(),
        0,
        "bob made nothing"
    );
    let (status, m) = call(
        &h,
        "GET",
        "/hub/api/users/alice?include_stopped_servers=1",
        "",
        &bob,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{m}");

    // A token of alice's that may read only alice/gpu.
    let (status, t) = call(
        &h,
        "POST",
        "/hub/api/users/alice/tokens",
        r#"{"scopes": ["read:servers!server=alice/gpu"]}"#,
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let narrow = t["token"].as_str().unwrap();
    assert_eq!(
        call(&h, "GET", &format!("{path}/gpu"), "", narrow).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&h, "GET", &format!("{path}/cpu"), "", narrow).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, "GET", "/hub/api/users/alice/server", "", narrow)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&h, "DELETE", &format!("{path}/gpu"), "", narrow)
            .await
            .0,
        StatusCode::FORBIDDEN
    );

    // The pages: bob cannot start alice's named server from the browser either.
    let (cookie, sid) = login(&h, "bob");
    let xsrf = h.state.key.xsrf(&sid);
    let r = client()
        .post(url(&h, "/hub/spawn/alice/gpu"))
        .header("Cookie", &cookie)
        .form(&[("_xsrf", xsrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client()
        .get(url(&h, "/hub/spawn-pending/alice/gpu"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// The home page lists one's named servers with their actions and offers the form to
/// add one while under the limit; a bad name from that form is a clear 400.
#[tokio::test]
async fn the_home_page_lists_named_servers() {
    let h = setup(ENABLED).await;
    let alice = api_token(&h, "alice");
    let (cookie, sid) = login(&h, "alice");
    let page = |h: &Hub, cookie: String| {
        let r = client()
            .get(url(h, "/hub/home"))
            .header("Cookie", cookie)
            .send();
        async move { r.await.unwrap().text().await.unwrap() }
    };
    let html = page(&h, cookie.clone()).await;
    assert!(html.contains("You have no named servers."), "{html}");
    assert!(html.contains(r#"id="new-server""#));
    call(
        &h,
        "PUT",
        "/hub/api/users/alice/servers/gpu",
        r#"{"display_name": "<b>GPU</b>"}"#,
        &alice,
    )
    .await;
    call(&h, "PUT", "/hub/api/users/alice/servers/cpu", "", &alice).await;
    let html = page(&h, cookie.clone()).await;
    assert!(
        html.contains(r#"data-server="gpu""#) && html.contains(r#"data-server="cpu""#),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;GPU&lt;/b&gt;") && !html.contains("<b>GPU</b>"),
        "escaped: {html}"
    );
    assert!(html.contains("/hub/spawn/alice/gpu?next="), "{html}");
    assert!(
        !html.contains(r#"id="new-server""#),
        "at the limit: no form"
    );
    assert!(html.contains("most named servers allowed (2)"));
    let xsrf = h.state.key.xsrf(&sid);
    // The progress page's EventSource (a same-origin script with the login cookie) may
    // read a named server's progress, as it may the default one's.
    let r = client()
        .get(url(
            &h,
            &format!("/hub/api/users/alice/servers/gpu/progress?_xsrf={xsrf}"),
        ))
        .header("Cookie", &cookie)
        .header("Sec-Fetch-Site", "same-origin")
        .header("Sec-Fetch-Mode", "cors")
        .header("Sec-Fetch-Dest", "empty")
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("alice:gpu is not starting"), "{body}");
    let r = client()
        .post(url(&h, "/hub/spawn"))
        .header("Cookie", &cookie)
        .form(&[("_xsrf", xsrf.as_str()), ("server_name", "Bad Name")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("invalid server name"));
    // Deleting from the page: the row goes.
    let r = client()
        .post(url(&h, "/hub/stop"))
        .header("Cookie", &cookie)
        .form(&[("_xsrf", xsrf.as_str()), ("server", "cpu"), ("remove", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = page(&h, cookie.clone()).await;
    assert!(!html.contains(r#"data-server="cpu""#) && html.contains(r#"id="new-server""#));
}

/// `PATCH` renames a stopped named server and sets its display name, as JupyterHub
/// 5.3's does; bad bodies and names, taken names and others' servers are refused and
/// change nothing. A start with a display name renames it for display; activity may be
/// reported for a stopped named server.
#[tokio::test]
async fn patch_renames_and_sets_display_names() {
    let h = setup(ENABLED).await;
    let (alice, bob) = (api_token(&h, "alice"), api_token(&h, "bob"));
    let path = "/hub/api/users/alice/servers";
    assert_eq!(
        call(&h, "PUT", &format!("{path}/gpu"), "", &alice).await.0,
        StatusCode::CREATED
    );
    for (body, says) in [
        ("", "Must specify at least one field to modify."),
        ("{}", "Must specify at least one field to modify."),
        (r#"{"bogus": 1}"#, "unknown field `bogus`"),
        (r#"{"name": "Bad"}"#, "Bad"),
        (r#"{"name": ""}"#, "default server"),
        (r#"{"display_name": " x"}"#, "Invalid display_name"),
        (r#"{"display_name": 3}"#, "display_name"),
    ] {
        let (status, m) = call(&h, "PATCH", &format!("{path}/gpu"), body, &alice).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {m}");
        let msg = m["message"].as_str().unwrap();
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let (status, m) = call(&h, "PATCH", &format!("{path}/gpu"), "", &bob).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bob: {m}");
    let (status, m) = call(
        &h,
        "PATCH",
        &format!("{path}/nope"),
        r#"{"name": "x"}"#,
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{m}");
    let named = |h: &Hub| -> Vec<(String, String)> {
        let mut v: Vec<_> = h
            .state
            .db
            .named()
            .of_users(&[2])
            .unwrap()
            .into_values()
            .flatten()
            .map(|n| (n.name.to_string(), n.display_name))
            .collect();
        v.sort();
        v
    };
    assert_eq!(named(&h), [("gpu".into(), "gpu".into())], "nothing changed");

    // Renamed: the display name that was the old name follows it.
    let (status, m) = call(
        &h,
        "PATCH",
        &format!("{path}/gpu"),
        r#"{"name": "cpu"}"#,
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        (
            m["name"].as_str(),
            m["display_name"].as_str(),
            m["url"].as_str()
        ),
        (Some("cpu"), Some("cpu"), Some("/user/alice/cpu/"))
    );
    assert_eq!(
        call(&h, "GET", &format!("{path}/gpu"), "", &alice).await.0,
        StatusCode::NOT_FOUND
    );
    // A taken name is a 409.
    assert_eq!(
        call(&h, "PUT", &format!("{path}/gpu"), "", &alice).await.0,
        StatusCode::CREATED
    );
    let (status, m) = call(
        &h,
        "PATCH",
        &format!("{path}/cpu"),
        r#"{"name": "gpu"}"#,
        &alice,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{m}");
    assert_eq!(m["message"], r#"User alice already has server "gpu""#);
    let (status, m) = call(
        &h,
        "PATCH",
        &format!("{path}/cpu"),
        r#"{"display_name": "Big box", "user_options": {}}"#,
        &alice,
    )
    .await;
    assert_eq!(
        (status, m["display_name"].as_str()),
        (StatusCode::OK, Some("Big box"))
    );
    assert_eq!(
        named(&h),
        [
            ("cpu".into(), "Big box".into()),
            ("gpu".into(), "gpu".into())
        ]
    );

    // Activity for a stopped named server is recorded, as JupyterHub does.
    let report = r#"{"servers": {"cpu": {"last_activity": "2026-01-02T03:04:05Z"}}}"#;
    let (status, m) = call(&h, "POST", "/hub/api/users/alice/activity", report, &alice).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    let (_, m) = call(&h, "GET", &format!("{path}/cpu"), "", &alice).await;
    assert_eq!(m["last_activity"], "2026-01-02T03:04:05.000000Z", "{m}");
    let report = r#"{"servers": {"nope": {"last_activity": "2026-01-02T03:04:05Z"}}}"#;
    let (status, _) = call(&h, "POST", "/hub/api/users/alice/activity", report, &alice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
