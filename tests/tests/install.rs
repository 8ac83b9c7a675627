//! The files an admin installs, checked with the tools that will read them.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sudohub::auth::rules;
use sudohub_tests::system::{self, InstalledHelpers, TestGroup, TestUser};
use sudohub_tests::{require_root, unique_name};

const UNIT: &str = include_str!("../../systemd/sudohub.service");

/// Options that make systemd set no-new-privileges, under which sudo cannot work.
const IMPLY_NNP: &[&str] = &[
    "NoNewPrivileges",
    "SystemCallFilter",
    "SystemCallArchitectures",
    "RestrictAddressFamilies",
    "RestrictNamespaces",
    "RestrictSUIDSGID",
    "PrivateDevices",
    "ProtectKernelTunables",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectClock",
    "MemoryDenyWriteExecute",
    "RestrictRealtime",
    "LockPersonality",
    "DynamicUser",
];

fn settings() -> Vec<(String, String)> {
    UNIT.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn systemd_unit_keeps_user_servers_and_sudo_working() {
    let s = settings();
    let get = |k: &str| s.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("User"), Some("sudohub"));
    assert_eq!(
        get("KillMode"),
        Some("process"),
        "a hub restart must not kill user servers"
    );
    assert_eq!(get("Restart"), Some("on-failure"));
    // Hardening that leaves sudo working: no core files, other users' processes hidden,
    // the database and secrets created 0600.
    assert_eq!(get("LimitCORE"), Some("0"));
    assert_eq!(get("ProtectProc"), Some("invisible"));
    assert_eq!(get("UMask"), Some("0077"));
    assert_eq!(
        get("ProcSubset"),
        None,
        "the port-owner check reads /proc/net"
    );
    for key in IMPLY_NNP {
        assert!(
            get(key).is_none(),
            "{key}= implies no-new-privileges and breaks sudo"
        );
    }
    assert!(
        get("ProtectControlGroups").is_none(),
        "ProtectControlGroups= makes /sys/fs/cgroup read-only for the helper's root phase"
    );
    for key in ["ProtectHome", "PrivateTmp"] {
        assert!(
            get(key).is_none(),
            "{key}= would change the user servers' view of the system"
        );
    }
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    require_root();
    // Point ExecStart at a real hub binary, since the unit is checked before installation.
    let helpers = InstalledHelpers::install();
    let hub = helpers.install_hub();
    let dir = std::env::temp_dir().join(sudohub_tests::unique_name("unit"));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("sudohub.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/bin/sudohub", &hub.display().to_string()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by scripts/deps.sh)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The cgroup v2 unit of the servers' subtree, too.
    let servers = dir.join("sudohub-servers.service");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../systemd/sudohub-servers.service"
        ),
        &servers,
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&servers)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify sudohub-servers.service: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Held by each test that runs install.sh: every prefix is compiled into the helpers, so
/// two tests building for different prefixes at once would rebuild in turn, over and over.
static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One install.sh test at a time (a failed one leaves the lock poisoned, not held).
fn installing() -> std::sync::MutexGuard<'static, ()> {
    INSTALLING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `./install.sh` with `args` and returns its output; fails the test unless it
/// succeeded.
fn install_sh(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../install.sh"))
        .args(args)
        .output()
        .expect("run install.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "install.sh {args:?} failed:\n{text}");
    text
}

/// The options of a self-contained install below `dir` with its own account and group.
fn prefix_args<'a>(dir: &'a str, user: &'a str, group: &'a str) -> [&'a str; 7] {
    [
        "--no-start",
        "--prefix",
        dir,
        "--user",
        user,
        "--group",
        group,
    ]
}

