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
use sudohub_helpers_config::slurm::Backend;

/// How a start ended short of running.
pub(super) enum Cut {
    /// A step failed; the server is left stopped with the reason.
    Failed(HubError),
    /// A stop (and perhaps a new start) took the server over; what this start began is
    /// ended here, and nothing of the server's record is touched.
    Interrupted,
}

impl From<HubError> for Cut {
    fn from(e: HubError) -> Self {
        Self::Failed(e)
    }
}

impl From<rusqlite::Error> for Cut {
    fn from(e: rusqlite::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl Servers {
    /// Adds `ev` to the progress of start `run` of a server; the last event ends the
    /// stream.
    pub(super) fn event(&self, key: &ServerKey, run: u64, ev: ProgressEvent) {
        if let Some(l) = self.live().get(key).filter(|l| l.run == run) {
            l.progress.send_modify(|p| {
                p.done |= ev.is_last();
                p.events.push(ev);
            });
        }
    }

    /// Runs `f` on the server's entry while start `run` still owns it (the same start,
    /// still starting), under the lock: what `f` does cannot cross a stop. `None` once
    /// the start was interrupted.
    pub(super) fn own<R>(
        &self,
        key: &ServerKey,
        run: u64,
        f: impl FnOnce(&mut super::Live) -> R,
    ) -> Option<R> {
        let mut live = self.live();
        let l = live
            .get_mut(key)
            .filter(|l| l.run == run && l.state == ServerState::Starting)?;
        Some(f(l))
    }

    /// The steps of start `run`, begun (and counted as under way) by
    /// [`Self::start_with`].
    pub(super) async fn run_spawn(&self, user: UserRow, key: ServerKey, run: u64, profile: String) {
        let began = std::time::Instant::now();
        let result = self.spawn_steps(&user, &key, run, profile).await;
        self.mark_spawning(&key, run, false);
        let status = if result.is_ok() {
            SpawnStatus::success
        } else {
            SpawnStatus::failure
        };
        self.inner.metrics.spawned(status, began.elapsed());
        match result {
            Ok(()) => {}
            Err(Cut::Interrupted) => {
                tracing::info!(server = %key, "start interrupted by a stop");
            }
            Err(Cut::Failed(e)) => self.record_failure(&key, run, &e),
        }
    }

    /// Start `run` failed with `e`: the server is left stopped with the reason (unless
    /// a stop came first and cleaned up), and the progress says why.
    pub(super) fn record_failure(&self, key: &ServerKey, run: u64, e: &HubError) {
        tracing::warn!(server = %key, error = %e, "spawn failed");
        let reason = e.public_message().to_owned();
        let db = &self.inner.db;
        let recorded = self.own(key, run, |l| {
            l.state = ServerState::Failed(reason.clone());
            l.handle = None;
            db.servers().stopped(key)
        });
        match recorded {
            Some(Err(e)) => {
                tracing::error!(server = %key, error = %e, "cannot record the failed spawn")
            }
            Some(Ok(())) => {}
            None => return, // a stop came first and cleaned up
        }
        self.event(key, run, ProgressEvent::failed(&reason));
    }

    /// Port → row → token and OAuth client → helper → pid → HTTP → route. Each step
    /// that fails leaves nothing behind: `run_spawn` removes the row, token and client.
    /// Each step that writes does so only while the start is still its server's (see
    /// [`Self::own`]); once a stop has taken over, the start ends what it began.
    async fn spawn_steps(
        &self,
        user: &UserRow,
        key: &ServerKey,
        run: u64,
        profile: String,
    ) -> Result<(), Cut> {
        let cfg = &self.inner.cfg;
        let db = &self.inner.db;
        self.event(key, run, ProgressEvent::requested());
        self.earlier_starts_gone(key, run).await;
        self.previous_gone(key).await;
        let port = self
            .own(key, run, |_| {
                db.servers()
                    .starting_on(key, |taken| match cfg.spawner.backend {
                        // A job's server picks its port on its node, and reports it.
                        Backend::Slurm => Some(0),
                        Backend::Local => {
                            pick_port(cfg.spawner.port_range, taken, ephemeral_ports())
                        }
                    })
            })
            .ok_or(Cut::Interrupted)??
            .ok_or_else(|| HubError::helper("no free port in spawner.port_range"))?;
        tracing::info!(server = %key, port, "server starting");
        let urls = cfg.urls();
        let prefix = urls.server_prefix(key);
        let token = new_api_token();
        self.own(key, run, |_| {
            db.servers().register_client(
                user,
                &key.name,
                &token,
                &urls.oauth_callback(key),
                &format!("Server at {prefix}"),
            )
        })
        .ok_or(Cut::Interrupted)??;
        self.event(key, run, ProgressEvent::spawning());
        let mut env = server_env(cfg, key, &token);
        if let Some(k) = self.inner.auth_state.get() {
            env.extend(super::environment::auth_state_env(cfg, db, k, &key.user));
        }
        let args = SpawnArgs {
            user: key.user.clone(),
            server_name: key.name.clone(),
            port,
            env,
            profile,
        };
        let start_timeout = Duration::from_secs(cfg.spawner.start_timeout_secs);
        let asked = std::time::Instant::now();
        let handle = self.inner.spawner.spawn(args, start_timeout).await;
        self.inner
            .metrics
            .helper_start(handle.is_ok(), asked.elapsed());
        let handle = handle.map_err(|e| HubError::helper(e.to_string()))?;
        let pid = handle.pid();
        // From here on a stop finds the handle and ends the server itself.
        let kept = self.own(key, run, |l| {
            l.handle = Some(handle.clone());
            match handle.job() {
                Some(job) => db.servers().submitted(key, job.id),
                None => db.servers().running(key, pid),
            }
        });
        let Some(kept) = kept else {
            tracing::info!(server = %key, pid, "stopping the server of an interrupted start");
            if handle.terminate(self.grace()).await.is_ok() {
                self.drain(key, handle);
            }
            return Err(Cut::Interrupted);
        };
        if let Err(e) = kept {
            // Not recorded: the server must not run on unseen.
            let _ = handle.stop(self.grace()).await;
            return Err(e.into());
        }
        let http_timeout = Duration::from_secs(cfg.spawner.http_timeout_secs);
        let ready = match handle.job() {
            Some(job) => self.job_ready(key, run, job, &prefix, &handle).await,
            None => wait_http(local(port), &prefix, http_timeout, &handle, &key.name)
                .await
                .and_then(|()| owner_check(&key.user, port))
                .map(|()| local(port))
                .map_err(Cut::Failed),
        };
        self.finish(key, run, handle, ready, &prefix).await
    }

    /// The last steps of start `run`, given whether its server answered (and where): the
    /// route and the record, or, when it did not, the server ended (bounded in time).
    pub(super) async fn finish(
        &self,
        key: &ServerKey,
        run: u64,
        handle: ServerHandle,
        ready: Result<SocketAddr, Cut>,
        prefix: &str,
    ) -> Result<(), Cut> {
        let db = &self.inner.db;
        let pid = handle.pid();
        let addr = match ready {
            Ok(a) => a,
            Err(cut) => {
                // A stop took the handle over and ends the server itself.
                if self.own(key, run, |_| ()).is_none() {
                    return Err(Cut::Interrupted);
                }
                // Bounded: a job whose end Slurm does not report must not hold the start.
                let limit = self.grace() + Duration::from_secs(60);
                if tokio::time::timeout(limit, handle.stop(self.grace()))
                    .await
                    .is_err()
                {
                    tracing::warn!(server = %key, "the failed start's server did not end in time");
                }
                return Err(cut);
            }
        };
        let routes = &self.inner.routes;
        let recorded = self
            .own(key, run, |l| {
                let recorded = match handle.job() {
                    Some(_) => db
                        .servers()
                        .running_at(key, &addr.ip().to_string(), addr.port()),
                    None => Ok(()),
                };
                routes.set_server(key, addr);
                l.state = ServerState::Running;
                recorded
            })
            .ok_or(Cut::Interrupted)?;
        if let Err(e) = recorded {
            tracing::error!(server = %key, error = %e, "cannot record the server's address");
        }
        tracing::info!(server = %key, pid, %addr, "server running; route added");
        self.event(key, run, ProgressEvent::ready(prefix));
        self.watch_exit(key.clone(), handle);
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

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
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
