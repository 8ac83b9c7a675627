//! The hub's HTML pages (login, home, spawn, not-running, tokens), its cookies, and the
//! small HTML helpers every page uses. Pages are server-rendered and self-contained: no
//! external assets, every interpolated value escaped.

pub mod pages;
pub mod session;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a name for a URL path segment, keeping `@` and `~` like JupyterHub.
pub fn urlquote(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'@');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Percent-encodes a whole value for a query string.
pub fn query_escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A complete page around `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · sudohub</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#222;line-height:1.5}}
h1{{font-size:1.5rem}} a{{color:#0b62a4}} .err{{color:#a40b0b}} .muted{{color:#666}}
input,button{{font:inherit;padding:.4rem .6rem;margin:.2rem 0}} label{{display:block;margin-top:.6rem}}
button{{cursor:pointer}} form.inline{{display:inline}} table{{border-collapse:collapse}} td,th{{padding:.2rem .6rem;text-align:left}}
progress{{width:100%}} code{{background:#f3f3f3;padding:.1rem .3rem}}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>"#,
        title = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(urlquote("a b@c~d/e"), "a%20b@c~d%2Fe");
    }
}
