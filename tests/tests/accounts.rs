//! `sudohub-account` for real: through sudo and its own sudoers rule, with root's
//! helpers.toml, creating real accounts with the system's `useradd`. A compromised hub
//! account plays against it first: every hostile request is refused and the account
//! files stay byte for byte the same. Then one account of the configured shape is made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::unistd::{Gid, Uid};
use serde::Serialize;
use sudohub_protocol::account::{AccountAnswer, AccountRefusal, AccountRequest};
use sudohub_protocol::{frame, Bounded, Hello};
use sudohub_tests::fs;
use sudohub_tests::system::{
    ConfigLock, HelpersConfigFile, HubTomlBesideHelpers, InstalledHelpers, SudoersDropIn,
    TestGroup, TestUser,
};
use sudohub_tests::{require_root, unique_name};

const ACCOUNT_FILES: [&str; 4] = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"];

fn account_files() -> Vec<Vec<u8>> {
    ACCOUNT_FILES
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_default())
        .collect()
}

/// Runs the helper as `who` through `sudo -n`, feeding `input`; the answer, if any, and
/// the exit status.
fn run_helper(who: &TestUser, helper: &Path, input: &[u8]) -> (Option<AccountAnswer>, i32) {
    let mut child = who
        .command("sudo")
        .arg("-n")
        .arg(helper)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    let out = child.wait_with_output().unwrap();
    let answer = out.stdout.get(..frame::HEADER_LEN).and_then(|h| {
        let len = frame::body_len(h.try_into().unwrap()).ok()?;
        frame::decode(out.stdout.get(frame::HEADER_LEN..frame::HEADER_LEN + len)?).ok()
    });
    (answer, out.status.code().unwrap_or(-1))
}

fn hello() -> Vec<u8> {
    frame::encode(&AccountRequest::Hello(Hello::current()))
        .unwrap()
        .to_vec()
}

fn create(name: &str) -> Vec<u8> {
    let mut v = hello();
    let name = Bounded::new(name).unwrap();
    v.extend_from_slice(&frame::encode(&AccountRequest::Create { name }).unwrap());
    v
}

/// What a hub would send if the protocol let it choose more than the name.
#[derive(Serialize)]
enum Greedy {
    #[allow(dead_code)]
    Hello(Hello),
    Create {
        name: String,
        uid: u32,
        groups: Vec<String>,
        home: String,
    },
}

fn refusal(answer: &Option<AccountAnswer>) -> Option<AccountRefusal> {
    match answer {
        Some(AccountAnswer::Refused { kind, .. }) => Some(*kind),
        _ => None,
    }
}

