//! A start, step by step, and what happens when the server ends.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::environment::server_env;
use super::readiness::wait_http;
use super::{ProgressEvent, Servers};
use crate::db::UserRow;
use crate::error::HubError;
use crate::metrics::SpawnStatus;
use crate::secrets::new_api_token;
use crate::spawner::{Ending, ServerHandle, SpawnArgs};
use crate::types::{ServerKey, ServerState, Username};

impl Servers {
    /// Adds `ev` to a server's progress; the last event ends the stream.
    fn event(&self, key: &ServerKey, ev: ProgressEvent) {
        if let Some(l) = self.live().get(key) {
            l.progress.send_modify(|p| {
                p.done |= ev.is_last();
                p.events.push(ev);
            });
        }
    }

    pub(super) async fn run_spawn(&self, user: UserRow, key: ServerKey) {
        let name = &key;
        let began = std::time::Instant::now();
        let result = self.spawn_steps(&user, &key).await;
        let status = if result.is_ok() {
            SpawnStatus::success
        } else {
            SpawnStatus::failure
        };
        self.inner.metrics.spawned(status, began.elapsed());
        if let Err(e) = result {
            tracing::warn!(server = %name, error = %e, "spawn failed");
            let reason = e.public_message().to_owned();
            if let Err(e) = self.inner.db.servers().stopped(name) {
                tracing::error!(server = %name, error = %e, "cannot record the failed spawn");
            }
            self.event(name, ProgressEvent::failed(&reason));
            if let Some(l) = self.live().get_mut(name) {
                l.state = ServerState::Failed(reason);
                l.handle = None;
            }
        }
    }

    /// Port → row → token and OAuth client → helper → pid → HTTP → route. Each step
    /// that fails leaves nothing behind: `run_spawn` removes the row, token and client.
    async fn spawn_steps(&self, user: &UserRow, key: &ServerKey) -> Result<(), HubError> {
        let cfg = &self.inner.cfg;
        let name = key;
        self.event(name, ProgressEvent::requested());
        self.previous_gone(name).await;
        let port = self
            .inner
            .db
            .servers()
            .starting_on(name, |taken| {
                pick_port(cfg.spawner.port_range, taken, ephemeral_ports())
            })?
            .ok_or_else(|| HubError::helper("no free port in spawner.port_range"))?;
        tracing::info!(server = %name, port, "server starting");
        let urls = cfg.urls();
        let prefix = urls.server_prefix(name);
        let token = new_api_token();
        self.inner.db.servers().register_client(
            user,
            &key.name,
            &token,
            &urls.oauth_callback(name),
            &format!("Server at {prefix}"),
        )?;
        self.event(name, ProgressEvent::spawning());
        let args = SpawnArgs {
            user: key.user.clone(),
            server_name: key.name.clone(),
            port,
            env: server_env(cfg, key, &token),
        };
        let start_timeout = Duration::from_secs(cfg.spawner.start_timeout_secs);
        let asked = std::time::Instant::now();
        let handle = self.inner.spawner.spawn(args, start_timeout).await;
        self.inner
            .metrics
            .helper_start(handle.is_ok(), asked.elapsed());
        let handle = handle.map_err(|e| HubError::helper(e.to_string()))?;
        let pid = handle.pid();
        self.inner.db.servers().running(name, pid)?;
        let http_timeout = Duration::from_secs(cfg.spawner.http_timeout_secs);
        let ready = wait_http(port, &prefix, http_timeout, &handle, &key.name)
            .await
            .and_then(|()| owner_check(&key.user, port));
        if let Err(e) = ready {
            let _ = handle.stop(self.grace()).await;
            return Err(e);
        }
        self.inner
            .routes
            .set_server(name, SocketAddr::from(([127, 0, 0, 1], port)));
        if let Some(l) = self.live().get_mut(name) {
            l.state = ServerState::Running;
            l.handle = Some(handle.clone());
        }
        tracing::info!(server = %name, pid, port, "server running; route added");
        self.event(name, ProgressEvent::ready(&prefix));
        self.watch_exit(name.clone(), handle);
        Ok(())
    }

    /// When the helper pushes the exit, the server is stopped at once: route, row, token
    /// and OAuth client go. When the connection is lost instead, the helper keeps
    /// supervising and will dial the re-attach socket.
    pub(super) fn watch_exit(&self, user: ServerKey, handle: ServerHandle) {
        let this = self.clone();
        tokio::spawn(async move {
            match handle.ended().await {
                Ending::Exited(status) => {
                    // A stop cleans up itself; and once it has, a new run of this
                    // server may be starting or running: only this server's own exit,
                    // while it is the live one, cleans up.
                    let current = this.live().get(&user).is_some_and(|l| {
                        l.state != ServerState::Stopping
                            && l.handle.as_ref().is_some_and(|h| h.pid() == handle.pid())
                    });
                    if current {
                        tracing::info!(server = %user, %status, "server exited");
                        this.cleanup(&user);
                    }
                }
                Ending::Lost => {
                    tracing::warn!(server = %user, "lost the connection to the spawner helper");
                    if let Some(l) = this.live().get_mut(&user) {
                        l.handle = None;
                    }
                }
            }
        });
    }
}

/// The route goes only to a socket of the user's own: see [`super::listener`].
fn owner_check(user: &Username, port: u16) -> Result<(), HubError> {
    let uid = nix::unistd::User::from_name(user.as_str())
        .ok()
        .flatten()
        .ok_or_else(|| HubError::helper(format!("user {user} has no passwd entry")))?
        .uid
        .as_raw();
    super::listener::owned_by(port, uid).map_err(HubError::helper)
}

/// A port in `range` that is free on 127.0.0.1 now.
/// The kernel's range of local ports for outgoing connections. A port picked there may be
/// taken by a connection (a server's call to the Hub API, a proxied request) between the
/// pick and the server's `listen`: seen with 20 starts at once ("port … is not available").
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

/// A free port in `range`, none of `taken`, outside `ephemeral` unless `range` lies wholly
/// inside it; free means a listener can bind it now.
fn pick_port(range: [u16; 2], taken: &HashSet<u16>, ephemeral: Option<(u16, u16)>) -> Option<u16> {
    use rand::Rng;
    let outside = |p: u16| ephemeral.is_none_or(|(lo, hi)| p < lo || p > hi);
    let avoid_ephemeral = (range[0]..=range[1]).any(outside);
    let candidates: Vec<u16> = (range[0]..=range[1])
        .filter(|p| !taken.contains(p) && (!avoid_ephemeral || outside(*p)))
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let start = rand::rng().random_range(0..candidates.len());
    let (after, before) = candidates.split_at(start);
    before
        .iter()
        .chain(after)
        .copied()
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn ports_avoid_the_ephemeral_range_and_those_taken() {
        let taken: HashSet<u16> = (61000..61990).collect();
        for _ in 0..50 {
            let p = pick_port([49152, 61999], &taken, Some((32768, 60999))).unwrap();
            assert!((61990..=61999).contains(&p), "{p}");
        }
        // A range inside the ephemeral one is still used.
        let p = pick_port([50000, 50010], &HashSet::new(), Some((32768, 60999))).unwrap();
        assert!((50000..=50010).contains(&p));
        let all: HashSet<u16> = (50000..=50010).collect();
        assert_eq!(pick_port([50000, 50010], &all, None), None);
    }
}
