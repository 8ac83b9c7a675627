//! Scopes and roles as JupyterHub names them: tokens made with `scopes` hold only those
//! (and only while their owner does), `[[roles]]` give scopes to services, users and the
//! members of groups with `!user=`/`!group=` filters, and every admin endpoint refuses a
//! caller without its scope, naming it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use reqwest::StatusCode;
use serde_json::{json, Value};

/// Services: `none` holds nothing; one service per scope of the admin endpoints below,
/// holding only that scope through a role; `culler` holds what jupyterhub-idle-culler
/// needs. Roles by user and by group for the filter checks.
fn config() -> String {
    let mut text = String::from(
        "[[services]]\nname = \"none\"\napi_token = \"token-of-none-0000\"\n\
         [[services]]\nname = \"culler\"\napi_token = \"token-of-culler-0000\"\n\
         [[roles]]\nname = \"idle-culler\"\n\
         scopes = [\"list:users\", \"read:users:activity\", \"read:servers\", \"delete:servers\"]\n\
         services = [\"culler\"]\n\
         [[roles]]\nname = \"physics-readers\"\nscopes = [\"read:users!group=physics\"]\n\
         groups = [\"physics\"]\n\
         [[roles]]\nname = \"helpdesk\"\nscopes = [\"read:users!user=erin\", \"servers!user=erin\"]\n\
         users = [\"dave\"]\n",
    );
    for (i, (_, _, _, scope)) in ADMIN_ENDPOINTS.iter().enumerate() {
        text.push_str(&format!(
            "[[services]]\nname = \"s{i}\"\napi_token = \"token-of-s{i}-0000\"\n\
             [[roles]]\nname = \"only-{i}\"\nscopes = [\"{scope}\"]\nservices = [\"s{i}\"]\n"
        ));
    }
    text
}

/// Method, path, body and the scope JupyterHub asks for.
const ADMIN_ENDPOINTS: &[(&str, &str, &str, &str)] = &[
    ("GET", "/hub/api/info", "", "read:hub"),
    (
        "POST",
        "/hub/api/users",
        r#"{"usernames": ["newbie"]}"#,
        "admin:users",
    ),
    ("POST", "/hub/api/users/newer", "", "admin:users"),
    (
        "PATCH",
        "/hub/api/users/erin",
        r#"{"admin": false}"#,
        "admin:users",
    ),
    ("DELETE", "/hub/api/users/frank", "", "delete:users"),
    ("GET", "/hub/api/groups", "", "list:groups"),
    ("POST", "/hub/api/groups/maths", "", "admin:groups"),
    (
        "POST",
        "/hub/api/groups/physics/users",
        r#"{"users": ["alice"]}"#,
        "groups",
    ),
    ("DELETE", "/hub/api/groups/physics", "", "delete:groups"),
    ("GET", "/hub/api/services", "", "list:services"),
    ("GET", "/hub/api/proxy", "", "proxy"),
    ("GET", "/hub/metrics", "", "read:metrics"),
];

async fn setup() -> Hub {
    let h = hub("/", &config()).await;
    let users = h.state.db.users();
    users.ensure(&u("boss"), Some(true)).unwrap();
    for n in ["alice", "dave", "erin", "frank"] {
        users.ensure(&u(n), Some(false)).unwrap();
    }
    let groups = h.state.db.groups();
    let physics = sudohub::types::GroupName::parse("physics").unwrap();
    groups
        .create(std::slice::from_ref(&physics), &[u("dave"), u("erin")])
        .unwrap();
    h
}

#[tokio::test]
async fn every_admin_endpoint_needs_its_scope() {
    let h = setup().await;
    for (i, (method, path, body, scope)) in ADMIN_ENDPOINTS.iter().enumerate() {
        let (st, v) = call(&h, method, path, body, "token-of-none-0000").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path} without {scope}");
        if !path.ends_with("metrics") {
            let says = v["message"].as_str().unwrap_or_default();
            assert!(says.contains(scope), "{method} {path}: {says}");
        }
        let (st, v) = call(&h, method, path, body, &format!("token-of-s{i}-0000")).await;
        assert!(
            st.is_success(),
            "{method} {path} with only {scope}: {st} {v}"
        );
    }
}

