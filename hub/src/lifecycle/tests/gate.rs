//! The gate a hand-over holds, against the fake helper.

use super::*;
use crate::lifecycle::StartGate;

/// A request let through while the gate is open is counted until it ends; one that
/// comes while it is held waits, and is let in when the hand-over fails; a start is
/// counted by the hand-over from the call that begins it, before its task has run.
#[tokio::test]
async fn a_held_request_waits_and_is_let_in_when_the_hand_over_fails() {
    let w = world(Behaviour::Serve);
    let alice = ServerKey::default_of(&w.alice.name);
    let early = w.servers.pass_gate(Duration::ZERO).await.unwrap();
    assert_eq!(w.servers.changing(), 1);
    w.servers.set_start_gate(StartGate::Held);
    // Let in before the hold: its start begins, and the hand-over counts it at once.
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    assert_eq!(w.servers.starting_here(), 1);
    drop(early);
    assert_eq!(w.servers.changing(), 0);
    until("running", || {
        w.servers.state(&alice) == ServerState::Running
    })
    .await;
    assert_eq!(w.servers.starting_here(), 0);

    let servers = w.servers.clone();
    let waiting = tokio::spawn(async move {
        servers
            .pass_gate(Duration::from_secs(10))
            .await
            .map(|c| (c, servers.changing()))
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "a held request must wait");
    assert_eq!(w.servers.changing(), 0);
    w.servers.set_start_gate(StartGate::Open);
    let (changing, counted) = settled(waiting).await.unwrap().unwrap();
    assert_eq!(counted, 1);
    drop(changing);
    assert_eq!(w.servers.changing(), 0);
    settled(w.servers.stop(&alice)).await;
}

/// On a hub that has handed over, a request waiting at the gate, or coming after, is
/// the successor's, and no start begins here; a hold that lasts past the wait says so.
#[tokio::test]
async fn on_a_hub_that_handed_over_nothing_is_let_in_or_started() {
    let w = world(Behaviour::Serve);
    let alice = ServerKey::default_of(&w.alice.name);
    w.servers.set_start_gate(StartGate::Held);
    assert_eq!(
        w.servers.pass_gate(Duration::from_millis(50)).await.err(),
        Some(StartGate::Held)
    );
    let servers = w.servers.clone();
    let waiting =
        tokio::spawn(async move { servers.pass_gate(Duration::from_secs(10)).await.err() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.servers.set_start_gate(StartGate::HandedOver);
    assert_eq!(settled(waiting).await.unwrap(), Some(StartGate::HandedOver));
    assert_eq!(
        w.servers.pass_gate(Duration::ZERO).await.err(),
        Some(StartGate::HandedOver)
    );
    assert_eq!(w.servers.changing(), 0);
    assert_eq!(
        w.servers.start(&w.alice, &ServerName::DEFAULT),
        Err(StartError::HandedOver)
    );
    assert_eq!(w.servers.state(&alice), ServerState::Stopped);
    assert!(w.db.servers().get(&alice).unwrap().is_none());
    assert_eq!(w.servers.starting_here(), 0);
    assert!(w.fake.spawned.lock().unwrap().is_empty());
}
