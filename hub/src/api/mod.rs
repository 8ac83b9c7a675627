//! The JupyterHub-compatible REST API under `<base>hub/api` (compat spec §2), by
//! resource: [`users`], [`servers`], [`activity`], [`tokens`], and the OAuth2 provider
//! single-user servers log in through ([`oauth`]). The JSON shapes are the structs of
//! [`models`]; every error is a [`HubError`] answered as `{"status", "message"}`.

mod activity;
mod batchspawner;
mod groups;
mod hub;
pub mod models;
mod oauth;
mod progress;
mod server_patch;
mod servers;
mod services;
mod tokens;
mod user_add;
mod users;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, OriginalUri, Path};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::error::{ErrorBody, HubError};
use crate::state::AppState;
use crate::types::Username;
use crate::JUPYTERHUB_VERSION;

pub use servers::{create_named, profile_for};

/// Routes relative to `<base>hub/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(version))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/info", get(info))
        .route("/user", get(users::whoami))
        .route("/oauth2/authorize", get(oauth::authorize))
        .route("/oauth2/token", post(oauth::token))
        .route("/users", get(users::list).post(user_add::create_many))
        .route(
            "/users/{name}",
            get(users::get_one)
                .post(user_add::create)
                .patch(users::update)
                .delete(users::delete),
        )
        .route("/users/{name}/activity", post(activity::report))
        .route(
            "/proxy",
            get(hub::routes).post(hub::sync).patch(hub::repoint),
        )
        .route("/shutdown", post(hub::shutdown))
        .route("/batchspawner", post(batchspawner::report))
        .route("/authorizations/token", post(hub::token_create_removed))
        .route("/authorizations/token/{token}", get(hub::token_owner))
        .route("/groups", get(groups::list).post(groups::create_many))
        .route(
            "/groups/{name}",
            get(groups::get_one)
                .post(groups::create)
                .delete(groups::delete),
        )
        .route(
            "/groups/{name}/users",
            post(groups::add_users).delete(groups::remove_users),
        )
        .route(
            "/groups/{name}/properties",
            axum::routing::put(groups::set_properties),
        )
        .route("/services", get(services::list))
        .route("/services/{name}", get(services::get_one))
        .route(
            "/users/{name}/server",
            get(servers::get_one)
                .post(servers::start)
                .delete(servers::stop),
        )
        .route("/users/{name}/server/progress", get(progress::progress))
        .route(
            "/users/{name}/servers/{server}",
            get(servers::get_one)
                .put(servers::create)
                .post(servers::start)
                .patch(server_patch::patch)
                .delete(servers::stop),
        )
        .route(
            "/users/{name}/servers/",
            get(servers::get_one)
                .post(servers::start)
                .delete(servers::stop),
        )
        .route(
            "/users/{name}/servers/{server}/progress",
            get(progress::progress),
        )
        .route(
            "/users/{name}/tokens",
            get(tokens::list).post(tokens::create),
        )
        .route(
            "/users/{name}/tokens/{id}",
            get(tokens::get_one).delete(tokens::delete_one),
        )
        .fallback(|OriginalUri(uri): OriginalUri| async move {
            json_error(
                StatusCode::NOT_FOUND,
                format!("No such API endpoint: {}", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, OriginalUri(uri): OriginalUri| async move {
            json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("Method {method} is not allowed on {}", uri.path()),
            )
        })
}

/// An error answer in JupyterHub's shape, for requests no handler took.
fn json_error(status: StatusCode, message: String) -> Response {
    let body = ErrorBody {
        status: status.as_u16(),
        message: Some(&message),
    };
    (status, Json(body)).into_response()
}

/// `GET <base>hub/api`: the version, without authentication (compat §1.3).
pub async fn version() -> Response {
    let mut r = Json(models::Version {
        version: JUPYTERHUB_VERSION,
    })
    .into_response();
    r.headers_mut().insert(
        "access-control-allow-origin",
        axum::http::HeaderValue::from_static("*"),
    );
    r
}

/// `GET <base>hub/api/info` (`read:hub`): versions and the spawner and authenticator.
async fn info(caller: crate::auth::Caller) -> Result<Json<models::Info>, HubError> {
    caller.require_admin("read:hub")?;
    let version = env!("CARGO_PKG_VERSION");
    Ok(Json(models::Info {
        version: JUPYTERHUB_VERSION,
        python: format!("sudohub {version}"),
        sys_executable: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        spawner: models::ClassInfo {
            class: "sudohub.SudoHelperSpawner",
            version,
        },
        authenticator: models::ClassInfo {
            class: "sudohub.PamHelperAuthenticator",
            version,
        },
    }))
}

/// The user named in the path: `/users/{name}/…`. A name that is no valid user name
/// names nobody: 404.
pub struct UserPath(pub Username);

impl<S: Send + Sync> FromRequestParts<S> for UserPath {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = match Path::<Vec<(String, String)>>::from_request_parts(parts, state).await {
            Ok(Path(params)) => params
                .into_iter()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v),
            Err(_) => None,
        };
        let raw = raw.unwrap_or_default();
        Username::parse(&raw)
            .map(Self)
            .map_err(|_| HubError::not_found(format!("No such user: {raw}")))
    }
}

