use super::*;
use crate::types::{RecordedState, TokenKind, Username};

fn name(n: &str) -> Username {
    Username::parse(n).unwrap()
}

#[test]
fn tokens_are_stored_hashed_and_server_cleanup_is_complete() {
    let db = Db::in_memory().unwrap();
    assert_eq!(db.version().unwrap(), MIGRATIONS.len());
    let alice = db.users().ensure(&name("alice"), None).unwrap();
    db.servers().starting(&dk(&alice.name), 50000).unwrap();
    db.servers()
        .register_client(
            &alice,
            &crate::types::ServerName::DEFAULT,
            "servertoken123",
            "/user/alice/oauth_callback",
            "Server at /user/alice/",
        )
        .unwrap();
    db.servers().running(&dk(&alice.name), 42).unwrap();
    let t = db.tokens().lookup("servertoken123").unwrap().unwrap();
    assert_eq!((t.kind, t.user.name.as_str()), (TokenKind::Server, "alice"));
    // The clear token is nowhere in the table.
    let stored: Vec<String> = {
        let conn = db.lock();
        let mut st = conn.prepare("SELECT hash FROM api_tokens").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(stored.iter().all(|h| !h.contains("servertoken123")));
    let oauth = db
        .tokens()
        .add(&NewToken {
            user_id: alice.id,
            secret: "oauthtok",
            kind: TokenKind::OAuth,
            client_id: Some("jupyterhub-user-alice"),
            session_id: Some("sid"),
            note: "",
            expires_in: Some(60),
            scopes: None,
        })
        .unwrap();
    assert!(oauth > 0);
    db.servers().stopped(&dk(&alice.name)).unwrap();
    assert!(db.tokens().lookup("servertoken123").unwrap().is_none());
    assert!(db.tokens().lookup("oauthtok").unwrap().is_none());
    assert!(db
        .oauth()
        .client("jupyterhub-user-alice")
        .unwrap()
        .is_none());
    assert!(db.servers().get(&dk(&alice.name)).unwrap().is_none());
}

#[test]
fn codes_are_single_use() {
    let db = Db::in_memory().unwrap();
    let alice = db.users().ensure(&name("alice"), None).unwrap();
    db.servers()
        .register_client(
            &alice,
            &crate::types::ServerName::DEFAULT,
            "tok",
            "/cb",
            "d",
        )
        .unwrap();
    let row = CodeRow {
        client_id: "jupyterhub-user-alice".into(),
        user_id: alice.id,
        redirect_uri: "/cb".into(),
        session_id: None,
        challenge: None,
        challenge_method: None,
    };
    db.oauth().add_code("code1", &row).unwrap();
    assert_eq!(db.oauth().take_code("code1").unwrap(), Some(row));
    assert_eq!(db.oauth().take_code("code1").unwrap(), None);
}

#[test]
fn repair_ends_half_done_spawns_and_keeps_running_ones() {
    let db = Db::in_memory().unwrap();
    let (a, b) = (name("a"), name("b"));
    db.users().ensure(&a, None).unwrap();
    db.users().ensure(&b, None).unwrap();
    db.servers().starting(&dk(&a), 50001).unwrap();
    db.servers().starting(&dk(&b), 50002).unwrap();
    db.servers().running(&dk(&b), 7).unwrap();
    let fixed = db.servers().repair().unwrap();
    assert_eq!(fixed.len(), 1);
    assert!(db.servers().get(&dk(&a)).unwrap().is_none());
    let row = db.servers().get(&dk(&b)).unwrap().unwrap();
    assert_eq!((row.pid, row.state), (Some(7), RecordedState::Running));
}

#[test]
fn activity_only_moves_forward() {
    let db = Db::in_memory().unwrap();
    let a = name("a");
    db.users().ensure(&a, None).unwrap();
    db.users()
        .touch(&a, None, "2026-01-02T00:00:00.000000Z")
        .unwrap();
    db.users()
        .touch(&a, None, "2026-01-01T00:00:00.000000Z")
        .unwrap();
    assert_eq!(
        db.users()
            .get(&a)
            .unwrap()
            .unwrap()
            .last_activity
            .as_deref(),
        Some("2026-01-02T00:00:00.000000Z")
    );
}

#[test]
fn sessions_end_with_their_oauth_tokens() {
    let db = Db::in_memory().unwrap();
    let a = db.users().ensure(&name("a"), Some(true)).unwrap();
    db.sessions().add("secret", a.id, "sid1").unwrap();
    let (user, sid) = db.sessions().get("secret").unwrap().unwrap();
    assert_eq!(
        (user.name.as_str(), user.admin, sid.as_str()),
        ("a", true, "sid1")
    );
    let token = NewToken {
        user_id: a.id,
        secret: "o1",
        kind: TokenKind::OAuth,
        client_id: None,
        session_id: Some("sid1"),
        note: "",
        expires_in: None,
        scopes: None,
    };
    db.tokens().add(&token).unwrap();
    db.sessions().end("secret").unwrap();
    assert!(db.sessions().get("secret").unwrap().is_none());
    assert!(db.tokens().lookup("o1").unwrap().is_none());
}

#[test]
fn a_page_of_users_comes_with_their_servers_in_one_query() {
    let db = Db::in_memory().unwrap();
    for n in ["carol", "alice", "bob", "dave"] {
        db.users().ensure(&name(n), None).unwrap();
    }
    db.servers().starting(&dk(&name("bob")), 50003).unwrap();
    db.servers().running(&dk(&name("bob")), 7).unwrap();
    assert_eq!(db.users().count().unwrap(), 4);
    let by_name = UserQuery {
        sort: SortBy::Name,
        ..UserQuery::default()
    };
    let page = db.users().page(&by_name, 1, Some(2)).unwrap();
    let names: Vec<&str> = page.iter().map(|(u, _)| u.name.as_str()).collect();
    assert_eq!(names, ["bob", "carol"]);
    let bob = page[0].1.as_ref().unwrap();
    assert_eq!(
        (bob.user.as_str(), bob.state, bob.port, bob.pid),
        ("bob", RecordedState::Running, 50003, Some(7))
    );
    assert!(page[1].1.is_none());
    assert!(db.users().page(&by_name, 9, Some(2)).unwrap().is_empty());
    let names_of = |q: &UserQuery| -> Vec<String> {
        let page = db.users().page(q, 0, None).unwrap();
        page.iter()
            .map(|(u, _)| u.name.as_str().to_owned())
            .collect()
    };
    // JupyterHub's default order is creation order.
    assert_eq!(
        names_of(&UserQuery::default()),
        ["carol", "alice", "bob", "dave"]
    );
    let desc = UserQuery {
        descending: true,
        ..by_name.clone()
    };
    assert_eq!(names_of(&desc), ["dave", "carol", "bob", "alice"]);
    let active = UserQuery {
        having: HavingServer::Active,
        ..UserQuery::default()
    };
    assert_eq!(names_of(&active), ["bob"]);
    assert_eq!(db.users().count_matching(&active).unwrap(), 1);
    let inactive = UserQuery {
        having: HavingServer::Inactive,
        ..by_name.clone()
    };
    assert_eq!(names_of(&inactive), ["alice", "carol", "dave"]);
    assert_eq!(db.users().count_matching(&inactive).unwrap(), 3);
}

/// The name filter is a substring match, case-insensitive, with `%` and `_` taken
/// literally (never as wildcards someone could use to list everyone).
#[test]
fn the_name_filter_matches_substrings_only() {
    let db = Db::in_memory().unwrap();
    for n in ["alice", "malice", "bob", "a_b", "axb"] {
        db.users().ensure(&name(n), None).unwrap();
    }
    let filter = |f: &str| -> Vec<String> {
        let q = UserQuery {
            sort: SortBy::Name,
            name_contains: Some(f.to_owned()),
            ..UserQuery::default()
        };
        assert_eq!(
            db.users().count_matching(&q).unwrap(),
            db.users().page(&q, 0, None).unwrap().len()
        );
        let page = db.users().page(&q, 0, None).unwrap();
        page.iter()
            .map(|(u, _)| u.name.as_str().to_owned())
            .collect()
    };
    assert_eq!(filter("LIC"), ["alice", "malice"]);
    assert_eq!(filter("_"), ["a_b"]);
    assert!(filter("%").is_empty());
    assert!(filter("zz").is_empty());
}

#[test]
fn the_user_count_is_kept_until_the_users_change() {
    let dir = std::env::temp_dir().join(format!("sudohub-count-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hub.sqlite");
    let db = Db::open(&path).unwrap();
    for n in ["alice", "bob"] {
        db.users().ensure(&name(n), None).unwrap();
    }
    assert_eq!(db.users().count().unwrap(), 2);
    db.users().ensure(&name("alice"), Some(true)).unwrap();
    db.users().ensure(&name("carol"), None).unwrap();
    assert_eq!(db.users().count().unwrap(), 3);
    db.users().delete(&name("bob")).unwrap();
    assert_eq!(db.users().count().unwrap(), 2);
    // An admin's sqlite3 (another connection) adds a user.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute(
            "INSERT INTO users (name, admin, created) VALUES ('dave', 0, '2026-01-01T00:00:00Z')",
            [],
        )
        .unwrap();
    assert_eq!(db.users().count().unwrap(), 3);
    drop((db, other));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn expired_tokens_never_match() {
    let db = Db::in_memory().unwrap();
    let alice = db.users().ensure(&name("alice"), None).unwrap();
    db.tokens()
        .add(&NewToken {
            user_id: alice.id,
            secret: "expiredtoken1",
            kind: TokenKind::Api,
            client_id: None,
            session_id: None,
            note: "",
            expires_in: Some(-10),
            scopes: None,
        })
        .unwrap();
    assert!(db.tokens().lookup("expiredtoken1").unwrap().is_none());
}

#[test]
fn a_read_sees_one_snapshot_and_refuses_to_write() {
    let db = Db::in_memory().unwrap();
    let alice = db.users().ensure(&name("alice"), None).unwrap();
    db.servers().starting(&dk(&alice.name), 50001).unwrap();
    let (row, user) = db
        .read(|s| {
            Ok((
                s.servers().get(&dk(&alice.name))?,
                s.users().get(&alice.name)?,
            ))
        })
        .unwrap();
    assert_eq!(row.unwrap().port, 50001);
    assert_eq!(user.unwrap().id, alice.id);
    // A write inside a read is an error (a nested transaction), not a deadlock, and
    // leaves the connection usable.
    let err = db.read(|s| s.servers().stopped(&dk(&alice.name)));
    assert!(err.is_err(), "{err:?}");
    db.servers().stopped(&dk(&alice.name)).unwrap();
    assert!(db.servers().get(&dk(&alice.name)).unwrap().is_none());
}

#[test]
fn kept_reads_end_with_any_write() {
    let db = Db::in_memory().unwrap();
    let alice = db.users().ensure(&name("alice"), None).unwrap();
    let id = db
        .tokens()
        .add(&NewToken::api(alice.id, "tok-a", "n", None))
        .unwrap();
    // Read twice (the second from the cache), then revoked: gone at once.
    assert!(db.tokens().lookup("tok-a").unwrap().is_some());
    assert!(db.tokens().lookup("tok-a").unwrap().is_some());
    assert!(db.tokens().delete_api(alice.id, id).unwrap());
    assert!(db.tokens().lookup("tok-a").unwrap().is_none());
    // A user's server and groups: a change is seen by the next read.
    assert_eq!(db.user_extras(&alice).unwrap(), UserExtras::default());
    db.servers().starting(&dk(&alice.name), 50002).unwrap();
    assert_eq!(db.user_extras(&alice).unwrap().default.unwrap().port, 50002);
    db.servers().stopped(&dk(&alice.name)).unwrap();
    assert_eq!(db.user_extras(&alice).unwrap().default, None);
    // A token that expires while kept is not found after its expiry.
    db.tokens()
        .add(&NewToken::api(alice.id, "tok-b", "n", Some(0)))
        .unwrap();
    assert!(db.tokens().lookup("tok-b").unwrap().is_some());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(db.tokens().lookup("tok-b").unwrap().is_none());
}

/// A user's default server.
fn dk(user: &Username) -> crate::types::ServerKey {
    crate::types::ServerKey::default_of(user)
}

/// A running named server is read with its own user and display name (a display name
/// with spaces is not a user name).
#[test]
fn a_running_named_server_reads_back_whole() {
    let db = Db::in_memory().unwrap();
    let alice = db.users().ensure(&name("alice"), None).unwrap();
    let gpu = crate::types::ServerName::parse("gpu").unwrap();
    assert_eq!(
        db.named().create(alice.id, &gpu, "My GPU box", 0).unwrap(),
        Created::New
    );
    let key = crate::types::ServerKey::new(alice.name.clone(), gpu.clone());
    db.servers().starting(&key, 50009).unwrap();
    let row = db.named().get(alice.id, &gpu).unwrap().unwrap();
    assert_eq!(row.display_name, "My GPU box");
    assert_eq!(row.running.unwrap().key(), key);
    let all = db.named().of_users(&[alice.id]).unwrap();
    assert_eq!(all[&alice.id][0].running.as_ref().unwrap().port, 50009);
    assert_eq!(db.user_extras(&alice).unwrap().named.len(), 1);
}
