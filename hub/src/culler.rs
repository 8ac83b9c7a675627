//! The built-in idle culler (`[culler]`): what `jupyterhub-idle-culler` does, inside
//! the hub. Every `every` seconds it stops the servers idle for `timeout` (activity as
//! the servers report it and as the proxy sees it) or older than `max_age`, and with
//! `cull_users` deletes the hub's records of users idle that long with no server; with
//! `remove_named_servers` a culled named server is removed, not only stopped.

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::CullerSection;
use crate::db::{Db, HavingServer, UserQuery};
use crate::lifecycle::Servers;
use crate::timestamp::parse;
use crate::types::{ServerKey, ServerState, Username};

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Servers stopped, with why.
    pub stopped: Vec<(ServerKey, String)>,
    /// Users deleted.
    pub deleted: Vec<Username>,
}

/// The culler of one hub.
#[derive(Clone)]
pub struct Culler {
    cfg: CullerSection,
    db: Db,
    servers: Servers,
}

impl Culler {
    /// A culler for `cfg`; `None` when culling is off (no `timeout`).
    pub fn new(cfg: &CullerSection, db: Db, servers: Servers) -> Option<Self> {
        cfg.timeout.map(|_| Self {
            cfg: cfg.clone(),
            db,
            servers,
        })
    }

