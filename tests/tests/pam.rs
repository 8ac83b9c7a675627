//! End-to-end tests of `sudohub-pam` with real PAM, real users and passwords, and the
//! helper installed `root:shadow 2755`, called as the (non-shadow) hub user. Run as root
//! by `sudo ./test.sh`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::unistd::{Gid, Uid};
use sudohub_protocol::frame::{encode, read_message};
use sudohub_protocol::pam::{DenyReason, PamAnswer, PamErrorKind, PamRequest};
use sudohub_protocol::{Bounded, Hello, Secret, PROTOCOL_VERSION};
use sudohub_tests::system::{
    run, ConfigLock, HelpersConfigFile, InstalledHelpers, TestGroup, TestUser,
};
use sudohub_tests::{require_root, unique_name};

const PASSWORD: &str = "correct horse battery staple";

struct World {
    hub: TestUser,
    alice: TestUser,
    locked: TestUser,
    expired: TestUser,
    helpers: InstalledHelpers,
    service: PathBuf,
    _config: HelpersConfigFile,
    _group: TestGroup,
    _lock: ConfigLock,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.service);
    }
}

fn world() -> World {
    require_root();
    let lock = ConfigLock::acquire();
    let group = TestGroup::create(&unique_name("spg"));
    let hub = TestUser::create_system(&unique_name("sph"));
    let alice = TestUser::create(&unique_name("spa"), &[&group.name], Some(PASSWORD));
    let locked = TestUser::create(&unique_name("spl"), &[&group.name], Some(PASSWORD));
    run("passwd", &["-l", &locked.name]);
    let expired = TestUser::create(&unique_name("spe"), &[&group.name], Some(PASSWORD));
    run("chage", &["-E", "0", &expired.name]);
    let helpers = InstalledHelpers::install();
    let service_name = unique_name("sudohubpam");
    let service = PathBuf::from("/etc/pam.d").join(&service_name);
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../pam.d/sudohub"),
        &service,
    )
    .unwrap();
    sudohub_tests::fs::chown_mode(&service, Uid::from_raw(0), Gid::from_raw(0), 0o644);
    let config = HelpersConfigFile::write(&format!(
        "hub_user = {:?}\nallowed_group = {:?}\n[pam]\nservice = {service_name:?}\n",
        hub.name, group.name
    ));
    World {
        hub,
        alice,
        locked,
        expired,
        helpers,
        service,
        _config: config,
        _group: group,
        _lock: lock,
    }
}

struct Outcome {
    answer: PamAnswer,
    code: i32,
    stderr: String,
}

