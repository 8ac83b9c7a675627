//! Forms that change state: the session must be live and the form's `_xsrf` field must
//! be that session's XSRF token, so another site cannot post them for the user.

use std::collections::HashMap;

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::session::{AuthState, Session};
use crate::secrets::same;
use crate::templates::Message;

/// A POSTed form of a logged-in user whose `_xsrf` matched.
pub struct XsrfForm {
    /// Who posted it.
    pub session: Session,
    /// Its fields.
    pub fields: HashMap<String, String>,
}

impl<S: AuthState> FromRequest<S> for XsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let Form(fields) = Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let want = session.xsrf(state.cookie_key());
        if !fields.get("_xsrf").is_some_and(|x| same(x, &want)) {
            return Err(Message::error(
                "Forbidden",
                "Your form expired; please go back and try again.",
            )
            .respond(StatusCode::FORBIDDEN));
        }
        Ok(Self { session, fields })
    }
}
