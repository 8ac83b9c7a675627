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
    ("admin.html", include_str!("../templates/admin.html")),
    ("signup.html", include_str!("../templates/signup.html")),
    (
        "authorize.html",
        include_str!("../templates/authorize.html"),
    ),
    (
        "change_password.html",
        include_str!("../templates/change_password.html"),
    ),
    (
        "two_factor.html",
        include_str!("../templates/two_factor.html"),
    ),
];

static ENV: OnceLock<Environment<'static>> = OnceLock::new();

fn env() -> &'static Environment<'static> {
    ENV.get_or_init(|| {
        build(&[]).unwrap_or_else(|e| {
            // Only overrides can fail, and there are none here; the unit test below
            // parses every embedded template.
            tracing::error!(error = %e, "templates");
            Environment::new()
        })
    })
}

/// The embedded templates, each replaced by a file of the same name in the first of
/// `overrides` that has one (JupyterHub's `template_paths`); a file that names no
/// embedded template is added too (for `{% include %}`). An override that cannot be read
/// or does not parse is an error naming the file, so a bad one stops the hub at start
/// instead of breaking a page later.
pub fn build(overrides: &[std::path::PathBuf]) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    env.set_formatter(html_formatter);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .map_err(|e| format!("embedded template {name}: {e}"))?;
    }
    // Later directories first, so the first one that has a file wins.
    for dir in overrides.iter().rev() {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("template_paths {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("template_paths {}: {e}", dir.display()))?
                .path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            if !name.ends_with(".html") || !path.is_file() {
                continue;
            }
            let source = std::fs::read_to_string(&path)
                .map_err(|e| format!("template {}: {e}", path.display()))?;
            env.add_template_owned(name, source)
                .map_err(|e| format!("template {}: {e}", path.display()))?;
        }
    }
    Ok(env)
}

/// Uses `overrides` (checked: see [`build`]) for every page from now on. Called once at
/// start, before the first page; later calls change nothing.
pub fn install(overrides: &[std::path::PathBuf]) -> Result<(), String> {
    let env = build(overrides)?;
    let _ = ENV.set(env);
    Ok(())
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

    /// The page, answered with `status`. An error status is shown on the page; a 503
    /// (a server down or reconnecting) reloads itself every [`RETRY_503_SECS`] unless the
    /// page says where to go instead.
    pub fn respond(&self, status: StatusCode) -> Response {
        let mut shown = self.clone();
        if status == StatusCode::SERVICE_UNAVAILABLE && shown.refresh.is_none() {
            shown.refresh = Some(Refresh {
                seconds: RETRY_503_SECS,
                url: String::new(),
            });
        }
        let ctx = Shown {
            message: shown,
            code: status.is_client_error() || status.is_server_error(),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or(""),
        };
        page(status, "message.html", ctx)
    }
}

/// Seconds between the reloads of a 503 page.
pub const RETRY_503_SECS: u32 = 5;

/// A message page with its status.
#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    message: Message<'a>,
    /// Whether to show the status (an error).
    code: bool,
    status: u16,
    reason: &'static str,
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
    /// Choices sent as the form's `profile` field (the Slurm profiles), the first checked.
    pub options: Vec<Choice>,
    /// What the choices are about.
    pub options_legend: &'a str,
}

/// One choice of a [`Confirm`] form.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    /// The value sent.
    pub name: String,
    /// What it means.
    pub description: String,
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

    /// `template_paths`: a file replaces the built-in page of its name (the first
    /// directory wins), still autoescaped; a bad one is an error naming the file.
    #[test]
    fn overrides_replace_pages_and_bad_ones_are_refused() {
        let root = std::env::temp_dir().join(format!("sudohub-tpl-{}", std::process::id()));
        let (first, second) = (root.join("first"), root.join("second"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(
            first.join("message.html"),
            "{% extends \"base.html\" %}{% block body %}OURS {{ message }}{% endblock %}",
        )
        .unwrap();
        std::fs::write(second.join("message.html"), "SECOND").unwrap();
        let env = build(&[first.clone(), second.clone()]).unwrap();
        let html = env
            .get_template("message.html")
            .unwrap()
            .render(minijinja::context! { title => "t", message => "<b>" })
            .unwrap();
        assert!(html.contains("OURS &lt;b&gt;"), "{html}");
        assert!(env.get_template("login.html").is_ok(), "the others stay");

        std::fs::write(second.join("home.html"), "{% if %}").unwrap();
        let e = build(&[first.clone(), second.clone()]).unwrap_err();
        assert!(e.contains("home.html"), "{e}");
        let e = build(&[root.join("missing")]).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Error pages show their status; a 503 reloads itself unless it says where to go;
    /// a plain message shows no status.
    #[test]
    fn error_pages_show_their_status_and_a_503_retries() {
        let body = |r: Response| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let bytes = rt
                .block_on(axum::body::to_bytes(r.into_body(), 1 << 20))
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        let html = body(Message::error("Forbidden", "No.").respond(StatusCode::FORBIDDEN));
        assert!(html.contains("403 · Forbidden"), "{html}");
        assert!(!html.contains("http-equiv=\"refresh\""), "{html}");
        let html = body(Message::error("Down", "Down.").respond(StatusCode::SERVICE_UNAVAILABLE));
        assert!(html.contains("503 · Service Unavailable"), "{html}");
        assert!(
            html.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
            "{html}"
        );
        assert!(html.contains("tries again every 5 s"), "{html}");
        let html = body(
            Message::new("Reconnecting", "Soon.")
                .refresh(2, "/user/a/")
                .respond(StatusCode::SERVICE_UNAVAILABLE),
        );
        assert!(html.contains("content=\"2; url=/user/a/\""), "{html}");
        let html = body(Message::new("Done", "Fine.").respond(StatusCode::OK));
        assert!(!html.contains("200"), "{html}");
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
