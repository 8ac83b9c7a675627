//! A browser-like HTTP client: a cookie jar, forms with the `_xsrf` field, and redirects
//! followed one by one so that tests can assert every hop of the login and OAuth dances.

use std::sync::Arc;

use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{StatusCode, Url};

/// One visited response: where it was, its status, headers and body.
#[derive(Debug)]
pub struct Page {
    /// The URL that was requested.
    pub url: Url,
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The `Location` of a redirect, resolved against this page's URL.
    pub fn location(&self) -> Option<Url> {
        let loc = self.headers.get(LOCATION)?.to_str().ok()?;
        self.url.join(loc).ok()
    }

    /// The value of the hidden `_xsrf` field of the first form on the page.
    pub fn xsrf_field(&self) -> Option<String> {
        let at = self.body.find("name=\"_xsrf\"")?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let v = tag.find("value=\"")? + "value=\"".len();
        let end = tag[v..].find('"')?;
        Some(tag[v..v + end].to_owned())
    }
}

/// A cookie-keeping client that never follows redirects on its own.
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with an empty cookie jar.
    pub fn new() -> Self {
        crate::tls::install_provider();
        Self::build(reqwest::Client::builder())
    }

    /// A browser that trusts exactly the certificates in `tls` (see [`crate::tls`]).
    pub fn trusting(tls: &crate::tls::ClientTls) -> Self {
        crate::tls::install_provider();
        Self::build(reqwest::Client::builder().tls_backend_preconfigured(tls.config().clone()))
    }

    /// A browser that finds each of `hosts` at its address, as chromium finds every
    /// `*.localhost` on the loopback.
    pub fn resolving(hosts: &[(&str, std::net::SocketAddr)]) -> Self {
        crate::tls::install_provider();
        let builder = hosts
            .iter()
            .fold(reqwest::Client::builder(), |b, (h, a)| b.resolve(h, *a));
        Self::build(builder)
    }

    /// [`Self::resolving`] that trusts exactly the certificates in `tls`.
    pub fn trusting_resolving(
        tls: &crate::tls::ClientTls,
        hosts: &[(&str, std::net::SocketAddr)],
    ) -> Self {
        crate::tls::install_provider();
        let builder = hosts.iter().fold(
            reqwest::Client::builder().tls_backend_preconfigured(tls.config().clone()),
            |b, (h, a)| b.resolve(h, *a),
        );
        Self::build(builder)
    }

    fn build(builder: reqwest::ClientBuilder) -> Self {
        let jar = Arc::new(Jar::default());
        let client = builder
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("build http client");
        Self { client, jar }
    }

    /// The underlying client, for requests with custom headers.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The value of cookie `name` as the browser would send it to `url`.
    pub fn cookie(&self, url: &Url, name: &str) -> Option<String> {
        let header = self.jar.cookies(url)?;
        header.to_str().ok()?.split("; ").find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// The whole `Cookie` header the browser would send to `url`.
    pub fn cookie_header(&self, url: &Url) -> Option<String> {
        self.jar.cookies(url)?.to_str().ok().map(str::to_owned)
    }

    /// GET `url` without following redirects.
    pub async fn get(&self, url: &Url) -> Page {
        let resp = self.client.get(url.clone()).send().await;
        Self::page(url, resp.unwrap_or_else(|e| panic!("GET {url}: {e}"))).await
    }

    /// POST a form to `url` without following redirects.
    pub async fn post_form(&self, url: &Url, form: &[(&str, &str)]) -> Page {
        let resp = self.client.post(url.clone()).form(form).send().await;
        Self::page(url, resp.unwrap_or_else(|e| panic!("POST {url}: {e}"))).await
    }

    /// GET `url` and follow redirects (at most `max`), returning every hop.
    pub async fn follow(&self, url: &Url, max: usize) -> Vec<Page> {
        let mut hops = vec![self.get(url).await];
        while hops.len() <= max {
            let Some(next) = hops
                .last()
                .and_then(|p| p.status.is_redirection().then(|| p.location()).flatten())
            else {
                break;
            };
            hops.push(self.get(&next).await);
        }
        hops
    }

    async fn page(url: &Url, resp: reqwest::Response) -> Page {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Page {
            url: url.clone(),
            status,
            headers,
            body,
        }
    }
}