/// `sudohub check --prefix DIR` with the installed binary: (passed, output).
fn check(dir: &Path) -> (bool, String) {
    let out = Command::new(dir.join("usr/bin/sudohub"))
        .arg("check")
        .arg("--prefix")
        .arg(dir)
        .output()
        .expect("run sudohub check");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

fn owner_mode(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// The admin's first command, for real: `install.sh --no-start --prefix DIR` with its own
/// service account and group (created by the script, unique to this run). Every file gets
/// the owner and mode of DESIGN.md, the account is a locked system user outside `shadow`,
/// and the installed `sudohub check` passes. A second run keeps the admin's edits and
/// takes the account back out of `shadow` if someone put it there; `--uninstall` keeps
/// the configuration and state, `--purge` removes them.
#[test]
fn install_sh_installs_a_layout_that_sudohub_check_passes() {
    require_root();
    let _one_at_a_time = installing();
    let user = unique_name("sih");
    let group = unique_name("sig");
    let dir = std::env::temp_dir().join(unique_name("sudohub-install"));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let install = prefix_args(d, &user, &group);

    let first = install_sh(&install);
    let account = TestUser::existing(&user);
    let _group = TestGroup::existing(&group);
    let _cleanup = RemoveDir(dir.clone());

    let pw = nix::unistd::User::from_name(&user).unwrap().unwrap();
    assert!(pw.uid.as_raw() < 1000, "a system account: uid {}", pw.uid);
    assert_eq!(pw.shell, Path::new("/usr/sbin/nologin"));
    // The account's home is the prefix's state directory, never the real
    // /var/lib/sudohub of a hub installed on this machine.
    assert_eq!(pw.dir, dir.join("var/lib/sudohub"));
    let status = system::run("passwd", &["-S", &user]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert_eq!(
        status.split_whitespace().nth(1),
        Some("L"),
        "password locked: {status}"
    );
    assert!(!rules::user_groups(&user).iter().any(|g| g == "shadow"));

    let shadow = nix::unistd::Group::from_name("shadow")
        .unwrap()
        .unwrap()
        .gid
        .as_raw();
    let (u, g) = (account.uid.as_raw(), account.gid.as_raw());
    for (path, want) in [
        ("usr/bin/sudohub", (0, 0, 0o755)),
        ("usr/lib/sudohub/sudohub-spawner", (0, 0, 0o755)),
        ("usr/lib/sudohub/sudohub-account", (0, 0, 0o755)),
        ("usr/lib/sudohub/sudohub-pam", (0, shadow, 0o2755)),
        ("etc/sudoers.d/sudohub", (0, 0, 0o440)),
        ("etc/pam.d/sudohub", (0, 0, 0o644)),
        ("etc/sudohub/helpers.toml", (0, 0, 0o644)),
        ("etc/sudohub/hub.toml", (0, g, 0o640)),
        ("lib/systemd/system/sudohub.service", (0, 0, 0o644)),
        ("lib/systemd/system/sudohub-servers.service", (0, 0, 0o644)),
        ("var/lib/sudohub", (u, g, 0o700)),
        ("var/lib/sudohub-pam", (0, shadow, 0o770)),
        ("var/log/sudohub", (u, g, 0o750)),
        ("run/sudohub", (u, g, 0o755)),
    ] {
        assert_eq!(owner_mode(&dir.join(path)), want, "{path}");
    }
    let sudoers = std::fs::read_to_string(dir.join("etc/sudoers.d/sudohub")).unwrap();
    assert!(
        sudoers.contains(&format!(
            "{user} ALL=(root) NOPASSWD: {d}/usr/lib/sudohub/sudohub-spawner \"\""
        )),
        "{sudoers}"
    );
    // The account helper's rule: as root, that one binary, no arguments.
    assert!(
        sudoers.contains(&format!(
            "{user} ALL=(root) NOPASSWD: {d}/usr/lib/sudohub/sudohub-account \"\""
        )),
        "{sudoers}"
    );
    let unit = std::fs::read_to_string(dir.join("lib/systemd/system/sudohub.service")).unwrap();
    assert!(unit.contains(&format!("\nUser={user}\n")), "{unit}");

    let (ok, report) = check(&dir);
    assert!(ok, "sudohub check after install.sh:\n{first}\n{report}");
    for line in [
        format!("{d}/usr/lib/sudohub/sudohub-pam is root:shadow, mode 2755 (setgid shadow)"),
        format!("{d}/usr/lib/sudohub/sudohub-spawner is root-owned, mode 0755"),
        format!("{d}/etc/sudoers.d/sudohub is root-owned, mode 0440"),
        format!("{d}/etc/sudoers.d/sudohub passes visudo -cf"),
        format!("{d}/etc/sudohub/helpers.toml is owned by root and not writable by others"),
        format!("hub user {user} exists and is not root"),
        format!("hub user {user} is not in group shadow"),
        format!("group {group} exists"),
        format!("PAM service {d}/etc/pam.d/sudohub is present"),
    ] {
        assert!(report.contains(&line), "missing `{line}` in:\n{report}");
    }
    assert!(report.contains("checks passed"), "{report}");

    // Again, after an admin edited hub.toml and someone put the account in shadow.
    let hub_toml = dir.join("etc/sudohub/hub.toml");
    let edited = format!(
        "{}\n# edited by the admin\n",
        std::fs::read_to_string(&hub_toml).unwrap()
    );
    std::fs::write(&hub_toml, &edited).unwrap();
    system::run("gpasswd", &["-a", &user, "shadow"]);
    let (ok, report) = check(&dir);
    assert!(
        !ok && report.contains(&format!("hub user {user} is in group shadow")),
        "{report}"
    );
    let second = install_sh(&install);
    assert!(second.contains("keeping existing"), "{second}");
    assert!(
        second.contains(&format!("removed {user} from group shadow")),
        "{second}"
    );
    assert_eq!(std::fs::read_to_string(&hub_toml).unwrap(), edited);
    let (ok, report) = check(&dir);
    assert!(ok, "{report}");

    // The setuid mode, as an upgrade: the helper becomes root:<hub group> 4750 and the
    // spawner's sudoers rule goes (the account helper's stays); hub.toml is the admin's,
    // so `sudohub check` says what to change until they set `sudo = []`.
    let mut setuid = install.to_vec();
    setuid.push("--setuid-spawner");
    install_sh(&setuid);
    let helper = format!("{d}/usr/lib/sudohub/sudohub-spawner");
    assert_eq!(owner_mode(Path::new(&helper)), (0, g, 0o4750));
    let sudoers = std::fs::read_to_string(dir.join("etc/sudoers.d/sudohub")).unwrap();
    assert!(!sudoers.contains("sudohub-spawner"), "{sudoers}");
    assert!(sudoers.contains("sudohub-account"), "{sudoers}");
    let (ok, report) = check(&dir);
    assert!(
        !ok && report.contains(&format!("{helper} has owner uid 0 and mode 4750")),
        "{report}"
    );
    let text = std::fs::read_to_string(&hub_toml).unwrap();
    std::fs::write(
        &hub_toml,
        text.replace("sudo = [\"sudo\", \"-n\"]", "sudo = []"),
    )
    .unwrap();
    let (ok, report) = check(&dir);
    assert!(ok, "{report}");
    assert!(
        report.contains(&format!("{helper} is setuid root, root:{g}, mode 4750")),
        "{report}"
    );
    // And back: without the option the helper loses its setuid bit and gets its rule.
    install_sh(&install);
    assert_eq!(owner_mode(Path::new(&helper)), (0, 0, 0o755));
    std::fs::write(&hub_toml, &edited).unwrap();
    let (ok, report) = check(&dir);
    assert!(ok, "{report}");

    // Uninstall keeps configuration and state; purge removes them.
    install_sh(&[
        "--uninstall",
        "--prefix",
        d,
        "--user",
        &user,
        "--group",
        &group,
    ]);
    for gone in [
        "usr/bin/sudohub",
        "usr/lib/sudohub",
        "etc/sudoers.d/sudohub",
        "etc/pam.d/sudohub",
    ] {
        assert!(!dir.join(gone).exists(), "{gone} is still there");
    }
    assert!(hub_toml.exists() && dir.join("var/lib/sudohub").exists());
    install_sh(&[
        "--uninstall",
        "--purge",
        "--prefix",
        d,
        "--user",
        &user,
        "--group",
        &group,
    ]);
    assert!(!dir.join("etc/sudohub").exists() && !dir.join("var/lib/sudohub").exists());
}

/// Removes a directory tree when dropped.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The keys of a TOML file as the README's tables name them: `key`, `[section] key` or
/// `[[array]] key`, from active and commented-out (`# key = …`) lines alike.
fn documented_keys(toml: &str) -> Vec<String> {
    let mut section = String::new();
    let mut keys = Vec::new();
    for line in toml.lines() {
        let line = line.trim_start_matches('#').trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = line.to_owned();
            continue;
        }
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if !key.bytes().all(|c| c.is_ascii_lowercase() || c == b'_') {
            continue;
        }
        keys.push(if section.is_empty() {
            format!("`{key}`")
        } else {
            format!("`{section} {key}`")
        });
    }
    keys
}

/// The README's configuration reference names every key of the generated hub.toml and of
/// the shipped helpers.toml, so the table cannot fall behind the code.
#[test]
fn readme_documents_every_config_key() {
    let readme = include_str!("../../README.md");
    let helpers = include_str!("../../etc/helpers.toml");
    let mut missing = Vec::new();
    let hub_keys = documented_keys(sudohub::config::GENERATED);
    assert!(hub_keys.len() > 25, "{hub_keys:?}");
    for key in hub_keys.iter().chain(&documented_keys(helpers)) {
        if !readme.contains(&format!("| {key} |")) {
            missing.push(key.clone());
        }
    }
    assert!(missing.is_empty(), "README.md lacks rows for {missing:?}");
}

/// Runs `script` with `sh -c` as the account `user` (its groups too), as root does to
/// play a compromised service account; fails the test unless it succeeds.
fn as_account(user: &str, script: &str) {
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={user}"),
            &format!("--regid={user}"),
            "--init-groups",
            "--",
            "sh",
            "-c",
            script,
        ])
        .output()
        .expect("setpriv");
    assert!(
        out.status.success(),
        "as {user}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the real hub answers on its default address.
fn real_hub_answers() -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "http://127.0.0.1:8000/hub/api/"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Undoes the real install of the test below, unless the machine had one before.
struct RealInstall {
    existed: bool,
}

impl Drop for RealInstall {
    fn drop(&mut self) {
        if self.existed {
            return;
        }
        let _ = Command::new("bash")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../install.sh"))
            .arg("--uninstall")
            .output();
        // Not --purge: it would remove /opt/sudohub, the venv the other tests use.
        for dir in [
            "/etc/sudohub",
            "/var/lib/sudohub",
            "/var/lib/sudohub-pam",
            "/var/log/sudohub",
            "/run/sudohub",
        ] {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = Command::new("userdel").arg("sudohub").output();
    }
}

/// The README's first command for real (`install.sh`, no prefix), then attacked the way
/// the outside review did:
///
/// - the hub account plants a symlink to a root-owned file where the hub's log goes and a
///   root process's pid where the pid file used to be, and root runs `install.sh` again:
///   the file is untouched, the process alive, the hub running;
/// - next to it, the install test's own flow (a `--prefix` install with its own account,
///   removed afterwards) leaves the real database, config and running hub untouched.
#[test]
fn a_real_install_resists_its_account_and_survives_the_install_tests() {
    require_root();
    let _one_at_a_time = installing();
    let existed = Path::new("/usr/bin/sudohub").exists();
    let _undo = RealInstall { existed };
    let first = install_sh(&[]);
    assert!(real_hub_answers(), "{first}");
    assert!(
        first.contains("127.0.0.1:8000"),
        "loopback by default: {first}"
    );

    let canary = PathBuf::from(format!("/etc/{}", unique_name("canary")));
    std::fs::write(&canary, "canary\n").unwrap();
    let mut root_sleep = Command::new("sleep").arg("300").spawn().unwrap();
    let systemd = Path::new("/run/systemd/system").exists();
    if !systemd {
        as_account(
            "sudohub",
            &format!(
                "rm -f /var/log/sudohub/sudohub.log && ln -s {c} /var/log/sudohub/sudohub.log \
                 && echo {pid} > /run/sudohub/sudohub.pid",
                c = canary.display(),
                pid = root_sleep.id()
            ),
        );
    }
    let again = install_sh(&[]);
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        "canary\n",
        "{again}"
    );
    assert!(
        root_sleep.try_wait().unwrap().is_none(),
        "install.sh signalled a process the hub account named: {again}"
    );
    assert!(real_hub_answers(), "{again}");
    // The running hub handed over to the binary just installed (no restart).
    assert!(again.contains("upgraded in place"), "{again}");

    // The install test's flow next to the real install.
    let db = Path::new("/var/lib/sudohub/sudohub.sqlite");
    let before = std::fs::metadata(db).unwrap().ino();
    let config = std::fs::read("/etc/sudohub/hub.toml").unwrap();
    let (user, group) = (unique_name("sir"), unique_name("sirg"));
    let dir = std::env::temp_dir().join(unique_name("sudohub-next"));
    let d = dir.to_str().unwrap();
    install_sh(&prefix_args(d, &user, &group));
    drop(TestUser::existing(&user));
    drop(TestGroup::existing(&group));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(std::fs::metadata(db).map(|m| m.ino()).ok(), Some(before));
    assert_eq!(std::fs::read("/etc/sudohub/hub.toml").unwrap(), config);
    assert!(real_hub_answers(), "the real hub still serves");

    let _ = root_sleep.kill();
    let _ = root_sleep.wait();
    let _ = std::fs::remove_file(&canary);
}