/// A whole-number query parameter; negative values count from zero as JupyterHub's do.
pub(super) fn number(
    q: &HashMap<String, String>,
    key: &str,
    default: usize,
) -> Result<usize, HubError> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .map(|n| usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX))
            .map_err(|_| {
                HubError::bad_request("Invalid argument type, offset and limit must be integers")
            }),
    }
}

/// Whether the client asked for JupyterHub's pagination envelope (`Accept:
/// application/jupyterhub-pagination+json`).
pub(super) fn accepts_pagination(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .any(|t| t.trim() == "application/jupyterhub-pagination+json")
        })
}

/// Where a page of a list is in the whole.
pub(super) struct Page {
    offset: usize,
    limit: usize,
    total: usize,
}

impl Page {
    /// JupyterHub's pagination envelope around `items`, with the next page's URL.
    fn envelope<T>(
        &self,
        s: &crate::state::AppState,
        headers: &axum::http::HeaderMap,
        uri: &axum::http::Uri,
        items: Vec<T>,
    ) -> models::Paginated<T> {
        let next_offset = self.offset + self.limit;
        let next = (next_offset < self.total).then(|| models::NextPage {
            offset: next_offset,
            limit: self.limit,
            url: next_url(s, headers, uri, next_offset, self.limit),
        });
        models::Paginated {
            items,
            pagination: models::Pagination {
                offset: self.offset,
                limit: self.limit,
                total: self.total,
                next,
            },
        }
    }
}

/// The URL of the next page: this request's, every other parameter kept (a filtered
/// walk stays filtered), `offset` and `limit` replaced.
fn next_url(
    s: &crate::state::AppState,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
    offset: usize,
    limit: usize,
) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = if s.cfg.tls()
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"))
    {
        "https"
    } else {
        "http"
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if k != "offset" && k != "limit" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("offset", &offset.to_string());
    query.append_pair("limit", &limit.to_string());
    format!("{scheme}://{host}{}?{}", uri.path(), query.finish())
}

/// Parses a JSON request body into `T`; `None` for an empty body. Errors name what is
/// wrong: not JSON, not an object, or which field has the wrong type.
pub fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<Option<T>, HubError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
        return Err(HubError::bad_request("Invalid JSON in body of request"));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(HubError::bad_request("the body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de)
        .map(Some)
        .map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                HubError::bad_request(inner.to_string())
            } else {
                HubError::bad_request(format!("`{path}`: {inner}"))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        #[allow(dead_code)]
        note: Option<String>,
    }

    #[test]
    fn bodies_are_parsed_with_errors_that_name_the_problem() {
        assert!(json_body::<T>(b"  ").unwrap().is_none());
        assert!(json_body::<T>(br#"{"note": "x"}"#).unwrap().is_some());
        for (body, says) in [
            (&b"{not json"[..], "Invalid JSON"),
            (b"[1]", "object"),
            (br#"{"note": 7}"#, "`note`"),
            (br#"{"nope": 1}"#, "nope"),
        ] {
            let e = json_body::<T>(body).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            assert!(e.public_message().contains(says), "{e}");
        }
    }
}
