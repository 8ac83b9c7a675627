//! A real OpenID Connect provider for one test: `oidc-provider` from the npm registry
//! (tests/oidc, installed by scripts/test-deps.sh) run by Node.js on a loopback port, with
//! one confidential client and the users the test gives. Its issuer is
//! `http://localhost:<port>`, so that its cookies never mix with the hub's on 127.0.0.1.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};

use crate::browser::{Browser, Page};
use crate::hub::free_port;

/// A running provider.
pub struct OidcProvider {
    child: Child,
    log: std::path::PathBuf,
    /// `http://localhost:<port>`.
    pub issuer: String,
    /// The client's id.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: String,
}

impl OidcProvider {
    /// Starts the provider for a client whose callback is `redirect_uri`, with `users`
    /// (`{"sub": …, "claims": {…}}`; the `sub` is the name typed on its login form).
    pub fn start(redirect_uri: &str, users: serde_json::Value) -> Self {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/oidc"));
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is missing: scripts/test-deps.sh installs it into tests/oidc"
        );
        let port = free_port();
        let issuer = format!("http://localhost:{port}");
        let client_secret = crate::unique_name("secret");
        let log = std::env::temp_dir().join(format!("{}.log", crate::unique_name("oidc")));
        let child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(dir)
            .env("PORT", port.to_string())
            .env("ISSUER", &issuer)
            .env("CLIENT_ID", "sudohub")
            .env("CLIENT_SECRET", &client_secret)
            .env("REDIRECT_URI", redirect_uri)
            .env("USERS", users.to_string())
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .expect("node (Debian's nodejs, installed by scripts/test-deps.sh)");
        let p = Self {
            child,
            log,
            issuer,
            client_id: "sudohub".into(),
            client_secret,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "oidc-provider did not start: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// What the provider printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Makes it misbehave: `normal`, `foreign-key`, `expired` or `wrong-aud`.
    pub async fn set_mode(&self, mode: &str) {
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/_test/mode", self.issuer))
            .body(mode.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    /// Signs `login` in on the provider's own pages, starting from the hub's redirect
    /// `to_provider`: the provider's redirect back to the hub (with `code` and `state`),
    /// not followed.
    pub async fn sign_in(&self, b: &Browser, to_provider: &Url, login: &str) -> Url {
        let auth = b.get(to_provider).await;
        assert_eq!(
            auth.status,
            StatusCode::SEE_OTHER,
            "{}\n{}",
            auth.body,
            self.log()
        );
        let interaction = auth.location().unwrap();
        assert!(
            interaction.path().starts_with("/interaction/"),
            "{interaction}"
        );
        let done = b
            .post_form(
                &interaction,
                &[("prompt", "login"), ("login", login), ("password", "any")],
            )
            .await;
        let resume = expect_redirect(&done);
        let back = b.get(&resume).await;
        expect_redirect(&back)
    }
}

fn expect_redirect(p: &Page) -> Url {
    assert!(
        p.status.is_redirection(),
        "{} {}: {}",
        p.url,
        p.status,
        p.body
    );
    p.location().unwrap()
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
