//! A stop while a start is still in one of its steps: the start is interrupted, leaves
//! nothing routed or recorded, ends the server it brought up, and a new start works.

use super::*;
use crate::spawner::fake::LINGER;

fn exited(w: &World) -> usize {
    w.fake
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("exit "))
        .count()
}

/// Nothing of `key` is left: not live, not routed, not recorded, no token.
fn nothing_left(w: &World, key: &ServerKey, token: &str) {
    assert_eq!(w.servers.state(key), ServerState::Stopped);
    assert!(w.routes.server(key).is_none(), "a route stayed");
    assert!(w.db.servers().get(key).unwrap().is_none(), "a row stayed");
    assert!(
        w.db.tokens().lookup(token).unwrap().is_none(),
        "a token stayed"
    );
}

#[tokio::test]
async fn a_stop_interrupts_a_start_in_every_step() {
    // SlowToStart: the helper has the request and has not reported the start (the hub
    // has no handle yet); SlowToAnswer: started, not answering HTTP yet.
    for slow in [Behaviour::SlowToStart, Behaviour::SlowToAnswer] {
        let w = world(slow);
        let key = ServerKey::default_of(&w.alice.name);
        w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
        until("the helper asked", || {
            !w.fake.spawned.lock().unwrap().is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let token = server_token(&w);
        settled(w.servers.stop(&key)).await;
        assert_eq!(w.servers.state(&key), ServerState::Stopped, "{slow:?}");
        // The start's later steps find the server no longer theirs.
        until("the interrupted server's exit", || exited(&w) == 1).await;
        tokio::time::sleep(LINGER + Duration::from_millis(300)).await;
        nothing_left(&w, &key, &token);
        assert_eq!(exited(&w), 1, "{slow:?}");

        // A start after it runs as usual.
        w.fake.set(Behaviour::Serve);
        w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
        until("running", || w.servers.state(&key) == ServerState::Running).await;
        assert!(w.routes.server(&key).is_some());
        settled(w.servers.stop(&key)).await;
        nothing_left(&w, &key, &server_token(&w));
    }
}

/// Stop, then a new start while the first start's helper is still busy: the new start
/// runs and is routed; the first one's late server is ended and never routed.
#[tokio::test]
async fn a_new_start_after_an_interrupted_one_is_the_one_that_runs() {
    let w = world(Behaviour::SlowToStart);
    let key = ServerKey::default_of(&w.alice.name);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("the helper asked", || {
        !w.fake.spawned.lock().unwrap().is_empty()
    })
    .await;
    settled(w.servers.stop(&key)).await;
    w.fake.set(Behaviour::Serve);
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("running", || w.servers.state(&key) == ServerState::Running).await;
    until("the first server's exit", || exited(&w) == 1).await;
    tokio::time::sleep(LINGER).await;
    assert_eq!(w.servers.state(&key), ServerState::Running);
    let row = w.db.servers().get(&key).unwrap().unwrap();
    assert_eq!(
        row.pid,
        Some(1001),
        "the second start's server is the one recorded"
    );
    assert_eq!(w.routes.server(&key).unwrap().port(), row.port);
    let token = server_token(&w);
    assert!(w.db.tokens().lookup(&token).unwrap().is_some());
    settled(w.servers.stop(&key)).await;
    nothing_left(&w, &key, &token);
}
