//! End-to-end tests of `sudohub-spawner` with real sudo, real users and groups, a
//! root-owned config and a real (tiny) HTTP server as the command. Run as root by
//! `sudo ./test.sh`. Adversarial tests drive the helper with raw frames, the way a
//! compromised hub would.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid};
use sudohub_helpers_config::cgroup::Hierarchy;
use sudohub_protocol::frame::{self, encode};
use sudohub_protocol::spawner::{
    EnvVar, ErrorKind, ExitStatus, ReattachAnswer, ReattachHello, Reply, Request, ServerStatus,
    Spawn, Target,
};
use sudohub_protocol::{Bounded, Hello, PROTOCOL_VERSION};
use sudohub_tests::cgroup::CgroupParent;
use sudohub_tests::system::{
    ConfigLock, HelpersConfigFile, InstalledHelpers, SudoersDropIn, TestGroup, TestUser,
};
use sudohub_tests::{hub::free_port, proc, require_root, unique_name, wait_for};

/// Everything one test needs; dropping it removes users, group, sudoers rule, config,
/// installed helper and any process left behind.
struct World {
    hub: TestUser,
    member: TestUser,
    outsider: TestUser,
    helpers: InstalledHelpers,
    sock_dir: PathBuf,
    _sudoers: Option<SudoersDropIn>,
    _config: HelpersConfigFile,
    group: TestGroup,
    _lock: ConfigLock,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.sock_dir);
    }
}

fn world(server_args: &[&str], config_extra: &str) -> World {
    require_root();
    let lock = ConfigLock::acquire();
    let group = TestGroup::create(&unique_name("shg"));
    let hub = TestUser::create_system(&unique_name("shh"));
    let member = TestUser::create(&unique_name("shm"), &[&group.name], None);
    let outsider = TestUser::create(&unique_name("sho"), &[], None);
    let helpers = InstalledHelpers::install();
    let script = helpers.dir.join("test-server.py");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/test-server.py"),
        &script,
    )
    .expect("copy test server");
    sudohub_tests::fs::chown_mode(&script, Uid::from_raw(0), Gid::from_raw(0), 0o755);
    let sudoers = SudoersDropIn::install(
        &unique_name("sudohubt"),
        &SudoersDropIn::rule(&hub.name, &helpers.spawner()),
    );
    let sock_dir = PathBuf::from(format!("/run/{}", unique_name("shs")));
    std::fs::create_dir_all(&sock_dir).expect("socket dir");
    sudohub_tests::fs::chown_mode(&sock_dir, Uid::from_raw(0), Gid::from_raw(0), 0o755);
    let min_uid = if config_extra.contains("min_uid") {
        ""
    } else {
        "min_uid = 1000\n"
    };
    // `{group}` and `{member}` in the extra config stand for this world's names.
    let config_extra = config_extra
        .replace("{group}", &group.name)
        .replace("{member}", &member.name);
    let mut command = vec!["/usr/bin/python3".to_owned(), script.display().to_string()];
    command.extend(server_args.iter().map(|s| s.to_string()));
    let config = HelpersConfigFile::write(&format!(
        "hub_user = {:?}\nallowed_group = {:?}\n{min_uid}{config_extra}\n[spawner]\n\
         command = {command:?}\nreattach_socket = {:?}\norphan_report_secs = 5\n",
        hub.name,
        group.name,
        sock_dir.join("spawners.sock").display().to_string(),
    ));
    World {
        hub,
        member,
        outsider,
        helpers,
        sock_dir,
        _sudoers: Some(sudoers),
        _config: config,
        group,
        _lock: lock,
    }
}

/// Runs `sudo -n <helper>` as the hub user, over a socketpair, like the hub, and says
/// hello and whose server (`target`'s default one): what the root phase reads.
fn start_helper(w: &World, target: &str) -> (Child, UnixStream) {
    start_named(w, target, "")
}

/// [`start_helper`] for a named server.
fn start_named(w: &World, target: &str, server: &str) -> (Child, UnixStream) {
    let (child, mut s) = sudo_helper(w, &w.hub, &["-n"]);
    send(&mut s, &Request::Hello(Hello::current()));
    assert_eq!(recv(&mut s), Reply::Hello(Hello::current()));
    send(&mut s, &target_req(target, server));
    (child, s)
}

fn target_req(user: &str, server: &str) -> Request {
    Request::Target(Target {
        user: Bounded::new(user).expect("user"),
        server_name: Bounded::new(server).expect("server"),
    })
}

/// Runs `sudo <options> <helper>` as `caller`, over a socketpair.
fn sudo_helper(w: &World, caller: &TestUser, options: &[&str]) -> (Child, UnixStream) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let theirs: OwnedFd = theirs.into();
    let child = caller
        .command("sudo")
        .args(options)
        .arg(w.helpers.spawner())
        .stdin(Stdio::from(theirs.try_clone().expect("dup")))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sudo");
    ours.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    (child, ours)
}

fn send(s: &mut UnixStream, req: &Request) {
    s.write_all(&encode(req).expect("encode"))
        .expect("send frame");
}

fn recv(s: &mut UnixStream) -> Reply {
    frame::read_message::<_, Reply>(s)
        .expect("read reply")
        .expect("the helper closed the channel without a reply")
}

fn env(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
    pairs
        .iter()
        .map(|(k, v)| EnvVar {
            name: Bounded::new(*k).expect("name"),
            value: Bounded::new(*v).expect("value"),
        })
        .collect()
}

fn spawn_req(port: u16, vars: &[(&str, &str)]) -> Request {
    Request::Spawn(Spawn {
        port,
        env: env(vars),
    })
}

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn standard_env(user: &str) -> Vec<(String, String)> {
    vec![
        ("JUPYTERHUB_API_TOKEN".into(), TOKEN.into()),
        ("JUPYTERHUB_USER".into(), user.into()),
        ("JUPYTERHUB_SERVICE_PREFIX".into(), format!("/user/{user}/")),
        ("LANG".into(), "C.UTF-8".into()),
    ]
}