#[test]
fn a_compromised_hub_cannot_make_the_account_helper_do_anything_else() {
    require_root();
    let _lock = ConfigLock::acquire();
    let group = TestGroup::create(&unique_name("sag"));
    let hub = TestUser::create_system(&unique_name("sah"));
    let other = TestUser::create(&unique_name("sao"), &[&group.name], Some("unused-pw-1"));
    let helpers = InstalledHelpers::install();
    let helper = helpers.account();
    let homes = PathBuf::from(format!("/var/lib/{}", unique_name("sau")));
    std::fs::create_dir_all(&homes).unwrap();
    fs::chown_mode(&homes, Uid::from_raw(0), Gid::from_raw(0), 0o755);
    let base = format!(
        "hub_user = {:?}\nallowed_group = {:?}\nmin_uid = 1000\n",
        hub.name, group.name
    );
    // The shape only: the consent comes from root's hub.toml, as in an install.
    let accounts = format!(
        "[accounts]\nuid_min = 42000\nuid_max = 42999\nshell = \"/bin/sh\"\nhome_base = {:?}\n",
        homes.display().to_string()
    );
    HubTomlBesideHelpers::remove_stale();
    let _rules = SudoersDropIn::install(
        &unique_name("sudohubacct"),
        &format!(
            "{}{}",
            SudoersDropIn::account_rule(&hub.name, &helper),
            SudoersDropIn::account_rule(&other.name, &helper)
        ),
    );

    // Without root's consent (hub.toml's create_system_users next to helpers.toml, or
    // `[accounts] create = true`): nothing, whoever asks.
    let _cfg = HelpersConfigFile::write(&format!("{base}{accounts}"));
    let before = account_files();
    let fresh = unique_name("san");
    let (answer, code) = run_helper(&hub, &helper, &create(&fresh));
    assert_eq!(refusal(&answer), Some(AccountRefusal::Config), "{answer:?}");
    assert_ne!(code, 0);
    let consent = "[auth]\ncreate_system_users = true\n";
    let hub_toml = HubTomlBesideHelpers::write("[auth]\ncreate_system_users = false\n", hub.gid);
    let (answer, _) = run_helper(&hub, &helper, &create(&fresh));
    assert_eq!(refusal(&answer), Some(AccountRefusal::Config), "{answer:?}");
    // A consent the hub's account could have written is no consent.
    drop(hub_toml);
    let hub_toml = HubTomlBesideHelpers::write(consent, hub.gid);
    fs::chown_mode(&hub_toml.path, Uid::from_raw(0), hub.gid, 0o660);
    let (answer, _) = run_helper(&hub, &helper, &create(&fresh));
    assert_eq!(refusal(&answer), Some(AccountRefusal::Config), "{answer:?}");
    fs::chown_mode(&hub_toml.path, Uid::from_raw(0), hub.gid, 0o640);
    assert!(account_files() == before);

    // Another user whom sudo lets run it (a rule wider than it should be) is not the hub.
    let (answer, _) = run_helper(&other, &helper, &create(&fresh));
    assert_eq!(
        refusal(&answer),
        Some(AccountRefusal::CallerNotHub),
        "{answer:?}"
    );

    // The hub account, with every request the account files must survive.
    let long = "a".repeat(300);
    let mut greedy = hello();
    greedy.extend_from_slice(
        &frame::encode(&Greedy::Create {
            name: fresh.clone(),
            uid: 0,
            groups: vec!["sudo".into(), "shadow".into()],
            home: "/root".into(),
        })
        .unwrap(),
    );
    let mut oversize = hello();
    oversize.extend_from_slice(&(10u32 * 1024 * 1024).to_le_bytes());
    oversize.extend_from_slice(&[0u8; 4096]);
    let mut no_hello = Vec::new();
    no_hello.extend_from_slice(
        &frame::encode(&AccountRequest::Create {
            name: Bounded::new(fresh.as_str()).unwrap(),
        })
        .unwrap(),
    );
    let cases: Vec<(&str, Vec<u8>, AccountRefusal)> = vec![
        ("root", create("root"), AccountRefusal::InvalidName),
        (
            "the hub's own account",
            create(&hub.name),
            AccountRefusal::Exists,
        ),
        (
            "an existing user",
            create(&other.name),
            AccountRefusal::Exists,
        ),
        ("a system account", create("daemon"), AccountRefusal::Exists),
        (
            "an existing group",
            create(&group.name),
            AccountRefusal::Exists,
        ),
        ("a path", create("../x"), AccountRefusal::InvalidName),
        ("a slash", create("a/b"), AccountRefusal::InvalidName),
        (
            "a newline",
            create("evil\nroot:x:0:0"),
            AccountRefusal::InvalidName,
        ),
        ("an option", create("-o"), AccountRefusal::InvalidName),
        ("upper case", create("Root"), AccountRefusal::InvalidName),
        (
            "a machine account",
            create("host$"),
            AccountRefusal::InvalidName,
        ),
        ("too long", create(&long[..40]), AccountRefusal::InvalidName),
        ("uid 0, groups and home", greedy, AccountRefusal::BadFrame),
        ("an oversize frame", oversize, AccountRefusal::BadFrame),
        ("no hello", no_hello, AccountRefusal::BadFrame),
        ("nothing", Vec::new(), AccountRefusal::BadFrame),
    ];
    for (what, input, want) in cases {
        let (answer, code) = run_helper(&hub, &helper, &input);
        assert_eq!(refusal(&answer), Some(want), "{what}: {answer:?}");
        assert_ne!(code, 0, "{what}");
        assert!(
            account_files() == before,
            "{what}: the account files changed"
        );
    }
    // A home that exists already (even for a name that does not) is left alone.
    let squat = unique_name("sas");
    std::fs::create_dir(homes.join(&squat)).unwrap();
    let (answer, _) = run_helper(&hub, &helper, &create(&squat));
    assert_eq!(refusal(&answer), Some(AccountRefusal::Exists), "{answer:?}");
    assert!(
        account_files() == before,
        "a squatted home: the account files changed"
    );
    // A home base someone else could write to: refused.
    fs::chown_mode(&homes, Uid::from_raw(0), Gid::from_raw(0), 0o777);
    let (answer, _) = run_helper(&hub, &helper, &create(&fresh));
    assert_eq!(refusal(&answer), Some(AccountRefusal::Config), "{answer:?}");
    fs::chown_mode(&homes, Uid::from_raw(0), Gid::from_raw(0), 0o755);
    // Arguments are refused by sudo's rule itself ("" allows none).
    let out = hub
        .command("sudo")
        .args(["-n"])
        .arg(&helper)
        .arg("--uid=0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(account_files() == before, "the account files changed");

    // The one thing it does: a new account, in the configured shape.
    let (answer, code) = run_helper(&hub, &helper, &create(&fresh));
    // Taken in charge at once: removed (with userdel) when the test ends, pass or fail.
    let made = nix::unistd::User::from_name(&fresh)
        .unwrap()
        .map(|_| TestUser::existing(&fresh));
    let Some(AccountAnswer::Created { uid }) = answer else {
        panic!("not created: {answer:?}");
    };
    let made = made.expect("a passwd entry");
    assert_eq!(code, 0);
    assert_eq!(made.uid.as_raw(), uid);
    assert!((42000..=42999).contains(&uid), "{uid}");
    let primary = nix::unistd::Group::from_gid(made.gid).unwrap().unwrap();
    assert_eq!(primary.name, fresh, "its own primary group");
    let groups = String::from_utf8(
        std::process::Command::new("id")
            .args(["-nG", &fresh])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut groups: Vec<&str> = groups.split_whitespace().collect();
    groups.sort_unstable();
    let mut want = vec![fresh.as_str(), group.name.as_str()];
    want.sort_unstable();
    assert_eq!(groups, want, "the allowed group and its own, nothing else");
    let home = homes.join(&fresh);
    let meta = std::fs::symlink_metadata(&home).unwrap();
    assert!(meta.is_dir());
    assert_eq!((meta.uid(), meta.mode() & 0o7777), (uid, 0o700));
    assert_eq!(made.home, home);
    let pw = nix::unistd::User::from_name(&fresh).unwrap().unwrap();
    assert_eq!(pw.shell, PathBuf::from("/bin/sh"));
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    let line = shadow
        .lines()
        .find(|l| l.starts_with(&format!("{fresh}:")))
        .unwrap();
    assert!(
        line.split(':').nth(1).unwrap().starts_with('!'),
        "locked password: {line}"
    );
    // Asked again: the existing account is left as it is.
    let after = account_files();
    let (answer, _) = run_helper(&hub, &helper, &create(&fresh));
    assert_eq!(refusal(&answer), Some(AccountRefusal::Exists), "{answer:?}");
    assert!(
        account_files() == after,
        "a second request changed the account files"
    );
    drop(made);
    let _ = std::fs::remove_dir_all(&homes);
}