/// Runs the helper as `caller` with `input` on stdin.
fn call_as(w: &World, caller: Option<&TestUser>, input: &[u8]) -> Outcome {
    let mut cmd = match caller {
        Some(u) => u.command(w.helpers.pam()),
        None => {
            let mut c = Command::new(w.helpers.pam());
            c.env_clear();
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    drop(stdin);
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    assert!(!stderr.contains("panicked"), "helper panicked: {stderr}");
    let answer = read_message::<_, PamAnswer>(&mut &stdout[..])
        .unwrap_or_else(|e| panic!("bad answer ({e}); stderr: {stderr}"))
        .unwrap_or_else(|| panic!("no answer; stderr: {stderr}"));
    Outcome {
        answer,
        code,
        stderr,
    }
}

fn request(user: &str, password: &str) -> Vec<u8> {
    let mut bytes = encode(&PamRequest::Hello(Hello::current()))
        .unwrap()
        .to_vec();
    bytes.extend_from_slice(
        &encode(&PamRequest::Authenticate {
            username: Bounded::new(user).unwrap(),
            password: Secret::new(password).unwrap(),
        })
        .unwrap(),
    );
    bytes
}

fn check(w: &World, user: &str, password: &str) -> Outcome {
    let o = call_as(w, Some(&w.hub), &request(user, password));
    assert!(
        !o.stderr.contains(password),
        "password in the log: {}",
        o.stderr
    );
    o
}

fn assert_error(o: &Outcome, kind: PamErrorKind, code: i32) {
    match &o.answer {
        PamAnswer::Error { kind: k, .. } => assert_eq!(*k, kind, "{}", o.stderr),
        other => panic!("expected {kind:?}, got {other:?}; {}", o.stderr),
    }
    assert_eq!(o.code, code, "{}", o.stderr);
}

#[test]
fn correct_password_is_accepted() {
    let w = world();
    let o = check(&w, &w.alice.name, PASSWORD);
    assert_eq!(o.answer, PamAnswer::Ok, "{}", o.stderr);
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains(&format!(
        "caller_uid={} user={} result=ok",
        w.hub.uid, w.alice.name
    )));
}

#[test]
fn wrong_password_is_denied() {
    let w = world();
    let o = check(&w, &w.alice.name, "wrong password");
    assert_eq!(
        o.answer,
        PamAnswer::Denied {
            reason: DenyReason::BadCredentials
        }
    );
    assert_eq!(o.code, 1);
}

#[test]
fn unknown_user_is_denied() {
    let w = world();
    let o = check(&w, &unique_name("nouser"), PASSWORD);
    assert!(
        matches!(o.answer, PamAnswer::Denied { .. }),
        "{:?}",
        o.answer
    );
    assert_eq!(o.code, 1);
}

#[test]
fn locked_account_is_denied() {
    let w = world();
    let o = check(&w, &w.locked.name, PASSWORD);
    assert!(
        matches!(o.answer, PamAnswer::Denied { .. }),
        "{:?}",
        o.answer
    );
}

#[test]
fn expired_account_is_denied() {
    let w = world();
    let o = check(&w, &w.expired.name, PASSWORD);
    // pam_unix already fails authentication for an expired account (as an auth error);
    // pam_acct_mgmt would report AccountExpired. Either way: denied.
    assert!(
        matches!(
            o.answer,
            PamAnswer::Denied {
                reason: DenyReason::AccountExpired | DenyReason::BadCredentials
            }
        ),
        "{:?}",
        o.answer
    );
    assert_eq!(o.code, 1);
}

#[test]
fn other_callers_are_refused_without_a_pam_call() {
    let w = world();
    for caller in [Some(&w.alice), None] {
        let o = call_as(&w, caller, &request(&w.alice.name, PASSWORD));
        assert_error(&o, PamErrorKind::CallerNotHub, 2);
        // Refused before reading the request: no user name in the log line.
        assert!(
            o.stderr.contains("user=- result=error:CallerNotHub"),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn invalid_usernames_are_errors() {
    let w = world();
    for name in [
        "../x".to_owned(),
        "-rf".to_owned(),
        "a".repeat(300),
        "Alice".to_owned(),
    ] {
        assert_error(
            &check(&w, &name, PASSWORD),
            PamErrorKind::InvalidUsername,
            5,
        );
    }
}

/// Replaces the bytes `from` in an encoded request with `to` (same length), to make
/// frames `Bounded` would refuse to build.
fn patched(user: &str, from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut bytes = request(user, PASSWORD);
    let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
    bytes[at..at + to.len()].copy_from_slice(to);
    bytes
}

#[test]
fn nul_and_non_utf8_usernames_are_errors() {
    let w = world();
    let o = call_as(&w, Some(&w.hub), &patched("abcd", b"abcd", b"ab\0d"));
    assert_error(&o, PamErrorKind::BadFrame, 4);
    let o = call_as(&w, Some(&w.hub), &patched("abcd", b"abcd", b"ab\xffd"));
    assert_error(&o, PamErrorKind::BadFrame, 4);
}

#[test]
fn a_one_mebibyte_password_is_an_error() {
    let w = world();
    let mut bytes = encode(&PamRequest::Hello(Hello::current()))
        .unwrap()
        .to_vec();
    // As the hub would have to send it: a frame far over the 64 KiB limit.
    bytes.extend_from_slice(&((1u32 << 20) + 16).to_le_bytes());
    bytes.extend(std::iter::repeat_n(b'x', 1 << 16));
    let o = call_as(&w, Some(&w.hub), &bytes);
    assert_error(&o, PamErrorKind::BadFrame, 4);
    assert!(o.stderr.contains("exceeds the limit"), "{}", o.stderr);
}

#[test]
fn truncated_and_garbage_frames_are_errors() {
    let w = world();
    let full = request(&w.alice.name, PASSWORD);
    for bytes in [
        full[..full.len() - 3].to_vec(),
        vec![0xff; 40],
        vec![3, 0, 0, 0, 9, 9, 9],
        Vec::new(),
    ] {
        let o = call_as(&w, Some(&w.hub), &bytes);
        assert_error(&o, PamErrorKind::BadFrame, 4);
    }
}

#[test]
fn a_wrong_protocol_version_is_an_error() {
    let w = world();
    let mut bytes = encode(&PamRequest::Hello(Hello {
        version: PROTOCOL_VERSION + 1,
    }))
    .unwrap()
    .to_vec();
    bytes.extend_from_slice(&request(&w.alice.name, PASSWORD)[8..]);
    let o = call_as(&w, Some(&w.hub), &bytes);
    assert_error(&o, PamErrorKind::ProtocolVersion, 4);
}

#[test]
fn the_hub_user_is_not_in_shadow_and_the_helper_is_setgid_shadow() {
    let w = world();
    let shadow = nix::unistd::Group::from_name("shadow")
        .unwrap()
        .unwrap()
        .gid;
    let mut sleeper = w.hub.command("sleep").arg("30").spawn().unwrap();
    let status = sudohub_tests::proc::status(sleeper.id());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let groups: Vec<u32> = status["Groups"]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    assert!(
        !groups.contains(&shadow.as_raw()),
        "hub-user process groups: {groups:?}"
    );
    assert!(!status["Gid"]
        .split_whitespace()
        .any(|g| g == shadow.to_string()));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(w.helpers.pam()).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, shadow.as_raw(), 0o2755)
    );
    // And still the helper, run by that user, can check a password.
    assert_eq!(check(&w, &w.alice.name, PASSWORD).answer, PamAnswer::Ok);
}

/// The hub's PAM client, run as the hub user (as the hub runs): group rules after PAM,
/// admins from admin groups, and a burst of wrong passwords slowing that user name down
/// while another user name still logs in normally. The hub process has no shadow group.
/// A compromised hub cannot guess fast, whatever it does with the helper: a check that is
/// killed before PAM answers still counts as a failure, and the next check of that account
/// (even with the right password) waits for it; the count lives where the hub cannot
/// reach; other accounts are not slowed; system accounts and non-members are refused
/// without PAM.
#[test]
fn checks_are_paced_per_account_where_the_hub_cannot_reset_them() {
    use std::time::{Duration, Instant};
    let w = world();
    let bob = TestUser::create(&unique_name("spb"), &[&w._group.name], Some(PASSWORD));

    // The kill trick: a wrong password, and the helper killed as soon as it may have
    // started PAM (before or after its answer: the failure counts either way).
    let mut killed = w
        .hub
        .command(w.helpers.pam())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = killed.stdin.take().unwrap();
    stdin.write_all(&request(&w.alice.name, "wrong")).unwrap();
    drop(stdin);
    std::thread::sleep(Duration::from_millis(300));
    killed.kill().unwrap();
    killed.wait().unwrap();

    // A wrong password is answered as soon as a right one: PAM's own 2 s failure delay is
    // off (its timing told a caller who kills the helper which guess was right); the
    // pacing is what a guess costs.
    let carol = TestUser::create(&unique_name("spc"), &[&w._group.name], Some(PASSWORD));
    let started = Instant::now();
    let o = check(&w, &carol.name, "wrong");
    assert!(matches!(o.answer, PamAnswer::Denied { .. }), "{}", o.stderr);
    let wrong_took = started.elapsed();
    assert!(
        wrong_took < Duration::from_millis(1500),
        "a wrong password answered after {wrong_took:?}"
    );

    // Another account is not slowed...
    let started = Instant::now();
    assert_eq!(check(&w, &bob.name, PASSWORD).answer, PamAnswer::Ok);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // ...but alice's next check, right password or not, waits out the failure.
    let started = Instant::now();
    let o = check(&w, &w.alice.name, PASSWORD);
    assert_eq!(o.answer, PamAnswer::Ok, "{}", o.stderr);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "answered after {waited:?}"
    );

    // The hub account cannot read or reset the counts.
    let dir = sudohub_tests::system::TEST_PAM_STATE_DIR;
    let out = w
        .hub
        .command("sh")
        .args(["-c", &format!("ls {dir} || rm -f {dir}/*; ls {dir}")])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{out:?}");

    // Accounts outside the group, and system accounts, never reach PAM.
    for user in ["root", "daemon"] {
        let o = check(&w, user, "whatever");
        assert_eq!(
            o.answer,
            PamAnswer::Denied {
                reason: DenyReason::UnknownUser
            },
            "{user}: {}",
            o.stderr
        );
    }
}

/// A hub account made anew gets another uid (a reinstall): records its predecessor wrote
/// must not stop logins. Records are group-writable whatever the umask; one the helper
/// cannot open (an older one, 0640, of another uid) is replaced and counts as failures.
#[test]
fn records_of_an_earlier_hub_account_do_not_stop_logins() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, Instant};
    let w = world();
    let dir = std::path::Path::new(sudohub_tests::system::TEST_PAM_STATE_DIR);
    let dave = TestUser::create(&unique_name("spv"), &[&w._group.name], Some(PASSWORD));
    let record = dir.join(dave.uid.as_raw().to_string());
    std::fs::write(&record, format!("{} 0 0", dave.name)).unwrap();
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o640)).unwrap();
    nix::unistd::chown(&record, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let started = Instant::now();
    let o = check(&w, &dave.name, PASSWORD);
    assert_eq!(o.answer, PamAnswer::Ok, "{}", o.stderr);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "an unreadable record counts as failures: {:?}",
        started.elapsed()
    );
    let m = std::fs::metadata(&record).unwrap();
    assert_eq!(m.uid(), w.hub.uid.as_raw(), "replaced by the helper");
    assert_eq!(m.mode() & 0o777, 0o660);
    // A record made now is 0660 too, under the hub's umask 0077.
    let erin = TestUser::create(&unique_name("spe"), &[&w._group.name], Some(PASSWORD));
    let out = w
        .hub
        .command("sh")
        .args([
            "-c",
            "umask 077; exec \"$0\"",
            &w.helpers.pam().display().to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = out;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request(&erin.name, PASSWORD))
        .unwrap();
    assert!(child.wait().unwrap().success());
    let m = std::fs::metadata(dir.join(erin.uid.as_raw().to_string())).unwrap();
    assert_eq!(m.mode() & 0o777, 0o660);
}