/// The spawn of the test server (after [`start_helper`]); returns the server's pid.
fn spawn_server(w: &World, s: &mut UnixStream, port: u16) -> u32 {
    let vars = standard_env(&w.member.name);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    send(s, &spawn_req(port, &vars));
    match recv(s) {
        Reply::Started { pid } => pid,
        other => panic!("expected Started, got {other:?}"),
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(c, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    c.read_to_string(&mut out).ok()?;
    Some(out)
}

fn wait_listening(port: u16) {
    wait_for(Duration::from_secs(10), || {
        http_get(port, "/").filter(|r| r.contains("200"))
    })
    .unwrap_or_else(|| panic!("test server never answered on port {port}"));
}

/// The helper's error reply, exit code and stderr, for a refused request.
fn refused(mut child: Child, s: &mut UnixStream) -> (ErrorKind, i32, String) {
    let reply = recv(s);
    let status = child.wait().expect("wait helper");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(!stderr.contains("panicked"), "helper panicked: {stderr}");
    match reply {
        Reply::Error(e) => (e.kind, status.code().unwrap_or(-1), stderr),
        other => panic!("expected an error reply, got {other:?}; stderr: {stderr}"),
    }
}

fn assert_no_processes(user: &TestUser) {
    let left = wait_for(Duration::from_secs(3), || {
        proc::pids_of_uid(user.uid.as_raw())
            .is_empty()
            .then_some(())
    });
    assert!(
        left.is_some(),
        "processes of {} remain: {:?}",
        user.name,
        proc::pids_of_uid(user.uid.as_raw())
    );
}

#[test]
fn server_runs_confined_as_the_user() {
    let w = world(&[], "");
    let port = free_port();
    let (mut helper, mut s) = start_helper(&w, &w.member.name);
    let pid = spawn_server(&w, &mut s, port);
    wait_listening(port);

    // Identity: the user's uid and gid, and exactly the user's groups.
    let st = proc::status(pid);
    let uid = w.member.uid.to_string();
    let gid = w.member.gid.to_string();
    assert_eq!(
        st["Uid"].split_whitespace().collect::<Vec<_>>(),
        vec![uid.as_str(); 4]
    );
    assert_eq!(
        st["Gid"].split_whitespace().collect::<Vec<_>>(),
        vec![gid.as_str(); 4]
    );
    let mut groups: Vec<u32> = st["Groups"]
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort_unstable();
    let mut expected = vec![w.member.gid.as_raw(), w.group.gid.as_raw()];
    expected.sort_unstable();
    assert_eq!(groups, expected);
    assert_eq!(st["NoNewPrivs"], "1");
    // Nothing of the helper's signal handling leaks in: no blocked signals, and SIGHUP,
    // SIGINT and SIGTERM not ignored (Python itself ignores SIGPIPE and SIGXFSZ).
    assert_eq!(st["SigBlk"], "0000000000000000", "blocked signals");
    let ignored = u64::from_str_radix(&st["SigIgn"], 16).unwrap();
    for sig in [1, 2, 15] {
        assert_eq!(ignored & (1 << (sig - 1)), 0, "signal {sig} is ignored");
    }
    assert_eq!(st["CapEff"], "0000000000000000");
    // No core dumps ([spawner.limits] core = 0): a crash leaves no file holding the
    // server's token.
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&core[4..6], ["0", "0"], "{limits}");
    // The helper, the server's parent, runs as the user but is not dumpable: its /proc
    // entries belong to root, so the user can neither ptrace it nor read its memory.
    let helper_pid: u32 = st["PPid"].parse().unwrap();
    let helper_st = proc::status(helper_pid);
    assert_eq!(
        helper_st["Uid"].split_whitespace().next(),
        Some(uid.as_str())
    );
    // sudo does not stay resident: the helper left it behind once its checks passed.
    let helper_parent: u32 = helper_st["PPid"].parse().unwrap();
    let parent_comm =
        std::fs::read_to_string(format!("/proc/{helper_parent}/comm")).unwrap_or_default();
    assert_ne!(
        parent_comm.trim(),
        "sudo",
        "sudo stays as the helper's parent"
    );
    assert_eq!(
        proc::stat_fields(helper_pid).unwrap()[3],
        helper_pid.to_string(),
        "the helper leads a session of its own"
    );
    let mem = std::fs::metadata(format!("/proc/{helper_pid}/mem")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&mem),
        0,
        "the helper is dumpable"
    );

    // Session leader with its own process group.
    let stat = proc::stat_fields(pid).unwrap();
    assert_eq!(stat[2], pid.to_string(), "process group");
    assert_eq!(stat[3], pid.to_string(), "session");

    // Exactly the expected environment, no more.
    let environ = proc::environ(pid);
    let mut keys: Vec<&str> = environ.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "HOME",
            "JUPYTERHUB_API_TOKEN",
            "JUPYTERHUB_SERVICE_PREFIX",
            "JUPYTERHUB_SERVICE_URL",
            "JUPYTERHUB_USER",
            "LANG",
            "LOGNAME",
            "PATH",
            "SHELL",
            "USER"
        ]
    );
    assert_eq!(environ["HOME"], w.member.home.display().to_string());
    assert_eq!(environ["USER"], w.member.name);
    assert_eq!(
        environ["PATH"],
        "/opt/sudohub/venv/bin:/usr/local/bin:/usr/bin:/bin"
    );
    assert_eq!(
        environ["JUPYTERHUB_SERVICE_URL"],
        format!("http://127.0.0.1:{port}/user/{}/", w.member.name)
    );
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, w.member.home);

    // Only fds 0-2 were inherited (the server reports them before opening its own), and
    // now it has exactly those plus its listening socket.
    let log = w.member.home.join(".local/state/sudohub/default.log");
    let fds_line = wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log)
            .ok()?
            .lines()
            .find(|l| l.starts_with("SUDOHUB_TEST_FDS="))
            .map(str::to_owned)
    })
    .expect("server printed its inherited fds to its log");
    assert_eq!(fds_line, "SUDOHUB_TEST_FDS=0,1,2");
    // Any fd above 2 now must be one of the server's own TCP sockets (its listener, or a
    // connection it is still closing) — never a Unix socket such as the helper's channel.
    let tcp_inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(9).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect();
    let extra: Vec<String> = proc::fds(pid)
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|fd| {
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert!(!extra.is_empty(), "the server has no listening socket");
    for link in &extra {
        let inode = link
            .strip_prefix("socket:[")
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or_else(|| panic!("unexpected fd in the server: {link}"));
        assert!(
            tcp_inodes.iter().any(|i| i == inode),
            "fd {link} is not one of the server's TCP sockets"
        );
    }
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap(),
        PathBuf::from("/dev/null")
    );

    // Output goes to a file the user owns, never to a pipe of the hub's.
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap(),
        log
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap(),
        log
    );
    let meta = std::fs::metadata(&log).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (w.member.uid.as_raw(), 0o600)
    );

    // It answers HTTP as the user, on 127.0.0.1 only.
    let body = http_get(port, "/user/x/api").unwrap();
    assert!(
        body.contains(&format!("\"uid\": {}", w.member.uid)),
        "{body}"
    );
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let needle = format!("0100007F:{port:04X}");
    assert!(tcp
        .lines()
        .any(|l| l.contains(&needle) && l.split_whitespace().nth(3) == Some("0A")));

    // The token never reaches argv or the helper's own log lines.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(TOKEN));

    send(&mut s, &Request::Status);
    assert_eq!(recv(&mut s), Reply::Status(ServerStatus::Running { pid }));
    send(&mut s, &Request::Stop { grace_ms: 5000 });
    assert!(matches!(recv(&mut s), Reply::Exited { .. }));
    assert!(helper.wait().unwrap().success());
    let mut stderr = String::new();
    helper
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("action=spawn") && stderr.contains("result=ok"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN));
    assert_no_processes(&w.member);
}

#[test]
fn exit_is_reported_at_once_after_kill_9() {
    let w = world(&[], "");
    let port = free_port();
    let (mut helper, mut s) = start_helper(&w, &w.member.name);
    let pid = spawn_server(&w, &mut s, port);
    wait_listening(port);
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(
        recv(&mut s),
        Reply::Exited {
            status: ExitStatus::Signal(9)
        }
    );
    assert!(killed.elapsed() < Duration::from_secs(2));
    assert!(helper.wait().unwrap().success());
    assert!(!proc::exists(pid), "server left as a zombie");
    assert_no_processes(&w.member);
}

#[test]
fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let w = world(&["--ignore-term"], "");
    let port = free_port();
    let (mut helper, mut s) = start_helper(&w, &w.member.name);
    let pid = spawn_server(&w, &mut s, port);
    wait_listening(port);
    let asked = Instant::now();
    send(&mut s, &Request::Stop { grace_ms: 500 });
    assert_eq!(
        recv(&mut s),
        Reply::Exited {
            status: ExitStatus::Signal(9)
        }
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(500),
        "SIGKILL came before the grace period"
    );
    assert!(helper.wait().unwrap().success());
    assert!(!proc::exists(pid));
    assert_no_processes(&w.member);
}

