//! The hub's one error type for requests: what went wrong, where it came from, and the
//! HTTP status it maps to — as pingora tags an error with its source, so that the log
//! says whose fault it was and the client is told only what it may know.

use std::fmt;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The request itself: bad input, no credentials, no rights, nothing there.
    Client,
    /// A user's server or a service behind the proxy.
    Upstream,
    /// A privileged helper (spawner or PAM) or sudo.
    Helper,
    /// SQLite.
    Database,
    /// A bug or an impossible state in the hub.
    Internal,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Upstream => "upstream",
            Self::Helper => "helper",
            Self::Database => "database",
            Self::Internal => "internal",
        }
    }
}

/// An error answered to a request.
#[derive(Debug, Clone)]
pub struct HubError {
    source: Source,
    status: StatusCode,
    message: String,
}

impl HubError {
    /// An error of `source` answered with `status`.
    pub fn new(source: Source, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            source,
            status,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Source::Client, StatusCode::BAD_REQUEST, message)
    }

    /// 403: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Source::Client, StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Source::Client, StatusCode::NOT_FOUND, message)
    }

    /// 409: it exists already.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Source::Client, StatusCode::CONFLICT, message)
    }

    /// 500 from a helper.
    pub fn helper(message: impl Into<String>) -> Self {
        Self::new(Source::Helper, StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 500: a bug or an impossible state.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Source::Internal, StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Where it came from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the client is told. Errors of the hub's own making say only that something
    /// failed; their details go to the log ([`HubError::log`]).
    pub fn public_message(&self) -> &str {
        match self.source {
            Source::Database => "database error; the hub's log has details",
            Source::Internal => "internal error; the hub's log has details",
            _ => &self.message,
        }
    }

    /// Logs errors that are not the client's doing, once, where they are answered.
    pub fn log(&self) {
        match self.source {
            Source::Client => {}
            Source::Upstream => {
                tracing::warn!(source = self.source.as_str(), status = self.status.as_u16(), error = %self.message, "request failed")
            }
            _ => {
                tracing::error!(source = self.source.as_str(), status = self.status.as_u16(), error = %self.message, "request failed")
            }
        }
    }
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.source.as_str(), self.message)
    }
}

impl std::error::Error for HubError {}

impl From<rusqlite::Error> for HubError {
    fn from(e: rusqlite::Error) -> Self {
        Self::new(
            Source::Database,
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )
    }
}

/// `{"status": N, "message": …}`, JupyterHub's error body.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The HTTP status.
    pub status: u16,
    /// What went wrong.
    pub message: Option<&'a str>,
}

/// The JSON answer of the API: JupyterHub's error shape.
impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        self.log();
        let body = ErrorBody {
            status: self.status.as_u16(),
            message: Some(self.public_message()),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_details_stay_in_the_log() {
        let e = HubError::from(rusqlite::Error::InvalidQuery);
        assert_eq!(e.source(), Source::Database);
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.public_message().contains("query"));
        assert_eq!(
            HubError::not_found("No such user").public_message(),
            "No such user"
        );
    }
}
