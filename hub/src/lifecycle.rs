//! The life cycle of users' servers: stopped → starting → running → stopping → stopped,
//! through the spawner helper, with the database kept in step at every transition and the
//! proxy route added only once the server answers HTTP.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::config::HubConfig;
use crate::db::{client_id, Db, UserRow};
use crate::proxy::RouteTable;
use crate::reattach::{ReattachHandler, VerifiedClaim};
use crate::spawner::{Ending, ServerHandle, SpawnArgs, SpawnerClient};
use crate::tokens::new_api_token;
use crate::web::urlquote;

/// How long helpers of servers recorded as running get to re-attach after a hub start
/// before those servers are marked stopped.
const REATTACH_GRACE: Duration = Duration::from_secs(60);

/// Where a user's (default) server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// No server.
    Stopped,
    /// A spawn is in progress.
    Starting,
    /// Running and routed.
    Running,
    /// A stop is in progress.
    Stopping,
    /// The last spawn failed, with this reason.
    Failed(String),
}

/// The spawn progress a page or the SSE endpoint shows (compat §3.5).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Events so far, each a JSON object.
    pub events: Vec<serde_json::Value>,
    /// Set once the spawn has succeeded or failed.
    pub done: bool,
}

struct Live {
    state: ServerState,
    handle: Option<ServerHandle>,
    progress: watch::Sender<Progress>,
}

/// All servers of this hub.
#[derive(Clone)]
pub struct Servers {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Arc<HubConfig>,
    db: Db,
    spawner: SpawnerClient,
    routes: RouteTable,
    live: Mutex<HashMap<String, Live>>,
}

/// Why a start was not begun.
#[derive(Debug, PartialEq, Eq)]
pub enum StartError {
    /// Already running.
    Running,
    /// A start or stop is in progress.
    Pending,
}