/// Stands in for a restarted hub's re-attach socket, which the user's helper can dial.
fn reattach_listener(w: &World) -> UnixListener {
    use std::os::unix::fs::PermissionsExt;
    let path = w.sock_dir.join("spawners.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    listener
}

/// A hub that restarted without a record of the server (it was marked stopped, or the
/// database was restored) refuses the helper's claim: the helper then stops the server
/// and exits, instead of leaving an unreachable server running.
#[test]
fn a_refused_reattach_stops_the_orphaned_server() {
    let w = world(&[], "");
    let listener = reattach_listener(&w);
    let port = free_port();
    let (mut helper, mut s) = start_helper(&w, &w.member.name);
    let pid = spawn_server(&w, &mut s, port);
    wait_listening(port);
    drop(s);

    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let hello: ReattachHello = frame::read_message(&mut conn).unwrap().unwrap();
    assert_eq!(hello.pid, pid);
    frame::write_frame(
        &mut conn,
        &ReattachAnswer::Refused {
            message: Bounded::new("no such server is recorded".to_owned()).unwrap(),
        },
    )
    .unwrap();
    let stopped = sudohub_tests::wait_for(Duration::from_secs(15), || {
        (!proc::is_alive(pid)).then_some(())
    });
    if stopped.is_none() {
        let _ = helper.kill();
        let out = helper.wait_with_output().unwrap();
        panic!(
            "the refused server is still running; helper log:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status =
        sudohub_tests::wait_for(Duration::from_secs(10), || helper.try_wait().ok().flatten());
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "the helper exits");
    let _ = helper.wait_with_output().map(|o| {
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            log.contains("action=reattach") && log.contains("refused"),
            "{log}"
        );
        assert!(log.contains("action=stop"), "{log}");
        assert!(log.contains("result=signal 15"), "ended by SIGTERM: {log}");
    });
    assert_no_processes(&w.member);
}

#[test]
fn server_survives_the_hub_and_the_helper_reattaches() {
    let w = world(&[], "");
    let listener = reattach_listener(&w);
    let port = free_port();
    let (_helper, mut s) = start_helper(&w, &w.member.name);
    let pid = spawn_server(&w, &mut s, port);
    wait_listening(port);

    drop(s); // the hub dies: its end of the channel closes
    std::thread::sleep(Duration::from_millis(300));
    assert!(proc::is_alive(pid), "the server died with the hub");
    assert!(http_get(port, "/").is_some_and(|r| r.contains("200")));

    listener.set_nonblocking(false).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let cred =
        nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials).unwrap();
    assert_eq!(cred.uid(), w.member.uid.as_raw(), "peer uid is the user's");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let hello: ReattachHello = frame::read_message(&mut conn).unwrap().unwrap();
    assert_eq!(hello.version, PROTOCOL_VERSION);
    assert_eq!(hello.user.as_str(), w.member.name);
    assert_eq!(hello.server_name.as_str(), "");
    assert_eq!(hello.pid, pid);
    assert_eq!(hello.status, ServerStatus::Running { pid });
    frame::write_frame(&mut conn, &ReattachAnswer::Accepted).unwrap();

    // The conversation continues over the new connection.
    send(&mut conn, &Request::Status);
    assert_eq!(
        recv(&mut conn),
        Reply::Status(ServerStatus::Running { pid })
    );
    send(&mut conn, &Request::Stop { grace_ms: 30_000 });
    // SIGTERM does it, long before the grace period would end in SIGKILL.
    assert_eq!(
        recv(&mut conn),
        Reply::Exited {
            status: ExitStatus::Signal(15)
        }
    );
    assert_no_processes(&w.member);
}

/// Sends raw `bytes` after a good hello and target (so to the helper after its drop, or,
/// with `in_root_phase`, in place of the target, to the root phase) and returns the refusal.
fn refused_after_hello(bytes: &[u8]) -> (ErrorKind, i32, String, World) {
    refused_bytes(bytes, false)
}

fn refused_bytes(bytes: &[u8], in_root_phase: bool) -> (ErrorKind, i32, String, World) {
    let w = world(&[], "");
    let (child, mut s) = if in_root_phase {
        let (child, mut s) = sudo_helper(&w, &w.hub, &["-n"]);
        send(&mut s, &Request::Hello(Hello::current()));
        assert_eq!(recv(&mut s), Reply::Hello(Hello::current()));
        (child, s)
    } else {
        start_helper(&w, &w.member.name)
    };
    s.write_all(bytes).unwrap();
    if bytes.len() < 4
        || u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize > bytes.len() - 4
    {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let (kind, code, stderr) = refused(child, &mut s);
    (kind, code, stderr, w)
}

fn refused_spawn(vars: &[(&str, &str)]) -> (ErrorKind, i32) {
    let w = world(&[], "");
    let (child, mut s) = start_helper(&w, &w.member.name);
    send(&mut s, &spawn_req(free_port(), vars));
    let (kind, code, _) = refused(child, &mut s);
    assert_no_processes(&w.member);
    (kind, code)
}

#[test]
fn refuses_ld_preload() {
    assert_eq!(
        refused_spawn(&[("LD_PRELOAD", "/tmp/evil.so")]),
        (ErrorKind::EnvNotAllowed, 8)
    );
}

#[test]
fn refuses_path_and_pythonpath() {
    assert_eq!(
        refused_spawn(&[("PATH", "/tmp")]),
        (ErrorKind::EnvNotAllowed, 8)
    );
    assert_eq!(
        refused_spawn(&[("PYTHONPATH", "/tmp")]),
        (ErrorKind::EnvNotAllowed, 8)
    );
}

#[test]
fn refuses_a_hub_chosen_listen_url() {
    assert_eq!(
        refused_spawn(&[("JUPYTERHUB_SERVICE_URL", "http://0.0.0.0:9999/")]),
        (ErrorKind::EnvNotAllowed, 8)
    );
}

#[test]
fn refuses_nul_in_a_value() {
    // Bounded refuses NUL when building, so the frame is made by hand, as an attacker would.
    let body_ok = postcard_spawn_body("JUPYTERHUB_USER", "ab");
    let mut body = body_ok.clone();
    let at = body.windows(2).position(|w| w == b"ab").unwrap();
    body[at + 1] = 0;
    let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    let (kind, code, _, w) = refused_after_hello(&bytes);
    assert_eq!((kind, code), (ErrorKind::BadFrame, 7));
    assert_no_processes(&w.member);
}

fn postcard_spawn_body(name: &str, value: &str) -> Vec<u8> {
    let frame = encode(&spawn_req(20000, &[(name, value)])).unwrap();
    frame[4..].to_vec()
}

#[test]
fn refuses_a_one_mebibyte_frame() {
    let mut bytes = ((1 << 20) as u32).to_le_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 1 << 16));
    let (kind, code, stderr, _w) = refused_after_hello(&bytes);
    assert_eq!((kind, code), (ErrorKind::BadFrame, 7));
    assert!(stderr.contains("exceeds the limit"), "{stderr}");
}

#[test]
fn refuses_a_truncated_frame() {
    let full = encode(&spawn_req(20000, &[])).unwrap();
    let (kind, code, stderr, _w) = refused_after_hello(&full[..full.len() - 2]);
    assert_eq!((kind, code), (ErrorKind::BadFrame, 7));
    assert!(stderr.contains("truncated"), "{stderr}");
}

