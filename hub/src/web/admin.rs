//! `/hub/admin`: the admin page. Its script acts only through the REST API, like any
//! other client, with the same scope checks.
//!
//! The REST API refuses the login cookie from scripts (see [`crate::auth::fetch`]): on a
//! shared origin a user's server could send the same requests. So the page carries an
//! API token of its own, made when an admin loads it, bound to their login session
//! (signing out revokes it) and expiring after [`PAGE_TOKEN_SECS`]. No other page can
//! read it: hub pages load only as top-level windows of their own browsing context group
//! (`Cross-Origin-Opener-Policy`), never in a frame or by `fetch()`, and the script sends
//! it with `credentials: "omit"`, so no cookie rides along.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{error_page, forbidden};
use crate::auth::Session;
use crate::db::NewToken;
use crate::secrets::new_api_token;
use crate::state::AppState;
use crate::templates;

/// How long the page's token lives: a working day; a reload makes a new one.
pub const PAGE_TOKEN_SECS: i64 = 12 * 3600;

/// What the page's script needs, handed over as one JSON value.
#[derive(Serialize)]
struct PageData {
    api: String,
    token: String,
    me: String,
    user_prefix: String,
}

#[derive(Serialize)]
struct AdminPage<'a> {
    title: &'static str,
    wide: bool,
    user: &'a str,
    home: String,
    logout: String,
    /// `/hub/authorize` and how many sign-ups wait there, with accounts of the hub's own.
    authorize: Option<(String, usize)>,
    /// The first sign-ups waiting, to decide here (forms with the session's XSRF token).
    signups: Vec<Signup>,
    xsrf: String,
    data: PageData,
}

/// A sign-up waiting for approval, as the admin page lists it.
#[derive(Serialize)]
struct Signup {
    name: String,
    email: String,
    created: String,
    action: String,
}

/// Most waiting sign-ups the admin page lists (the rest are at `/hub/authorize`).
const SIGNUPS_SHOWN: usize = 20;

/// `GET /hub/admin`: the page, for admins only.
pub async fn page(State(s): State<AppState>, sess: Session) -> Response {
    if !sess.user.admin {
        return forbidden("The admin page is for admins only.");
    }
    let token = new_api_token();
    let added = s.db.tokens().add(&NewToken {
        session_id: Some(&sess.session_id),
        ..NewToken::api(sess.user.id, &token, "admin page", Some(PAGE_TOKEN_SECS))
    });
    if let Err(e) = added {
        return error_page(&e.into());
    }
    let u = &s.urls;
    let (authorize, signups) = if s.auth.rules().uses(crate::config::SourceKind::Native) {
        let read = s.db.native().pending_count().and_then(|n| {
            let first = s.db.native().list(SIGNUPS_SHOWN)?;
            Ok((n, first))
        });
        match read {
            Ok((n, first)) => {
                let waiting = first
                    .into_iter()
                    .filter(|a| a.status == crate::db::AccountStatus::Pending)
                    .map(|a| Signup {
                        action: u.hub_page(&format!("authorize/{}", a.name)),
                        name: a.name.to_string(),
                        email: a.email.unwrap_or_default(),
                        created: a.created,
                    })
                    .collect();
                (Some((u.hub_page("authorize"), n)), waiting)
            }
            Err(e) => return error_page(&e.into()),
        }
    } else {
        (None, Vec::new())
    };
    let ctx = AdminPage {
        title: "Admin",
        wide: true,
        user: sess.user.name.as_str(),
        home: u.hub_page("home"),
        logout: u.hub_page("logout"),
        authorize,
        signups,
        xsrf: sess.xsrf(&s.key),
        data: PageData {
            api: u.api(),
            token,
            me: sess.user.name.to_string(),
            user_prefix: format!("{}user/", u.base()),
        },
    };
    templates::page(StatusCode::OK, "admin.html", ctx)
}
