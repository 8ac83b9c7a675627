//! Real users, groups, sudoers rules and the helpers' config, created for one test and
//! removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nix::unistd::{Gid, Uid};

/// Runs a command, panicking with its output if it fails. For fixture set-up only.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A Unix group that exists for the life of this value.
pub struct TestGroup {
    /// Its name.
    pub name: String,
    /// Its gid.
    pub gid: Gid,
}

impl TestGroup {
    /// `groupadd` a new group.
    pub fn create(name: &str) -> Self {
        run("groupadd", &[name]);
        Self::existing(name)
    }
}

impl TestGroup {
    /// Takes charge of a group something else created (`install.sh`): it is removed when
    /// this value is dropped.
    pub fn existing(name: &str) -> Self {
        let gid = nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("group {name} does not exist"))
            .gid;
        Self {
            name: name.into(),
            gid,
        }
    }
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).output();
    }
}

/// A Unix user with a home directory, that exists (with all its processes) for the life of
/// this value.
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: Uid,
    /// Primary gid.
    pub gid: Gid,
    /// Home directory.
    pub home: PathBuf,
    /// Whether this test made the account's home, so may remove it too. An account a
    /// script under test made (a service account) is removed without its home: a test
    /// never deletes what it did not create.
    created: bool,
}

impl TestUser {
    /// `useradd -m` a user in the given supplementary groups, with a password if given.
    pub fn create(name: &str, groups: &[&str], password: Option<&str>) -> Self {
        let mut args = vec![
            "-m",
            "-s",
            "/bin/bash",
            "-K",
            "UID_MIN=2000",
            "-K",
            "UID_MAX=59999",
        ];
        let joined = groups.join(",");
        if !groups.is_empty() {
            args.extend(["-G", joined.as_str()]);
        }
        args.push(name);
        run("useradd", &args);
        let user = Self::lookup(name, true);
        if let Some(pw) = password {
            user.set_password(pw);
        }
        user
    }

    /// `useradd --system` a service account without home or password, as the hub's.
    pub fn create_system(name: &str) -> Self {
        run(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "-s",
                "/usr/sbin/nologin",
                name,
            ],
        );
        // No home was made, so none is removed.
        Self::lookup(name, false)
    }

    /// Takes charge of a user something else created (`install.sh`): it is removed, with
    /// its processes, when this value is dropped.
    pub fn existing(name: &str) -> Self {
        Self::lookup(name, false)
    }

    fn lookup(name: &str, created: bool) -> Self {
        let u = nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("user {name} not found after useradd"));
        Self {
            name: name.into(),
            uid: u.uid,
            gid: u.gid,
            home: u.dir,
            created,
        }
    }

    /// Sets the password through `chpasswd` (stdin, never argv).
    pub fn set_password(&self, password: &str) {
        use std::io::Write;
        let mut child = Command::new("chpasswd")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("chpasswd");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{}:{password}\n", self.name).as_bytes())
            .expect("write chpasswd");
        assert!(child.wait().expect("chpasswd").success(), "chpasswd failed");
    }

    /// The argv prefix that runs a program as this user, with their groups, the way a
    /// service manager would start the hub: `setpriv … --`.
    pub fn setpriv(&self) -> Vec<String> {
        vec![
            "setpriv".into(),
            format!("--reuid={}", self.uid),
            format!("--regid={}", self.gid),
            "--init-groups".into(),
            "--".into(),
        ]
    }

    /// A `Command` that runs `program` as this user (through `setpriv`), with a clean
    /// environment holding only `PATH`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let prefix = self.setpriv();
        let mut c = Command::new(&prefix[0]);
        c.args(&prefix[1..]).arg(program).env_clear().env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
        c
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Kill first: userdel refuses to remove a user with running processes.
        let uid = self.uid.to_string();
        let _ = Command::new("pkill").args(["-KILL", "-U", &uid]).output();
        for _ in 0..50 {
            let left = Command::new("pgrep").args(["-U", &uid]).output();
            if left.map(|o| o.stdout.is_empty()).unwrap_or(true) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let args: &[&str] = if self.created {
            &["-r", "-f", &self.name]
        } else {
            &["-f", &self.name]
        };
        let _ = Command::new("userdel").args(args).output();
    }
}