#[test]
fn refuses_garbage_bytes() {
    let (kind, code, _, _w) = refused_after_hello(&[5, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb]);
    assert_eq!((kind, code), (ErrorKind::BadFrame, 7));
}

/// The root phase reads two frames, each bounded: garbage, an oversize frame, a spawn in
/// place of the target, or a target with a byte too many are refused before any drop.
#[test]
fn the_root_phase_refuses_bad_frames() {
    let garbage = vec![5, 0, 0, 0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb];
    let mut huge = ((1 << 20) as u32).to_le_bytes().to_vec();
    huge.extend(std::iter::repeat_n(0u8, 1 << 16));
    let spawn = encode(&spawn_req(20000, &[])).unwrap();
    let mut long_target = encode(&target_req("alice", "")).unwrap();
    long_target.push(0);
    long_target[0] += 1;
    for (bytes, says) in [
        (garbage, "no target"),
        (huge, "exceeds the limit"),
        (spawn.to_vec(), "expected the target"),
        (long_target.to_vec(), "no target"),
    ] {
        // One world at a time: each holds the config lock.
        let (kind, code, stderr, w) = refused_bytes(&bytes, true);
        assert_eq!((kind, code), (ErrorKind::BadFrame, 7), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert_no_processes(&w.member);
    }
}

#[test]
fn refuses_a_wrong_protocol_version() {
    let w = world(&[], "");
    let (child, mut s) = sudo_helper(&w, &w.hub, &["-n"]);
    send(
        &mut s,
        &Request::Hello(Hello {
            version: PROTOCOL_VERSION + 1,
        }),
    );
    let (kind, code, _) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::ProtocolVersion, 6));
}

/// The runas check sudoers used to make is the root phase's now: a user outside the
/// allowed group gets no server.
#[test]
fn refuses_a_target_outside_the_group() {
    let w = world(&[], "");
    let (child, mut s) = start_helper(&w, &w.outsider.name);
    let (kind, code, stderr) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::UserNotAllowed, 5), "{stderr}");
    assert!(stderr.contains("not a member of group"), "{stderr}");
    assert_no_processes(&w.outsider);
}

/// A compromised hub that picks the server's primary group with `sudo -g` (possible when a
/// rule names a runas group) is refused: the server runs with the user's own group only.
#[test]
fn refuses_a_primary_group_chosen_with_sudo_g() {
    let w = world(&[], "");
    let _wide = SudoersDropIn::install(
        &unique_name("sudohubg"),
        &format!(
            "{} ALL=(root : ALL) NOPASSWD: {} \"\"\n",
            w.hub.name,
            w.helpers.spawner().display()
        ),
    );
    let sudo = ["-n", "-u", "root", "-g", &w.group.name];
    let (child, mut s) = sudo_helper(&w, &w.hub, &sudo);
    let (kind, code, stderr) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::BadIdentity, 2), "{stderr}");
    assert!(stderr.contains("sudo -g"), "{stderr}");
    assert_no_processes(&w.member);
}

/// A member of the group whose uid is below `min_uid` (a system account someone added to
/// the group) gets no server, though sudo lets the hub run the helper for them.
#[test]
fn refuses_a_member_below_min_uid() {
    // Test users get uids from 2000 up; a min_uid above every one of them.
    let w = world(&[], "min_uid = 60000");
    let (child, mut s) = start_helper(&w, &w.member.name);
    let (kind, code, stderr) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::BadIdentity, 2), "{stderr}");
    assert!(stderr.contains("below min_uid 60000"), "{stderr}");
    assert_no_processes(&w.member);
}

/// A compromised hub asking for root's server, for the hub's own account's, or for a
/// user that does not exist gets nothing: the root phase refuses before any drop.
#[test]
fn refuses_root_the_hub_and_strangers_as_targets() {
    let w = world(&[], "");
    for (target, kind, code) in [
        ("root", ErrorKind::BadIdentity, 2),
        (w.hub.name.as_str(), ErrorKind::BadIdentity, 2),
        ("nosuchuser", ErrorKind::UserNotAllowed, 5),
        ("-u", ErrorKind::BadValue, 9),
        ("a\nb", ErrorKind::BadValue, 9),
    ] {
        let (child, mut s) = start_helper(&w, target);
        let (k, c, stderr) = refused(child, &mut s);
        assert_eq!((k, c), (kind, code), "{target:?}: {stderr}");
        assert!(
            !stderr.contains("a\nb"),
            "a raw newline reached the log: {stderr}"
        );
    }
}

/// A user with uid 0 under another name, or with root's group as primary group, is root
/// for the kernel: refused by id, whatever the name.
#[test]
fn refuses_uid_0_and_gid_0_under_other_names() {
    let w = world(&[], "");
    let alias = unique_name("shz");
    let group0 = unique_name("shy");
    for (name, args) in [
        (&alias, vec!["-o", "-u", "0", "-N", "-G"]),
        (&group0, vec!["-g", "0", "-G"]),
    ] {
        let mut cmd = Command::new("useradd");
        cmd.args(&args)
            .arg(&w.group.name)
            .args(["-M", "-s", "/usr/sbin/nologin"])
            .arg(name);
        assert!(cmd.status().unwrap().success(), "useradd {name}");
    }
    let _gone = Cleanup(vec![alias.clone(), group0.clone()]);
    for name in [&alias, &group0] {
        let (child, mut s) = start_helper(&w, name);
        let (k, c, stderr) = refused(child, &mut s);
        assert_eq!((k, c), (ErrorKind::BadIdentity, 2), "{name}: {stderr}");
        assert!(stderr.contains("root"), "{stderr}");
    }
}

/// Removes the named accounts made by hand in a test.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("userdel").arg("-f").arg(name).status();
        }
    }
}

/// Root without sudo (no SUDO_UID: a root cron job, a shell) is not the hub.
#[test]
fn refuses_root_without_sudo() {
    let w = world(&[], "");
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs: OwnedFd = theirs.into();
    let mut child = Command::new(w.helpers.spawner())
        .env_clear()
        .stdin(Stdio::from(theirs.try_clone().unwrap()))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = ours;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = recv(&mut s);
    assert!(
        matches!(reply, Reply::Error(ref e) if e.kind == ErrorKind::CallerNotHub),
        "{reply:?}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(4));
}

#[test]
fn refuses_a_caller_that_is_not_the_hub_user() {
    // The config names another hub user than the one calling.
    let w = world(&[], "");
    let other_hub = TestUser::create_system(&unique_name("shx"));
    let _rule = SudoersDropIn::install(
        &unique_name("sudohubx"),
        &SudoersDropIn::rule(&other_hub.name, &w.helpers.spawner()),
    );
    let (child, mut s) = sudo_helper(&w, &other_hub, &["-n"]);
    let (kind, code, stderr) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::CallerNotHub, 4), "{stderr}");
    assert_no_processes(&w.member);
}

#[test]
fn refuses_being_run_by_hand_by_another_user() {
    let w = world(&[], "");
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs: OwnedFd = theirs.into();
    let child = w
        .member
        .command(w.helpers.spawner())
        .stdin(Stdio::from(theirs.try_clone().unwrap()))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = ours;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (kind, code, _) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::CallerNotHub, 4));
}