#[tokio::test]
async fn a_role_gives_a_service_only_its_scopes() {
    let h = setup().await;
    let culler = "token-of-culler-0000";
    let (st, v) = call(&h, "GET", "/hub/api/users", "", culler).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Each model has only the fields its scopes give (JupyterHub's access map): activity
    // and servers, not groups or creation time.
    let erin = v
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "erin")
        .cloned();
    let (st, one) = call(&h, "GET", "/hub/api/users/erin", "", culler).await;
    assert_eq!(st, StatusCode::OK);
    for m in [erin.unwrap_or_default(), one] {
        let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["kind", "name", "admin", "last_activity", "servers"] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
        for k in ["groups", "created", "roles"] {
            assert!(!keys.contains(&k), "{k} in {keys:?}");
        }
    }
    let (st, _) = call(&h, "GET", "/hub/api/users/erin/server", "", culler).await;
    assert_ne!(st, StatusCode::FORBIDDEN);
    for (method, path) in [
        ("POST", "/hub/api/users/erin/server"),
        ("POST", "/hub/api/users/someone"),
        ("DELETE", "/hub/api/users/erin"),
        ("GET", "/hub/api/info"),
        ("POST", "/hub/api/users/erin/tokens"),
    ] {
        let (st, _) = call(&h, method, path, "", culler).await;
        assert!(
            st == StatusCode::FORBIDDEN || st == StatusCode::NOT_FOUND,
            "{method} {path}: {st}"
        );
    }
    let (_, who) = call(&h, "GET", "/hub/api/user", "", culler).await;
    let scopes: Vec<&str> = who["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for s in [
        "list:users",
        "read:users:name",
        "read:servers",
        "delete:servers",
    ] {
        assert!(scopes.contains(&s), "{s} in {scopes:?}");
    }
    assert!(!scopes.contains(&"admin:users"), "{scopes:?}");
}