    /// Runs a pass every `every` seconds, for as long as the hub runs.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let every = Duration::from_secs(self.cfg.every_secs());
        tracing::info!(timeout = ?self.cfg.timeout, every_secs = every.as_secs(), max_age = ?self.cfg.max_age,
            cull_users = self.cfg.cull_users, "idle culler on");
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = self.pass(OffsetDateTime::now_utc()).await {
                    tracing::error!(error = %e, "idle culler: database");
                }
            }
        })
    }

    /// One pass at `now`.
    pub async fn pass(&self, now: OffsetDateTime) -> Result<Pass, rusqlite::Error> {
        let timeout = self.cfg.timeout.unwrap_or(u64::MAX);
        let mut done = Pass::default();
        let secs_since = |at: Option<&str>| -> Option<u64> {
            let t = parse(at?)?;
            u64::try_from((now - t).whole_seconds()).ok()
        };
        // Every server, default and named, with its user's admin flag.
        let mut admins = std::collections::HashMap::new();
        let rows = self.db.servers().all()?;
        for row in rows {
            let key = row.key();
            let (user_id, admin) = match admins.get(&key.user) {
                Some(a) => *a,
                None => {
                    let Some(u) = self.db.users().get(&key.user)? else {
                        continue;
                    };
                    admins.insert(key.user.clone(), (u.id, u.admin));
                    (u.id, u.admin)
                }
            };
            if admin && !self.cfg.cull_admin_users {
                continue;
            }
            if self.servers.state(&key) != ServerState::Running {
                continue; // starting or stopping: not this pass's business
            }
            let idle = secs_since(row.last_activity.as_deref().or(Some(&row.started)));
            let age = secs_since(Some(&row.started));
            let why = match (idle, age, self.cfg.max_age) {
                (Some(i), _, _) if i >= timeout => format!("idle for {i} s"),
                (_, Some(a), Some(max)) if a >= max => format!("running for {a} s"),
                _ => continue,
            };
            tracing::info!(server = %key, reason = %why, "idle culler: stopping server");
            self.servers.stop(&key).await;
            if self.cfg.remove_named_servers
                && !key.name.is_default()
                && self.db.named().remove(user_id, &key.name)?
            {
                tracing::info!(server = %key, "idle culler: named server removed");
            }
            done.stopped.push((key, why));
        }
        if self.cfg.cull_users {
            let inactive = UserQuery {
                having: HavingServer::Inactive,
                ..UserQuery::default()
            };
            for (user, _) in self.db.users().page(&inactive, 0, None)? {
                if user.admin && !self.cfg.cull_admin_users {
                    continue;
                }
                let idle = secs_since(user.last_activity.as_deref().or(Some(&user.created)));
                if idle.is_some_and(|i| i >= timeout) && self.db.users().delete(&user.name)? {
                    tracing::info!(user = %user.name, "idle culler: user deleted");
                    done.deleted.push(user.name);
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::HubConfig;
    use crate::proxy::RouteTable;
    use crate::spawner::fake::{test_user, Behaviour, FakeSpawner};
    use crate::types::ServerName;

    /// Starts `me`'s default server and waits until it runs; when it started.
    async fn run(servers: &Servers, db: &Db, me: &crate::db::UserRow) -> OffsetDateTime {
        let key = ServerKey::default_of(&me.name);
        servers.start(me, &ServerName::DEFAULT).unwrap();
        for _ in 0..500 {
            if servers.state(&key) == ServerState::Running {
                let row = db.servers().get(&key).unwrap().unwrap();
                return parse(&row.started).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{key}'s server never ran");
    }

    /// Idle servers go, active ones stay, admins' stay when asked, old ones go with
    /// `max_age`, and idle users without a server go with `cull_users`.
    #[tokio::test]
    async fn idle_servers_and_users_are_culled_as_configured() {
        let text = "[spawner]\nport_range = [20000, 60000]\n\
                    [culler]\ntimeout = 600\nmax_age = 86400\ncull_admin_users = false\ncull_users = true";
        let cfg = HubConfig::parse(text, Path::new("hub.toml")).unwrap();
        let db = Db::in_memory().unwrap();
        let fake = FakeSpawner::new(Behaviour::Serve);
        let servers = Servers::new(
            Arc::new(cfg.clone()),
            db.clone(),
            RouteTable::new(),
            fake,
            crate::metrics::Metrics::new(),
        );
        let culler = Culler::new(&cfg.culler, db.clone(), servers.clone()).unwrap();
        // The fake's servers listen as the user running the tests: one server only.
        let me = db.users().ensure(&test_user(), Some(false)).unwrap();
        let started = run(&servers, &db, &me).await;
        let idle_user = db
            .users()
            .ensure(&Username::parse("gone").unwrap(), None)
            .unwrap();
        let admin = db
            .users()
            .ensure(&Username::parse("boss").unwrap(), Some(true))
            .unwrap();
        let _ = (idle_user, admin);

        // Five minutes on: nothing is idle long enough; nobody is deleted yet.
        let pass = culler
            .pass(started + time::Duration::minutes(5))
            .await
            .unwrap();
        assert_eq!(pass, Pass::default());
        // Activity moves the deadline.
        let later = crate::timestamp::iso(started + time::Duration::minutes(8));
        db.users()
            .touch(&me.name, Some(&ServerName::DEFAULT), &later)
            .unwrap();
        // Twelve minutes on: the server was active four minutes ago and stays; "gone",
        // idle since its creation and without a server, is deleted; the admin is not
        // (cull_admin_users = false).
        let pass = culler
            .pass(started + time::Duration::minutes(12))
            .await
            .unwrap();
        assert!(pass.stopped.is_empty(), "{pass:?}");
        assert_eq!(pass.deleted, [Username::parse("gone").unwrap()]);
        assert!(db
            .users()
            .get(&Username::parse("boss").unwrap())
            .unwrap()
            .is_some());
        // Idle for 10 minutes after that activity: stopped, and its user, now idle with no
        // server, goes too.
        let pass = culler
            .pass(started + time::Duration::minutes(19))
            .await
            .unwrap();
        assert_eq!(pass.stopped.len(), 1, "{pass:?}");
        assert!(pass.stopped[0].1.starts_with("idle for 660"), "{pass:?}");
        assert_eq!(
            servers.state(&ServerKey::default_of(&me.name)),
            ServerState::Stopped
        );
        assert_eq!(pass.deleted, std::slice::from_ref(&me.name));
        assert!(db
            .users()
            .get(&Username::parse("boss").unwrap())
            .unwrap()
            .is_some());

        // max_age: a server active a minute ago still goes once it is a day old.
        let me = db.users().ensure(&me.name, None).unwrap();
        let started = run(&servers, &db, &me).await;
        let recent = crate::timestamp::iso(started + time::Duration::seconds(86_340));
        db.users()
            .touch(&me.name, Some(&ServerName::DEFAULT), &recent)
            .unwrap();
        let pass = culler
            .pass(started + time::Duration::seconds(86_401))
            .await
            .unwrap();
        assert_eq!(pass.stopped.len(), 1, "{pass:?}");
        assert!(
            pass.stopped[0].1.starts_with("running for 86401"),
            "{pass:?}"
        );
    }

    /// With `remove_named_servers`, a culled named server is removed; without it, it
    /// is kept, stopped.
    #[tokio::test]
    async fn culled_named_servers_are_removed_when_asked() {
        for remove in [true, false] {
            let text = format!(
                "allow_named_servers = true\n[spawner]\nport_range = [20000, 60000]\n\
                 [culler]\ntimeout = 600\nremove_named_servers = {remove}"
            );
            let cfg = HubConfig::parse(&text, Path::new("hub.toml")).unwrap();
            let db = Db::in_memory().unwrap();
            let servers = Servers::new(
                Arc::new(cfg.clone()),
                db.clone(),
                RouteTable::new(),
                FakeSpawner::new(Behaviour::Serve),
                crate::metrics::Metrics::new(),
            );
            let culler = Culler::new(&cfg.culler, db.clone(), servers.clone()).unwrap();
            let me = db.users().ensure(&test_user(), Some(false)).unwrap();
            let gpu = ServerName::parse("gpu").unwrap();
            db.named().create(me.id, &gpu, "", 0).unwrap();
            let key = ServerKey::new(me.name.clone(), gpu.clone());
            servers.start(&me, &gpu).unwrap();
            let mut started = None;
            for _ in 0..500 {
                if servers.state(&key) == ServerState::Running {
                    let row = db.servers().get(&key).unwrap().unwrap();
                    started = parse(&row.started);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let started = started.expect("the named server never ran");
            let pass = culler
                .pass(started + time::Duration::minutes(11))
                .await
                .unwrap();
            assert_eq!(pass.stopped.len(), 1, "{pass:?}");
            assert_eq!(pass.stopped[0].0, key);
            assert_eq!(servers.state(&key), ServerState::Stopped);
            let kept = db.named().get(me.id, &gpu).unwrap();
            assert_eq!(kept.is_none(), remove, "remove_named_servers = {remove}");
        }
    }

    #[test]
    fn settings_are_checked() {
        for (text, key) in [
            ("[culler]\ntimeout = 0", "culler.timeout"),
            ("[culler]\nevery = 60", "culler.timeout"),
            ("[culler]\ntimeout = 60\nevery = 0", "culler.every"),
            ("[culler]\ncull_users = true", "culler.timeout"),
            ("[culler]\nremove_named_servers = true", "culler.timeout"),
            ("[culler]\ntimeout = 60\nbogus = 1", "bogus"),
        ] {
            let e = HubConfig::parse(text, Path::new("hub.toml")).unwrap_err();
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
        let c = HubConfig::parse("[culler]\ntimeout = 3600", Path::new("hub.toml")).unwrap();
        assert_eq!(c.culler.every_secs(), 1800);
    }
}