#[test]
fn refuses_a_foreign_command_line() {
    let w = world(&[], "");
    // Through sudo: the rule's "" allows no arguments at all.
    let out = w
        .hub
        .command("sudo")
        .arg("-n")
        .arg(w.helpers.spawner())
        .arg("/bin/sh")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sudo"),
        "{out:?}"
    );
    // Directly: the helper itself refuses any argument.
    let out = w
        .member
        .command(w.helpers.spawner())
        .arg("/bin/sh")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn sudo_allows_nothing_but_the_helper() {
    let w = world(&[], "");
    for args in [
        vec!["-n", "echo", "hello"],
        vec!["-n", "-u", &w.member.name, "echo", "hello"],
        vec!["-n", "-u", &w.member.name, "/bin/sh", "-c", "echo hello"],
    ] {
        let out = w.hub.command("sudo").args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("hello"),
            "{args:?}"
        );
    }
    // Nor the helper as anyone but root: the rule names root only.
    let out = w
        .hub
        .command("sudo")
        .args(["-n", "-u", &w.member.name])
        .arg(w.helpers.spawner())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

fn refused_by_config(mode: u32, owner: Option<u32>) -> (ErrorKind, i32, String) {
    let w = world(&[], "");
    let path = PathBuf::from(sudohub_helpers_config::CONFIG_PATH);
    sudohub_tests::fs::chown_mode(
        &path,
        Uid::from_raw(owner.unwrap_or(0)),
        Gid::from_raw(0),
        mode,
    );
    let (child, mut s) = sudo_helper(&w, &w.hub, &["-n"]);
    let r = refused(child, &mut s);
    assert_no_processes(&w.member);
    r
}

#[test]
fn refuses_a_group_writable_config() {
    let (kind, code, stderr) = refused_by_config(0o664, None);
    assert_eq!((kind, code), (ErrorKind::Config, 3));
    assert!(stderr.contains("chmod go-w"), "{stderr}");
}

#[test]
fn refuses_a_world_writable_config() {
    let (kind, code, _) = refused_by_config(0o646, None);
    assert_eq!((kind, code), (ErrorKind::Config, 3));
}

#[test]
fn refuses_a_config_not_owned_by_root() {
    let (kind, code, stderr) = refused_by_config(0o644, Some(1));
    assert_eq!((kind, code), (ErrorKind::Config, 3));
    assert!(stderr.contains("not root"), "{stderr}");
}

#[test]
fn shipped_sudoers_file_passes_visudo() {
    require_root();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../sudoers.d/sudohub");
    let out = Command::new("visudo").args(["-cf", path]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The hub's own client, through real sudo run as the hub user: spawn, status, the pushed
/// exit after `kill -9`, and a clear error when sudo refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_client_spawns_sees_exit_and_explains_sudo_refusals() {
    use sudohub::spawner::{Ending, SpawnArgs, SpawnerClient, SpawnerError};
    use sudohub::types::Username;
    let w = world(&[], "");
    let mut sudo = w.hub.setpriv();
    sudo.extend(["sudo".to_owned(), "-n".to_owned()]);
    let client = SpawnerClient::new(sudo, w.helpers.spawner());
    let port = free_port();
    let args = SpawnArgs {
        user: Username::parse(&w.member.name).unwrap(),
        server_name: sudohub::types::ServerName::DEFAULT,
        port,
        env: standard_env(&w.member.name),
        profile: String::new(),
    };
    let handle = client
        .spawn(args.clone(), Duration::from_secs(20))
        .await
        .expect("spawn");
    let pid = handle.pid();
    assert!(proc::is_alive(pid));
    assert_eq!(
        proc::status(pid)["Uid"].split_whitespace().next(),
        Some(w.member.uid.to_string().as_str())
    );
    wait_listening(port);
    assert_eq!(
        handle.status().await.unwrap(),
        ServerStatus::Running { pid }
    );

    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let ending = tokio::time::timeout(Duration::from_secs(2), handle.ended())
        .await
        .expect("exit pushed within 2 s");
    assert_eq!(ending, Ending::Exited(ExitStatus::Signal(9)));
    assert!(killed.elapsed() < Duration::from_secs(2));

    // Not in the group: the helper's root phase refuses, typed.
    let outsider = SpawnArgs {
        user: Username::parse(&w.outsider.name).unwrap(),
        ..args.clone()
    };
    match client.spawn(outsider, Duration::from_secs(20)).await {
        Err(SpawnerError::Refused {
            kind: ErrorKind::UserNotAllowed,
            message,
        }) => assert!(message.contains("not a member"), "{message}"),
        other => panic!("expected the helper to refuse, got {other:?}"),
    }
    // A hub account without the sudoers rule: sudo refuses, and the error says where to look.
    let stranger = TestUser::create_system(&unique_name("shq"));
    let mut sudo = stranger.setpriv();
    sudo.extend(["sudo".to_owned(), "-n".to_owned()]);
    let no_rule = SpawnerClient::new(sudo, w.helpers.spawner());
    match no_rule.spawn(args, Duration::from_secs(20)).await {
        Err(e @ SpawnerError::NoAnswer { .. }) => {
            assert!(e.to_string().contains("sudoers"), "{e}");
        }
        other => panic!("expected sudo to refuse, got {other:?}"),
    }
    assert_no_processes(&w.member);
    assert_no_processes(&w.outsider);
}

// ---- The root phase's drop, and the server's cgroup (limits and containment) ----

/// A world whose helpers.toml has `[limits]` with a `cgroup_parent` of its own and `extra`.
fn limited_world(extra: &str) -> (CgroupParent, World) {
    require_v1();
    let lim = CgroupParent::new();
    let w = world(&[], &lim.config(extra));
    (lim, w)
}

/// Stops the server and waits for the helper's exit report.
fn stop_server(s: &mut UnixStream) {
    send(s, &Request::Stop { grace_ms: 2000 });
    assert!(matches!(recv(s), Reply::Exited { .. }));
}

/// The member's default server, started and answering: the helper, its channel, the
/// server's pid and port.
fn running_server(w: &World) -> (Child, UnixStream, u32, u16) {
    let port = free_port();
    let (helper, mut s) = start_helper(w, &w.member.name);
    let pid = spawn_server(w, &mut s, port);
    wait_listening(port);
    (helper, s, pid, port)
}

fn get_json(port: u16, path: &str) -> serde_json::Value {
    let text = http_get(port, path).unwrap_or_else(|| panic!("GET {path} failed"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
}

fn require_v1() {
    assert!(
        matches!(Hierarchy::detect(), Hierarchy::V1(_)),
        "these tests run on cgroup v1 (this build machine); found {:?}",
        Hierarchy::detect()
    );
}

/// After the root phase the helper is the user and nothing more, as the kernel sees it:
/// uid and gid four times, the user's groups, every capability set empty (bounding and
/// ambient too), no-new-privs; the server the same, inside its cgroup in every
/// hierarchy, while the helper itself stays outside.
#[test]
fn the_helper_drops_everything_and_the_server_runs_in_its_cgroup() {
    let (lim, w) = limited_world("");
    let (_helper, mut s, pid, port) = running_server(&w);
    let helper_pid: u32 = proc::status(pid)["PPid"].parse().unwrap();
    let (u, g) = (w.member.uid.to_string(), w.member.gid.to_string());
    for who in [helper_pid, pid] {
        let st = proc::status(who);
        assert_eq!(
            st["Uid"].split_whitespace().collect::<Vec<_>>(),
            [&u, &u, &u, &u]
        );
        assert_eq!(
            st["Gid"].split_whitespace().collect::<Vec<_>>(),
            [&g, &g, &g, &g]
        );
        for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(st[key], "0000000000000000", "{key} of {who}");
        }
        assert_eq!(st["NoNewPrivs"], "1", "{who}");
        let mut groups: Vec<&str> = st["Groups"].split_whitespace().collect();
        groups.sort_unstable();
        let mut want = vec![g.clone(), w.group.gid.to_string()];
        want.sort_unstable();
        want.dedup();
        assert_eq!(groups, want, "supplementary groups of {who}");
    }
    let inside = get_json(port, "/self");
    let cgroups = inside["cgroup"].as_str().unwrap();
    let want = format!("{}/{}/_default", lim.parent, w.member.name);
    for c in ["memory", "cpu", "cpuacct", "pids", "freezer"] {
        assert!(
            cgroups.lines().any(|l| l
                .split(':')
                .nth(1)
                .is_some_and(|cs| cs.split(',').any(|x| x == c))
                && l.ends_with(&want)),
            "server not in {c}:{want}: {cgroups}"
        );
    }
    let helper_cg = std::fs::read_to_string(format!("/proc/{helper_pid}/cgroup")).unwrap();
    assert!(
        !helper_cg.contains(&want),
        "the helper joined the server's group: {helper_cg}"
    );
    // Root's directory and files: the user may not change a limit or add a group.
    let dir = lim.dir("memory", &w.member.name, "");
    let meta = std::fs::metadata(&dir).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o755));
    let status = w
        .member
        .command("/bin/sh")
        .arg("-c")
        .arg(format!(
            "echo 999999999999 > {0}/memory.limit_in_bytes || exit 0; exit 1",
            dir.display()
        ))
        .status()
        .unwrap();
    assert!(status.success(), "the user could raise their memory limit");
    stop_server(&mut s);
    assert_no_processes(&w.member);
}

