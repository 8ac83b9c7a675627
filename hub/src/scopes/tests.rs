use super::*;

fn u(n: &str) -> Username {
    Username::parse(n).unwrap()
}

fn g(n: &str) -> GroupName {
    GroupName::parse(n).unwrap()
}

#[test]
fn scopes_include_their_subscopes_with_the_same_filter() {
    let s = ScopeSet::parse(&["users!user=alice", "list:groups"], None).unwrap();
    let v = s.strings();
    for want in [
        "users!user=alice",
        "read:users!user=alice",
        "read:users:name!user=alice",
        "list:users!user=alice",
        "users:activity!user=alice",
        "read:users:activity!user=alice",
        "list:groups",
        "read:groups:name",
    ] {
        assert!(v.contains(&want.to_owned()), "{want} in {v:?}");
    }
    assert!(!v.iter().any(|x| x.starts_with("delete:users")), "{v:?}");
    assert!(s.allows("read:users", &u("alice"), &[]));
    assert!(!s.allows("read:users", &u("bob"), &[]));
    assert!(!s.allows_all("read:users"));
    assert!(s.allows_all("list:groups"));
}

#[test]
fn filters_by_user_group_and_server() {
    let s = ScopeSet::parse(
        &[
            "read:users!group=physics",
            "access:servers!server=carol/",
            "delete:servers!server=carol/lab",
        ],
        None,
    )
    .unwrap();
    assert!(s.allows("read:users", &u("dave"), &[g("physics")]));
    assert!(!s.allows("read:users", &u("dave"), &[g("maths")]));
    assert!(s.has_group_filters());
    assert!(s.allows("access:servers", &u("carol"), &[]));
    assert!(
        !s.allows("delete:servers", &u("carol"), &[]),
        "a named server's scope is not the default server's"
    );
    // A server filter covers the server, not its user: `read:servers!server=carol/`
    // includes `read:users:name` in name only.
    let s = ScopeSet::parse(&["read:servers!server=carol/"], None).unwrap();
    assert!(s.allows("read:servers", &u("carol"), &[]));
    assert!(!s.allows("read:users:name", &u("carol"), &[]));
}

#[test]
fn self_admin_and_bad_input() {
    let alice = ScopeSet::of_user(&u("alice"), false);
    assert!(alice.allows("servers", &u("alice"), &[]));
    assert!(alice.allows("read:tokens", &u("alice"), &[]));
    assert!(!alice.allows("servers", &u("bob"), &[]));
    assert!(!alice.allows_all("list:users"));
    let admin = ScopeSet::of_user(&u("root1"), true);
    for s in [
        "admin:users",
        "delete:users",
        "list:users",
        "start:servers",
        "read:metrics",
        "shutdown",
    ] {
        assert!(admin.allows_all(s), "{s}");
    }
    assert_eq!(
        ScopeSet::parse(&["self"], Some(&u("alice"))).unwrap(),
        alice
    );
    for (bad, says) in [
        ("self", "no user"),
        ("read:everything", "unknown scope: read:everything"),
        ("read:users!user=Bad Name", "bad filter"),
        ("read:users!colour=red", "bad filter"),
        ("servers!server=alice", "<user>/<server name>"),
    ] {
        let e = ScopeSet::parse(&[bad], None).unwrap_err();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn a_token_keeps_only_what_its_owner_holds() {
    let owner = ScopeSet::of_user(&u("alice"), false);
    let asked = ScopeSet::parse(&["read:users!user=alice", "list:users"], None).unwrap();
    let kept = asked.within(&owner, |_, _| false);
    assert!(kept.allows("read:users", &u("alice"), &[]));
    assert!(!kept.allows_all("list:users"));
    let missing = asked.missing_from(&owner, |_, _| false);
    assert!(missing.contains(&"list:users".to_owned()), "{missing:?}");
    // Held through a group: a user filter for a member is kept, for others not.
    let via_group = ScopeSet::parse(&["read:users!group=physics"], None).unwrap();
    let asked = ScopeSet::parse(&["read:users!user=dave", "read:users!user=erin"], None).unwrap();
    let kept = asked.within(&via_group, |user, group| {
        user.as_str() == "dave" && group.as_str() == "physics"
    });
    assert!(kept.allows("read:users", &u("dave"), &[]));
    assert!(!kept.allows("read:users", &u("erin"), &[]));
    // An admin's token asked for one scope has that one only.
    let admin = ScopeSet::of_user(&u("root1"), true);
    let asked = ScopeSet::parse(&["list:users"], None).unwrap();
    let kept = asked.within(&admin, |_, _| false);
    assert!(kept.allows_all("list:users"));
    assert!(!kept.allows_all("admin:users"));
}
