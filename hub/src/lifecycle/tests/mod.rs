//! The life cycle against the fake helper: real frames, a real HTTP server on the picked
//! port, an in-memory database; no root, sudo or Python.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sudohub_protocol::spawner::ServerStatus;

use super::*;
use crate::db::UserRow;
use crate::reattach::{ReattachHandler, VerifiedClaim};
use crate::spawner::fake::{test_user, Behaviour, FakeSpawner};
use crate::types::{ServerName, TokenKind};

struct World {
    servers: Servers,
    db: Db,
    routes: RouteTable,
    fake: Arc<FakeSpawner>,
    alice: UserRow,
}

fn world(behaviour: Behaviour) -> World {
    let cfg = HubConfig::parse(
        "[spawner]\nhttp_timeout_secs = 5\nstop_grace_secs = 1\nport_range = [20000, 60000]",
        Path::new("hub.toml"),
    )
    .unwrap();
    let db = Db::in_memory().unwrap();
    let routes = RouteTable::new();
    let fake = FakeSpawner::new(behaviour);
    let servers = Servers::new(
        Arc::new(cfg),
        db.clone(),
        routes.clone(),
        fake.clone(),
        crate::metrics::Metrics::new(),
    );
    let alice = db.users().ensure(&test_user(), None).unwrap();
    World {
        servers,
        db,
        routes,
        fake,
        alice,
    }
}

/// Waits (at most 10 s) until `cond` holds.
async fn until<F: Fn() -> bool>(what: &str, cond: F) {
    let wait = async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .is_err()
    {
        panic!("timed out waiting for {what}");
    }
}

async fn settled<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap()
}

/// Waits for the spawn to fail; its reason.
async fn failure(w: &World) -> String {
    let name = &ServerKey::default_of(&w.alice.name);
    until("failed", || {
        matches!(w.servers.state(name), ServerState::Failed(_))
    })
    .await;
    match w.servers.state(name) {
        ServerState::Failed(reason) => reason,
        other => panic!("{other:?}"),
    }
}

/// The API token the hub gave the server it spawned last.
fn server_token(w: &World) -> String {
    let spawned = w.fake.spawned.lock().unwrap();
    let env = &spawned.last().unwrap().env;
    env.iter()
        .find(|(k, _)| k == "JUPYTERHUB_API_TOKEN")
        .map(|(_, v)| v.clone())
        .unwrap()
}

#[tokio::test]
async fn a_server_starts_is_routed_and_stops_leaving_nothing() {
    let w = world(Behaviour::Serve);
    let name = &ServerKey::default_of(&w.alice.name);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    assert_eq!(
        w.servers.start(&w.alice, &ServerName::DEFAULT),
        Err(StartError::Pending)
    );
    until("running", || w.servers.state(name) == ServerState::Running).await;
    assert_eq!(
        w.servers.start(&w.alice, &ServerName::DEFAULT),
        Err(StartError::Running)
    );

    let row = w.db.servers().get(name).unwrap().unwrap();
    assert_eq!((row.state, row.pid), (RecordedState::Running, Some(1000)));
    let target = w.routes.server(name).unwrap();
    assert_eq!(target.port(), row.port);
    // The route is added only once the server answers HTTP: it answers now.
    let body = reqwest_free_get(target).await;
    assert!(body.contains("fake single-user server"), "{body}");
    let token = w.db.tokens().lookup(&server_token(&w)).unwrap().unwrap();
    assert_eq!(token.kind, TokenKind::Server);

    let p = w.servers.progress(name).unwrap().borrow().clone();
    let steps: Vec<u8> = p.events.iter().map(|e| e.progress).collect();
    assert_eq!(steps, [0, 50, 100]);
    assert!(p.done && p.events[2].ready == Some(true));
    let url = format!("/user/{}/", name.user);
    assert_eq!(p.events[2].url.as_deref(), Some(url.as_str()));

    settled(w.servers.stop(name)).await;
    assert_eq!(w.servers.state(name), ServerState::Stopped);
    assert!(w.routes.server(name).is_none());
    assert!(w.db.servers().get(name).unwrap().is_none());
    assert!(w.db.tokens().lookup(&server_token(&w)).unwrap().is_none());
    assert!(w
        .db
        .oauth()
        .client(&format!("jupyterhub-user-{}", name.user))
        .unwrap()
        .is_none());
}

/// A stop returns once the server has had its SIGTERM, not once it has exited; a start
/// right after waits for that exit, so the user's two servers never run side by side.
#[tokio::test]
async fn a_stop_returns_at_sigterm_and_a_restart_waits_for_the_exit() {
    let w = world(Behaviour::LingerOnStop);
    let name = &ServerKey::default_of(&w.alice.name);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("running", || w.servers.state(name) == ServerState::Running).await;
    settled(w.servers.stop(name)).await;
    assert_eq!(w.servers.state(name), ServerState::Stopped);
    assert!(w.routes.server(name).is_none());
    assert!(w.db.servers().get(name).unwrap().is_none());
    assert_eq!(
        *w.fake.log.lock().unwrap(),
        ["spawn 1000"],
        "the stop waited for the exit"
    );

    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("running again", || {
        w.servers.state(name) == ServerState::Running
    })
    .await;
    assert_eq!(
        *w.fake.log.lock().unwrap(),
        ["spawn 1000", "exit 1000", "spawn 1001"]
    );
    // The old server's exit report, arriving late, does not clean up the new one.
    assert!(w.routes.server(name).is_some());
    settled(w.servers.stop(name)).await;
    until("the second exit", || w.fake.log.lock().unwrap().len() == 4).await;
    assert_eq!(w.servers.state(name), ServerState::Stopped);
}

