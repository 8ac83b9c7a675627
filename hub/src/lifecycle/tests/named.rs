//! Named servers in the life cycle, against the fake helper.

use super::*;

/// A named server runs beside the default one with its own port, route, token, OAuth
/// client and environment; stopping one leaves the other running.
#[tokio::test]
async fn a_named_server_runs_beside_the_default_one() {
    let w = world(Behaviour::Serve);
    let default = ServerKey::default_of(&w.alice.name);
    let gpu = ServerKey::new(w.alice.name.clone(), ServerName::parse("gpu").unwrap());
    w.servers.start(&w.alice, &ServerName::DEFAULT).unwrap();
    until("default running", || {
        w.servers.state(&default) == ServerState::Running
    })
    .await;
    let default_token = server_token(&w);
    // A named server starts only while it exists.
    assert_eq!(w.servers.start(&w.alice, &gpu.name), Err(StartError::Gone));
    w.db.named().create(w.alice.id, &gpu.name, "", 0).unwrap();
    w.servers.start(&w.alice, &gpu.name).unwrap();
    assert_eq!(
        w.servers.start(&w.alice, &gpu.name),
        Err(StartError::Pending)
    );
    until("gpu running", || {
        w.servers.state(&gpu) == ServerState::Running
    })
    .await;
    let gpu_token = server_token(&w);
    let env: std::collections::HashMap<_, _> = w
        .fake
        .spawned
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .env
        .iter()
        .cloned()
        .collect();
    assert_eq!(env["JUPYTERHUB_SERVER_NAME"], "gpu");
    assert_eq!(
        env["JUPYTERHUB_SERVICE_PREFIX"],
        format!("/user/{}/gpu/", gpu.user)
    );
    let (a, b) = (
        w.routes.server(&default).unwrap(),
        w.routes.server(&gpu).unwrap(),
    );
    assert_ne!(a.port(), b.port());
    let route = w
        .routes
        .resolve(&format!("/user/{}/gpu/api", gpu.user), "/")
        .unwrap();
    assert_eq!((route.target, route.server.as_ref()), (b, Some(&gpu)));
    let t = w.db.tokens().lookup(&gpu_token).unwrap().unwrap();
    assert_eq!(
        t.server.as_ref(),
        Some(&gpu),
        "the server token knows its server"
    );
    assert_eq!(w.db.servers().of_user(&gpu.user).unwrap().len(), 2);
    assert_eq!(
        w.servers.active_of(&gpu.user),
        [default.clone(), gpu.clone()]
    );

    settled(w.servers.stop(&gpu)).await;
    assert_eq!(w.servers.state(&gpu), ServerState::Stopped);
    assert!(w.routes.server(&gpu).is_none());
    assert!(w.db.tokens().lookup(&gpu_token).unwrap().is_none());
    assert_eq!(w.servers.state(&default), ServerState::Running);
    assert!(w.db.tokens().lookup(&default_token).unwrap().is_some());
    let route = w
        .routes
        .resolve(&format!("/user/{}/gpu/api", gpu.user), "/")
        .unwrap();
    assert_eq!(
        route.server.as_ref(),
        Some(&default),
        "its paths fall to the default server"
    );
    settled(w.servers.stop_all_of(&gpu.user)).await;
    assert!(w.servers.active_of(&gpu.user).is_empty());
}