/// A sudoers drop-in in /etc/sudoers.d, checked with `visudo -cf` before it is installed
/// and removed when dropped.
pub struct SudoersDropIn {
    path: PathBuf,
}

impl SudoersDropIn {
    /// Installs `content` as `/etc/sudoers.d/<name>` (root:root 0440).
    pub fn install(name: &str, content: &str) -> Self {
        assert!(
            !name.contains('.'),
            "sudo ignores drop-ins whose name has a dot"
        );
        let staging = std::env::temp_dir().join(format!("{name}.sudoers"));
        std::fs::write(&staging, content).expect("write sudoers staging");
        let check = Command::new("visudo")
            .args(["-cf"])
            .arg(&staging)
            .output()
            .expect("visudo");
        let _ = std::fs::remove_file(&staging);
        assert!(
            check.status.success(),
            "visudo -cf refused the drop-in:\n{content}\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let path = Path::new("/etc/sudoers.d").join(name);
        crate::fs::write_owned(
            &path,
            content.as_bytes(),
            Uid::from_raw(0),
            Gid::from_raw(0),
            0o440,
        );
        Self { path }
    }

    /// Where it is installed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The account helper's rule, as sudoers.d/sudohub has it: `hub_user` runs `helper`
    /// as root with no arguments.
    pub fn account_rule(hub_user: &str, helper: &Path) -> String {
        let h = helper.display();
        format!("Defaults!{h} !use_pty, !requiretty\n{hub_user} ALL=(root) NOPASSWD: {h} \"\"\n")
    }

    /// The spawner helper's rule, as sudoers.d/sudohub has it: `hub_user` runs `helper` as
    /// root (its root phase checks the target user) with no arguments.
    pub fn rule(hub_user: &str, helper: &Path) -> String {
        Self::account_rule(hub_user, helper)
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Exclusive use of the test build's helpers.toml (one fixed, compiled-in path) across
/// test threads and test binaries: an `flock` held for the life of this value.
pub struct ConfigLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl ConfigLock {
    /// Blocks until no other test holds the lock.
    pub fn acquire() -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/sudohub-tests.lock")
            .expect("open lock file");
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .expect("flock");
        Self { _lock: lock }
    }
}

/// The test build's helpers.toml, written root:root 0644 in a root-owned directory and
/// removed when dropped. Hold a [`ConfigLock`] while it exists.
pub struct HelpersConfigFile {
    /// Where it is (the compiled-in path of the test build).
    pub path: PathBuf,
}

impl HelpersConfigFile {
    /// Writes `text` as the helpers' configuration. Unless `text` names one, the PAM
    /// helper's state directory is the test one, made root:shadow 0770 like a real one.
    pub fn write(text: &str) -> Self {
        let text = if text.contains("state_dir") {
            text.to_owned()
        } else {
            let dir = Path::new(TEST_PAM_STATE_DIR);
            std::fs::create_dir_all(dir).expect("create the PAM state dir");
            let shadow = nix::unistd::Group::from_name("shadow")
                .ok()
                .flatten()
                .expect("group shadow")
                .gid;
            crate::fs::chown_mode(dir, Uid::from_raw(0), shadow, 0o770);
            let line = format!("state_dir = {TEST_PAM_STATE_DIR:?}\n");
            if text.contains("[pam]\n") {
                text.replacen("[pam]\n", &format!("[pam]\n{line}"), 1)
            } else {
                format!("{text}\n[pam]\n{line}")
            }
        };
        let path = PathBuf::from(sudohub_helpers_config::CONFIG_PATH);
        let dir = path.parent().expect("config path has a directory");
        std::fs::create_dir_all(dir).expect("create config dir");
        crate::fs::chown_mode(dir, Uid::from_raw(0), Gid::from_raw(0), 0o755);
        crate::fs::write_owned(
            &path,
            text.as_bytes(),
            Uid::from_raw(0),
            Gid::from_raw(0),
            0o644,
        );
        Self { path }
    }
}

impl Drop for HelpersConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A hub.toml next to the test build's helpers.toml, where an install keeps it and where
/// the account helper reads root's consent (`[auth] create_system_users`) from; root:`gid`
/// 0640 as installed, removed when dropped. Hold a [`ConfigLock`] while it exists.
pub struct HubTomlBesideHelpers {
    /// Where it is.
    pub path: PathBuf,
}

impl HubTomlBesideHelpers {
    /// Writes `text` there.
    pub fn write(text: &str, gid: Gid) -> Self {
        let path = PathBuf::from(sudohub_helpers_config::CONFIG_PATH).with_file_name("hub.toml");
        crate::fs::write_owned(&path, text.as_bytes(), Uid::from_raw(0), gid, 0o640);
        Self { path }
    }

    /// Removes one a crashed run left behind.
    pub fn remove_stale() {
        let path = PathBuf::from(sudohub_helpers_config::CONFIG_PATH).with_file_name("hub.toml");
        let _ = std::fs::remove_file(path);
    }
}

impl Drop for HubTomlBesideHelpers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where the PAM helper of the tests paces checks (files per uid; a reused uid with
/// another name starts clean).
pub const TEST_PAM_STATE_DIR: &str = "/var/lib/sudohub-pam-test";

/// A root-owned directory of installed helper binaries, removed when dropped.
pub struct InstalledHelpers {
    /// The directory.
    pub dir: PathBuf,
}

impl InstalledHelpers {
    /// Copies the test build's helpers into a fresh root-owned directory with their real
    /// owners and modes: `sudohub-spawner` and `sudohub-account` root:root 0755,
    /// `sudohub-pam` root:shadow 2755.
    pub fn install() -> Self {
        let src = crate::test_bin_dir();
        let dir = PathBuf::from(format!("/usr/local/lib/{}", crate::unique_name("shh")));
        std::fs::create_dir_all(&dir).expect("create helper dir");
        crate::fs::chown_mode(&dir, Uid::from_raw(0), Gid::from_raw(0), 0o755);
        let root = Uid::from_raw(0);
        let bytes = std::fs::read(src.join("sudohub-spawner")).expect("read spawner helper");
        crate::fs::write_owned(
            &dir.join("sudohub-spawner"),
            &bytes,
            root,
            Gid::from_raw(0),
            0o755,
        );
        if let Ok(bytes) = std::fs::read(src.join("sudohub-account")) {
            let path = dir.join("sudohub-account");
            crate::fs::write_owned(&path, &bytes, root, Gid::from_raw(0), 0o755);
        }
        if let Ok(bytes) = std::fs::read(src.join("sudohub-pam")) {
            let shadow = nix::unistd::Group::from_name("shadow")
                .ok()
                .flatten()
                .expect("group shadow exists on Debian")
                .gid;
            crate::fs::write_owned(&dir.join("sudohub-pam"), &bytes, root, shadow, 0o2755);
        }
        Self { dir }
    }

    /// Path of the installed spawner helper.
    pub fn spawner(&self) -> PathBuf {
        self.dir.join("sudohub-spawner")
    }

    /// Installs the test build of the hub binary (root:root 0755) next to the helpers,
    /// where its service user can run it whatever the checkout's permissions.
    pub fn install_hub(&self) -> PathBuf {
        let bytes =
            std::fs::read(crate::test_bin_dir().join("sudohub")).expect("read the sudohub binary");
        let path = self.dir.join("sudohub");
        crate::fs::write_owned(&path, &bytes, Uid::from_raw(0), Gid::from_raw(0), 0o755);
        path
    }

    /// Path of the installed account helper.
    pub fn account(&self) -> PathBuf {
        self.dir.join("sudohub-account")
    }

    /// Path of the installed PAM helper.
    pub fn pam(&self) -> PathBuf {
        self.dir.join("sudohub-pam")
    }
}

impl Drop for InstalledHelpers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