#[test]
fn hub_client_applies_rules_and_rate_limits() {
    use sudohub_tests::{run_test_as, INNER};
    if std::env::var_os(INNER).is_some() {
        return hub_client_inner();
    }
    let w = world();
    let admins = TestGroup::create(&unique_name("spd"));
    let admin = TestUser::create(
        &unique_name("spx"),
        &[&admins.name, &w._group.name],
        Some(PASSWORD),
    );
    let bob = TestUser::create(&unique_name("spb"), &[&w._group.name], Some(PASSWORD));
    let outsider = TestUser::create(&unique_name("spo"), &[], Some(PASSWORD));
    let out = run_test_as(
        &w.hub,
        "hub_client_applies_rules_and_rate_limits",
        &[
            ("T_HELPER", w.helpers.pam().display().to_string()),
            ("T_GROUP", w._group.name.clone()),
            ("T_ADMINS", admins.name.clone()),
            ("T_ALICE", w.alice.name.clone()),
            ("T_BOB", bob.name.clone()),
            ("T_ADMIN", admin.name.clone()),
            ("T_OUTSIDER", outsider.name.clone()),
        ],
    );
    assert!(out.contains("rate-limited after"), "{out}");
}

fn hub_client_inner() {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, Instant};
    use sudohub::auth::{AuthError, AuthRules, Authenticator, PamClientConfig};
    use sudohub::types::Username;
    use sudohub_tests::inner_var;

    // This process is "the hub": it must not be in group shadow.
    let shadow = nix::unistd::Group::from_name("shadow")
        .unwrap()
        .unwrap()
        .gid;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(
        !groups.split_whitespace().any(|g| g == shadow.to_string()),
        "{groups}"
    );
    assert_ne!(nix::unistd::getegid(), shadow);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let auth = Authenticator::new(
            PamClientConfig {
                helper: inner_var("T_HELPER").into(),
                timeout: Duration::from_secs(10),
                max_concurrent: 4,
            },
            AuthRules {
                allowed_groups: vec![inner_var("T_GROUP")],
                admin_groups: vec![inner_var("T_ADMINS")],
                ..AuthRules::default()
            },
            sudohub::db::Db::in_memory().unwrap(),
        )
        .unwrap();
        let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let pw = || Secret::new(PASSWORD).unwrap();
        let name = |var: &str| Username::parse(&inner_var(var)).unwrap();
        let alice = name("T_ALICE");
        let ok = auth.authenticate(&alice, pw(), None, addr).await.unwrap();
        assert_eq!(ok.admin, Some(false), "admin_groups decide either way");
        let admin = auth
            .authenticate(&name("T_ADMIN"), pw(), None, addr)
            .await
            .unwrap();
        assert_eq!(admin.admin, Some(true), "member of an admin group is admin");
        // A right password outside the allowed group: the PAM helper refuses it before
        // PAM, so the hub learns nothing about that account.
        assert!(
            matches!(
                auth.authenticate(&name("T_OUTSIDER"), pw(), None, addr)
                    .await,
                Err(AuthError::Denied(_))
            ),
            "right password, but not in the allowed group"
        );

        let mut limited_at = None;
        let started = Instant::now();
        for i in 0..20 {
            match auth
                .authenticate(&alice, Secret::new("wrong").unwrap(), None, addr)
                .await
            {
                Err(AuthError::Denied(_)) => {}
                Err(AuthError::RateLimited { retry_after }) => {
                    assert!(retry_after > Duration::ZERO);
                    limited_at.get_or_insert(i);
                }
                other => panic!("attempt {i}: {other:?}"),
            }
        }
        let limited_at = limited_at.expect("20 wrong passwords were never slowed down");
        println!(
            "rate-limited after {limited_at} failures in {:?}",
            started.elapsed()
        );
        // Even the right password is not checked while the name is slowed down...
        assert!(matches!(
            auth.authenticate(&alice, pw(), None, addr).await,
            Err(AuthError::RateLimited { .. })
        ));
        // Twenty wrong passwords for one name at once: they take turns, so the count
        // written after each failure stops the burst after the free failures, as it does
        // for attempts one after the other.
        let admin = name("T_ADMIN");
        let burst: Vec<_> = (0..20)
            .map(|_| auth.authenticate(&admin, Secret::new("wrong").unwrap(), None, addr))
            .collect();
        let outcomes = futures_util::future::join_all(burst).await;
        let reached_pam = outcomes
            .iter()
            .filter(|o| matches!(o, Err(AuthError::Denied(_))))
            .count();
        assert!(
            (1..=6).contains(&reached_pam),
            "{reached_pam} of 20 concurrent guesses reached PAM: {outcomes:?}"
        );
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, Err(AuthError::Denied(_) | AuthError::RateLimited { .. }))));
        // ...but another user name, from the same address, logs in normally.
        let bob = auth
            .authenticate(&name("T_BOB"), pw(), None, addr)
            .await
            .unwrap();
        assert_eq!(bob.name.as_str(), inner_var("T_BOB"));
    });
}
