//! The hub's HTML: minijinja templates embedded in the binary, rendered with
//! autoescaping (every `.html` template escapes every value it interpolates), so no page
//! is ever assembled from strings.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("home.html", include_str!("../templates/home.html")),
    (
        "spawn_pending.html",
        include_str!("../templates/spawn_pending.html"),
    ),
    ("token.html", include_str!("../templates/token.html")),
    ("ready.html", include_str!("../templates/ready.html")),
    ("confirm.html", include_str!("../templates/confirm.html")),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_formatter(html_formatter);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // A template that does not parse is a build mistake; the unit test below
                // parses them all, and a page that uses it reports the error.
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        env
    })
}

/// minijinja's HTML escaping, except that `/` stays `/`: escaping it buys nothing in
/// element text or quoted attributes, and URLs in pages and `<meta refresh>` stay
/// readable. `&`, `<`, `>`, `"` and `'` are escaped as always.
fn html_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if !matches!(state.auto_escape(), minijinja::AutoEscape::Html)
        || value.is_safe()
        || value.is_undefined()
        || value.is_none()
    {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = value.to_string();
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string()))
}

/// Renders template `name` with `ctx` into an HTML string.
pub fn render(name: &str, ctx: impl Serialize) -> Result<String, minijinja::Error> {
    env()
        .get_template(name)?
        .render(minijinja::value::Serde(ctx))
}

/// A page answered with `status`; a template error is logged and answered 500.
pub fn page(status: StatusCode, name: &str, ctx: impl Serialize) -> Response {
    match render(name, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "cannot render page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: a page could not be rendered; the hub's log has details",
            )
                .into_response()
        }
    }
}

/// A link on a message page.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// Where it goes.
    pub href: String,
    /// Its text.
    pub text: &'static str,
}

impl Link {
    /// A link to `href` reading `text`.
    pub fn new(href: impl Into<String>, text: &'static str) -> Self {
        Self {
            href: href.into(),
            text,
        }
    }
}

/// A page that reloads `url` after `seconds`.
#[derive(Debug, Clone, Serialize)]
pub struct Refresh {
    /// Seconds to wait.
    pub seconds: u32,
    /// What to load.
    pub url: String,
}

/// The simple page: a title, one message, links, and optionally a refresh.
#[derive(Debug, Clone, Serialize)]
pub struct Message<'a> {
    /// Heading and `<title>`.
    pub title: &'a str,
    /// The one paragraph.
    pub message: &'a str,
    /// Shown as an error.
    pub error: bool,
    /// Links under it.
    pub links: Vec<Link>,
    /// Reload after a while.
    pub refresh: Option<Refresh>,
}

impl<'a> Message<'a> {
    /// A plain message page.
    pub fn new(title: &'a str, message: &'a str) -> Self {
        Self {
            title,
            message,
            error: false,
            links: Vec::new(),
            refresh: None,
        }
    }

    /// The same, shown as an error.
    pub fn error(title: &'a str, message: &'a str) -> Self {
        Self {
            error: true,
            ..Self::new(title, message)
        }
    }

    /// Adds a link.
    pub fn link(mut self, href: impl Into<String>, text: &'static str) -> Self {
        self.links.push(Link::new(href, text));
        self
    }

    /// Reloads `url` after `seconds`.
    pub fn refresh(mut self, seconds: u32, url: impl Into<String>) -> Self {
        self.refresh = Some(Refresh {
            seconds,
            url: url.into(),
        });
        self
    }

    /// The page, answered with `status`.
    pub fn respond(&self, status: StatusCode) -> Response {
        page(status, "message.html", self)
    }
}

/// A page asking the user to confirm an action with one button: the form posts to
/// `action` with the session's XSRF token. Used where a GET must not change anything.
#[derive(Debug, Clone, Serialize)]
pub struct Confirm<'a> {
    /// Heading and `<title>`.
    pub title: &'a str,
    /// What will happen.
    pub message: &'a str,
    /// Where the form posts.
    pub action: String,
    /// The session's XSRF token.
    pub xsrf: String,
    /// The button's text.
    pub button: &'a str,
    /// A way back, if any.
    pub back: Option<String>,
    /// Its text.
    pub back_text: &'a str,
}

impl Confirm<'_> {
    /// The page (200).
    pub fn respond(&self) -> Response {
        page(StatusCode::OK, "confirm.html", self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for (name, _) in TEMPLATES {
            assert!(env().get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn values_are_escaped_and_scripts_get_json() {
        let html = render(
            "message.html",
            Message::error("<t>", "<script>alert(1)</script>").link("/a?b=\"c\"", "go"),
        )
        .unwrap();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;t&gt; · sudohub"), "{html}");
        assert!(!html.contains("\"c\""), "{html}");
        let html = render(
            "spawn_pending.html",
            serde_json::json!({"title": "x", "progress_url": "/p?_xsrf=</script><b>"}),
        )
        .unwrap();
        assert!(!html.contains("</script><b>"), "{html}");
    }
}
