//! `/hub/api/groups`: JupyterHub's groups, members and properties, for admins; each
//! change all or nothing, with a message that names what was wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN: &str = "token admin-service-token";
const SERVICES: &str =
    "[[services]]\nname = \"ops\"\napi_token = \"admin-service-token\"\nadmin = true\n";

async fn call(h: &Hub, method: Method, path: &str, body: &str, auth: &str) -> (StatusCode, Value) {
    let r = client()
        .request(method, url(h, &format!("/hub/api{path}")))
        .header("Authorization", auth.to_owned())
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn groups_members_and_properties() {
    let h = hub("/", SERVICES).await;
    for n in ["amy", "bob", "cat"] {
        h.state.db.users().ensure(&u(n), None).unwrap();
    }
    let (st, v) = call(
        &h,
        Method::POST,
        "/groups",
        r#"{"groups": ["staff", "lab 1"], "users": ["amy"]}"#,
        ADMIN,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(
        v[1],
        json!({"kind": "group", "name": "lab 1", "roles": [], "users": ["amy"], "properties": {}})
    );
    // All or nothing: an existing name, an unknown user or a bad name creates nothing.
    for (body, status, says) in [
        (
            r#"{"groups": ["new", "staff"]}"#,
            StatusCode::CONFLICT,
            "staff already exists",
        ),
        (
            r#"{"groups": ["new"], "users": ["zed"]}"#,
            StatusCode::BAD_REQUEST,
            "No such user: zed",
        ),
        (
            r#"{"groups": ["new", "a/b"]}"#,
            StatusCode::BAD_REQUEST,
            "invalid group name",
        ),
        (
            r#"{"groups": []}"#,
            StatusCode::BAD_REQUEST,
            "at least one group",
        ),
        (
            r#"{"groups": ["new"], "roles": []}"#,
            StatusCode::BAD_REQUEST,
            "roles",
        ),
    ] {
        let (st, v) = call(&h, Method::POST, "/groups", body, ADMIN).await;
        assert_eq!(st, status, "{body}: {v}");
        assert!(v["message"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (_, v) = call(&h, Method::GET, "/groups", "", ADMIN).await;
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["staff", "lab 1"]);

    // Members: added and removed, shown in the user model.
    let (st, v) = call(
        &h,
        Method::POST,
        "/groups/staff/users",
        r#"{"users": ["bob", "cat"]}"#,
        ADMIN,
    )
    .await;
    assert_eq!(
        (st, v["users"].clone()),
        (StatusCode::OK, json!(["amy", "bob", "cat"]))
    );
    let (st, v) = call(
        &h,
        Method::DELETE,
        "/groups/staff/users",
        r#"{"users": ["amy"]}"#,
        ADMIN,
    )
    .await;
    assert_eq!(
        (st, v["users"].clone()),
        (StatusCode::OK, json!(["bob", "cat"]))
    );
    let (_, v) = call(&h, Method::GET, "/users/bob", "", ADMIN).await;
    assert_eq!(v["groups"], json!(["staff"]));
    let (_, v) = call(&h, Method::GET, "/users?sort=name", "", ADMIN).await;
    assert_eq!(v[0]["groups"], json!(["lab 1"]));
    let (st, _) = call(
        &h,
        Method::POST,
        "/groups/staff/users",
        r#"{"users": ["zed"]}"#,
        ADMIN,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(
        &h,
        Method::POST,
        "/groups/nope/users",
        r#"{"users": ["amy"]}"#,
        ADMIN,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = call(&h, Method::POST, "/groups/staff/users", "{}", ADMIN).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("users to add"),
        "{v}"
    );

    // Properties are any JSON object.
    let (st, v) = call(
        &h,
        Method::PUT,
        "/groups/staff/properties",
        r#"{"gpu": true, "quota": 10}"#,
        ADMIN,
    )
    .await;
    assert_eq!(
        (st, v["properties"].clone()),
        (StatusCode::OK, json!({"gpu": true, "quota": 10}))
    );
    let (st, _) = call(&h, Method::PUT, "/groups/staff/properties", "[1]", ADMIN).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // One group by name, created by name, deleted; a deleted user leaves their groups.
    let (st, v) = call(
        &h,
        Method::POST,
        "/groups/solo",
        r#"{"users": ["cat"]}"#,
        ADMIN,
    )
    .await;
    assert_eq!(
        (st, v["users"].clone()),
        (StatusCode::CREATED, json!(["cat"]))
    );
    let (st, _) = call(&h, Method::POST, "/groups/solo", "", ADMIN).await;
    assert_eq!(st, StatusCode::CONFLICT);
    h.state.db.users().delete(&u("cat")).unwrap();
    let (_, v) = call(&h, Method::GET, "/groups/solo", "", ADMIN).await;
    assert_eq!(v["users"], json!([]));
    let (st, _) = call(&h, Method::DELETE, "/groups/solo", "", ADMIN).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&h, Method::GET, "/groups/solo", "", ADMIN).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Paginated like the users list.
    let (_, v) = call(&h, Method::GET, "/groups?limit=1", "", ADMIN).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let v = json_of(
        client()
            .get(url(&h, "/hub/api/groups?limit=1"))
            .header("Authorization", ADMIN)
            .header("Accept", "application/jupyterhub-pagination+json"),
    )
    .await;
    assert_eq!(v["_pagination"]["total"], 2);
    let next = v["_pagination"]["next"]["url"].as_str().unwrap();
    assert!(
        next.starts_with("http://") && next.ends_with("/hub/api/groups?offset=1&limit=1"),
        "{next}"
    );

    // None of it for a user.
    let user = {
        let amy = h.state.db.users().get(&u("amy")).unwrap().unwrap();
        h.state
            .db
            .tokens()
            .add(&sudohub::db::NewToken::api(
                amy.id,
                "amy-api-token-0123456789",
                "t",
                None,
            ))
            .unwrap();
        "token amy-api-token-0123456789"
    };
    for (method, path, body) in [
        (Method::GET, "/groups", ""),
        (Method::POST, "/groups", r#"{"groups": ["mine"]}"#),
        (Method::GET, "/groups/staff", ""),
        (Method::POST, "/groups/staff/users", r#"{"users": ["amy"]}"#),
        (Method::PUT, "/groups/staff/properties", "{}"),
        (Method::DELETE, "/groups/staff", ""),
    ] {
        let (st, _) = call(&h, method.clone(), path, body, user).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}");
    }
}