/// A notebook that allocates past `mem_limit` is killed by the kernel inside its cgroup;
/// the server (and the helper, outside the group) live on, the helper reports the OOM to
/// the hub and writes it in the server's log.
#[test]
fn mem_limit_oom_kills_the_allocation_and_the_server_lives_on() {
    let (lim, w) = limited_world("mem_limit = \"96M\"");
    let (_helper, mut s, pid, port) = running_server(&w);
    let helper_pid: u32 = proc::status(pid)["PPid"].parse().unwrap();
    assert_eq!(
        lim.read("memory", &w.member.name, "memory.limit_in_bytes"),
        (96u64 << 20).to_string()
    );
    let r = get_json(port, "/alloc?mb=400");
    assert_eq!(r["signal"], 9, "the allocation was not OOM-killed: {r}");
    assert!(
        get_json(port, "/").get("uid").is_some(),
        "the server died with its child"
    );
    assert!(proc::is_alive(pid));
    match recv(&mut s) {
        Reply::OutOfMemory { kills, limit } => {
            assert!(kills >= 1);
            assert_eq!(limit, 96 << 20);
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    let log =
        std::fs::read_to_string(w.member.home.join(".local/state/sudohub/default.log")).unwrap();
    assert!(log.contains("out of memory"), "{log}");
    assert!(proc::is_alive(helper_pid), "the OOM reached the helper");
    send(&mut s, &Request::Status);
    assert_eq!(recv(&mut s), Reply::Status(ServerStatus::Running { pid }));
    stop_server(&mut s);
    assert_no_processes(&w.member);
}

/// `cpu_limit = 0.5`: a busy loop of 10 s gets at most 0.55 of a core (and did run).
#[test]
fn cpu_limit_holds_a_busy_loop_to_half_a_core() {
    let (lim, w) = limited_world("cpu_limit = 0.5");
    let (_helper, mut s, _, port) = running_server(&w);
    assert_eq!(lim.read("cpu", &w.member.name, "cpu.cfs_quota_us"), "50000");
    let r = get_json(port, "/spin?secs=10");
    let cpu = r["cpu"].as_f64().unwrap();
    assert!(
        cpu <= 5.5,
        "a busy loop got {cpu:.2} s of CPU in 10 s under cpu_limit 0.5"
    );
    assert!(
        cpu >= 2.0,
        "the busy loop hardly ran ({cpu:.2} s): the test proves nothing"
    );
    let total: f64 = lim
        .read("cpuacct", &w.member.name, "cpuacct.usage")
        .parse::<f64>()
        .unwrap()
        / 1e9;
    assert!(
        total >= cpu * 0.9,
        "cpuacct.usage {total:.2} s does not count the loop's {cpu:.2} s"
    );
    stop_server(&mut s);
}

/// A fork bomb stops at `pids_limit`, and the server still answers.
#[test]
fn pids_limit_stops_a_fork_bomb() {
    let (lim, w) = limited_world("pids_limit = 32");
    let (_helper, mut s, _, port) = running_server(&w);
    let r = get_json(port, "/forkbomb?n=500");
    let forked = r["forked"].as_u64().unwrap();
    assert!(forked < 32, "forked {forked} under pids_limit 32: {r}");
    assert!(r["refused"].is_string(), "{r}");
    assert!(lim
        .read("pids", &w.member.name, "pids.events")
        .starts_with("max "));
    assert_ne!(lim.read("pids", &w.member.name, "pids.events"), "max 0");
    assert!(get_json(port, "/").get("uid").is_some());
    stop_server(&mut s);
    assert_no_processes(&w.member);
}

/// What the server starts in a new session or as a double-forked daemon is not in its
/// process group, nor a child of it: stop kills it anyway (it is in the cgroup), and so
/// does the server exiting on its own. Exited comes once the group is empty.
#[test]
fn stop_kills_new_sessions_and_double_forked_daemons() {
    let (lim, w) = limited_world("");
    for by_itself in [false, true] {
        let port = free_port();
        let (mut helper, mut s) = start_helper(&w, &w.member.name);
        let pid = spawn_server(&w, &mut s, port);
        wait_listening(port);
        let r = get_json(port, "/daemon");
        let escaped: Vec<u32> = ["session", "daemon"]
            .iter()
            .map(|k| r[k].as_u64().unwrap() as u32)
            .collect();
        // Neither is in the server's process group, which is what a stop signals.
        for &p in &escaped {
            assert!(proc::is_alive(p));
            assert_ne!(pgid(p), pgid(pid), "{p} is in the server's process group");
        }
        if by_itself {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::SIGKILL,
            )
            .unwrap();
        } else {
            send(&mut s, &Request::Stop { grace_ms: 2000 });
        }
        assert!(matches!(recv(&mut s), Reply::Exited { .. }));
        for &p in &escaped {
            assert!(
                !proc::is_alive(p),
                "{p} outlived the server (by_itself: {by_itself})"
            );
        }
        assert!(lim
            .read("freezer", &w.member.name, "cgroup.procs")
            .is_empty());
        assert_no_processes(&w.member);
        let _ = wait_for(Duration::from_secs(5), || helper.try_wait().ok().flatten());
    }
}

/// The process group of `pid`, from /proc.
fn pgid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// The most specific table wins, key by key: the user's own, then their group's, then
/// `[limits]`; a key nobody sets is no limit.
#[test]
fn group_and_user_overrides_apply() {
    require_v1();
    let lim = CgroupParent::new();
    let w = world(
        &[],
        &lim.config(
            "mem_limit = \"256M\"\npids_limit = 100\n[limits.groups.{group}]\nmem_limit = \"512M\"\n\
             [limits.users.{member}]\npids_limit = 200\n",
        ),
    );
    let (_helper, mut s, _, _) = running_server(&w);
    let user = &w.member.name;
    assert_eq!(
        lim.read("memory", user, "memory.limit_in_bytes"),
        (512u64 << 20).to_string()
    );
    assert_eq!(lim.read("pids", user, "pids.max"), "200");
    assert_eq!(lim.read("cpu", user, "cpu.cfs_quota_us"), "-1");
    stop_server(&mut s);
}

/// A compromised hub account can neither write a limit nor make a group of its own
/// under the servers' parent, nor move a process into a server's group.
#[test]
fn a_compromised_hub_cannot_change_limits_or_groups() {
    let (lim, w) = limited_world("mem_limit = \"128M\"");
    let (_helper, mut s, _, _) = running_server(&w);
    let dir = lim.dir("memory", &w.member.name, "");
    let parent = dir.parent().unwrap().to_path_buf();
    for script in [
        format!(
            "echo 999999999999 > {}/memory.limit_in_bytes",
            dir.display()
        ),
        format!("mkdir {}/escape", parent.display()),
        format!("mkdir {}/escape", dir.display()),
        format!("echo $$ > {}/cgroup.procs", dir.display()),
    ] {
        let status = w
            .hub
            .command("/bin/sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(!status.success(), "the hub account could: {script}");
    }
    assert_eq!(
        lim.read("memory", &w.member.name, "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    stop_server(&mut s);
}

/// A server whose helper was killed (by root, or by the user: after the drop the helper is
/// theirs to signal, SECURITY.md) keeps running unsupervised, inside its group and its
/// limits; the next spawn of that server kills it and starts clean.
#[test]
fn the_next_spawn_clears_what_a_killed_helper_left() {
    let (lim, w) = limited_world("");
    let port = free_port();
    let (mut helper, mut s) = start_helper(&w, &w.member.name);
    let old = spawn_server(&w, &mut s, port);
    wait_listening(port);
    let helper_pid: i32 = proc::status(old)["PPid"].parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(helper_pid),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let _ = helper.wait();
    assert!(proc::is_alive(old), "the server died with its helper");
    let port2 = free_port();
    let (_helper2, mut s2) = start_helper(&w, &w.member.name);
    let new = spawn_server(&w, &mut s2, port2);
    wait_listening(port2);
    assert!(
        wait_for(Duration::from_secs(5), || (!proc::is_alive(old))
            .then_some(()))
        .is_some(),
        "the leftover server lives on"
    );
    let procs = lim.read("freezer", &w.member.name, "cgroup.procs");
    assert_eq!(
        procs,
        new.to_string(),
        "only the new server is in the group"
    );
    stop_server(&mut s2);
}

/// `isolate_tmp`: each server has a /tmp of its own; the machine's stays untouched.
#[test]
fn isolate_tmp_gives_each_server_its_own_tmp() {
    let (_lim, w) = limited_world("isolate_tmp = true");
    let (pa, pb) = (free_port(), free_port());
    let (_ha, mut a) = start_named(&w, &w.member.name, "one");
    spawn_server(&w, &mut a, pa);
    let (_hb, mut b) = start_named(&w, &w.member.name, "two");
    spawn_server(&w, &mut b, pb);
    wait_listening(pa);
    wait_listening(pb);
    let ta = get_json(pa, "/tmpfile");
    let tb = get_json(pb, "/tmpfile");
    let (fa, fb) = (ta["made"].as_str().unwrap(), tb["made"].as_str().unwrap());
    assert!(
        !tb["listing"].as_array().unwrap().iter().any(|f| f == fa),
        "{tb}"
    );
    assert!(
        !ta["listing"].as_array().unwrap().iter().any(|f| f == fb),
        "{ta}"
    );
    assert!(
        !std::path::Path::new("/tmp").join(fa).exists(),
        "{fa} is in the machine's /tmp"
    );
    for s in [&mut a, &mut b] {
        stop_server(s);
    }
}

// ---- The setuid-root mode: no sudo at all ----

/// Installs a copy of the helper setuid root, `root:<hub's group>` with `mode`, as
/// `install.sh --setuid-spawner` does (4750), and removes the world's sudoers rule.
fn setuid_helper(w: &mut World, mode: u32) -> PathBuf {
    w._sudoers = None;
    let path = w.helpers.dir.join("sudohub-spawner-setuid");
    let bytes = std::fs::read(w.helpers.spawner()).unwrap();
    sudohub_tests::fs::write_owned(&path, &bytes, Uid::from_raw(0), w.hub.gid, mode);
    path
}

/// Runs `program` (and `args`) as `caller`, over a socketpair, with nothing in between.
fn run_as(caller: &TestUser, program: &str, args: &[&str]) -> (Child, UnixStream) {
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let theirs: OwnedFd = theirs.into();
    let child = caller
        .command(program)
        .args(args)
        .stdin(Stdio::from(theirs.try_clone().expect("dup")))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the helper");
    ours.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    (child, ours)
}

fn hello_and_target(s: &mut UnixStream, user: &str) {
    send(s, &Request::Hello(Hello::current()));
    assert_eq!(recv(s), Reply::Hello(Hello::current()));
    send(s, &target_req(user, ""));
}

/// Installed setuid root with no sudoers rule at all, the helper works as it does through
/// sudo: the hub runs it, it drops to the user for good, the server runs in its cgroup
/// with root's limits; and it refuses what the sudo mode refuses.
#[test]
fn the_setuid_mode_works_without_sudo_and_refuses_the_same_attacks() {
    let (lim, mut w) = limited_world("pids_limit = 64");
    let helper = setuid_helper(&mut w, 0o4750);
    let helper_s = helper.display().to_string();
    assert!(
        !std::fs::read_dir("/etc/sudoers.d")
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains(&w.hub.name)),
        "a sudoers rule for the hub is left"
    );

    let port = free_port();
    let (mut child, mut s) = run_as(&w.hub, &helper_s, &[]);
    hello_and_target(&mut s, &w.member.name);
    let pid = spawn_server(&w, &mut s, port);
    // It left its caller at once (as it leaves sudo): reaped here, as the hub does.
    assert!(child.wait().unwrap().success());
    wait_listening(port);
    let helper_pid: u32 = proc::status(pid)["PPid"].parse().unwrap();
    let u = w.member.uid.to_string();
    for who in [helper_pid, pid] {
        let st = proc::status(who);
        assert_eq!(
            st["Uid"].split_whitespace().collect::<Vec<_>>(),
            [&u, &u, &u, &u]
        );
        for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(st[key], "0000000000000000", "{key} of {who}");
        }
        assert_eq!(st["NoNewPrivs"], "1");
    }
    assert_eq!(lim.read("pids", &w.member.name, "pids.max"), "64");
    // The hub can no longer signal the helper: it is the user's now.
    assert!(w
        .hub
        .command("kill")
        .arg(helper_pid.to_string())
        .status()
        .map(|s| !s.success())
        .unwrap());
    stop_server(&mut s);
    assert_no_processes(&w.member);

    // The same refusals as through sudo.
    for (target, kind) in [
        ("root", ErrorKind::BadIdentity),
        (w.hub.name.as_str(), ErrorKind::BadIdentity),
        (w.outsider.name.as_str(), ErrorKind::UserNotAllowed),
    ] {
        let (child, mut s) = run_as(&w.hub, &helper_s, &[]);
        hello_and_target(&mut s, target);
        let (k, _, stderr) = refused(child, &mut s);
        assert_eq!(k, kind, "{target}: {stderr}");
    }
    let (mut child, _s) = run_as(&w.hub, &helper_s, &["/bin/sh"]);
    assert_eq!(child.wait().unwrap().code(), Some(64));
    // Anyone else cannot even run it (4750, the hub's group): exec fails. Through `su`, a
    // login as the member: setpriv's own exec does not show the kernel's exec check here.
    let denied = Command::new("su")
        .args(["-s", "/bin/sh", &w.member.name, "-c", &helper_s])
        .output()
        .unwrap();
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("Permission denied"),
        "{denied:?}"
    );
    assert_no_processes(&w.outsider);
}

/// Installed 4755 by mistake, it still serves the hub's account only; and a caller that
/// set no-new-privs (so the setuid bit is ignored) is told why it cannot work.
#[test]
fn the_setuid_helper_refuses_other_callers_and_explains_no_new_privs() {
    let mut w = world(&[], "");
    let helper = setuid_helper(&mut w, 0o4755);
    let helper_s = helper.display().to_string();
    let (child, mut s) = run_as(&w.member, &helper_s, &[]);
    let (kind, code, stderr) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::CallerNotHub, 4), "{stderr}");
    assert_no_processes(&w.member);

    let (child, mut s) = run_as(&w.hub, "setpriv", &["--no-new-privs", "--", &helper_s]);
    let (kind, code, stderr) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::CallerNotHub, 4), "{stderr}");
    assert!(stderr.contains("no-new-privs"), "{stderr}");
}

