//! The files an admin installs, checked with the tools that will read them.

use std::process::Command;

use sudohub_tests::require_root;
use sudohub_tests::system::InstalledHelpers;

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
    for key in IMPLY_NNP {
        assert!(
            get(key).is_none(),
            "{key}= implies no-new-privileges and breaks sudo"
        );
    }
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
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
