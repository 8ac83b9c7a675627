//! The parts of JupyterHub's REST API admins' scripts and the idle culler lean on: bulk
//! creation, PATCH, the users list's filters, sorting and pagination (the next-page URL
//! keeps the filter), the single server model, `/info` and `/services`. Each with what a
//! caller without the right gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sudohub::db::NewToken;

const ADMIN: &str = "token admin-service-token";
const SERVICES: &str =
    "[[services]]\nname = \"ops\"\napi_token = \"admin-service-token\"\nadmin = true\n\
     [[services]]\nname = \"grader\"\nurl = \"http://127.0.0.1:9\"\n";

/// An API token of `name` (created as a user if needed).
fn token_of(h: &Hub, name: &str) -> String {
    let user = h.state.db.users().ensure(&u(name), None).unwrap();
    let secret = format!("{name}-api-token-0123456789");
    h.state
        .db
        .tokens()
        .add(&NewToken::api(user.id, &secret, "test", None))
        .unwrap();
    format!("token {secret}")
}

/// `GET path` with `auth` as the Authorization header.
async fn get_as(h: &Hub, path: &str, auth: &str) -> (StatusCode, Value) {
    send(
        client()
            .get(url(h, path))
            .header("Authorization", auth.to_owned()),
    )
    .await
}

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bulk_creation_and_patch() {
    let h = hub("/", SERVICES).await;
    let c = client();
    let post = |body: &str, auth: &str| {
        c.post(url(&h, "/hub/api/users"))
            .header("Authorization", auth.to_owned())
            .body(body.to_owned())
    };
    let (st, v) = send(post(
        r#"{"usernames": ["ann", "ben", "ann"], "admin": true}"#,
        ADMIN,
    ))
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "ben"]);
    assert_eq!(v[0]["admin"], true);
    // Existing names are skipped; all existing is a conflict.
    let (st, v) = send(post(r#"{"usernames": ["ann", "cat"]}"#, ADMIN)).await;
    assert_eq!((st, v.as_array().unwrap().len()), (StatusCode::CREATED, 1));
    let (st, v) = send(post(r#"{"usernames": ["ann", "cat"]}"#, ADMIN)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(v["message"], "All 2 users already exist");
    // One invalid name refuses the whole request: nothing is created.
    let (st, v) = send(post(r#"{"usernames": ["dan", "-rf"]}"#, ADMIN)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("-rf"), "{v}");
    assert!(h.state.db.users().get(&u("dan")).unwrap().is_none());
    for (body, says) in [
        ("{}", "`usernames`"),
        (r#"{"usernames": []}"#, "at least one"),
        (r#"{"usernames": ["x"], "groups": ["g"]}"#, "groups"),
        (r#"{"usernames": "x"}"#, "`usernames`"),
    ] {
        let (st, v) = send(post(body, ADMIN)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let ben = token_of(&h, "ben");
    h.state.db.users().set_admin(&u("ben"), false).unwrap();
    let (st, _) = send(post(r#"{"usernames": ["eve"]}"#, &ben)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // PATCH: the admin flag, then a rename that revokes what the old name held.
    let patch = |who: &str, body: &str, auth: &str| {
        c.patch(url(&h, &format!("/hub/api/users/{who}")))
            .header("Authorization", auth.to_owned())
            .body(body.to_owned())
    };
    let (st, v) = send(patch("ben", r#"{"admin": true}"#, ADMIN)).await;
    assert_eq!((st, v["admin"].clone()), (StatusCode::OK, json!(true)));
    let (st, v) = send(
        c.get(url(&h, "/hub/api/user"))
            .header("Authorization", ben.clone()),
    )
    .await;
    assert_eq!((st, v["name"].clone()), (StatusCode::OK, json!("ben")));
    let (st, v) = send(patch("ben", r#"{"name": "benedict"}"#, ADMIN)).await;
    assert_eq!(
        (st, v["name"].clone()),
        (StatusCode::OK, json!("benedict")),
        "{v}"
    );
    let (st, _) = get_as(&h, "/hub/api/user", &ben).await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a token issued to ben acts as benedict"
    );
    for (who, body, status, says) in [
        (
            "benedict",
            r#"{"name": "ann"}"#,
            StatusCode::BAD_REQUEST,
            "already exists",
        ),
        (
            "benedict",
            r#"{"name": "Bad Name"}"#,
            StatusCode::BAD_REQUEST,
            "Invalid username",
        ),
        (
            "benedict",
            r#"{"roles": []}"#,
            StatusCode::BAD_REQUEST,
            "roles",
        ),
        (
            "benedict",
            "",
            StatusCode::BAD_REQUEST,
            "at least one field",
        ),
        (
            "nobody",
            r#"{"admin": true}"#,
            StatusCode::NOT_FOUND,
            "nobody",
        ),
    ] {
        let (st, v) = send(patch(who, body, ADMIN)).await;
        assert_eq!(st, status, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    // A user whose server is recorded cannot be renamed.
    h.state.db.servers().starting(&k("ann"), 50010).unwrap();
    let (st, v) = send(patch("ann", r#"{"name": "anna"}"#, ADMIN)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("Stop"), "{v}");
}

#[tokio::test]
async fn the_users_list_filters_sorts_and_pages_like_jupyterhub() {
    let h = hub("/", SERVICES).await;
    let c = client();
    for n in ["zoe", "amy", "max", "ann", "bob"] {
        h.state.db.users().ensure(&u(n), None).unwrap();
    }
    // amy and max have a server recorded running (max's is not ready: no live route, and
    // this hub never started it, so it counts as starting).
    for (n, port) in [("amy", 50001), ("max", 50002)] {
        h.state.db.servers().starting(&k(n), port).unwrap();
    }
    h.state.db.servers().running(&k("amy"), 1).unwrap();
    let names = |v: &Value| -> Vec<String> {
        let items = v.get("items").unwrap_or(v);
        items
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |q: &str| {
        c.get(url(&h, &format!("/hub/api/users{q}")))
            .header("Authorization", ADMIN)
    };
    let paged = |q: &str| get(q).header("Accept", "application/jupyterhub-pagination+json");

    // Creation order by default, as JupyterHub's `sort=id`.
    let (_, v) = send(get("")).await;
    assert_eq!(names(&v), ["zoe", "amy", "max", "ann", "bob"]);
    let (_, v) = send(get("?sort=name")).await;
    assert_eq!(names(&v), ["amy", "ann", "bob", "max", "zoe"]);
    let (_, v) = send(get("?sort=-name&name_filter=A")).await;
    assert_eq!(names(&v), ["max", "ann", "amy"]);
    let (_, v) = send(get("?state=active&sort=name")).await;
    assert_eq!(names(&v), ["amy", "max"]);
    let (_, v) = send(get("?state=inactive&sort=name")).await;
    assert_eq!(names(&v), ["ann", "bob", "zoe"]);
    // sudohub's own key, for the admin page: those with a server first, then by name.
    let (_, v) = send(get("?sort=running")).await;
    assert_eq!(names(&v), ["amy", "max", "ann", "bob", "zoe"]);
    let (_, v) = send(get("?sort=-running&limit=3")).await;
    assert_eq!(names(&v), ["ann", "bob", "zoe"]);
    let (st, v) = send(get("?sort=age")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("sort must be"),
        "{v}"
    );

    // Walking the pages of a filtered list stays filtered: the next URL keeps every
    // parameter (the idle culler walks `state=active` this way).
    let mut walked = Vec::new();
    let mut next = Some(url(&h, "/hub/api/users?state=inactive&sort=name&limit=1"));
    while let Some(u) = next {
        let (st, v) = send(
            c.get(&u)
                .header("Authorization", ADMIN)
                .header("Accept", "application/jupyterhub-pagination+json"),
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(v["_pagination"]["total"], 3);
        walked.extend(names(&v));
        next = v["_pagination"]["next"]["url"].as_str().map(str::to_owned);
        if let Some(n) = &next {
            assert!(
                n.contains("state=inactive") && n.contains("sort=name"),
                "{n}"
            );
        }
    }
    assert_eq!(walked, ["ann", "bob", "zoe"]);
    let (_, v) = send(paged("?limit=2&offset=4")).await;
    assert_eq!(names(&v), ["bob"]);
    assert!(v["_pagination"]["next"].is_null());

    // `include_stopped_servers` lists the stopped default server too.
    let (_, v) = send(get("?name_filter=zoe")).await;
    assert_eq!(v[0]["servers"], json!({}));
    let (_, v) = send(get("?name_filter=zoe&include_stopped_servers=1")).await;
    let zoe = &v[0]["servers"][""];
    assert_eq!(
        (zoe["stopped"].clone(), zoe["ready"].clone()),
        (json!(true), json!(false))
    );
    assert!(zoe["started"].is_null());
    assert_eq!(zoe["url"], "/user/zoe/");

    // The single server model (JupyterHub 6): stopped or not.
    let (st, v) = get_as(&h, "/hub/api/users/zoe/server", ADMIN).await;
    assert_eq!((st, v["stopped"].clone()), (StatusCode::OK, json!(true)));
    let (_, v) = get_as(&h, "/hub/api/users/max/server", ADMIN).await;
    assert_eq!(
        (v["pending"].clone(), v["ready"].clone()),
        (json!("spawn"), json!(false))
    );
    let bob = token_of(&h, "bob");
    let (st, _) = send(
        c.get(url(&h, "/hub/api/users/zoe/server"))
            .header("Authorization", bob.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A user sees only themself in the list.
    let (_, v) = get_as(&h, "/hub/api/users", &bob).await;
    assert_eq!(names(&v), ["bob"]);
}

#[tokio::test]
async fn info_services_and_a_service_whoami() {
    let h = hub("/", SERVICES).await;
    let c = client();
    let (st, v) = get_as(&h, "/hub/api/info", ADMIN).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["version"], sudohub::JUPYTERHUB_VERSION);
    assert!(v["spawner"]["class"].is_string() && v["authenticator"]["version"].is_string());
    let amy = token_of(&h, "amy");
    let (st, _) = send(
        c.get(url(&h, "/hub/api/info"))
            .header("Authorization", amy.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, v) = get_as(&h, "/hub/api/services", ADMIN).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["grader"]["prefix"], "/services/grader/");
    assert_eq!(v["grader"]["url"], "http://127.0.0.1:9");
    assert_eq!(
        (v["ops"]["admin"].clone(), v["ops"]["roles"].clone()),
        (json!(true), json!(["admin"]))
    );
    let (st, v) = get_as(&h, "/hub/api/services/grader", ADMIN).await;
    assert_eq!((st, v["kind"].clone()), (StatusCode::OK, json!("service")));
    let (st, _) = get_as(&h, "/hub/api/services/nope", ADMIN).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = get_as(&h, "/hub/api/services", &amy).await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    let (st, v) = get_as(&h, "/hub/api/user", ADMIN).await;
    assert_eq!(st, StatusCode::OK);
    for key in [
        "kind", "name", "admin", "roles", "url", "prefix", "command", "pid", "info", "display",
        "scopes",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert!(v["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("list:users")));
}

/// `/hub/metrics` with JupyterHub's names, behind `read:metrics` unless
/// `authenticate_prometheus = false`.
#[tokio::test]
async fn metrics_are_scraped_with_jupyterhubs_names() {
    let h = hub("/", SERVICES).await;
    let c = client();
    for n in ["amy", "bob", "cat"] {
        h.state.db.users().ensure(&u(n), None).unwrap();
    }
    let recent = sudohub::timestamp::now_iso();
    h.state.db.users().touch(&u("amy"), None, &recent).unwrap();
    // Some traffic to count.
    let (st, _) = get_as(&h, "/hub/api/users", ADMIN).await;
    assert_eq!(st, StatusCode::OK);
    let amy = token_of(&h, "amy");
    let scrape = |auth: Option<String>| {
        let mut r = c.get(url(&h, "/hub/metrics"));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send()
    };
    assert_eq!(scrape(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        scrape(Some(amy)).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let r = scrape(Some(ADMIN.replace("token ", "Bearer ")))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    for line in [
        "jupyterhub_total_users 3",
        "jupyterhub_running_servers 0",
        "jupyterhub_active_users{period=\"24h\"} 1",
        "jupyterhub_active_users{period=\"30d\"} 1",
        "jupyterhub_request_duration_seconds_count{method=\"GET\",handler=\"/hub/api/users\",code=\"200\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert!(
        text.contains("jupyterhub_server_spawn_duration_seconds_count{status=\"failure\"} 0"),
        "{text}"
    );

    let open = hub("/", "authenticate_prometheus = false\n").await;
    let r = c.get(url(&open, "/hub/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// `/proxy` shows the routing table; `/shutdown` stops the hub (not the servers);
/// `/authorizations/token/<token>` names a token's owner, as old services ask.
#[tokio::test]
async fn proxy_table_shutdown_and_token_owner() {
    let h = hub("/", SERVICES).await;
    let c = client();
    h.state.db.users().ensure(&u("amy"), None).unwrap();
    h.state
        .routes
        .set_server(&k("amy"), "127.0.0.1:50123".parse().unwrap());
    let (st, v) = get_as(&h, "/hub/api/proxy", ADMIN).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["/user/amy/"]["target"], "http://127.0.0.1:50123");
    assert_eq!(v["/user/amy/"]["data"]["user"], "amy");
    assert_eq!(v["/services/grader/"]["data"]["service"], "grader");
    assert_eq!(v["/"]["data"]["hub"], true);
    let amy = token_of(&h, "amy");
    let (st, _) = get_as(&h, "/hub/api/proxy", &amy).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = send(
        c.patch(url(&h, "/hub/api/proxy"))
            .header("Authorization", ADMIN),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("built into"), "{v}");

    // The deprecated token lookup.
    let secret = amy.trim_start_matches("token ");
    let (st, v) = get_as(
        &h,
        &format!("/hub/api/authorizations/token/{secret}"),
        ADMIN,
    )
    .await;
    assert_eq!((st, v["name"].clone()), (StatusCode::OK, json!("amy")));
    let (st, v) = get_as(
        &h,
        "/hub/api/authorizations/token/admin-service-token",
        &amy,
    )
    .await;
    assert_eq!((st, v["kind"].clone()), (StatusCode::OK, json!("service")));
    let (st, _) = get_as(&h, "/hub/api/authorizations/token/nope-nope-nope", ADMIN).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = send(
        c.post(url(&h, "/hub/api/authorizations/token"))
            .header("Authorization", ADMIN),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(v["message"].as_str().unwrap().contains("removed"), "{v}");

    // Shutdown: refused to users and for a proxy that would outlive the hub; accepted
    // from an admin, and the hub is told to stop.
    let shutdown = |body: &str, auth: &str| {
        c.post(url(&h, "/hub/api/shutdown"))
            .header("Authorization", auth.to_owned())
            .body(body.to_owned())
    };
    let (st, _) = send(shutdown("", &amy)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, v) = send(shutdown(r#"{"proxy": false}"#, ADMIN)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = send(shutdown(r#"{"servers": "yes"}"#, ADMIN)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let told = h.state.shutdown.clone();
    let (st, v) = send(shutdown(r#"{"servers": false}"#, ADMIN)).await;
    assert_eq!(
        (st, v["message"].clone()),
        (StatusCode::ACCEPTED, json!("Shutting down Hub"))
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), told.notified())
        .await
        .expect("the hub was not told to stop");
}