/// A hub that starts the helper with SIGCHLD ignored and signals blocked (a setuid
/// caller chooses the state the helper starts in) cannot blind it: the server's exit is
/// still seen and reported at once.
#[test]
fn the_setuid_helper_resets_the_signals_its_caller_chose() {
    let mut w = world(&[], "");
    let helper = setuid_helper(&mut w, 0o4750);
    let script = format!(
        "import os, signal; signal.signal(signal.SIGCHLD, signal.SIG_IGN); \
         signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGTERM, signal.SIGCHLD}}); \
         os.execv({0:?}, [{0:?}])",
        helper.display().to_string()
    );
    let port = free_port();
    let (mut child, mut s) = run_as(&w.hub, "/usr/bin/python3", &["-c", &script]);
    hello_and_target(&mut s, &w.member.name);
    let pid = spawn_server(&w, &mut s, port);
    assert!(child.wait().unwrap().success());
    wait_listening(port);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(
        recv(&mut s),
        Reply::Exited {
            status: ExitStatus::Signal(9)
        }
    );
    assert_no_processes(&w.member);
}

/// The hub's own client with `sudo = []`: it runs the setuid helper directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_client_runs_a_setuid_helper_without_sudo() {
    use sudohub::spawner::{SpawnArgs, SpawnerClient};
    use sudohub::types::Username;
    let mut w = world(&[], "");
    let helper = setuid_helper(&mut w, 0o4750);
    // The hub runs as its account: setpriv stands in for the hub process itself.
    let client = SpawnerClient::new(w.hub.setpriv(), helper);
    let port = free_port();
    let args = SpawnArgs {
        user: Username::parse(&w.member.name).unwrap(),
        server_name: sudohub::types::ServerName::DEFAULT,
        port,
        env: standard_env(&w.member.name),
        profile: String::new(),
    };
    let handle = client
        .spawn(args, Duration::from_secs(20))
        .await
        .expect("spawn");
    wait_listening(port);
    assert_eq!(
        handle.stop(Duration::from_secs(2)).await.unwrap(),
        ExitStatus::Signal(15)
    );
    assert_no_processes(&w.member);
}