/// One HTTP/1.0 GET over a plain socket: the fake server's answer.
async fn reqwest_free_get(target: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(target).await.unwrap();
    s.write_all(b"GET /user/alice/api HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn a_refused_spawn_fails_cleanly_and_can_be_retried() {
    let w = world(Behaviour::Refuse);
    let name = &ServerKey::default_of(&w.alice.name);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    let reason = failure(&w).await;
    assert!(
        reason.contains("refused") && reason.contains("not allowed"),
        "{reason}"
    );
    assert!(w.db.servers().get(name).unwrap().is_none(), "no row left");
    assert!(
        w.db.tokens().lookup(&server_token(&w)).unwrap().is_none(),
        "no token left"
    );
    assert!(w.routes.server(name).is_none());
    let p = w.servers.progress(name).unwrap().borrow().clone();
    let last = p.events.last().unwrap();
    assert!(p.done && last.failed == Some(true) && last.message.contains("not allowed"));

    w.fake.set(Behaviour::Serve);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("running", || w.servers.state(name) == ServerState::Running).await;
}

#[tokio::test]
async fn a_server_that_dies_while_starting_is_reported() {
    let w = world(Behaviour::ExitAtOnce);
    let name = &ServerKey::default_of(&w.alice.name);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    let reason = failure(&w).await;
    assert!(reason.contains("exited"), "{reason}");
    assert!(w.db.servers().get(name).unwrap().is_none());
}

#[tokio::test]
async fn an_exit_is_cleaned_up_at_once_and_a_lost_helper_awaits_reattach() {
    let w = world(Behaviour::Serve);
    let name = &ServerKey::default_of(&w.alice.name);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("running", || w.servers.state(name) == ServerState::Running).await;
    w.fake.exit(name.user.as_str());
    until("stopped", || w.servers.state(name) == ServerState::Stopped).await;
    assert!(w.routes.server(name).is_none());
    assert!(w.db.servers().get(name).unwrap().is_none());

    // A helper whose connection breaks (the hub's end of a restart) keeps its record:
    // the server is "reconnecting" until its helper dials back.
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("running", || w.servers.state(name) == ServerState::Running).await;
    assert!(!w.servers.reconnecting(name));
    w.fake.lose(name.user.as_str());
    until("reconnecting", || w.servers.reconnecting(name)).await;
    assert_eq!(w.servers.state(name), ServerState::Running);
    assert!(w.db.servers().get(name).unwrap().is_some());
}

/// The re-attach deadline after a hub start forgets only the servers recorded at that
/// start: a spawn in flight then (its row says running before its route is added) is not
/// taken for an orphan.
#[tokio::test]
async fn the_reattach_deadline_spares_a_spawn_in_flight() {
    let w = world(Behaviour::SlowToAnswer);
    let name = &ServerKey::default_of(&w.alice.name);
    let bob =
        w.db.users()
            .ensure(&Username::parse("bob").unwrap(), None)
            .unwrap();
    let bob = ServerKey::default_of(&bob.name);
    w.db.servers().starting(&bob, 20001).unwrap();
    w.db.servers().running(&bob, std::process::id()).unwrap();
    let awaited = vec![(bob.clone(), Some(std::process::id()))];

    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("alice's row says running", || {
        w.db.servers()
            .get(name)
            .unwrap()
            .is_some_and(|r| r.state == RecordedState::Running)
    })
    .await;
    assert_eq!(w.servers.state(name), ServerState::Starting);
    w.servers.forget_unattached(&awaited);
    assert!(
        w.db.servers().get(&bob).unwrap().is_none(),
        "bob never re-attached"
    );
    assert!(w.db.servers().get(name).unwrap().is_some());
    until("running", || w.servers.state(name) == ServerState::Running).await;
    assert!(w.routes.server(name).is_some());
    assert!(w.db.tokens().lookup(&server_token(&w)).unwrap().is_some());
}

#[tokio::test]
async fn reattach_claims_must_match_the_record() {
    let w = world(Behaviour::Serve);
    let name = ServerKey::default_of(&w.alice.name);
    // The recorded server's socket: nothing listens there yet.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    w.db.servers().starting(&name, port).unwrap();
    w.db.servers().running(&name, 4242).unwrap();
    let claim = |pid| VerifiedClaim {
        user: name.user.clone(),
        server_name: ServerName::DEFAULT,
        pid,
        status: ServerStatus::Running { pid },
    };
    assert!(w.servers.verify(&claim(1)).unwrap_err().contains("4242"));
    let named = VerifiedClaim {
        server_name: ServerName::parse("gpu").unwrap(),
        ..claim(4242)
    };
    assert!(
        w.servers
            .verify(&named)
            .unwrap_err()
            .contains("no such server"),
        "a claim for another server of the same user"
    );
    // Nobody listens on the recorded port (the server's socket is gone, or a squatter
    // would have to take it): no route.
    assert!(w
        .servers
        .verify(&claim(4242))
        .unwrap_err()
        .contains("nothing listens"));
    let _socket = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    w.servers.verify(&claim(4242)).unwrap();
    assert!(w.servers.reconnecting(&name));

    let (hub_end, _helper_end) = tokio::net::UnixStream::pair().unwrap();
    w.servers.adopt(claim(4242), hub_end);
    assert_eq!(w.routes.server(&name).unwrap().port(), port);
    assert_eq!(w.servers.state(&name), ServerState::Running);
    assert!(!w.servers.reconnecting(&name));
    assert!(
        w.servers
            .verify(&claim(4242))
            .unwrap_err()
            .contains("attached already"),
        "a second claim for the same server"
    );
}

mod gate;
mod interrupt;
mod named;
