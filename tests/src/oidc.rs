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

/// A Node.js script of tests/oidc serving on a loopback port; killed when dropped.
struct NodeScript {
    child: Child,
    log: std::path::PathBuf,
    port: u16,
}

impl NodeScript {
    fn start(script: &str, port: u16, env: &[(&str, String)]) -> Self {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/oidc"));
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is missing: scripts/test-deps.sh installs it into tests/oidc"
        );
        let log = std::env::temp_dir().join(format!("{}.log", crate::unique_name("node")));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("node")
            .arg(script)
            .current_dir(dir)
            .env("PORT", port.to_string())
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("node (Debian's nodejs, installed by scripts/test-deps.sh)");
        let s = Self { child, log, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{script} did not start: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn post(&self, url: String, body: &str) {
        let r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(url)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

impl Drop for NodeScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A running provider.
pub struct OidcProvider {
    node: NodeScript,
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
        let client_secret = crate::unique_name("secret");
        // The issuer's port is only known once the script has one: pick it first.
        let port = free_port();
        let issuer = format!("http://localhost:{port}");
        let node = NodeScript::start(
            "provider.mjs",
            port,
            &[
                ("ISSUER", issuer.clone()),
                ("CLIENT_ID", "sudohub".into()),
                ("CLIENT_SECRET", client_secret.clone()),
                ("REDIRECT_URI", redirect_uri.into()),
                ("USERS", users.to_string()),
            ],
        );
        Self {
            node,
            issuer,
            client_id: "sudohub".into(),
            client_secret,
        }
    }

    /// What the provider printed.
    pub fn log(&self) -> String {
        self.node.log()
    }

    /// From now on, the provider says `claims` about `sub`.
    pub async fn set_claims(&self, sub: &str, claims: serde_json::Value) {
        let body = serde_json::json!({"sub": sub, "claims": claims}).to_string();
        self.node
            .post(format!("{}/_test/claims", self.issuer), &body)
            .await;
    }

    /// Makes it misbehave: `normal`, `foreign-key`, `expired` or `wrong-aud`.
    pub async fn set_mode(&self, mode: &str) {
        self.node
            .post(format!("{}/_test/mode", self.issuer), mode)
            .await;
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

/// The stand-in for GitHub (tests/oidc/github.mjs): its web site and API on one port.
pub struct GithubStandIn {
    node: NodeScript,
    /// The client's secret (its id is `sudohub`).
    pub client_secret: String,
}

impl GithubStandIn {
    /// Starts it with `users` (`{"login", "id", "orgs": […]}`); the first signs in.
    pub fn start(users: serde_json::Value) -> Self {
        let client_secret = crate::unique_name("secret");
        let node = NodeScript::start(
            "github.mjs",
            free_port(),
            &[
                ("CLIENT_ID", "sudohub".into()),
                ("CLIENT_SECRET", client_secret.clone()),
                ("USERS", users.to_string()),
            ],
        );
        Self {
            node,
            client_secret,
        }
    }

    /// `http://127.0.0.1:<port>`, GitHub's web site (`github_url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.node.port)
    }

    /// Who signs in next.
    pub async fn set_user(&self, login: &str) {
        self.node
            .post(format!("{}/_test/user", self.url()), login)
            .await;
    }
}