impl Servers {
    /// The server manager.
    pub fn new(cfg: Arc<HubConfig>, db: Db, routes: RouteTable) -> Self {
        let spawner = SpawnerClient::new(cfg.spawner.sudo.clone(), cfg.spawner.helper.clone());
        Self {
            inner: Arc::new(Inner {
                cfg,
                db,
                spawner,
                routes,
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The URL path of a user's server: `<base_url>user/<name>/`.
    pub fn prefix(&self, user: &str) -> String {
        format!("{}user/{}/", self.inner.cfg.base_url, urlquote(user))
    }

    /// The state of `user`'s default server.
    pub fn state(&self, user: &str) -> ServerState {
        if let Some(l) = self.live().get(user) {
            return l.state.clone();
        }
        match self.inner.db.server(user, "") {
            Ok(Some(row)) if row.state == "running" => ServerState::Running,
            Ok(Some(_)) => ServerState::Starting,
            _ => ServerState::Stopped,
        }
    }

    /// Whether `user`'s server is recorded running but its helper has not dialled back
    /// since this hub started: the short window after a hub restart, before re-attach.
    pub fn reconnecting(&self, user: &str) -> bool {
        if self.live().get(user).is_some_and(|l| l.handle.is_some()) {
            return false;
        }
        matches!(self.inner.db.server(user, ""), Ok(Some(row)) if row.state == "running")
    }

    /// The progress of the current or last spawn of `user`.
    pub fn progress(&self, user: &str) -> Option<watch::Receiver<Progress>> {
        self.live().get(user).map(|l| l.progress.subscribe())
    }

    /// Begins a spawn of `user`'s default server in the background.
    pub fn start(&self, user: &UserRow) -> Result<(), StartError> {
        let (tx, _) = watch::channel(Progress::default());
        {
            let mut live = self.live();
            match live.get(&user.name).map(|l| &l.state) {
                Some(ServerState::Running) => return Err(StartError::Running),
                Some(ServerState::Starting | ServerState::Stopping) => {
                    return Err(StartError::Pending)
                }
                _ => {}
            }
            if matches!(self.state_from_db(&user.name), ServerState::Running) {
                return Err(StartError::Running);
            }
            live.insert(
                user.name.clone(),
                Live {
                    state: ServerState::Starting,
                    handle: None,
                    progress: tx,
                },
            );
        }
        let this = self.clone();
        let user = user.clone();
        tokio::spawn(async move { this.run_spawn(user).await });
        Ok(())
    }

    fn state_from_db(&self, user: &str) -> ServerState {
        match self.inner.db.server(user, "") {
            Ok(Some(r)) if r.state == "running" => ServerState::Running,
            _ => ServerState::Stopped,
        }
    }

    fn event(&self, user: &str, ev: serde_json::Value, done: bool) {
        if let Some(l) = self.live().get(user) {
            l.progress.send_modify(|p| {
                p.events.push(ev);
                p.done |= done;
            });
        }
    }

    async fn run_spawn(&self, user: UserRow) {
        let name = user.name.clone();
        match self.spawn_steps(&user).await {
            Ok(()) => {}
            Err(reason) => {
                tracing::warn!(user = %name, %reason, "spawn failed");
                let _ = self.inner.db.server_stopped(&name, "");
                self.event(
                    &name,
                    json!({"progress": 100, "failed": true, "message": format!("Spawn failed: {reason}")}),
                    true,
                );
                if let Some(l) = self.live().get_mut(&name) {
                    l.state = ServerState::Failed(reason);
                    l.handle = None;
                }
            }
        }
    }

    async fn spawn_steps(&self, user: &UserRow) -> Result<(), String> {
        let cfg = &self.inner.cfg;
        let db = &self.inner.db;
        let name = &user.name;
        self.event(
            name,
            json!({"progress": 0, "message": "Server requested"}),
            false,
        );
        let port = pick_port(cfg.spawner.port_range).ok_or("no free port in spawner.port_range")?;
        db.server_starting(name, "", port)
            .map_err(|e| format!("database: {e}"))?;
        tracing::info!(user = %name, port, "server starting");
        let prefix = self.prefix(name);
        let token = new_api_token();
        db.register_server_client(
            user,
            "",
            &token,
            &format!("{prefix}oauth_callback"),
            &format!("Server at {prefix}"),
        )
        .map_err(|e| format!("database: {e}"))?;
        let env = server_env(cfg, name, &prefix, &token);
        self.event(
            name,
            json!({"progress": 50, "message": "Spawning server..."}),
            false,
        );
        let args = SpawnArgs {
            user: name.clone(),
            server_name: String::new(),
            port,
            env,
        };
        let handle = self
            .inner
            .spawner
            .spawn(args, Duration::from_secs(cfg.spawner.start_timeout_secs))
            .await
            .map_err(|e| e.to_string())?;
        let pid = handle.pid();
        db.server_running(name, "", pid)
            .map_err(|e| format!("database: {e}"))?;
        if let Err(reason) = wait_http(
            port,
            &prefix,
            Duration::from_secs(cfg.spawner.http_timeout_secs),
            &handle,
        )
        .await
        {
            let _ = handle
                .stop(Duration::from_secs(cfg.spawner.stop_grace_secs))
                .await;
            return Err(reason);
        }
        self.inner
            .routes
            .set_user(name, SocketAddr::from(([127, 0, 0, 1], port)));
        if let Some(l) = self.live().get_mut(name) {
            l.state = ServerState::Running;
            l.handle = Some(handle.clone());
        }
        tracing::info!(user = %name, pid, port, "server running; route added");
        self.event(
            name,
            json!({"progress": 100, "ready": true, "message": format!("Server ready at {prefix}"),
                   "html_message": format!("Server ready at <a href=\"{prefix}\">{prefix}</a>"), "url": prefix}),
            true,
        );
        self.watch_exit(name.clone(), handle);
        Ok(())
    }

    /// When the helper pushes the exit, the server is stopped at once: route, row, token
    /// and OAuth client go.
    fn watch_exit(&self, user: String, handle: ServerHandle) {
        let this = self.clone();
        tokio::spawn(async move {
            match handle.ended().await {
                Ending::Exited(status) => {
                    tracing::info!(user = %user, %status, "server exited");
                    this.cleanup(&user);
                }
                Ending::Lost => {
                    // The helper keeps supervising and will dial the re-attach socket.
                    tracing::warn!(user = %user, "lost the connection to the spawner helper");
                    if let Some(l) = this.live().get_mut(&user) {
                        l.handle = None;
                    }
                }
            }
        });
    }

    fn cleanup(&self, user: &str) {
        self.inner.routes.remove_user(user);
        if let Err(e) = self.inner.db.server_stopped(user, "") {
            tracing::error!(user = %user, error = %e, "cannot record the stop");
        }
        self.live().remove(user);
        tracing::info!(user = %user, "server stopped; route removed");
    }

    /// Stops `user`'s server and returns once it is gone.
    pub async fn stop(&self, user: &str) {
        let handle = {
            let mut live = self.live();
            let Some(l) = live.get_mut(user) else {
                drop(live);
                if self.inner.db.server(user, "").ok().flatten().is_some() {
                    self.cleanup(user);
                }
                return;
            };
            l.state = ServerState::Stopping;
            l.handle.clone()
        };
        self.inner.routes.remove_user(user);
        let _ = self.inner.db.server_stopping(user, "");
        tracing::info!(user = %user, "server stopping");
        if let Some(h) = handle {
            let grace = Duration::from_secs(self.inner.cfg.spawner.stop_grace_secs);
            match h.stop(grace).await {
                Ok(status) => tracing::info!(user = %user, %status, "server stopped by request"),
                Err(e) => tracing::warn!(user = %user, error = %e, "stop did not complete"),
            }
        }
        self.cleanup(user);
    }

    /// At hub start: repair the database, and give servers recorded as running
    /// [`REATTACH_GRACE`] for their helpers to dial back before marking them stopped.
    ///
    /// A server whose process no longer exists (the machine rebooted, or it died with
    /// its helper) is marked stopped at once rather than after the grace period.
    pub fn recover(&self) {
        if let Err(e) = self.inner.db.repair() {
            tracing::error!(error = %e, "database repair failed");
        }
        for row in self.inner.db.servers().unwrap_or_default() {
            let gone = row.pid.is_some_and(|pid| !process_exists(pid));
            if row.state == "running" && gone {
                tracing::warn!(user = %row.user, pid = ?row.pid, "server process is gone; marked stopped");
                self.cleanup(&row.user);
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REATTACH_GRACE).await;
            let Ok(rows) = this.inner.db.servers() else {
                return;
            };
            for row in rows {
                let attached = this
                    .live()
                    .get(&row.user)
                    .is_some_and(|l| l.handle.is_some());
                if !attached && row.state == "running" {
                    tracing::warn!(user = %row.user, pid = ?row.pid, "no helper re-attached; server marked stopped");
                    this.cleanup(&row.user);
                }
            }
        });
    }
}

/// Whether a process exists, seen from the hub user, which may not signal it: a null
/// signal answers EPERM for another user's live process and ESRCH for none.
fn process_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

impl ReattachHandler for Servers {
    fn verify(&self, claim: &VerifiedClaim) -> Result<(), String> {
        if !claim.server_name.is_empty() {
            return Err("named servers are not supported yet".into());
        }
        let row = self
            .inner
            .db
            .server(&claim.user, "")
            .map_err(|e| format!("database: {e}"))?
            .ok_or("no such server is recorded")?;
        if row.state != "running" || row.pid != Some(claim.pid) {
            return Err(format!(
                "the recorded server has pid {:?}, not {}",
                row.pid, claim.pid
            ));
        }
        if self
            .live()
            .get(&claim.user)
            .is_some_and(|l| l.handle.is_some())
        {
            return Err("that server is attached already".into());
        }
        Ok(())
    }

    fn adopt(&self, claim: VerifiedClaim, stream: tokio::net::UnixStream) {
        let Ok(Some(row)) = self.inner.db.server(&claim.user, "") else {
            return;
        };
        let handle = ServerHandle::adopt(stream, claim.pid);
        if let sudohub_protocol::spawner::ServerStatus::Exited { status } = claim.status {
            tracing::info!(user = %claim.user, %status, "server exited while the hub was away");
            self.cleanup(&claim.user);
            return;
        }
        self.inner
            .routes
            .set_user(&claim.user, SocketAddr::from(([127, 0, 0, 1], row.port)));
        let (tx, _) = watch::channel(Progress {
            events: Vec::new(),
            done: true,
        });
        self.live().insert(
            claim.user.clone(),
            Live {
                state: ServerState::Running,
                handle: Some(handle.clone()),
                progress: tx,
            },
        );
        tracing::info!(user = %claim.user, pid = claim.pid, port = row.port, "server re-attached; route restored");
        self.watch_exit(claim.user, handle);
    }
}

/// The environment of compat spec §1.2 / §1.9 for `user`'s default server. Not
/// `JUPYTERHUB_SERVICE_URL`: the helper builds that itself, pinned to 127.0.0.1.
fn server_env(cfg: &HubConfig, user: &str, prefix: &str, token: &str) -> Vec<(String, String)> {
    let api = cfg.api_url();
    let quoted = urlquote(user);
    let scopes = json!([
        format!("access:servers!server={user}/"),
        format!("access:servers!user={user}")
    ])
    .to_string();
    let public = cfg.public_url.clone().unwrap_or_default();
    let mut env = vec![
        ("JUPYTERHUB_API_TOKEN", token.to_owned()),
        ("JPY_API_TOKEN", token.to_owned()),
        ("JUPYTERHUB_CLIENT_ID", client_id(user, "")),
        ("JUPYTERHUB_API_URL", api.clone()),
        (
            "JUPYTERHUB_ACTIVITY_URL",
            format!("{api}/users/{quoted}/activity"),
        ),
        ("JUPYTERHUB_BASE_URL", cfg.base_url.clone()),
        ("JUPYTERHUB_HOST", String::new()),
        ("JUPYTERHUB_SERVICE_PREFIX", prefix.to_owned()),
        (
            "JUPYTERHUB_OAUTH_CALLBACK_URL",
            format!("{prefix}oauth_callback"),
        ),
        ("JUPYTERHUB_OAUTH_ACCESS_SCOPES", scopes.clone()),
        ("JUPYTERHUB_OAUTH_SCOPES", scopes),
        ("JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]".to_owned()),
        ("JUPYTERHUB_USER", user.to_owned()),
        ("JUPYTERHUB_SERVER_NAME", String::new()),
        ("JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED", "0".to_owned()),
        (
            "JUPYTERHUB_PUBLIC_URL",
            if public.is_empty() {
                public.clone()
            } else {
                format!("{}{}", public.trim_end_matches('/'), prefix)
            },
        ),
        (
            "JUPYTERHUB_PUBLIC_HUB_URL",
            if public.is_empty() {
                public
            } else {
                format!(
                    "{}{}hub/",
                    cfg.public_url
                        .as_deref()
                        .unwrap_or("")
                        .trim_end_matches('/'),
                    cfg.base_url
                )
            },
        ),
        ("JUPYTERHUB_DEFAULT_URL", cfg.spawner.default_url.clone()),
    ];
    if let Ok(lang) = std::env::var("LANG") {
        env.push(("LANG", lang));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A port in `range` that is free on 127.0.0.1 now.
fn pick_port(range: [u16; 2]) -> Option<u16> {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..200).find_map(|_| {
        let p = rng.random_range(range[0]..=range[1]);
        std::net::TcpListener::bind(("127.0.0.1", p))
            .ok()
            .map(|_| p)
    })
}

/// Waits until `GET <prefix>api` answers below 500 (compat §1.3), giving up after
/// `timeout` or as soon as the server exits. JupyterHub backs off to 5 s between probes;
/// a probe here is one loopback connection, so we cap the wait at 0.5 s and the user
/// gets their server up to 4.5 s sooner.
async fn wait_http(
    port: u16,
    prefix: &str,
    timeout: Duration,
    handle: &ServerHandle,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut wait = Duration::from_millis(100);
    loop {
        if let Some(status) = probe(port, &format!("{prefix}api")).await {
            if status < 500 {
                return Ok(());
            }
        }
        if let Some(Ending::Exited(status)) = handle.ending() {
            return Err(format!(
                "the server exited ({status}) while starting; its log is ~/.local/state/sudohub/default.log"
            ));
        }
        if tokio::time::Instant::now() + wait > deadline {
            return Err(format!(
                "the server did not answer HTTP within {} s (spawner.http_timeout_secs)",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(500));
    }
}

/// One HTTP GET without following redirects; the status code, if any answer came.
async fn probe(port: u16, path: &str) -> Option<u16> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await.ok()?;
        let line = std::str::from_utf8(&buf[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()
        .flatten()
}
