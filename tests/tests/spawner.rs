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
use sudohub_protocol::frame::{self, encode};
use sudohub_protocol::spawner::{
    EnvVar, ErrorKind, ExitStatus, ReattachAnswer, ReattachHello, Reply, Request, ServerStatus,
    Spawn,
};
use sudohub_protocol::{Bounded, Hello, PROTOCOL_VERSION};
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
    _sudoers: SudoersDropIn,
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
        &SudoersDropIn::rule(&hub.name, &group.name, &helpers.spawner()),
    );
    let sock_dir = PathBuf::from(format!("/run/{}", unique_name("shs")));
    std::fs::create_dir_all(&sock_dir).expect("socket dir");
    sudohub_tests::fs::chown_mode(&sock_dir, Uid::from_raw(0), Gid::from_raw(0), 0o755);
    let min_uid = if config_extra.contains("min_uid") {
        ""
    } else {
        "min_uid = 1000\n"
    };
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
        _sudoers: sudoers,
        _config: config,
        group,
        _lock: lock,
    }
}

/// Runs `sudo -n -u <target> <helper>` as the hub user, over a socketpair, like the hub.
fn start_helper(w: &World, target: &str) -> (Child, UnixStream) {
    sudo_helper(w, &w.hub, &["-n", "-u", target])
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
        server_name: Bounded::new("").expect("name"),
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

/// Hello + spawn of the test server; returns the server's pid.
fn spawn_server(w: &World, s: &mut UnixStream, port: u16) -> u32 {
    send(s, &Request::Hello(Hello::current()));
    assert_eq!(recv(s), Reply::Hello(Hello::current()));
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

/// Sends `frames` as raw bytes after a good hello and expects a refusal of `kind`.
fn refused_after_hello(bytes: &[u8]) -> (ErrorKind, i32, String, World) {
    let w = world(&[], "");
    let (child, mut s) = start_helper(&w, &w.member.name);
    send(&mut s, &Request::Hello(Hello::current()));
    assert_eq!(recv(&mut s), Reply::Hello(Hello::current()));
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
    send(&mut s, &Request::Hello(Hello::current()));
    assert_eq!(recv(&mut s), Reply::Hello(Hello::current()));
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

#[test]
fn refuses_a_wrong_protocol_version() {
    let w = world(&[], "");
    let (child, mut s) = start_helper(&w, &w.member.name);
    send(
        &mut s,
        &Request::Hello(Hello {
            version: PROTOCOL_VERSION + 1,
        }),
    );
    let (kind, code, _) = refused(child, &mut s);
    assert_eq!((kind, code), (ErrorKind::ProtocolVersion, 6));
}

#[test]
fn refuses_a_target_outside_the_group() {
    let w = world(&[], "");
    // A rule wide enough to let sudo through, so that the helper's own check refuses.
    let _wide = SudoersDropIn::install(
        &unique_name("sudohubw"),
        &format!(
            "{} ALL=({}) NOPASSWD: {} \"\"\n",
            w.hub.name,
            w.outsider.name,
            w.helpers.spawner().display()
        ),
    );
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
            "{} ALL=({} : ALL) NOPASSWD: {} \"\"\n",
            w.hub.name,
            w.member.name,
            w.helpers.spawner().display()
        ),
    );
    let sudo = ["-n", "-g", &w.group.name, "-u", &w.member.name];
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

#[test]
fn refuses_root_as_target_via_sudo() {
    let w = world(&[], "");
    let out = w
        .hub
        .command("sudo")
        .args(["-n", "-u", "root"])
        .arg(w.helpers.spawner())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sudo"),
        "{out:?}"
    );
}

#[test]
fn refuses_root_even_when_sudo_is_misconfigured() {
    let w = world(&[], "");
    let (ours, theirs) = UnixStream::pair().unwrap();
    let theirs: OwnedFd = theirs.into();
    // Run directly as root (as a too-wide sudoers rule would).
    let mut child = Command::new(w.helpers.spawner())
        .env_clear()
        .env("SUDO_UID", w.hub.uid.to_string())
        .stdin(Stdio::from(theirs.try_clone().unwrap()))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut s = ours;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reply = recv(&mut s);
    assert!(
        matches!(reply, Reply::Error(ref e) if e.kind == ErrorKind::BadIdentity),
        "{reply:?}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(2));
}

#[test]
fn refuses_a_caller_that_is_not_the_hub_user() {
    // The config names another hub user than the one calling.
    let w = world(&[], "");
    let other_hub = TestUser::create_system(&unique_name("shx"));
    let _rule = SudoersDropIn::install(
        &unique_name("sudohubx"),
        &SudoersDropIn::rule(&other_hub.name, &w.group.name, &w.helpers.spawner()),
    );
    let (child, mut s) = sudo_helper(&w, &other_hub, &["-n", "-u", &w.member.name]);
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
        .args(["-n", "-u", &w.member.name])
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
    let out = w
        .hub
        .command("sudo")
        .args(["-n", "-u", &w.member.name, "echo", "hello"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hello"));
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
    let (child, mut s) = start_helper(&w, &w.member.name);
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

    // Not in the group: sudo itself refuses, and the error says where to look.
    let outsider = SpawnArgs {
        user: Username::parse(&w.outsider.name).unwrap(),
        ..args
    };
    match client.spawn(outsider, Duration::from_secs(20)).await {
        Err(e @ SpawnerError::NoAnswer { .. }) => {
            assert!(e.to_string().contains("sudoers"), "{e}");
        }
        other => panic!("expected sudo to refuse, got {other:?}"),
    }
    assert_no_processes(&w.member);
    assert_no_processes(&w.outsider);
}