#[tokio::test]
async fn user_and_group_filters() {
    let h = setup().await;
    let dave = api_token(&h, "dave");
    // Through the group role: dave reads physics members (erin), not others (frank).
    let (st, _) = call(&h, "GET", "/hub/api/users/erin", "", &dave).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(&h, "GET", "/hub/api/users/frank", "", &dave).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "hidden, as JupyterHub does");
    // Through the user role: dave may start and stop erin's server, not frank's.
    let (st, v) = call(&h, "DELETE", "/hub/api/users/erin/server", "", &dave).await;
    assert_ne!(st, StatusCode::FORBIDDEN, "{v}");
    let (st, _) = call(&h, "DELETE", "/hub/api/users/frank/server", "", &dave).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // His list has himself and whom he may read, nobody else.
    let (st, v) = call(&h, "GET", "/hub/api/users", "", &dave).await;
    assert_eq!(st, StatusCode::OK);
    let mut names = names_of(&v);
    names.sort_unstable();
    assert_eq!(names, ["dave", "erin"]);
    // A token dave makes with the group filter holds it (its members resolved).
    let (st, v) = call(
        &h,
        "POST",
        "/hub/api/users/dave/tokens",
        r#"{"scopes": ["read:users!group=physics"]}"#,
        &dave,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let grouped = v["token"].as_str().unwrap().to_owned();
    let (st, _) = call(&h, "GET", "/hub/api/users/erin", "", &grouped).await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = call(&h, "GET", "/hub/api/users/frank", "", &grouped).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Leaving the group ends what the group gave, at once.
    let physics = sudohub::types::GroupName::parse("physics").unwrap();
    h.state
        .db
        .groups()
        .change_members(&physics, &[u("dave")], false)
        .unwrap();
    let (st, _) = call(&h, "GET", "/hub/api/users/erin", "", &dave).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "still through the helpdesk role (read:users!user=erin)"
    );
    let (st, _) = call(&h, "GET", "/hub/api/users/frank", "", &dave).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tokens_hold_only_the_scopes_they_were_made_with() {
    let h = setup().await;
    let alice = api_token(&h, "alice");
    let boss = api_token(&h, "boss");
    let make = |owner: &str, by: String, scopes: Value| {
        let h = &h;
        let path = format!("/hub/api/users/{owner}/tokens");
        async move {
            call(
                h,
                "POST",
                &path,
                &json!({ "scopes": scopes }).to_string(),
                &by,
            )
            .await
        }
    };
    // Alice may narrow her own rights, not widen them.
    let (st, v) = make("alice", alice.clone(), json!(["read:users!user=alice"])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(
        v["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("read:users:name!user=alice")),
        "{v}"
    );
    let narrow = v["token"].as_str().unwrap().to_owned();
    let (st, v) = make(
        "alice",
        alice.clone(),
        json!(["list:users", "servers!user=alice"]),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["message"].as_str().unwrap().contains("list:users"), "{v}");
    let (st, v) = make(
        "alice",
        alice.clone(),
        json!(["read:users!user=Not A Name"]),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["message"].as_str().unwrap().contains("bad filter"), "{v}");
    // The narrow token reads alice, and does nothing else.
    let (st, _) = call(&h, "GET", "/hub/api/users/alice", "", &narrow).await;
    assert_eq!(st, StatusCode::OK);
    for (method, path) in [
        ("POST", "/hub/api/users/alice/server"),
        ("POST", "/hub/api/users/alice/tokens"),
        ("GET", "/hub/api/users/alice/tokens"),
    ] {
        let (st, _) = call(&h, method, path, "", &narrow).await;
        assert!(
            st == StatusCode::FORBIDDEN || st == StatusCode::NOT_FOUND,
            "{method} {path}: {st}"
        );
    }
    // The token model and whoami show its own scopes.
    let (_, who) = call(&h, "GET", "/hub/api/user", "", &narrow).await;
    assert!(
        !who["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "servers!user=alice"),
        "{who}"
    );

    // Whoami with a token that may only report activity: what identifies alice and her
    // activity (`users:activity` holds `read:users:activity`), nothing else of her model:
    // no servers, no creation time, no roles (JupyterHub's identify scopes).
    let (st, v) = make("alice", alice.clone(), json!(["users:activity!user=alice"])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let reporter = v["token"].as_str().unwrap().to_owned();
    let (st, who) = call(&h, "GET", "/hub/api/user", "", &reporter).await;
    assert_eq!(st, StatusCode::OK, "{who}");
    let mut keys: Vec<&str> = who
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "admin",
            "groups",
            "kind",
            "last_activity",
            "name",
            "scopes",
            "session_id",
            "token_id",
            "user_info"
        ],
        "{who}"
    );
    assert_eq!(who["name"], "alice");

    // An admin's token made to list users only: lists, cannot create; and once its
    // owner is no admin, it cannot list either.
    let (st, v) = make("boss", boss.clone(), json!(["list:users", "read:users"])).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let lister = v["token"].as_str().unwrap().to_owned();
    let (st, v) = call(&h, "GET", "/hub/api/users", "", &lister).await;
    assert_eq!((st, v.as_array().unwrap().len()), (StatusCode::OK, 5));
    let (st, _) = call(&h, "POST", "/hub/api/users/zed", "", &lister).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    h.state.db.users().set_admin(&u("boss"), false).unwrap();
    let (st, v) = call(&h, "GET", "/hub/api/users", "", &lister).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(names_of(&v), ["boss"], "only what boss still holds");
}

#[test]
fn bad_roles_are_refused_at_load() {
    let base =
        "bind = \"127.0.0.1:8000\"\n[[services]]\nname = \"svc\"\napi_token = \"0123456789ab\"\n";
    for (role, says) in [
        (
            "name = \"r\"\nscopes = [\"read:everything\"]",
            "unknown scope: read:everything",
        ),
        (
            "name = \"r\"\nscopes = [\"read:users!group=a/b\"]",
            "bad filter",
        ),
        (
            "name = \"r\"\nscopes = [\"list:users\"]\nservices = [\"ghost\"]",
            "no [[services]] named \"ghost\"",
        ),
        (
            "name = \"r\"\nscopes = [\"self\"]\nservices = [\"svc\"]",
            "a service has none",
        ),
        (
            "name = \"admin\"\nscopes = [\"list:users\"]",
            "default role",
        ),
        (
            "name = \"r\"\nusers = [\"Not A Name\"]",
            "user \"Not A Name\"",
        ),
        ("name = \"r\"\ncolour = \"red\"", "colour"),
    ] {
        let text = format!("{base}[[roles]]\n{role}\n");
        let e = sudohub::config::HubConfig::parse(&text, std::path::Path::new("/x/hub.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{role}: {e}");
    }
}