/// Two servers of one user starting at the same time: neither root phase touches the
/// other's group (one made and not yet joined must survive the other's root phase).
#[test]
fn two_servers_of_one_user_start_side_by_side() {
    let (lim, w) = limited_world("pids_limit = 256");
    let (_h1, mut a) = start_named(&w, &w.member.name, "one");
    let group_one = lim.dir("pids", &w.member.name, "one");
    assert!(
        wait_for(Duration::from_secs(10), || group_one.is_dir().then_some(())).is_some(),
        "no group for server one"
    );
    let (_h2, mut b) = start_named(&w, &w.member.name, "two");
    let group_two = lim.dir("pids", &w.member.name, "two");
    assert!(wait_for(Duration::from_secs(10), || group_two.is_dir().then_some(())).is_some());
    let (pa, pb) = (free_port(), free_port());
    let one = spawn_server(&w, &mut a, pa);
    let two = spawn_server(&w, &mut b, pb);
    wait_listening(pa);
    wait_listening(pb);
    let procs = |d: &std::path::Path| std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
    assert!(procs(&group_one).lines().any(|l| l == one.to_string()));
    assert!(procs(&group_two).lines().any(|l| l == two.to_string()));
    for s in [&mut a, &mut b] {
        stop_server(s);
    }
}

/// A hub that lost track of a running server and spawns it again: the new root phase
/// kills the old server, and the old helper, seeing its server gone, clears only its own
/// group (through root's fd of that directory), never the new server that now has the
/// same path.
#[test]
fn a_second_spawn_of_a_running_server_replaces_it_cleanly() {
    let (lim, w) = limited_world("");
    let (_h1, mut old_s) = start_helper(&w, &w.member.name);
    let (p1, p2) = (free_port(), free_port());
    let old = spawn_server(&w, &mut old_s, p1);
    wait_listening(p1);
    let (_h2, mut new_s) = start_helper(&w, &w.member.name);
    let new = spawn_server(&w, &mut new_s, p2);
    assert!(
        matches!(recv(&mut old_s), Reply::Exited { .. }),
        "the old helper saw its server go"
    );
    assert!(!proc::is_alive(old));
    wait_listening(p2);
    std::thread::sleep(Duration::from_secs(2));
    assert!(proc::is_alive(new), "the old helper killed the new server");
    assert_eq!(
        lim.read("freezer", &w.member.name, "cgroup.procs"),
        new.to_string()
    );
    stop_server(&mut new_s);
    assert_no_processes(&w.member);
}

/// After the drop the helper is the user's, so the user can kill it; their server then
/// runs on unsupervised. The hub's `Clear` (a new helper, root for its root phase only)
/// kills what is left in that server's group and removes it; it checks the target like a
/// spawn does.
#[test]
fn a_server_whose_user_killed_its_helper_is_cleared_by_root() {
    let (lim, w) = limited_world("");
    let (_helper, _s, pid, _) = running_server(&w);
    let helper_pid = proc::status(pid)["PPid"].clone();
    let killed = w
        .member
        .command("kill")
        .args(["-KILL", &helper_pid])
        .status()
        .unwrap();
    assert!(killed.success(), "the user could not kill their own helper");
    std::thread::sleep(Duration::from_millis(300));
    assert!(proc::is_alive(pid), "the server died with its helper");
    let clear = |user: &str| {
        let (child, mut s) = sudo_helper(&w, &w.hub, &["-n"]);
        send(&mut s, &Request::Hello(Hello::current()));
        assert_eq!(recv(&mut s), Reply::Hello(Hello::current()));
        send(
            &mut s,
            &Request::Clear(Target {
                user: Bounded::new(user).unwrap(),
                server_name: Bounded::new("").unwrap(),
            }),
        );
        (child, s)
    };
    let (child, mut s) = clear(&w.outsider.name);
    let (kind, _, _) = refused(child, &mut s);
    assert_eq!(kind, ErrorKind::UserNotAllowed);
    let (mut child, mut s) = clear(&w.member.name);
    match recv(&mut s) {
        Reply::Cleared { killed } => assert!(killed >= 1, "{killed}"),
        other => panic!("expected Cleared, got {other:?}"),
    }
    assert!(child.wait().unwrap().success());
    assert_no_processes(&w.member);
    assert!(
        !lim.dir("memory", &w.member.name, "").exists(),
        "the group is still there"
    );
}
