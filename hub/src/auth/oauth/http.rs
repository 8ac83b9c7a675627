//! The HTTP client that talks to identity providers: reqwest with the hub's rustls, no
//! redirects followed (a provider's answer never sends the hub elsewhere), a deadline on
//! every request and a bound on every answer.

use std::time::Duration;

/// Largest answer read from a provider.
const MAX_BODY: usize = 1 << 20;

/// A failed request to the provider.
#[derive(Debug)]
pub struct HttpError(pub String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// Builds the client: the system's roots, and `extra_ca` (PEM) when given.
pub fn client(
    timeout: Duration,
    extra_ca: Option<&std::path::Path>,
) -> Result<reqwest::Client, String> {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("sudohub/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = extra_ca {
        let pem = std::fs::read(path)
            .map_err(|e| format!("[auth.oauth] tls_ca_file {}: {e}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("[auth.oauth] tls_ca_file {}: {e}", path.display()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    b.build()
        .map_err(|e| format!("the HTTP client for [auth.oauth]: {e}"))
}

/// The client as the oauth2/openidconnect crates call it: each request owns what it
/// uses, so the futures are `Send` whatever the borrows around them.
#[derive(Clone)]
pub struct Http(pub reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, req: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(send(self.0.clone(), req))
    }
}

/// Sends one request of the oauth2/openidconnect crates.
async fn send(
    http: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(describe(e)))?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let body = read_bounded(resp).await?;
    out.body(body).map_err(|e| HttpError(e.to_string()))
}

/// The body of `resp`, at most [`MAX_BODY`] bytes.
pub async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError(describe(e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError("the provider's answer is too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request error with its cause, and without the URL's query (which may hold a code).
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}
