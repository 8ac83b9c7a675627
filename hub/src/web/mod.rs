//! The hub's HTML pages under `<base>hub/`: [`login`] and logout, [`signup`], the
//! hub's own [`accounts`] (authorize, change password), [`home`], [`spawn`] and its
//! progress page, the pages of a [`user`]'s stopped server, and the [`token`] page. Pages are rendered from templates ([`crate::templates`]); a page that needs a
//! login takes a [`Session`](crate::auth::Session), a form that changes state an
//! [`XsrfForm`](crate::auth::XsrfForm).

mod accounts;
mod admin;
mod home;
mod login;
mod metrics;
mod oauth;
mod signup;
mod spawn;
mod token;
mod two_factor;
mod user;

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

pub use home::root;

use crate::error::HubError;
use crate::state::AppState;
use crate::templates::Message;

/// Routes of the pages, relative to `<base>hub`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", get(login::logout_page).post(login::logout))
        .route("/oauth_login", get(oauth::start))
        .route("/oauth_callback", get(oauth::callback))
        .route("/signup", get(signup::form).post(signup::submit))
        .route("/authorize", get(accounts::authorize))
        .route("/authorize/{name}", post(accounts::decide))
        .route(
            "/change-password",
            get(accounts::own_form).post(accounts::own_submit),
        )
        .route("/two-factor", get(two_factor::show).post(two_factor::act))
        .route(
            "/change-password/{name}",
            get(accounts::admin_form).post(accounts::admin_submit),
        )
        .route("/home", get(home::home))
        .route("/admin", get(admin::page))
        .route("/spawn", get(spawn::page_self).post(spawn::spawn_self))
        .route(
            "/spawn/{user}",
            get(spawn::page_user).post(spawn::spawn_user),
        )
        .route(
            "/spawn/{user}/{server}",
            get(spawn::page_user).post(spawn::spawn_user),
        )
        .route("/spawn-pending/{user}", get(spawn::pending))
        .route("/spawn-pending/{user}/{server}", get(spawn::pending))
        .route("/stop", post(home::stop))
        .route("/user/{user}", get(user::not_running))
        .route("/user/{user}/", get(user::not_running))
        .route("/user/{user}/{*rest}", get(user::not_running))
        .route("/user-redirect/{*rest}", get(user::redirect))
        .route("/token", get(token::page).post(token::create))
        .route("/token/revoke", post(token::revoke))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/metrics", get(metrics::scrape))
}

/// A 403 page saying `message`.
fn forbidden(message: &str) -> Response {
    Message::error("Forbidden", message).respond(StatusCode::FORBIDDEN)
}

/// A page for an error: what the client may know, the rest in the log.
fn error_page(e: &HubError) -> Response {
    e.log();
    Message::error("Error", e.public_message()).respond(e.status())
}
