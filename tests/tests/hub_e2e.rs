//! The whole product, end to end: the real `sudohub` running as its own unprivileged
//! service user, real PAM logins, real sudo, the real `jupyterhub-singleuser` 6.1.1 with
//! JupyterLab 4.6, the OAuth dance, a real kernel over a WebSocket through the hub's proxy,
//! and a `kill -9` of the hub that user servers survive. Run as root by `sudo ./test.sh`.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid};
use reqwest::{StatusCode, Url};
use sudohub_tests::browser::{Browser, Page};
use sudohub_tests::hub::{free_port, HubProcess};
use sudohub_tests::system::{
    ConfigLock, HelpersConfigFile, InstalledHelpers, SudoersDropIn, TestGroup, TestUser,
};
use sudohub_tests::{fs, kernel, proc, require_root, unique_name};

const PASSWORD: &str = "a good long test password";

struct World {
    hub_user: TestUser,
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    helpers: InstalledHelpers,
    hub_bin: PathBuf,
    config: PathBuf,
    state_dir: PathBuf,
    run_dir: PathBuf,
    service_file: PathBuf,
    service_token: String,
    addr: SocketAddr,
    _sudoers: SudoersDropIn,
    _helpers_config: HelpersConfigFile,
    _group: TestGroup,
    _lock: ConfigLock,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.state_dir);
        let _ = std::fs::remove_dir_all(&self.run_dir);
        let _ = std::fs::remove_file(&self.service_file);
    }
}

fn world() -> World {
    world_at("/")
}

fn world_at(base_url: &str) -> World {
    world_with(base_url, |_, _| String::new())
}

/// A world whose hub.toml also gets the top-level keys `extra` returns; it is given the
/// hub user and the state directory (owned by that user), e.g. to place a TLS key.
fn world_with(base_url: &str, extra: impl FnOnce(&TestUser, &std::path::Path) -> String) -> World {
    require_root();
    assert!(
        std::path::Path::new("/opt/sudohub/venv/bin/jupyterhub-singleuser").exists(),
        "the single-user venv is missing: ./test.sh installs it (scripts/deps.sh)"
    );
    let lock = ConfigLock::acquire();
    let group = TestGroup::create(&unique_name("seg"));
    let hub_user = TestUser::create_system(&unique_name("seh"));
    let alice = TestUser::create(&unique_name("sea"), &[&group.name], Some(PASSWORD));
    let bob = TestUser::create(&unique_name("seb"), &[&group.name], Some(PASSWORD));
    let carol = TestUser::create(&unique_name("sec"), &[], Some(PASSWORD));
    let helpers = InstalledHelpers::install();
    let hub_bin = helpers.install_hub();
    let root = (Uid::from_raw(0), Gid::from_raw(0));

    let service_name = unique_name("sudohubpam");
    let service_file = PathBuf::from("/etc/pam.d").join(&service_name);
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../pam.d/sudohub"),
        &service_file,
    )
    .unwrap();
    fs::chown_mode(&service_file, root.0, root.1, 0o644);

    let run_dir = PathBuf::from(format!("/run/{}", unique_name("ser")));
    std::fs::create_dir_all(&run_dir).unwrap();
    fs::chown_mode(&run_dir, hub_user.uid, hub_user.gid, 0o755);
    let socket = run_dir.join("spawners.sock");
    let sudoers = SudoersDropIn::install(
        &unique_name("sudohube"),
        &format!(
            "{}{}",
            SudoersDropIn::rule(&hub_user.name, &helpers.spawner()),
            SudoersDropIn::account_rule(&hub_user.name, &helpers.account())
        ),
    );

    let state_dir = PathBuf::from(format!("/var/lib/{}", unique_name("ses")));
    std::fs::create_dir_all(&state_dir).unwrap();
    fs::chown_mode(&state_dir, hub_user.uid, hub_user.gid, 0o700);
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let service_token = sudohub::secrets::new_api_token();
    let config = state_dir.join("hub.toml");
    let extra = extra(&hub_user, &state_dir);
    let text = format!(
        r#"{extra}
bind = "{addr}"
base_url = "{base_url}"
db = "{state}/sudohub.sqlite"
cookie_secret_file = "{state}/cookie_secret"
reattach_socket = "{socket}"
[auth]
allowed_groups = ["{group}"]
[pam]
helper = "{pam}"
[spawner]
helper = "{spawner}"
http_timeout_secs = 90
[[services]]
name = "probe"
api_token = "{service_token}"
admin = true
"#,
        state = state_dir.display(),
        socket = socket.display(),
        group = group.name,
        pam = helpers.pam().display(),
        spawner = helpers.spawner().display(),
    );
    fs::write_owned(&config, text.as_bytes(), root.0, hub_user.gid, 0o640);
    // The helpers pin the Hub API to this hub's, as an installed helpers.toml does.
    let api = sudohub::config::HubConfig::parse(&text, &config)
        .unwrap()
        .api_url();
    let helpers_config = HelpersConfigFile::write(&format!(
        "hub_user = {:?}\nallowed_group = {:?}\n[spawner]\nreattach_socket = {:?}\nhub_api_url = {api:?}\n[pam]\nservice = {service_name:?}\n",
        hub_user.name,
        group.name,
        socket.display().to_string()
    ));
    World {
        hub_user,
        alice,
        bob,
        carol,
        helpers,
        hub_bin,
        config,
        state_dir,
        run_dir,
        service_file,
        service_token,
        addr,
        _sudoers: sudoers,
        _helpers_config: helpers_config,
        _group: group,
        _lock: lock,
    }
}

fn start_hub(w: &World) -> HubProcess {
    start_hub_with_env(w, &[])
}

fn start_hub_with_env(w: &World, env: &[(&str, &std::path::Path)]) -> HubProcess {
    HubProcess::start(
        &w.hub_bin,
        &w.config,
        &w.hub_user,
        w.addr,
        w.state_dir.join("hub.log"),
        Duration::from_secs(20),
        env,
    )
}

fn url(w: &World, path: &str) -> Url {
    Url::parse(&format!("http://{}{path}", w.addr)).unwrap()
}

async fn login(w: &World, b: &Browser, user: &str, password: &str) -> Page {
    let form = b.get(&url(w, "/hub/login?next=%2Fhub%2Fspawn")).await;
    assert_eq!(form.status, StatusCode::OK);
    let xsrf = form.xsrf_field().expect("login form has an _xsrf field");
    b.post_form(
        &url(w, "/hub/login?next=%2Fhub%2Fspawn"),
        &[("username", user), ("password", password), ("_xsrf", &xsrf)],
    )
    .await
}

/// The JSON of a GET of the REST API, with the admin service's token.
async fn api_get(w: &World, path: &str) -> serde_json::Value {
    let r = api_client()
        .get(url(w, path))
        .header("Authorization", format!("token {}", w.service_token))
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

/// [`login`], which must succeed.
async fn must_log_in(w: &World, b: &Browser, user: &str, password: &str) {
    signed_in(w, &login(w, b, user, password).await);
}

/// Asserts that `p` is a login's success: a redirect onwards, not a page.
fn signed_in(w: &World, p: &Page) {
    assert_eq!(
        p.status,
        StatusCode::SEE_OTHER,
        "{}\n{}",
        p.body,
        hub_log(w)
    );
}

/// Replaces the hub's config (root-owned, readable by the hub's group, as installed).
fn write_config(w: &World, text: &str) {
    fs::write_owned(
        &w.config,
        text.as_bytes(),
        Uid::from_raw(0),
        w.hub_user.gid,
        0o640,
    );
}

/// A plain HTTP client for the API: no redirects followed, no proxy from the environment.
fn api_client() -> reqwest::Client {
    sudohub_tests::tls::install_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn hub_log(w: &World) -> String {
    std::fs::read_to_string(w.state_dir.join("hub.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_spawn_lab_kernel_restart_and_stop() {
    let w = world();

    // Run as root, the hub refuses to start.
    let out = std::process::Command::new(&w.hub_bin)
        .arg("--config")
        .arg(&w.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refuses to run as root"));

    let hub = start_hub(&w);

    // The hub runs as its service user, not root, and is not in group shadow.
    let st = proc::status(hub.pid());
    assert_eq!(
        st["Uid"].split_whitespace().next(),
        Some(w.hub_user.uid.to_string().as_str())
    );
    let shadow = nix::unistd::Group::from_name("shadow")
        .unwrap()
        .unwrap()
        .gid;
    assert!(
        !st["Groups"]
            .split_whitespace()
            .any(|g| g == shadow.to_string()),
        "{st:?}"
    );

    // Hub API basics (compat §1.3, §0.1).
    let anon = Browser::new();
    let v = anon.get(&url(&w, "/hub/api")).await;
    assert_eq!(v.status, StatusCode::OK);
    assert_eq!(v.headers["x-jupyterhub-version"], "6.1.1");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&v.body).unwrap()["version"],
        "6.1.1"
    );
    let who = anon
        .client()
        .get(url(&w, "/hub/api/user"))
        .header("Authorization", "token nope")
        .send()
        .await
        .unwrap();
    assert_eq!(who.status(), StatusCode::FORBIDDEN);

    // A user name with a newline cannot forge a line of the hub's log.
    let forged = "x\nINFO sudohub::auth::pam: login accepted user=root admin=true";
    let p = login(&w, &Browser::new(), forged, PASSWORD).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(
        !hub_log(&w)
            .lines()
            .any(|l| l.contains("login accepted user=root")),
        "{}",
        hub_log(&w)
    );

    // Wrong password, and a right password outside the group: refused with a clear page.
    let b_carol = Browser::new();
    let p = login(&w, &b_carol, &w.carol.name, PASSWORD).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(
        p.body.contains("Invalid username or password"),
        "{}",
        p.body
    );
    let b = Browser::new();
    let p = login(&w, &b, &w.alice.name, "wrong password").await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("Invalid username or password"));

    // Log in and start the server.
    let p = login(&w, &b, &w.alice.name, PASSWORD).await;
    assert_eq!(
        p.status,
        StatusCode::SEE_OTHER,
        "{}\n{}",
        p.body,
        hub_log(&w)
    );
    assert_eq!(p.location().unwrap().path(), "/hub/spawn");
    let started = Instant::now();
    let server_path = format!("/user/{}/", w.alice.name);
    follow_spawn(&w, &b, p.location().unwrap(), &server_path).await;
    let spawn_secs = started.elapsed().as_secs_f64();
    println!("spawn through sudohub took {spawn_secs:.2} s");

    // The OAuth dance to JupyterLab: server → authorize → callback → lab.
    open_lab(&w, &b, &url(&w, &format!("{server_path}lab")), "/hub/").await;

    // A kernel, created through the proxy, and code run over its WebSocket as alice.
    let server_url = url(&w, &server_path);
    let kernel_id = create_kernel(&b, &server_url).await;
    let cookie_header = b
        .cookie_header(&server_url)
        .expect("cookies for the server");
    let ws = format!(
        "ws://{}{server_path}api/kernels/{kernel_id}/channels",
        w.addr
    );
    let out = kernel::execute(&ws, Some(&cookie_header), "import os; print(os.getuid())")
        .await
        .unwrap();
    assert_eq!(out.trim(), w.alice.uid.to_string());

    // Another user cannot reach alice's server; nobody without login can either.
    let b_bob = Browser::new();
    assert_eq!(
        login(&w, &b_bob, &w.bob.name, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let hops = b_bob
        .follow(&url(&w, &format!("{server_path}lab")), 10)
        .await;
    assert_eq!(
        hops.last().unwrap().status,
        StatusCode::FORBIDDEN,
        "{:?}",
        hops.iter()
            .map(|h| (h.url.to_string(), h.status))
            .collect::<Vec<_>>()
    );
    let hops = Browser::new()
        .follow(&url(&w, &format!("{server_path}lab")), 10)
        .await;
    assert!(
        hops.last().unwrap().url.path().ends_with("/hub/login"),
        "{:?}",
        hops.iter().map(|h| h.url.to_string()).collect::<Vec<_>>()
    );

    // The Hub API as an admin service sees the running server with JupyterHub's shapes.
    let api = |path: &str| {
        anon.client()
            .get(url(&w, path))
            .header("Authorization", format!("token {}", w.service_token))
    };
    let users: serde_json::Value = api("/hub/api/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == w.alice.name.as_str())
        .unwrap()
        .clone();
    for key in [
        "kind",
        "name",
        "admin",
        "roles",
        "groups",
        "server",
        "pending",
        "created",
        "last_activity",
        "servers",
    ] {
        assert!(me.get(key).is_some(), "user model lacks {key}: {me}");
    }
    assert_eq!(me["server"], server_path.as_str());
    let srv = &me["servers"][""];
    for key in [
        "name",
        "ready",
        "pending",
        "stopped",
        "url",
        "started",
        "last_activity",
        "progress_url",
    ] {
        assert!(srv.get(key).is_some(), "server model lacks {key}: {srv}");
    }
    assert_eq!(srv["ready"], true);
    let paged: serde_json::Value = api("/hub/api/users?limit=1")
        .header("Accept", "application/jupyterhub-pagination+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paged["_pagination"]["limit"], 1);
    assert!(paged["items"].as_array().unwrap().len() == 1);

    // kill -9 the hub: the server lives on, re-attaches to the next hub, and works.
    let pid = singleuser_pid(w.alice.uid.as_raw());
    let sudo_before = count_sudo();
    hub.kill9();
    std::thread::sleep(Duration::from_millis(500));
    assert!(proc::is_alive(pid), "the server died with the hub");
    let restarted = Instant::now();
    let hub = start_hub(&w);
    let back = sudohub_tests::wait_for(Duration::from_secs(30), || {
        let log = hub_log(&w);
        log.contains("re-attached").then_some(())
    });
    assert!(back.is_some(), "no re-attach:\n{}", hub_log(&w));
    // After a crash the next hub serves within 0.3 s of its exec (it listens first, so
    // nothing is refused meanwhile) and has its helpers back within about a second.
    let reattached_in = restarted.elapsed();
    let log = hub_log(&w);
    let ready_ms: u64 = log
        .lines()
        .rev()
        .find(|l| l.contains("sudohub listening"))
        .and_then(|l| {
            l.split("ready_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no startup line:\n{log}"));
    assert!(
        ready_ms <= 300,
        "the restarted hub served after {ready_ms} ms"
    );
    assert!(
        reattached_in < Duration::from_secs(3),
        "the helper re-attached {reattached_in:?} after the restart"
    );
    assert_eq!(count_sudo(), sudo_before, "re-attaching must not run sudo");
    let out = kernel::execute(&ws, Some(&cookie_header), "print(6 * 7)")
        .await
        .unwrap();
    assert_eq!(
        out.trim(),
        "42",
        "kernel through the proxy after the hub restart"
    );
    let me: serde_json::Value = api(&format!("/hub/api/users/{}", w.alice.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        me["server"],
        server_path.as_str(),
        "the DB shows the server running: {me}"
    );

    // A clean restart (SIGTERM, as systemctl restart sends) keeps the server too.
    assert!(
        hub.terminate().success(),
        "the hub did not exit cleanly on SIGTERM"
    );
    assert!(
        proc::is_alive(pid),
        "the server died with a SIGTERM to the hub"
    );
    let hub = start_hub(&w);
    wait_reattached(&w, 2);
    let out = kernel::execute(&ws, Some(&cookie_header), "print('again')")
        .await
        .unwrap();
    assert_eq!(out.trim(), "again");

    // Stop from the home page: the process is gone and the URL says "not running".
    stop_from_home(&w, &b, pid).await;
    let hops = b.follow(&url(&w, &format!("{server_path}lab")), 5).await;
    assert_eq!(hops.last().unwrap().status, StatusCode::FAILED_DEPENDENCY);
    let json = b
        .client()
        .get(url(&w, &format!("/hub/user/{}/api/status", w.alice.name)))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::FAILED_DEPENDENCY);
    drop(hub);
    let _ = &w.helpers;
}

/// With `allow_named_servers`: a named server started from the home page's form runs
/// beside the default one (its own process, port, prefix, OAuth client and log), runs a
/// kernel as its user, is not reachable by another user, re-attaches after a `kill -9`
/// of the hub, and is stopped and removed alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_servers_run_beside_the_default_one() {
    let w = world_with("/", |_, _| {
        "allow_named_servers = true\nnamed_server_limit_per_user = 2\n".to_owned()
    });
    let hub = start_hub(&w);
    let b = Browser::new();
    let p = login(&w, &b, &w.alice.name, PASSWORD).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", hub_log(&w));
    let default_path = format!("/user/{}/", w.alice.name);
    follow_spawn(&w, &b, p.location().unwrap(), &default_path).await;

    // The home page's form adds and starts "gpu".
    let home = b.get(&url(&w, "/hub/home")).await;
    assert!(
        home.body.contains("You have no named servers."),
        "{}",
        home.body
    );
    let xsrf = home.xsrf_field().expect("home has forms");
    let posted = b
        .post_form(
            &url(&w, "/hub/spawn"),
            &[("_xsrf", &xsrf), ("server_name", "gpu")],
        )
        .await;
    let gpu_path = format!("/user/{}/gpu/", w.alice.name);
    let next = posted
        .location()
        .unwrap_or_else(|| panic!("{}", posted.body));
    if !next.path().starts_with(&gpu_path) {
        follow_spawn(&w, &b, next, &gpu_path).await;
    }
    open_lab(&w, &b, &url(&w, &format!("{gpu_path}lab")), "/hub/").await;
    assert!(
        hub_log(&w).contains(&format!("client=jupyterhub-user-{}.gpu", w.alice.name)),
        "the named server's own OAuth client:\n{}",
        hub_log(&w)
    );
    let gpu_url = url(&w, &gpu_path);
    let kernel_id = create_kernel(&b, &gpu_url).await;
    let cookies = b.cookie_header(&gpu_url).expect("cookies for the server");
    let ws = format!("ws://{}{gpu_path}api/kernels/{kernel_id}/channels", w.addr);
    let code = "import os; print(os.getuid(), os.environ['JUPYTERHUB_SERVER_NAME'])";
    let out = kernel::execute(&ws, Some(&cookies), code).await.unwrap();
    assert_eq!(out.trim(), format!("{} gpu", w.alice.uid));
    let servers_of_alice = || {
        proc::pids_of_uid(w.alice.uid.as_raw())
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.contains("jupyterhub-singleuser"))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(servers_of_alice().len(), 2, "two servers, two processes");
    let log_dir = w.alice.home.join(".local/state/sudohub");
    assert!(
        log_dir.join("server-gpu.log").exists(),
        "its own log in {log_dir:?}"
    );
    assert!(log_dir.join("default.log").exists());

    // The API shows both, ready, each with its own URL.
    let api = |path: &str| {
        api_client()
            .get(url(&w, path))
            .header("Authorization", format!("token {}", w.service_token))
    };
    let me: serde_json::Value = api(&format!("/hub/api/users/{}", w.alice.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["servers"][""]["ready"], true, "{me}");
    assert_eq!(me["servers"]["gpu"]["ready"], true, "{me}");
    assert_eq!(me["servers"]["gpu"]["url"], gpu_path.as_str());

    // Bob, signed in, cannot open alice's named server.
    let b_bob = Browser::new();
    assert_eq!(
        login(&w, &b_bob, &w.bob.name, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let hops = b_bob.follow(&url(&w, &format!("{gpu_path}lab")), 10).await;
    assert_eq!(hops.last().unwrap().status, StatusCode::FORBIDDEN);

    // kill -9 the hub: the named server re-attaches to the next hub and works.
    hub.kill9();
    let hub = start_hub(&w);
    wait_reattached(&w, 2);
    let out = kernel::execute(&ws, Some(&cookies), "print(6 * 7)")
        .await
        .unwrap();
    assert_eq!(
        out.trim(),
        "42",
        "the named server's kernel after the restart"
    );

    // Stopped and removed alone: the default server stays.
    let gone = api_client()
        .delete(url(
            &w,
            &format!("/hub/api/users/{}/servers/gpu", w.alice.name),
        ))
        .header("Authorization", format!("token {}", w.service_token))
        .json(&serde_json::json!({"remove": true}))
        .send()
        .await
        .unwrap();
    assert!(gone.status().is_success(), "{}", gone.status());
    let one = sudohub_tests::wait_for(Duration::from_secs(20), || {
        (servers_of_alice().len() == 1).then_some(())
    });
    assert!(one.is_some(), "the named server's process is still there");
    let status = api(&format!("{default_path}api/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.status(),
        StatusCode::OK,
        "the default server runs on"
    );
    let missing = api(&format!("/hub/api/users/{}/servers/gpu", w.alice.name))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    drop(hub);
}

/// Waits (at most 30 s) until the hub's log shows `count` re-attached servers.
fn wait_reattached(w: &World, count: usize) {
    let seen = sudohub_tests::wait_for(Duration::from_secs(30), || {
        (hub_log(w).matches("server re-attached").count() >= count).then_some(())
    });
    assert!(
        seen.is_some(),
        "fewer than {count} re-attaches:\n{}",
        hub_log(w)
    );
}

/// sudo processes on the machine (a re-attach must start none).
fn count_sudo() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "sudo")
        })
        .count()
}

/// `sudohub check` on a correct installation passes, and names each thing an admin can
/// break: config permissions, the sudoers rule, the hub user in shadow, the PAM helper's
/// setgid bit, the cookie secret's mode.
#[test]
fn check_passes_and_names_each_breakage() {
    let w = world();
    let check = || {
        let out = std::process::Command::new(&w.hub_bin)
            .arg("--config")
            .arg(&w.config)
            .arg("check")
            .arg("--sudoers")
            .arg(w._sudoers.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("all ") && text.contains("checks passed"),
        "{text}"
    );
    assert!(text.contains("root:shadow, mode 2755"), "{text}");
    // Which cgroups the machine has, and (as root) that each controller takes a limit
    // in a probe group that is gone again afterwards.
    let v1 = ["memory", "cpu", "pids", "freezer"]
        .iter()
        .all(|c| text.contains(&format!("ok   cgroup v1 {c}: a group under")));
    let v2 = text.contains("ok   cgroup v2 memory, cpu, pids: a group under");
    assert!(v1 || v2, "{text}");
    let probe = "sudohub-check-";
    for dir in [
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup",
    ] {
        let left: Vec<_> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(probe))
            .collect();
        assert!(left.is_empty(), "probe groups left in {dir}: {left:?}");
    }

    let expect_fail = |needle: &str| {
        let (code, text) = check();
        assert_eq!(code, Some(1), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("FAIL"))
            .unwrap_or_else(|| panic!("no FAIL line:\n{text}"));
        assert!(
            line.contains(needle),
            "expected {needle:?} in {line:?}\n{text}"
        );
    };
    let helpers_toml = std::path::Path::new(sudohub_helpers_config::CONFIG_PATH);
    let root = (Uid::from_raw(0), Gid::from_raw(0));
    fs::chown_mode(helpers_toml, root.0, root.1, 0o666);
    expect_fail("chmod go-w");
    fs::chown_mode(helpers_toml, root.0, root.1, 0o644);

    // create_system_users needs root's consent in helpers.toml, and homes of root's.
    let hub_toml = std::fs::read_to_string(&w.config).unwrap();
    let asking = hub_toml.replacen(
        "[auth]\n",
        &format!(
            "[auth]\ncreate_system_users = true\naccount_helper = {:?}\n",
            w.helpers.account().display().to_string()
        ),
        1,
    );
    write_config(&w, &asking);
    expect_fail("the account helper will refuse");
    let helpers_text = std::fs::read_to_string(helpers_toml).unwrap();
    let consenting = format!("{helpers_text}\n[accounts]\ncreate = true\nskel = \"/tmp\"\n");
    fs::write_owned(helpers_toml, consenting.as_bytes(), root.0, root.1, 0o644);
    expect_fail("/tmp must be a directory owned by root and writable by root alone");
    let consenting = format!("{helpers_text}\n[accounts]\ncreate = true\n");
    fs::write_owned(helpers_toml, consenting.as_bytes(), root.0, root.1, 0o644);
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("the account helper will make new accounts: uids 1000–59999"),
        "{text}"
    );
    assert!(
        text.contains("sudohub-account (no arguments) as root"),
        "{text}"
    );
    fs::write_owned(helpers_toml, helpers_text.as_bytes(), root.0, root.1, 0o644);
    write_config(&w, &hub_toml);

    let sudoers = w._sudoers.path().to_owned();
    let aside = std::env::temp_dir().join(unique_name("sudoersaside"));
    std::fs::rename(&sudoers, &aside).unwrap();
    expect_fail("is missing");
    std::fs::rename(&aside, &sudoers).unwrap();

    sudohub_tests::system::run("gpasswd", &["-a", &w.hub_user.name, "shadow"]);
    expect_fail("in group shadow");
    sudohub_tests::system::run("gpasswd", &["-d", &w.hub_user.name, "shadow"]);

    let shadow = nix::unistd::Group::from_name("shadow")
        .unwrap()
        .unwrap()
        .gid;
    fs::chown_mode(&w.helpers.pam(), root.0, shadow, 0o755);
    expect_fail("chmod 2755");
    fs::chown_mode(&w.helpers.pam(), root.0, shadow, 0o2755);

    let secret = w.state_dir.join("cookie_secret");
    fs::write_owned(&secret, b"x", w.hub_user.uid, w.hub_user.gid, 0o644);
    expect_fail("chmod 600");
    fs::chown_mode(&secret, w.hub_user.uid, w.hub_user.gid, 0o600);

    // The two configs disagree: the re-attach socket, the allowed group.
    let good = std::fs::read_to_string(&w.config).unwrap();
    for (from, to, says) in [
        (
            "reattach_socket = \"",
            "reattach_socket = \"/tmp",
            "could not re-attach",
        ),
        (
            "allowed_groups = [\"",
            "allowed_groups = [\"users\", \"",
            "never start a server",
        ),
    ] {
        assert!(good.contains(from), "{good}");
        let bad = good.replacen(from, to, 1);
        fs::write_owned(&w.config, bad.as_bytes(), root.0, w.hub_user.gid, 0o640);
        expect_fail(says);
    }
    fs::write_owned(&w.config, good.as_bytes(), root.0, w.hub_user.gid, 0o640);

    let (code, text) = check();
    assert_eq!(code, Some(0), "all repaired:\n{text}");
    let _ = (
        &w.alice,
        &w.bob,
        &w.carol,
        &w.service_token,
        w.addr,
        &w.run_dir,
        &w.service_file,
    );
}

/// The nginx sample (nginx/sudohub.conf) in front of a hub under `/jupyterlab/`: login,
/// spawn, the OAuth dance, JupyterLab and a kernel over a WebSocket, all through nginx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_under_jupyterlab() {
    let w = world_at("/jupyterlab/");
    let _hub = start_hub(&w);
    let front_port = free_port();
    let site = nginx_sample("sudohub.conf")
        .replace("listen 80;", &format!("listen 127.0.0.1:{front_port};"))
        .replace("http://127.0.0.1:8000", &format!("http://{}", w.addr));
    let _nginx = Nginx::start(&site, front_port);
    let front_url = Url::parse(&format!("http://127.0.0.1:{front_port}/")).unwrap();
    lab_flow(&w, &Browser::new(), &front_url, "/jupyterlab/", None).await;
}

/// A sample site of `nginx/`.
fn nginx_sample(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../nginx")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// nginx serving `site` (listening on 127.0.0.1:`port`), stopped when dropped.
struct Nginx {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Nginx {
    fn start(site: &str, port: u16) -> Self {
        let dir = std::env::temp_dir().join(unique_name("nginx"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sudohub.conf"), site).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("nginx.conf"),
            format!(
                "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n access_log off;\n \
                 client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n include {d}/sudohub.conf;\n}}\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new("nginx")
            .args(["-c", &format!("{d}/nginx.conf"), "-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx (Debian package nginx-light, installed by scripts/deps.sh)");
        let nginx = Self { child, dir };
        let front: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let up = sudohub_tests::wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(front).ok()
        });
        assert!(
            up.is_some(),
            "nginx did not start: {}",
            std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default()
        );
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (SIGKILL would orphan them).
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// From `start` (the spawn URL), waits on the progress page and follows the hub's
/// redirects, as a browser does, until one leads into `server_path`; returns that URL.
/// Every hop before it must stay on `start`'s origin.
async fn follow_spawn(w: &World, b: &Browser, start: Url, server_path: &str) -> Url {
    let started = Instant::now();
    let mut current = start.clone();
    let mut page = b.get(&current).await;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "spawn took too long:\n{}",
            hub_log(w)
        );
        if page.status == StatusCode::OK
            && (page.body.contains("Start my server") || page.body.contains("Start this server"))
        {
            // The spawn page: a GET starts nothing; the user presses the button.
            let xsrf = page
                .xsrf_field()
                .expect("the spawn form has an _xsrf field");
            let action = form_action(&page);
            page = b.post_form(&action, &[("_xsrf", &xsrf)]).await;
            current = action;
            continue;
        }
        if page.status == StatusCode::OK && page.body.contains("Starting your server") {
            // The progress page: a browser waits for the ready event and reloads.
            tokio::time::sleep(Duration::from_millis(300)).await;
            page = b.get(&current).await;
            continue;
        }
        assert!(
            page.status.is_redirection(),
            "spawn: {} {}\n{}",
            page.status,
            page.body,
            hub_log(w)
        );
        let next = page.location().unwrap();
        if next.path().starts_with(server_path) {
            return next;
        }
        assert_eq!(
            next.origin(),
            start.origin(),
            "redirects stay on {start}: {next}"
        );
        current = next;
        page = b.get(&current).await;
    }
}

/// The URL the first form of `page` posts to.
fn form_action(page: &Page) -> Url {
    let at = page.body.find("action=\"").expect("a form with an action") + "action=\"".len();
    let end = at + page.body[at..].find('"').unwrap();
    page.url
        .join(&page.body[at..end].replace("&amp;", "&"))
        .unwrap()
}

/// Opens JupyterLab at `lab_url` following every redirect, as a browser does: the OAuth
/// dance (server → `<hub>api/oauth2/authorize` → callback → lab) must pass through
/// `hub_prefix` and end on JupyterLab's page.
async fn open_lab(w: &World, b: &Browser, lab_url: &Url, hub_prefix: &str) {
    let hops = b.follow(lab_url, 10).await;
    let last = hops.last().unwrap();
    assert_eq!(
        last.status,
        StatusCode::OK,
        "hops: {:?}\n{}",
        hops.iter()
            .map(|h| (h.url.to_string(), h.status))
            .collect::<Vec<_>>(),
        hub_log(w)
    );
    assert!(
        last.body.contains("jupyter-config-data"),
        "not JupyterLab's page"
    );
    let authorize = format!("{hub_prefix}api/oauth2/authorize");
    assert!(
        hops.iter().any(|h| h.url.path() == authorize),
        "no OAuth hop"
    );
}

/// Starts a python3 kernel in the server at `server_url` (its `/user/<name>/` URL) through
/// the REST API, with the `_xsrf` cookie the server set, as JupyterLab does; its id.
async fn create_kernel(b: &Browser, server_url: &Url) -> String {
    let xsrf = b
        .cookie(server_url, "_xsrf")
        .expect("the server set an _xsrf cookie");
    let created = b
        .client()
        .post(server_url.join("api/kernels").unwrap())
        .header("X-XSRFToken", &xsrf)
        .json(&serde_json::json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What a user does in a browser, from `origin` (scheme, host, port) under `prefix`: log
/// in, follow the spawn and OAuth redirects (all staying on `origin`), get JupyterLab's
/// page, create a kernel and run `os.getuid()` in it over the kernel's WebSocket (`wss`
/// when `tls` is given), which must print alice's uid.
async fn lab_flow(
    w: &World,
    b: &Browser,
    origin: &Url,
    prefix: &str,
    tls: Option<&sudohub_tests::tls::ClientTls>,
) {
    let alice = (w.alice.name.as_str(), PASSWORD, w.alice.uid.as_raw());
    lab_flow_as(w, b, origin, prefix, tls, alice).await;
}

/// [`lab_flow`] as `user` (name, password, uid).
async fn lab_flow_as(
    w: &World,
    b: &Browser,
    origin: &Url,
    prefix: &str,
    tls: Option<&sudohub_tests::tls::ClientTls>,
    user: (&str, &str, u32),
) {
    let at = |path: &str| origin.join(path).unwrap();
    let form = b.get(&at(&format!("{prefix}hub/login"))).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let xsrf = form.xsrf_field().unwrap();
    let next = format!("{prefix}hub/spawn").replace('/', "%2F");
    let p = b
        .post_form(
            &at(&format!("{prefix}hub/login?next={next}")),
            &[("username", user.0), ("password", user.1), ("_xsrf", &xsrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    lab_after_login(
        w,
        b,
        origin,
        prefix,
        tls,
        (user.0, user.2),
        p.location().unwrap(),
    )
    .await;
}

/// The rest of [`lab_flow_as`] for a browser whose login sent it to `spawn` (a spawn
/// page): the server starts, JupyterLab loads, a kernel prints `user`'s uid.
async fn lab_after_login(
    w: &World,
    b: &Browser,
    origin: &Url,
    prefix: &str,
    tls: Option<&sudohub_tests::tls::ClientTls>,
    user: (&str, u32),
    spawn: Url,
) {
    let at = |path: &str| origin.join(path).unwrap();
    let server_path = format!("{prefix}user/{}/", user.0);
    let next = follow_spawn(w, b, spawn, &server_path).await;
    assert_eq!(
        next.origin(),
        origin.origin(),
        "redirects stay on {origin}: {next}"
    );
    open_lab(
        w,
        b,
        &at(&format!("{server_path}lab")),
        &format!("{prefix}hub/"),
    )
    .await;
    let server_url = at(&server_path);
    let id = create_kernel(b, &server_url).await;
    let mut ws = at(&format!("{server_path}api/kernels/{id}/channels"));
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    ws.set_scheme(scheme).unwrap();
    let cookies = b.cookie_header(&server_url).unwrap();
    let code = "import os; print(os.getuid())";
    let out = match tls {
        Some(t) => kernel::execute_tls(ws.as_str(), Some(&cookies), code, t).await,
        None => kernel::execute(ws.as_str(), Some(&cookies), code).await,
    }
    .unwrap();
    assert_eq!(out.trim(), user.1.to_string());
}

/// `subdomain_host` over plain HTTP on `localhost`: alice's real server lives on its own
/// origin, `<alice>.localhost` (see [`subdomain_flow`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_their_own_subdomains() {
    let w = world();
    let origin = format!("http://localhost:{}", w.addr.port());
    set_subdomain_host(&w, &origin);
    let _hub = start_hub(&w);
    subdomain_flow(&w, &origin, w.addr, None).await;
}

/// The recommended setup, as `nginx/sudohub-subdomains.conf` has it: https with one
/// certificate for `hub.test` and `*.hub.test`, every origin through nginx to the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subdomains_behind_nginx_over_https() {
    let w = world();
    let front_port = free_port();
    let origin = format!("https://hub.test:{front_port}");
    set_subdomain_host(&w, &origin);
    let _hub = start_hub(&w);
    let dir = std::env::temp_dir().join(unique_name("subtls"));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) =
        sudohub_tests::tls::self_signed_for(&dir, "hub.test", "DNS:hub.test,DNS:*.hub.test");
    let site = nginx_sample("sudohub-subdomains.conf")
        .replace(
            "listen 443 ssl;",
            &format!("listen 127.0.0.1:{front_port} ssl;"),
        )
        .replace("listen 80;", &format!("listen 127.0.0.1:{};", free_port()))
        .replace(
            "/etc/letsencrypt/live/hub.example.org/fullchain.pem",
            &cert.display().to_string(),
        )
        .replace(
            "/etc/letsencrypt/live/hub.example.org/privkey.pem",
            &key.display().to_string(),
        )
        .replace("hub.example.org", "hub.test")
        .replace("http://127.0.0.1:8000", &format!("http://{}", w.addr));
    let _nginx = Nginx::start(&site, front_port);
    let front: SocketAddr = format!("127.0.0.1:{front_port}").parse().unwrap();
    let tls = sudohub_tests::tls::ClientTls::trusting(&cert);
    subdomain_flow(&w, &origin, front, Some(&tls)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Logs `user` in with the test password on the hub at `origin`, going to `next` after;
/// the answer (a 303 to `next`).
async fn login_on(b: &Browser, origin: &Url, user: &str, next: &str) -> Page {
    let form = b.get(&origin.join("/hub/login").unwrap()).await;
    let xsrf = form.xsrf_field().unwrap();
    let action = format!("/hub/login?next={}", next.replace('/', "%2F"));
    let p = b
        .post_form(
            &origin.join(&action).unwrap(),
            &[("username", user), ("password", PASSWORD), ("_xsrf", &xsrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    p
}

/// Puts `subdomain_host = origin` at the top of the world's hub.toml.
fn set_subdomain_host(w: &World, origin: &str) {
    let text = std::fs::read_to_string(&w.config).unwrap();
    let setting = format!("subdomain_host = {origin:?}\n");
    std::fs::write(&w.config, format!("{setting}{text}")).unwrap();
}

/// Alice's real server on its own origin, the hub at `hub` (`scheme://host:port`, every
/// host of it reached at `connect`): login on the hub's origin, the spawn ends on hers,
/// the OAuth dance goes to the hub's origin and back, JupyterLab and a kernel over a
/// WebSocket run on hers. The hub's cookies never reach her origin nor hers the hub's;
/// her server is never served on the hub's origin; and bob, signed in, is refused it.
async fn subdomain_flow(
    w: &World,
    hub: &str,
    connect: SocketAddr,
    tls: Option<&sudohub_tests::tls::ClientTls>,
) {
    let hub_origin = Url::parse(&format!("{hub}/")).unwrap();
    let (scheme, domain, port) = (
        hub_origin.scheme(),
        hub_origin.host_str().unwrap(),
        hub_origin.port().unwrap(),
    );
    let label = sudohub::hosts::dns_label(&w.alice.name);
    let alice_host = format!("{label}.{domain}");
    let hosts = [(domain, connect), (alice_host.as_str(), connect)];
    let browser = || match tls {
        Some(t) => Browser::trusting_resolving(t, &hosts),
        None => Browser::resolving(&hosts),
    };
    let b = browser();
    let alice_origin = Url::parse(&format!("{scheme}://{alice_host}:{port}/")).unwrap();
    let p = login_on(&b, &hub_origin, &w.alice.name, "/hub/spawn").await;
    let server_path = format!("/user/{}/", w.alice.name);
    let ready = follow_spawn(w, &b, p.location().unwrap(), &server_path).await;
    assert_eq!(ready.origin(), alice_origin.origin(), "{ready}");

    // JupyterLab on her origin; the OAuth hop on the hub's.
    let lab = alice_origin.join(&format!("{server_path}lab")).unwrap();
    let hops = b.follow(&lab, 10).await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, StatusCode::OK, "{}", hub_log(w));
    assert!(last.body.contains("jupyter-config-data"));
    assert!(
        hops.iter().any(|h| h.url.origin() == hub_origin.origin()
            && h.url.path() == "/hub/api/oauth2/authorize"),
        "{:?}",
        hops.iter().map(|h| h.url.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(last.url.origin(), alice_origin.origin());

    // Each origin holds its own cookies only; over https the hub's are `__Host-` ones,
    // which no page of a server's subdomain can overwrite.
    let login_name = match tls {
        Some(_) => sudohub::auth::cookies::HOST_LOGIN_COOKIE,
        None => sudohub::auth::cookies::LOGIN_COOKIE,
    };
    let hub_home = hub_origin.join("/hub/home").unwrap();
    assert!(b.cookie(&hub_home, login_name).is_some(), "{login_name}");
    let server_url = alice_origin.join(&server_path).unwrap();
    let at_server = b.cookie_header(&server_url).unwrap_or_default();
    assert!(
        !at_server.contains(sudohub::auth::cookies::LOGIN_COOKIE),
        "{at_server}"
    );
    assert!(!at_server.contains("jupyterhub-session-id"), "{at_server}");
    let at_hub = b
        .cookie_header(&hub_origin.join("/hub/").unwrap())
        .unwrap_or_default();
    assert!(!at_hub.contains("jupyterhub-user-"), "{at_hub}");

    // A kernel over the WebSocket, on her origin.
    let id = create_kernel(&b, &server_url).await;
    let ws_scheme = if tls.is_some() { "wss" } else { "ws" };
    let ws = format!("{ws_scheme}://{alice_host}:{port}{server_path}api/kernels/{id}/channels");
    let cookies = b.cookie_header(&server_url).unwrap();
    let out = kernel::execute_via(
        connect,
        &ws,
        Some(&cookies),
        "import os; print(os.getuid())",
        tls,
    )
    .await
    .unwrap();
    assert_eq!(out.trim(), w.alice.uid.to_string());

    // Her server is never served on the hub's origin.
    let on_hub = b
        .get(&hub_origin.join(&format!("{server_path}lab")).unwrap())
        .await;
    assert_eq!(on_hub.status, StatusCode::SEE_OTHER);
    assert_eq!(on_hub.location().unwrap().origin(), alice_origin.origin());

    // Bob, signed in, cannot use her server on her origin.
    let bob = browser();
    login_on(&bob, &hub_origin, &w.bob.name, "/hub/home").await;
    let hops = bob.follow(&lab, 10).await;
    let last = hops.last().unwrap();
    assert_eq!(last.status, StatusCode::FORBIDDEN, "{}", last.body);
    assert!(!last.body.contains("jupyter-config-data"));
}

/// `ssl_cert`/`ssl_key`: the hub serves HTTPS itself, the single-user server reaches the
/// Hub API on the loopback `hub_bind` in plain HTTP, and the whole browser flow — login,
/// OAuth, JupyterLab, a kernel over `wss://` — works on the https origin. The key is
/// readable by the hub user only; the browser trusts just this certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_over_tls() {
    let mut cert_path = PathBuf::new();
    let mut key_path = PathBuf::new();
    let hub_bind = format!("127.0.0.1:{}", free_port());
    let w = world_with("/", |hub_user, state_dir| {
        let (cert, key) = sudohub_tests::tls::self_signed(state_dir);
        fs::chown_mode(&key, hub_user.uid, hub_user.gid, 0o600);
        fs::chown_mode(&cert, Uid::from_raw(0), Gid::from_raw(0), 0o644);
        cert_path = cert.clone();
        key_path = key.clone();
        format!(
            "ssl_cert = {:?}\nssl_key = {:?}\nhub_bind = {hub_bind:?}\nshutdown_drain_timeout = 3",
            cert.display().to_string(),
            key.display().to_string()
        )
    });
    let mut hub = start_hub(&w);
    let tls = sudohub_tests::tls::ClientTls::trusting(&cert_path);
    let origin = Url::parse(&format!("https://{}/", w.addr)).unwrap();
    let browser = Browser::trusting(&tls);
    lab_flow(&w, &browser, &origin, "/", Some(&tls)).await;
    assert!(
        hub_log(&w).contains(&hub_bind),
        "the hub says where servers reach its API:\n{}",
        hub_log(&w)
    );
    // The server was told the loopback API URL, not the public https one.
    let api_urls: Vec<String> = proc::pids_of_uid(w.alice.uid.as_raw())
        .into_iter()
        .filter_map(|pid| proc::environ(pid).remove("JUPYTERHUB_API_URL"))
        .collect();
    assert!(
        api_urls.contains(&format!("http://{hub_bind}/hub/api")),
        "{api_urls:?}"
    );

    // A renewed certificate, as certbot leaves it: SIGHUP (`systemctl reload`), and the
    // next handshake gets it from the same process; a broken file leaves it in place.
    std::fs::copy(&cert_path, cert_path_old(&w)).unwrap();
    let renewed = w.state_dir.join("renewed");
    std::fs::create_dir_all(&renewed).unwrap();
    let (cert2, key2) = sudohub_tests::tls::self_signed(&renewed);
    std::fs::copy(&cert2, &cert_path).unwrap();
    std::fs::copy(&key2, &key_path).unwrap();
    let pid = hub.pid();
    let hup = |n: usize| {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
        let said = sudohub_tests::wait_for(Duration::from_secs(10), || {
            (hub_log(&w).matches("SIGHUP: reload").count() >= n).then_some(())
        });
        assert!(said.is_some(), "{}", hub_log(&w));
    };
    hup(1);
    assert!(
        hub_log(&w).contains("reload: TLS certificate reloaded"),
        "{}",
        hub_log(&w)
    );
    let handshake = |trusting: &std::path::Path| {
        let tls = sudohub_tests::tls::ClientTls::trusting(trusting);
        let addr = w.addr;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tls.connect("localhost", tcp).await.map(|_| ())
        }
    };
    handshake(&cert2)
        .await
        .expect("the renewed certificate is served");
    assert!(
        handshake(&cert_path_old(&w)).await.is_err(),
        "the old certificate is still served"
    );
    assert!(proc::is_alive(pid), "a reload must not end the hub");
    // Half a renewal (a new certificate beside the old key), then a broken file: each is
    // refused, and the certificate in use stays.
    let half = w.state_dir.join("half");
    std::fs::create_dir_all(&half).unwrap();
    let (cert3, _) = sudohub_tests::tls::self_signed(&half);
    std::fs::copy(&cert3, &cert_path).unwrap();
    hup(2);
    std::fs::write(&cert_path, "not a certificate\n").unwrap();
    hup(3);
    assert_eq!(
        hub_log(&w).matches("not reloaded").count(),
        2,
        "{}",
        hub_log(&w)
    );
    // `sudohub reload`, as the hub's user, says so too, and fails.
    let cli = hub_cli(&w, "reload");
    assert!(!cli.status.success());
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("TLS certificate not reloaded"),
        "{cli:?}"
    );
    handshake(&cert2)
        .await
        .expect("a refused reload leaves the served certificate");

    // An upgrade with a wss:// kernel WebSocket open. It cannot move (its TLS session is
    // the old process's): the old hub carries it until shutdown_drain_timeout (3 s), then
    // closes it in order (close_notify and FIN, never a reset) and exits 0.
    let tls2 = sudohub_tests::tls::ClientTls::trusting(&cert2);
    let browser = Browser::trusting(&tls2);
    let server = server_of_at(&w, &browser, &origin).await;
    let id = create_kernel(&browser, &server).await;
    let mut ws_url = server.join(&format!("api/kernels/{id}/channels")).unwrap();
    ws_url.set_scheme("wss").unwrap();
    let cookie = browser.cookie_header(&server).unwrap();
    let mut ws = kernel::Session::open_tls(w.addr, ws_url.as_str(), Some(&cookie), &tls2)
        .await
        .unwrap();
    assert_eq!(ws.execute("print(1 + 1)").await.unwrap().trim(), "2");
    // The certificate file is still the broken one: the new process cannot start, the
    // upgrade says so, and the running hub goes on, helpers, WebSocket and all.
    let out = hub_cli(&w, "upgrade");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the running hub goes on"),
        "{out:?}"
    );
    assert_eq!(ws.execute("print(2 + 2)").await.unwrap().trim(), "4");
    handshake(&cert2).await.expect("the old hub still serves");
    std::fs::copy(&cert2, &cert_path).unwrap();
    let out = hub_cli(&w, "upgrade");
    assert!(out.status.success(), "{out:?}\n{}", hub_log(&w));
    let _successor =
        sudohub_tests::hub::Successor(successor_pid(&String::from_utf8_lossy(&out.stdout)));
    assert_eq!(
        ws.execute("print('still')").await.unwrap().trim(),
        "still",
        "the old hub still carries the WebSocket while it drains"
    );
    let ended = ws.next_event(Duration::from_secs(15)).await;
    assert!(
        matches!(&ended, Ok(None))
            || ended
                .as_ref()
                .is_err_and(|e| e.contains("without closing handshake")),
        "not an orderly close: {ended:?}"
    );
    let exited = hub.wait_exit(Duration::from_secs(10));
    assert!(exited.is_some_and(|s| s.success()), "{exited:?}");
    assert!(
        hub_log(&w)
            .lines()
            .any(|l| l.contains("drain timeout: closed what was left")
                && l.ends_with("websockets=1")),
        "{}",
        hub_log(&w)
    );
    // JupyterLab reconnects: a new WebSocket reaches the same kernel through the new hub.
    let mut again = kernel::Session::open_tls(w.addr, ws_url.as_str(), Some(&cookie), &tls2)
        .await
        .unwrap();
    assert_eq!(again.execute("print(3 + 4)").await.unwrap().trim(), "7");
}

/// Where [`served_over_tls`] keeps a copy of the first certificate to show it is no
/// longer served.
fn cert_path_old(w: &World) -> PathBuf {
    w.state_dir.join("first-cert.pem")
}

/// Port squatting: the hub picks a port and the server binds it a moment later; a local
/// user who binds it in between must not get the route (and with it the user's requests).
/// On a one-port range, carol binds the port as soon as alice's spawn starts, answering
/// HTTP as a server would: alice's spawn fails naming carol's uid, and nothing is routed
/// to carol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatted_port_gets_no_route() {
    let w = world();
    let port = free_port();
    let text = std::fs::read_to_string(&w.config).unwrap().replace(
        "http_timeout_secs = 90",
        &format!("http_timeout_secs = 30\nport_range = [{port}, {port}]"),
    );
    write_config(&w, &text);
    // Carol waits for alice's spawn to begin (her helper appears), then binds the port
    // in the moment between the hub's choice and the server's own bind.
    let mut squatter = w
        .carol
        .command("/usr/bin/python3")
        .args([
            "-c",
            "import http.server, subprocess, sys, time\n\
             while subprocess.run(['pgrep', '-u', sys.argv[2]], capture_output=True).returncode:\n\
             \x20   time.sleep(0.005)\n\
             http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), \
             http.server.SimpleHTTPRequestHandler).serve_forever()",
            &port.to_string(),
            &w.alice.uid.to_string(),
        ])
        .current_dir("/tmp")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _hub = start_hub(&w);

    let c = api_client();
    let api = |path: &str| {
        c.post(url(&w, &format!("/hub/api/users/{}{path}", w.alice.name)))
            .header("Authorization", format!("token {}", w.service_token))
    };
    assert_eq!(api("").send().await.unwrap().status(), StatusCode::CREATED);
    let r = api("/server").send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{body}\n{}",
        hub_log(&w)
    );
    assert!(
        body.contains(&format!("taken by uid {}", w.carol.uid)),
        "{body}"
    );
    // The user's URLs are the hub's, not carol's.
    let r = c
        .get(url(&w, &format!("/user/{}/tree", w.alice.name)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let _ = squatter.kill();
    let _ = squatter.wait();
}

/// The unmodified `jupyterhub-idle-culler` from PyPI, run by the hub as a managed
/// service (its token and `JUPYTERHUB_API_URL` from the hub, nothing else), lists the
/// users, finds alice's server idle and stops it through the REST API, holding only the
/// scopes its documentation asks for (a `[[roles]]` entry, not `admin = true`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_idle_culler_stops_an_idle_server() {
    let w = world();
    let python = "/opt/sudohub/venv/bin/python3";
    let has_culler = std::process::Command::new(python)
        .args(["-c", "import jupyterhub_idle_culler"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_culler,
        "jupyterhub-idle-culler is missing: ./test.sh installs it (scripts/deps.sh)"
    );
    let mut text = std::fs::read_to_string(&w.config).unwrap();
    text.push_str(&format!(
        "[[services]]\nname = \"idle-culler\"\n\
         command = [\"{python}\", \"-m\", \"jupyterhub_idle_culler\", \"--timeout=8\", \"--cull-every=2\"]\n\
         [[roles]]\nname = \"idle-culler\"\nservices = [\"idle-culler\"]\n\
         scopes = [\"list:users\", \"read:users:activity\", \"read:servers\", \"delete:servers\"]\n"
    ));
    write_config(&w, &text);
    let _hub = start_hub(&w);

    let c = api_client();
    let api = |method: reqwest::Method, path: &str| {
        c.request(
            method,
            url(&w, &format!("/hub/api/users/{}{path}", w.alice.name)),
        )
        .header("Authorization", format!("token {}", w.service_token))
    };
    assert_eq!(
        api(reqwest::Method::POST, "")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    let r = api(reqwest::Method::POST, "/server").send().await.unwrap();
    assert!(r.status().is_success(), "{}\n{}", r.status(), hub_log(&w));
    let model = || async {
        api(reqwest::Method::GET, "")
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let mut ready = false;
    for _ in 0..900 {
        if model().await["servers"][""]["ready"] == true {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the server never became ready:\n{}", hub_log(&w));
    let pid = proc::pids_of_uid(w.alice.uid.as_raw());
    assert!(!pid.is_empty());

    // Idle for 8 s, culled within a few 2 s rounds after that.
    let mut culled = false;
    for _ in 0..600 {
        if model().await["servers"] == serde_json::json!({}) {
            culled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = hub_log(&w);
    assert!(culled, "the culler did not stop the idle server:\n{log}");
    assert!(log.contains("managed service started"), "{log}");
    assert!(
        log.contains("method=GET path=/hub/api/users status=200"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "method=DELETE path=/hub/api/users/{}/server",
            w.alice.name
        )),
        "{log}"
    );
    let gone = sudohub_tests::wait_for(Duration::from_secs(20), || {
        proc::pids_of_uid(w.alice.uid.as_raw())
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "alice's server is still running");
}

/// `template_paths`: the installed hub serves an admin's own login page, with the
/// page's values (its form action, its XSRF token) in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_paths_replace_the_login_page() {
    let w = world_with("/", |hub_user, dir| {
        let templates = dir.join("templates");
        std::fs::create_dir_all(&templates).unwrap();
        std::fs::write(
            templates.join("login.html"),
            "<form action=\"{{ action }}\">CUSTOM LOGIN<input name=\"_xsrf\" value=\"{{ xsrf }}\"></form>",
        )
        .unwrap();
        fs::chown_mode(&templates, hub_user.uid, hub_user.gid, 0o755);
        format!("template_paths = [{:?}]\n", templates.display().to_string())
    });
    let _hub = start_hub(&w);
    let b = Browser::new();
    let page = b.get(&url(&w, "/hub/login?next=%2Fhub%2Fhome")).await;
    assert!(page.body.contains("CUSTOM LOGIN"), "{}", page.body);
    assert!(
        page.body
            .contains("action=\"/hub/login?next=%2Fhub%2Fhome\""),
        "{}",
        page.body
    );
    assert!(
        page.xsrf_field().is_some_and(|x| !x.is_empty()),
        "{}",
        page.body
    );
}

/// In chromium, admin alice starts bob's server from `/hub/admin`, opens it with "Access
/// server" (the hub's OAuth lets an admin in; JupyterLab loads in a tab with no opener),
/// and stops it with "Stop all" after confirming. Bob's processes are gone at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_starts_opens_and_stops_a_users_server() {
    sudohub_tests::chromium::require_browser();
    let w = world();
    // With limits in root's helpers.toml, the row of a running server shows them.
    let cg = sudohub_tests::cgroup::CgroupParent::new();
    let helpers = std::path::Path::new(sudohub_helpers_config::CONFIG_PATH);
    let limits = std::fs::read_to_string(helpers).unwrap() + &cg.config("mem_limit = \"512M\"");
    std::fs::write(helpers, limits).unwrap();
    let text = std::fs::read_to_string(&w.config).unwrap().replacen(
        "[auth]\n",
        &format!("[auth]\nadmin_users = [\"{}\"]\n", w.alice.name),
        1,
    );
    write_config(&w, &text);
    let _hub = start_hub(&w);
    let c = api_client();
    let made = c
        .post(url(&w, &format!("/hub/api/users/{}", w.bob.name)))
        .header("Authorization", format!("token {}", w.service_token))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let b = Browser::new();
    let signed = login(&w, &b, &w.alice.name, PASSWORD).await;
    let hub = url(&w, "/hub/");
    let login_cookie = b
        .cookie(&hub, sudohub::auth::cookies::LOGIN_COOKIE)
        .unwrap_or_else(|| panic!("not signed in: {signed:?}\n{}", hub_log(&w)));
    let sid = b
        .cookie(&hub, "jupyterhub-session-id")
        .expect("a session id");
    let base = format!("http://{}", w.addr);
    let report = sudohub_tests::chromium::run(
        &base,
        "admin_server.mjs",
        &login_cookie,
        &sid,
        &[("SUDOHUB_USER", &w.bob.name)],
    );
    let log = hub_log(&w);
    assert!(report["failure"].is_null(), "{report}\n{log}");
    assert_eq!(report["before"], "stopped");
    assert_eq!(report["started"], "running");
    let resources = report["resources"].as_str().unwrap_or_default();
    assert!(
        resources.contains("memory") && resources.contains("of 512 MiB"),
        "{report}"
    );
    let access = &report["access"];
    assert!(
        access["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/user/{}/lab", w.bob.name)),
        "{report}"
    );
    assert_eq!(
        access["opener"], true,
        "the tab cannot reach the admin page"
    );
    assert!(
        log.contains(&format!(
            "OAuth code issued user={} client=jupyterhub-user-{}",
            w.alice.name, w.bob.name
        )),
        "{log}"
    );
    assert_eq!(report["stopped"], "stopped", "{report}");
    assert!(
        report["dialogs"][0]
            .as_str()
            .unwrap()
            .starts_with("Stop the servers of 1 user(s)"),
        "{report}"
    );
    let gone = sudohub_tests::wait_for(Duration::from_secs(20), || {
        proc::pids_of_uid(w.bob.uid.as_raw())
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "bob's server is still running");
}

/// In chromium, as a user would: sign in on the login page, the progress page, JupyterLab,
/// a notebook cell that prints the kernel's uid (alice's), sign out. Then the server is
/// stopped through the API and alice's processes are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_runs_a_cell_in_jupyterlab_and_signs_out() {
    sudohub_tests::chromium::require_browser();
    let w = world();
    let _hub = start_hub(&w);
    let report = lab_in_chromium(&w, "").await;
    assert_eq!(report["sawProgressPage"], true, "{report}");
    assert_eq!(report["progressBar"], true, "{report}");
}

/// In chromium: sign in, add a named server with the home page's form, follow its
/// progress to JupyterLab at `/user/<name>/<server>/lab`, run a cell there (as alice, in
/// the server named "lab2"), and find it running on the home page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_server_is_added_from_the_home_page_in_chromium() {
    sudohub_tests::chromium::require_browser();
    let w = world_with("/", |_, _| "allow_named_servers = true\n".to_owned());
    let _hub = start_hub(&w);
    let report = lab_in_chromium(&w, "lab2").await;
    assert!(
        report["homeRow"].as_str().unwrap().contains("running"),
        "{report}"
    );
}

/// tests/browser/lab.mjs for alice's default server (`server` empty) or her named server
/// `server`: JupyterLab at the server's URL, a cell printing the kernel's uid (alice's)
/// and server name, then signed out; the server is stopped through the API and alice's
/// processes are gone. The report, for more checks.
async fn lab_in_chromium(w: &World, server: &str) -> serde_json::Value {
    let base = format!("http://{}", w.addr);
    let report = sudohub_tests::chromium::run_signed_out(
        &base,
        "lab.mjs",
        &[
            ("SUDOHUB_USER", &w.alice.name),
            ("SUDOHUB_PASSWORD", PASSWORD),
            ("SUDOHUB_SERVER_NAME", server),
        ],
    );
    let log = hub_log(w);
    assert!(report["failure"].is_null(), "{report}\n{log}");
    let (prefix, api) = if server.is_empty() {
        (format!("/user/{}/", w.alice.name), "server".to_owned())
    } else {
        (
            format!("/user/{}/{server}/", w.alice.name),
            format!("servers/{server}"),
        )
    };
    assert!(
        report["labUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}{prefix}lab")),
        "{report}"
    );
    let shown = if server.is_empty() { "-" } else { server };
    assert_eq!(
        report["output"],
        format!("uid {} {shown}", w.alice.uid.as_raw()),
        "{report}"
    );
    assert!(
        report["afterLogout"]
            .as_str()
            .unwrap()
            .ends_with("/hub/login"),
        "{report}"
    );
    assert!(
        report["homeAfterLogout"]
            .as_str()
            .unwrap()
            .contains("/hub/login"),
        "signed out: {report}"
    );
    stop_alices(w, &api).await;
    report
}

/// Stops alice's server at `api` (`server` or `servers/<name>`) through the REST API and
/// waits until none of her processes is left.
async fn stop_alices(w: &World, api: &str) {
    let stop = api_client()
        .delete(url(w, &format!("/hub/api/users/{}/{api}", w.alice.name)))
        .header("Authorization", format!("token {}", w.service_token))
        .send()
        .await
        .unwrap();
    assert!(stop.status().is_success(), "{}", stop.status());
    let gone = sudohub_tests::wait_for(Duration::from_secs(20), || {
        proc::pids_of_uid(w.alice.uid.as_raw())
            .is_empty()
            .then_some(())
    });
    assert!(gone.is_some(), "alice's server is still running");
}

/// Signs `name` up with `password` typed twice, in a fresh browser.
async fn sign_up(w: &World, name: &str, password: &str) -> Page {
    let b = Browser::new();
    let form = b.get(&url(w, "/hub/signup")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let xsrf = form
        .xsrf_field()
        .expect("the sign-up form has an _xsrf field");
    b.post_form(
        &url(w, "/hub/signup"),
        &[
            ("username", name),
            ("password", password),
            ("password_again", password),
            ("_xsrf", &xsrf),
        ],
    )
    .await
}

/// The seed workflow of a lab without a directory server, on a hub where PAM users sign
/// in too: someone signs up, waits, an admin (a PAM user) approves them at
/// /hub/authorize, their first login makes their Unix account through sudohub-account,
/// and JupyterLab runs as that new uid. Names of system accounts cannot be signed up; a
/// lockout survives a restart of the hub process; deleting the user in the hub leaves the
/// Unix account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_approval_and_jupyterlab_as_a_new_unix_account() {
    let w = world();
    let root = (Uid::from_raw(0), Gid::from_raw(0));
    let homes = PathBuf::from(format!("/var/lib/{}", unique_name("seu")));
    std::fs::create_dir_all(&homes).unwrap();
    fs::chown_mode(&homes, root.0, root.1, 0o755);
    let text = std::fs::read_to_string(&w.config).unwrap().replacen(
        "[auth]\n",
        &format!(
            "[auth]\nsources = [\"pam\", \"native\"]\nadmin_users = [{:?}]\ncreate_system_users = true\naccount_helper = {:?}\nallowed_failed_logins = 3\n",
            w.alice.name,
            w.helpers.account().display().to_string()
        ),
        1,
    );
    let _beside = accounts_on(&w, &text, &homes);
    let mut hub = start_hub(&w);
    const NEW_PW: &str = "violet-Anchor-73-river";

    // A PAM user signs in on the same page.
    let admin = Browser::new();
    must_log_in(&w, &admin, &w.alice.name, PASSWORD).await;
    // An admin of the hub's own accounts is made on the command line, as the hub's user
    // (root is refused: the database's files must stay the hub's), password on stdin.
    let boss = unique_name("seo");
    let set_password = |as_hub: bool| {
        let mut cmd = if as_hub {
            w.hub_user.command(&w.hub_bin)
        } else {
            std::process::Command::new(&w.hub_bin)
        };
        let mut child = cmd
            .arg("--config")
            .arg(&w.config)
            .args(["set-password", &boss, "--admin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        let pw = format!("{NEW_PW}\n{NEW_PW}\n");
        let _ = child.stdin.take().unwrap().write_all(pw.as_bytes());
        child.wait_with_output().unwrap()
    };
    let out = set_password(false);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("run it as the hub's user"));
    let out = set_password(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("can sign in now"));
    let boss_browser = Browser::new();
    let p = login(&w, &boss_browser, &boss, NEW_PW).await;
    // Signing in made the boss a Unix account too (create_system_users): removed at the end.
    let _boss_account = nix::unistd::User::from_name(&boss)
        .ok()
        .flatten()
        .map(|_| TestUser::existing(&boss));
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = boss_browser.get(&url(&w, "/hub/authorize")).await;
    assert_eq!(page.status, StatusCode::OK, "an admin: {}", page.body);

    // Names of the machine's accounts cannot be signed up.
    let p = sign_up(&w, &w.bob.name, NEW_PW).await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(p.body.contains("is not available"), "{}", p.body);
    let p = sign_up(&w, "daemon", NEW_PW).await;
    assert!(p.body.contains("is not available"), "{}", p.body);

    let name = unique_name("sen");
    let p = sign_up(&w, &name, NEW_PW).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body.contains("waits for an administrator"), "{}", p.body);
    let p = login(&w, &Browser::new(), &name, NEW_PW).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(
        p.body.contains("waiting for an administrator"),
        "{}",
        p.body
    );
    assert!(nix::unistd::User::from_name(&name).unwrap().is_none());

    // The admin sees the sign-up from the admin page and approves it.
    let page = admin.get(&url(&w, "/hub/admin")).await;
    assert!(page.body.contains("Sign-ups: 1 waiting"), "{}", page.body);
    let page = admin.get(&url(&w, "/hub/authorize")).await;
    assert!(
        page.body.contains(&format!("data-name=\"{name}\"")),
        "{}",
        page.body
    );
    let xsrf = page.xsrf_field().unwrap();
    let p = admin
        .post_form(
            &url(&w, &format!("/hub/authorize/{name}")),
            &[("_xsrf", &xsrf), ("action", "approve")],
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);

    // The first login makes the Unix account, in the shape root's helpers.toml gives.
    let p = login(&w, &Browser::new(), &name, NEW_PW).await;
    assert_eq!(
        p.status,
        StatusCode::SEE_OTHER,
        "{}\n{}",
        p.body,
        hub_log(&w)
    );
    let made = TestUser::existing(&name); // removed with its processes at the end
    let uid = made.uid.as_raw();
    assert!((42000..=42999).contains(&uid), "{uid}");
    assert_eq!(made.home, homes.join(&name));
    let groups = std::process::Command::new("id")
        .args(["-nG", &name])
        .output()
        .unwrap()
        .stdout;
    let groups = String::from_utf8(groups).unwrap();
    assert!(
        groups.split_whitespace().any(|g| g == w._group.name),
        "{groups}"
    );
    assert!(
        hub_log(&w).contains("Unix account created"),
        "{}",
        hub_log(&w)
    );

    // JupyterLab, and a kernel in it, run as that new uid.
    lab_flow_as(
        &w,
        &Browser::new(),
        &url(&w, "/"),
        "/",
        None,
        (&name, NEW_PW, uid),
    )
    .await;

    // Three wrong passwords lock the name; a restart of the hub does not lift it.
    for _ in 0..3 {
        let p = login(&w, &Browser::new(), &name, "wrong-password-123").await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
    }
    hub.terminate();
    hub = start_hub(&w);
    let p = login(&w, &Browser::new(), &name, NEW_PW).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.body.contains("Too many failed attempts"), "{}", p.body);

    // Deleting the user in the hub stops the server and keeps the Unix account.
    let r = api_client()
        .delete(url(&w, &format!("/hub/api/users/{name}")))
        .header("Authorization", format!("token {}", w.service_token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(nix::unistd::User::from_name(&name).unwrap().is_some());
    hub.terminate();
    drop(made);
    let _ = std::fs::remove_dir_all(&homes);
}

/// In chromium: sign-up from the login page's link, "waiting for approval" at sign-in,
/// an admin approving from the admin page's link to /hub/authorize, then the sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_and_approval_in_chromium() {
    sudohub_tests::chromium::require_browser();
    let w = world();
    let text = std::fs::read_to_string(&w.config).unwrap().replacen(
        "[auth]\n",
        &format!(
            "[auth]\nsources = [\"pam\", \"native\"]\nadmin_users = [{:?}]\n",
            w.alice.name
        ),
        1,
    );
    write_config(&w, &text);
    let _hub = start_hub(&w);
    let name = unique_name("sen");
    let base = format!("http://{}", w.addr);
    let report = sudohub_tests::chromium::run_signed_out(
        &base,
        "signup.mjs",
        &[
            ("SUDOHUB_NEW", &name),
            ("SUDOHUB_NEW_PASSWORD", "amber-Lantern-58-meadow"),
            ("SUDOHUB_ADMIN", &w.alice.name),
            ("SUDOHUB_ADMIN_PASSWORD", PASSWORD),
        ],
    );
    let log = hub_log(&w);
    assert!(report["failure"].is_null(), "{report}\n{log}");
    assert_eq!(report["signedUp"], "Waiting for approval", "{report}");
    assert_eq!(
        report["beforeApproval"],
        "Your account is waiting for an administrator's approval."
    );
    assert_eq!(report["adminLink"], "Sign-ups: 1 waiting");
    assert!(
        report["listed"].as_str().unwrap().contains("pending"),
        "{report}"
    );
    assert!(
        report["afterApproval"]
            .as_str()
            .unwrap()
            .contains("approved"),
        "{report}"
    );
    assert_eq!(report["signedInAt"], format!("{base}/hub/spawn"));
    assert!(
        report["home"]
            .as_str()
            .unwrap()
            .contains(&format!("Signed in as {name}")),
        "{report}"
    );
}

/// `source = "ldap"` against a real slapd: bind DN templates over StartTLS, then a DN
/// looked up by a search account over LDAPS with admins from a posixGroup, JupyterLab
/// running as the Unix account of the directory's user; every refusal with its page, a
/// filter injection, a directory that is down and one that never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_logins_reach_jupyterlab_and_every_refusal_is_clear() {
    use sudohub_tests::ldap::{Person, Slapd, BASE};
    const LDAP_PW: &str = "directory password 1";
    let w = world();
    let stranger = unique_name("sex"); // in the directory, no Unix account
    let mut slapd = Slapd::start(&[
        Person {
            uid: &w.alice.name,
            password: LDAP_PW,
            groups: &["jupyter", "posix-admins"],
        },
        Person {
            uid: &w.bob.name,
            password: LDAP_PW,
            groups: &["others"],
        },
        Person {
            uid: &stranger,
            password: LDAP_PW,
            groups: &["jupyter"],
        },
    ]);
    let base_text = std::fs::read_to_string(&w.config).unwrap();
    let ca = slapd.cert.clone();
    let with_ldap = |ldap: &str| {
        let text = base_text.replacen("[auth]\n", "[auth]\nsource = \"ldap\"\n", 1);
        format!("{text}\n[auth.ldap]\nserver_address = \"127.0.0.1\"\ntls_ca_file = {:?}\nallowed_groups = [{:?}]\nserver_connect_timeout = 2\nserver_receive_timeout = 2\n{ldap}",
            ca.display().to_string(), Slapd::group("jupyter"))
    };
    // 1. Bind DN templates, StartTLS on the plain port (tls_strategy's default).
    write_config(
        &w,
        &with_ldap(&format!(
            "server_port = {}\nbind_dn_template = [\"cn={{username}},ou=nobody,{BASE}\", \"uid={{username}},ou=people,{BASE}\"]\n",
            slapd.port
        )),
    );
    let hub = start_hub(&w);
    let says = error_text;
    let b = Browser::new();
    must_log_in(&w, &b, &w.alice.name, LDAP_PW).await;
    // The directory's password, not the Unix one.
    let p = login(&w, &Browser::new(), &w.alice.name, PASSWORD).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(says(&p), "Invalid username or password");
    // In the directory but not in allowed_groups.
    let p = login(&w, &Browser::new(), &w.bob.name, LDAP_PW).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(says(&p), "Invalid username or password");
    // Accepted by the directory, but no Unix account here and none made.
    let p = login(&w, &Browser::new(), &stranger, LDAP_PW).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(
        says(&p).contains("no account for you on this machine"),
        "{}",
        p.body
    );
    // A filter injection and an empty password (an anonymous bind) get nowhere.
    for (name, pw) in [
        ("*)(uid=*", LDAP_PW),
        ("*", LDAP_PW),
        (w.alice.name.as_str(), ""),
    ] {
        let p = login(&w, &Browser::new(), name, pw).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{name}");
        assert_eq!(says(&p), "Invalid username or password", "{name}");
    }
    assert!(!hub_log(&w).contains(LDAP_PW), "a password reached the log");
    hub.terminate();

    // 2. lookup_dn over LDAPS with a search account; admins from a posixGroup's memberUid.
    let pw_file = w.state_dir.join("ldap-search-pw");
    fs::write_owned(
        &pw_file,
        b"admin-secret\n",
        Uid::from_raw(0),
        w.hub_user.gid,
        0o640,
    );
    write_config(
        &w,
        &with_ldap(&format!(
            "server_port = {}\ntls_strategy = \"on_connect\"\nlookup_dn = true\nuser_search_base = \"ou=people,{BASE}\"\nlookup_dn_search_user = \"cn=admin,{BASE}\"\nlookup_dn_search_password_file = {:?}\nadmin_groups = [{:?}]\n",
            slapd.tls_port,
            pw_file.display().to_string(),
            Slapd::group("posix-admins")
        )),
    );
    let hub = start_hub(&w);
    let b = Browser::new();
    let alice = (w.alice.name.as_str(), LDAP_PW, w.alice.uid.as_raw());
    lab_flow_as(&w, &b, &url(&w, "/"), "/", None, alice).await;
    let me = api_get(&w, &format!("/hub/api/users/{}", w.alice.name)).await;
    assert_eq!(me["admin"], true, "{me}");
    let p = login(&w, &Browser::new(), &w.bob.name, LDAP_PW).await;
    assert_eq!(says(&p), "Invalid username or password");

    // `sudohub check` reaches the directory with this setup...
    let report = check_sources(&w).await;
    assert!(
        report
            .iter()
            .any(|f| f.ok && f.text.contains("LDAP directory at ldaps://127.0.0.1")),
        "{report:?}"
    );
    assert!(report.iter().all(|f| f.ok), "{report:?}");

    // 3. The directory goes down: a clear page at once, not a 500 or a hang.
    slapd.stop();
    // ...and says what is wrong when it is down.
    let report = check_sources(&w).await;
    assert!(
        report
            .iter()
            .any(|f| !f.ok && f.text.contains("does not let the hub in")),
        "{report:?}"
    );
    let t = Instant::now();
    let p = login(&w, &Browser::new(), &w.alice.name, LDAP_PW).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(
        says(&p).contains("login service is unavailable"),
        "{}",
        p.body
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    hub.terminate();

    // 4. A directory that accepts connections and never answers: the deadlines end it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    write_config(
        &w,
        &with_ldap(&format!(
            "server_port = {port}\nbind_dn_template = [\"uid={{username}},ou=people,{BASE}\"]\n"
        )),
    );
    let _hub = start_hub(&w);
    let t = Instant::now();
    let p = login(&w, &Browser::new(), &w.alice.name, LDAP_PW).await;
    assert!(
        says(&p).contains("login service is unavailable"),
        "{}",
        p.body
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let log = hub_log(&w);
    assert!(log.contains("login service unavailable"), "{log}");
    drop(silent);
}

/// `source = "oidc"` against the real oidc-provider: discovery, PKCE, `state` and
/// `nonce`, the ID token checked against the provider's keys, groups from the claim,
/// JupyterLab as the mapped Unix user; then every refusal with its page: a wrong
/// `state`, a replayed callback and a replayed code, ID tokens signed by another key,
/// expired or for another client, a user outside `allowed_groups`, a second identity
/// and a system account claiming a name, and a provider that is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_logins_reach_jupyterlab_and_every_refusal_is_clear() {
    use sudohub_tests::oidc::OidcProvider;
    let w = world();
    let callback = format!("http://{}/hub/oauth_callback", w.addr);
    let user = |sub: &str, name: &str, groups: &[&str]| {
        serde_json::json!({"sub": sub, "claims": {
            "preferred_username": name, "email": format!("{name}@example.org"),
            "email_verified": true, "groups": groups}})
    };
    let provider = OidcProvider::start(
        &callback,
        serde_json::json!([
            user("alice-sub", &w.alice.name, &["jupyter", "hub-admins"]),
            user("bob-sub", &w.bob.name, &["others"]),
            user("mallory-sub", &w.alice.name, &["jupyter"]),
            user("daemon-sub", "daemon", &["jupyter"]),
            user("root-sub", "root", &["jupyter"]),
        ]),
    );
    let p = &provider;
    let secret_file = w.state_dir.join("oidc-secret");
    fs::write_owned(
        &secret_file,
        format!("{}\n", p.client_secret).as_bytes(),
        Uid::from_raw(0),
        w.hub_user.gid,
        0o640,
    );
    let boss = unique_name("seo"); // an admin by name, with no account yet
                                   // The sealing key of auth states, root's, readable by the hub's group.
    let key_file = w.state_dir.join("auth_state.key");
    let key_hex = format!("{:032x}{:032x}", rand_u128(), rand_u128());
    fs::write_owned(
        &key_file,
        key_hex.as_bytes(),
        Uid::from_raw(0),
        w.hub_user.gid,
        0o640,
    );
    // Root lets servers take the provider's token (helpers.toml env_allow).
    let helpers_path = std::path::Path::new(sudohub_helpers_config::CONFIG_PATH);
    let helpers_text = std::fs::read_to_string(helpers_path).unwrap().replacen(
        "[spawner]\n",
        "[spawner]\nenv_allow = [\"JUPYTERHUB_*\", \"JPY_API_TOKEN\", \"OIDC_ACCESS_TOKEN\"]\n",
        1,
    );
    fs::write_owned(
        helpers_path,
        helpers_text.as_bytes(),
        Uid::from_raw(0),
        Gid::from_raw(0),
        0o644,
    );
    // The ten lines an admin writes (and three for the auth state).
    let text = std::fs::read_to_string(&w.config).unwrap().replacen(
        "[auth]\n",
        &format!("[auth]\nsource = \"oidc\"\nadmin_users = [{boss:?}]\n"),
        1,
    ) + &format!(
        "[auth.oauth]\nissuer = {:?}\nclient_id = {:?}\nclient_secret_file = {:?}\nscope = [\"openid\", \"email\", \"profile\", \"groups\"]\nallowed_groups = [\"jupyter\"]\nadmin_groups = [\"hub-admins\"]\noauth_callback_url = {callback:?}\nenable_auth_state = true\nauth_state_key_file = {:?}\nauth_state_env = {{ OIDC_ACCESS_TOKEN = \"access_token\" }}\n",
        p.issuer,
        p.client_id,
        secret_file.display().to_string(),
        key_file.display().to_string()
    );
    write_config(&w, &text);
    let _hub = start_hub(&w);
    let says = error_text;
    // The login page offers the provider only (no password source).
    let b = Browser::new();
    let login_page = b.get(&url(&w, "/hub/login")).await;
    assert!(
        login_page.body.contains("Sign in with"),
        "{}",
        login_page.body
    );
    assert!(!login_page.body.contains("type=\"password\""));

    // alice: through to JupyterLab as her Unix account, an admin by her group.
    let back = oidc_callback(&w, p, &b, "alice-sub").await;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let done = b.get(&back).await;
    assert_eq!(
        done.status,
        StatusCode::SEE_OTHER,
        "{}\n{}",
        done.body,
        hub_log(&w)
    );
    let spawn = done.location().unwrap();
    assert_eq!(spawn.path(), "/hub/spawn");
    let alice = (w.alice.name.as_str(), w.alice.uid.as_raw());
    lab_after_login(&w, &b, &url(&w, "/"), "/", None, alice, spawn).await;
    let me = api_get(&w, &format!("/hub/api/users/{}", w.alice.name)).await;
    assert_eq!(me["admin"], true, "{me}");
    // The auth state: read by an admin's credential, kept sealed in the database, and the
    // one field auth_state_env names in the server's environment.
    let token = me["auth_state"]["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{me}"))
        .to_owned();
    assert_eq!(me["auth_state"]["user"]["sub"], "alice-sub", "{me}");
    let db = std::fs::read(w.state_dir.join("sudohub.sqlite")).unwrap();
    assert!(
        !db.windows(token.len()).any(|x| x == token.as_bytes()),
        "the token is stored in the clear"
    );
    // Groups only in the ID token (user info without them) still count.
    p.set_mode("groups-in-id-token-only").await;
    let b2 = Browser::new();
    let back2 = oidc_callback(&w, p, &b2, "alice-sub").await;
    signed_in(&w, &b2.get(&back2).await);
    let me2 = api_get(&w, &format!("/hub/api/users/{}", w.alice.name)).await;
    assert_eq!(me2["admin"], true, "{me2}");
    p.set_mode("normal").await;
    let server = url(&w, &format!("/user/{}/", w.alice.name));
    let env = run_in_kernel(
        &b,
        &server,
        "import os; print(os.environ.get('OIDC_ACCESS_TOKEN'))",
    )
    .await;
    assert_eq!(env.trim(), token);

    // The same callback again: its state is used up.
    let again = b.get(&back).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(
        says(&again).contains("expired or was started in another window"),
        "{}",
        again.body
    );
    // A replayed code under a fresh state: the provider refuses it.
    let b2 = Browser::new();
    let fresh = oidc_callback(&w, p, &b2, "alice-sub").await;
    let r = b2.get(&with_param(&fresh, "code", &code)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(says(&r).contains("could not be verified"), "{}", r.body);
    // A wrong state: refused before the provider is asked.
    let b3 = Browser::new();
    let back3 = oidc_callback(&w, p, &b3, "alice-sub").await;
    let r = b3.get(&with_param(&back3, "state", "forged")).await;
    assert!(
        says(&r).contains("expired or was started in another window"),
        "{}",
        r.body
    );

    // ID tokens that must not pass.
    for mode in ["foreign-key", "expired", "wrong-aud"] {
        p.set_mode(mode).await;
        let b = Browser::new();
        let back = oidc_callback(&w, p, &b, "alice-sub").await;
        let r = b.get(&back).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{mode}: {}", r.body);
        assert!(
            says(&r).contains("could not be verified"),
            "{mode}: {}",
            r.body
        );
        assert!(
            b.cookie(&url(&w, "/hub/"), "jupyterhub-hub-login")
                .is_none(),
            "{mode}"
        );
    }
    p.set_mode("normal").await;

    // Refused users, each with what is wrong.
    for (login, says_what) in [
        ("bob-sub", "is not allowed to use this hub"),
        ("mallory-sub", "belongs to another account here"),
        ("daemon-sub", "belongs to another account here"),
        ("root-sub", "belongs to another account here"),
    ] {
        let b = Browser::new();
        let back = oidc_callback(&w, p, &b, login).await;
        let r = b.get(&back).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{login}: {}", r.body);
        assert!(says(&r).contains(says_what), "{login}: {}", r.body);
    }

    // mallory binds carol's name; renaming herself at the provider to an admin's name
    // later changes nothing: she stays carol, and not an admin.
    let as_name = |name: &str| user("mallory-sub", name, &["jupyter"])["claims"].clone();
    p.set_claims("mallory-sub", as_name(&w.carol.name)).await;
    let b = Browser::new();
    let back = oidc_callback(&w, p, &b, "mallory-sub").await;
    signed_in(&w, &b.get(&back).await);
    p.set_claims("mallory-sub", as_name(&boss)).await;
    let b = Browser::new();
    let back = oidc_callback(&w, p, &b, "mallory-sub").await;
    signed_in(&w, &b.get(&back).await);
    let home = b.get(&url(&w, "/hub/home")).await;
    assert!(
        home.body
            .contains(&format!("Signed in as <b>{}</b>", w.carol.name)),
        "{}",
        home.body
    );
    let carol = api_get(&w, &format!("/hub/api/users/{}", w.carol.name)).await;
    assert_eq!(carol["admin"], false, "{carol}");
    let boss = api_get(&w, &format!("/hub/api/users/{boss}")).await;
    assert_eq!(boss["status"], 404, "{boss}");

    // `sudohub check`: discovery works and the auth-state key is safe.
    let report = check_sources(&w).await;
    assert_eq!(report.iter().filter(|f| f.ok).count(), 2, "{report:?}");
    assert!(
        report.iter().any(|f| f.text.contains("discovery at")),
        "{report:?}"
    );

    // The provider goes down between its page and the callback.
    let b = Browser::new();
    let back = oidc_callback(&w, p, &b, "alice-sub").await;
    drop(provider);
    let report = check_sources(&w).await;
    assert!(
        report
            .iter()
            .any(|f| !f.ok && f.text.contains("cannot be used")),
        "{report:?}"
    );
    let r = b.get(&back).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(says(&r).contains("unavailable"), "{}", r.body);

    // Nothing of the provider's reached the log: no code, no secret.
    let log = hub_log(&w);
    assert!(
        !log.contains(&code),
        "an authorization code reached the log"
    );
    assert!(!log.contains(
        &std::fs::read_to_string(&secret_file)
            .unwrap()
            .trim()
            .to_owned()
    ));
}

/// Starts a sign-in in `b` at the hub and signs `login` in at `provider`: the URL the
/// provider sends the browser back to (the hub's callback, not visited yet).
async fn oidc_callback(
    w: &World,
    provider: &sudohub_tests::oidc::OidcProvider,
    b: &Browser,
    login: &str,
) -> Url {
    let start = b.get(&url(w, "/hub/oauth_login?next=%2Fhub%2Fspawn")).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let to = start.location().unwrap();
    assert!(to.as_str().starts_with(&provider.issuer), "{to}");
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256", "{to}");
    assert!(q.contains_key("nonce") && q.contains_key("state"), "{to}");
    provider.sign_in(b, &to, login).await
}

/// `u` with query parameter `key` set to `value`.
fn with_param(u: &Url, key: &str, value: &str) -> Url {
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == key {
                value.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    let mut out = u.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

/// The error a page shows (its `<p class="err">`), unescaped for quotes.
fn error_text(page: &Page) -> String {
    page.body
        .split("<p class=\"err\">")
        .nth(1)
        .and_then(|r| r.split("</p>").next())
        .unwrap_or("")
        .replace("&#x27;", "'")
}

/// `source = "google"` (the real OpenID Connect provider standing in for Google's
/// issuer) with `hosted_domain`, verified emails and `allowed_users` on mapped names; then
/// `source = "github"` against a stand-in for GitHub's documented endpoints, with an
/// `org:team` in `allowed_organizations` and a login in capitals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_and_github_sign_ins_apply_their_own_rules() {
    use sudohub_tests::oidc::{GithubStandIn, OidcProvider};
    let w = world();
    let callback = format!("http://{}/hub/oauth_callback", w.addr);
    let (alice, bob, carol) = (&w.alice.name, &w.bob.name, &w.carol.name);
    let account = |sub: &str, email: String, verified: bool, hd: &str| serde_json::json!({"sub": sub, "claims": {"email": email, "email_verified": verified, "hd": hd}});
    let google = OidcProvider::start(
        &callback,
        serde_json::json!([
            account(
                "g-alice",
                format!("{alice}@example.org"),
                true,
                "example.org"
            ),
            account("g-bob", format!("{bob}@other.org"), true, "other.org"),
            account(
                "g-carol",
                format!("{carol}@example.org"),
                false,
                "example.org"
            ),
            account("g-bob2", format!("{bob}@example.org"), true, "example.org"),
        ]),
    );
    let base = std::fs::read_to_string(&w.config).unwrap();
    let with = |source: &str, oauth: String| {
        base.replacen(
            "[auth]\n",
            &format!("[auth]\nsource = \"{source}\"\nallowed_users = [{alice:?}]\n"),
            1,
        ) + &format!(
            "[auth.oauth]\nclient_id = \"sudohub\"\noauth_callback_url = {callback:?}\n{oauth}"
        )
    };
    write_config(
        &w,
        &with(
            "google",
            format!(
                "client_secret = {:?}\nissuer = {:?}\nhosted_domain = [\"example.org\"]\ndefault_domains = [\"example.org\"]\n",
                google.client_secret, google.issuer
            ),
        ),
    );
    let hub = start_hub(&w);
    let sign_in = |login: &'static str| {
        let (w, google) = (&w, &google);
        async move {
            let b = Browser::new();
            let back = oidc_callback(w, google, &b, login).await;
            b.get(&back).await
        }
    };
    let r = sign_in("g-alice").await;
    signed_in(&w, &r);
    assert_eq!(r.location().unwrap().path(), "/hub/spawn");
    for (login, says) in [
        ("g-bob", "not an account of example.org"),
        ("g-carol", "email address is not verified"),
        ("g-bob2", "is not allowed to use this hub"),
    ] {
        let r = sign_in(login).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{login}: {}", r.body);
        assert!(error_text(&r).contains(says), "{login}: {}", r.body);
    }
    hub.terminate();

    // GitHub: only the team lab:hpc.
    let newcomer = unique_name("sew"); // no Unix account: made for the plain OAuth 2 part
    let github = GithubStandIn::start(serde_json::json!([
        {"login": alice.to_uppercase(), "id": 101, "orgs": ["lab", "lab:hpc"]},
        {"login": bob, "id": 102, "orgs": ["lab"]},
        {"login": carol, "id": 103, "orgs": []},
        {"login": newcomer, "id": 104, "orgs": ["lab"]},
    ]));
    let gh = github.url();
    write_config(
        &w,
        &with(
            "github",
            format!(
                "client_secret = {:?}\ngithub_url = {gh:?}\ngithub_api = \"{gh}/api\"\nallowed_organizations = [\"lab:hpc\"]\n",
                github.client_secret
            ),
        )
        .replacen(&format!("allowed_users = [{alice:?}]\n"), "", 1),
    );
    let hub = start_hub(&w);
    let gh_sign_in = |login: String| {
        let (w, github) = (&w, &github);
        async move {
            github.set_user(&login).await;
            let b = Browser::new();
            let start = b.get(&url(w, "/hub/oauth_login?next=%2Fhub%2Fspawn")).await;
            let to = start.location().unwrap();
            assert!(
                to.as_str()
                    .starts_with(&format!("{}/login/oauth/authorize", github.url())),
                "{to}"
            );
            assert!(to.as_str().contains("code_challenge_method=S256"), "{to}");
            let back = b.get(&to).await.location().unwrap();
            (b.get(&back).await, b)
        }
    };
    let (r, b) = gh_sign_in(alice.to_uppercase()).await;
    signed_in(&w, &r);
    let home = b.get(&url(&w, "/hub/home")).await;
    assert!(
        home.body.contains(&format!("Signed in as <b>{alice}</b>")),
        "{}",
        home.body
    );
    for login in [bob, carol] {
        let (r, _) = gh_sign_in(login.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{login}: {}", r.body);
        assert!(
            error_text(&r).contains("is not allowed to use this hub"),
            "{}",
            r.body
        );
    }
    hub.terminate();

    // The same stand-in as a plain OAuth 2 provider (authorize, token and user-data URLs,
    // the client in HTTP Basic, groups in the user data), and a user with no Unix account
    // yet, whose account sudohub-account makes at the first sign-in.
    let root = (Uid::from_raw(0), Gid::from_raw(0));
    let homes = PathBuf::from(format!("/var/lib/{}", unique_name("seu")));
    std::fs::create_dir_all(&homes).unwrap();
    fs::chown_mode(&homes, root.0, root.1, 0o755);
    let text = with(
        "oauth2",
        format!(
            "client_secret = {:?}\nauthorize_url = \"{gh}/login/oauth/authorize\"\ntoken_url = \"{gh}/login/oauth/access_token\"\nuserdata_url = \"{gh}/api/user\"\nusername_claim = \"login\"\nallowed_groups = [\"lab\"]\n",
            github.client_secret
        ),
    )
    .replacen(&format!("allowed_users = [{alice:?}]\n"), "", 1)
    .replacen(
        "[auth]\n",
        &format!(
            "[auth]\ncreate_system_users = true\naccount_helper = {:?}\n",
            w.helpers.account().display().to_string()
        ),
        1,
    );
    let _beside = accounts_on(&w, &text, &homes);
    let hub = start_hub(&w);
    let (r, _) = gh_sign_in(bob.clone()).await; // in `lab`: allowed here
    signed_in(&w, &r);
    let (r, _) = gh_sign_in(carol.clone()).await;
    assert!(
        error_text(&r).contains("is not allowed to use this hub"),
        "{}",
        r.body
    );
    let (r, _) = gh_sign_in(newcomer.clone()).await;
    signed_in(&w, &r);
    let made = TestUser::existing(&newcomer); // removed with its processes at the end
    assert!((42000..=42999).contains(&made.uid.as_raw()), "{}", made.uid);
    assert_eq!(made.home, homes.join(&newcomer));
    hub.terminate();
    drop(made);
    let _ = std::fs::remove_dir_all(&homes);
}

/// A random number, for keys made by a test.
fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    u128::from_le_bytes(b)
}

/// Runs `code` in a new kernel of the running server at `server` (its URL, with the
/// browser's cookies): what it printed.
async fn run_in_kernel(b: &Browser, server: &Url, code: &str) -> String {
    try_in_kernel(b, server, code).await.unwrap()
}

/// [`run_in_kernel`] for code that may kill its kernel: the error instead of a panic.
async fn try_in_kernel(b: &Browser, server: &Url, code: &str) -> Result<String, String> {
    let id = create_kernel(b, server).await;
    let mut ws = server.join(&format!("api/kernels/{id}/channels")).unwrap();
    ws.set_scheme("ws").unwrap();
    let cookies = b.cookie_header(server).unwrap();
    kernel::execute(ws.as_str(), Some(&cookies), code).await
}

/// Turns on accounts made on demand: `text` as the hub's config and, as an install has
/// it, beside helpers.toml, where the account helper reads root's consent; helpers.toml
/// gives the shape (a uid range, homes under `homes`, which the test removes).
fn accounts_on(
    w: &World,
    text: &str,
    homes: &std::path::Path,
) -> sudohub_tests::system::HubTomlBesideHelpers {
    let root = (Uid::from_raw(0), Gid::from_raw(0));
    write_config(w, text);
    let beside = sudohub_tests::system::HubTomlBesideHelpers::write(text, w.hub_user.gid);
    let helpers_path = std::path::Path::new(sudohub_helpers_config::CONFIG_PATH);
    let helpers_text = format!(
        "{}\n[accounts]\nuid_min = 42000\nuid_max = 42999\nhome_base = {:?}\n",
        std::fs::read_to_string(helpers_path).unwrap(),
        homes.display().to_string()
    );
    fs::write_owned(helpers_path, helpers_text.as_bytes(), root.0, root.1, 0o644);
    beside
}

/// An OpenID Connect sign-in in Chromium: the hub's button, the provider's own form on
/// another site, and back signed in (the state cookie survives the cross-site redirect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_in_chromium() {
    use sudohub_tests::oidc::OidcProvider;
    sudohub_tests::chromium::require_browser();
    let w = world();
    let callback = format!("http://{}/hub/oauth_callback", w.addr);
    let provider = OidcProvider::start(
        &callback,
        serde_json::json!([{"sub": "alice-sub", "claims": {
            "preferred_username": w.alice.name, "groups": ["jupyter"]}}]),
    );
    let text = std::fs::read_to_string(&w.config)
        .unwrap()
        .replacen("[auth]\n", "[auth]\nsource = \"oidc\"\n", 1)
        + &format!(
            "[auth.oauth]\nissuer = {:?}\nclient_id = {:?}\nclient_secret = {:?}\nscope = [\"openid\", \"profile\", \"groups\"]\nallowed_groups = [\"jupyter\"]\noauth_callback_url = {callback:?}\n",
            provider.issuer, provider.client_id, provider.client_secret
        );
    write_config(&w, &text);
    let _hub = start_hub(&w);
    let base = format!("http://{}", w.addr);
    let report = sudohub_tests::chromium::run_signed_out(
        &base,
        "oidc.mjs",
        &[("SUDOHUB_PROVIDER_LOGIN", "alice-sub")],
    );
    assert!(report["failure"].is_null(), "{report}\n{}", hub_log(&w));
    assert!(
        report["button"]
            .as_str()
            .unwrap()
            .starts_with("Sign in with"),
        "{report}"
    );
    assert_eq!(report["passwordForm"], 0, "{report}");
    assert!(
        report["providerPage"]
            .as_str()
            .unwrap()
            .starts_with("localhost:"),
        "{report}"
    );
    assert!(
        report["landedAt"]
            .as_str()
            .unwrap()
            .starts_with("/hub/spawn"),
        "{report}"
    );
    assert!(
        report["home"]
            .as_str()
            .unwrap()
            .contains(&format!("Signed in as {}", w.alice.name)),
        "{report}"
    );
}

/// The login sources' part of `sudohub check` against the world's hub.toml.
async fn check_sources(w: &World) -> Vec<sudohub::check::Finding> {
    let cfg = sudohub::config::HubConfig::load(&w.config).unwrap();
    tokio::task::spawn_blocking(move || sudohub::check::sources_only(&cfg))
        .await
        .unwrap()
}

/// Signs `user` in, starts their server and opens JupyterLab; returns the server's URL,
/// ready for [`run_in_kernel`].
async fn server_of(w: &World, b: &Browser, user: &str) -> Url {
    server_of_user_at(w, b, user, &url(w, "/")).await
}

/// [`server_of`] for alice at `origin` (https, say).
async fn server_of_at(w: &World, b: &Browser, origin: &Url) -> Url {
    server_of_user_at(w, b, &w.alice.name, origin).await
}

async fn server_of_user_at(w: &World, b: &Browser, user: &str, origin: &Url) -> Url {
    let origin = origin.clone();
    let form = b.get(&origin.join("/hub/login").unwrap()).await;
    let xsrf = form.xsrf_field().unwrap();
    let p = b
        .post_form(
            &origin.join("/hub/login?next=%2Fhub%2Fspawn").unwrap(),
            &[("username", user), ("password", PASSWORD), ("_xsrf", &xsrf)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let server_path = format!("/user/{user}/");
    follow_spawn(w, b, p.location().unwrap(), &server_path).await;
    open_lab(
        w,
        b,
        &origin.join(&format!("{server_path}lab")).unwrap(),
        "/hub/",
    )
    .await;
    origin.join(&server_path).unwrap()
}

/// Limits from root's helpers.toml, end to end: a notebook that allocates past
/// `mem_limit` has its kernel OOM-killed inside alice's cgroup, while alice's server, the
/// hub and bob's server go on; the hub's API shows the limits in force and the OOM,
/// `/hub/metrics` the usage, and the hub's log the helper's report. hub.toml has no key
/// that reaches any of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_past_its_memory_limit_is_killed_and_the_hub_shows_it() {
    let w = world();
    let cg = sudohub_tests::cgroup::CgroupParent::new();
    let helpers = std::path::Path::new(sudohub_helpers_config::CONFIG_PATH);
    // 512M: room for alice's JupyterLab (about 120 MiB) and a kernel that is, when it
    // reaches the limit, the group's largest process by far, so that the OOM killer takes
    // the kernel (under 256M both were of a size and it took the server in two CI runs).
    let text = std::fs::read_to_string(helpers).unwrap()
        + &cg.config("mem_limit = \"512M\"\ncpu_limit = 1\npids_limit = 512\n");
    std::fs::write(helpers, text).unwrap();
    let refused = sudohub::config::HubConfig::parse(
        &format!(
            "{}\n[limits]\nmem_limit = \"64G\"\n",
            std::fs::read_to_string(&w.config).unwrap()
        ),
        &w.config,
    );
    assert!(refused.is_err(), "hub.toml took a [limits] table");
    let _hub = start_hub(&w);
    let alice_b = Browser::new();
    let alice = server_of(&w, &alice_b, &w.alice.name).await;
    let bob_b = Browser::new();
    let bob = server_of(&w, &bob_b, &w.bob.name).await;

    let code = "import os; print(open('/proc/self/cgroup').read())";
    let inside = run_in_kernel(&alice_b, &alice, code).await;
    assert!(
        inside.contains(&format!("{}/{}/_default", cg.parent, w.alice.name)),
        "the kernel is not in alice's group: {inside}"
    );
    // Past the limit: the kernel dies (its answer never comes, or says so).
    let allocated = tokio::time::timeout(
        Duration::from_secs(20),
        try_in_kernel(
            &alice_b,
            &alice,
            "x = bytearray(700 * 1024 * 1024); print(len(x))",
        ),
    )
    .await;
    assert!(
        !matches!(&allocated, Ok(Ok(out)) if out.trim() == (700u64 << 20).to_string()),
        "700 MiB were allocated under a 512M mem_limit: {allocated:?}"
    );
    let model = api_get(&w, &format!("/hub/api/users/{}", w.alice.name)).await;
    let server = &model["servers"][""];
    let bobs_works = || async {
        let bobs = run_in_kernel(&bob_b, &bob, "import os; print(os.getuid())").await;
        assert_eq!(bobs.trim(), w.bob.uid.to_string());
    };
    if server.is_null() {
        // The kernel's OOM killer picks the largest process of the group at that moment:
        // mostly the kernel, which allocates, sometimes alice's server itself (its
        // JupyterLab holds more than the kernel has touched yet; CI saw it). Then the
        // server is gone, the hub says why, and everyone else goes on.
        eprintln!("the OOM killer took alice's server itself, not only its kernel");
        let log = hub_log(&w);
        assert!(log.contains("server out of memory"), "{log}");
        bobs_works().await;
        return;
    }
    assert_eq!(
        server["ready"], true,
        "alice's server is there but not ready: {model}"
    );
    let r = &server["resources"];
    assert_eq!(r["mem_limit"], 512u64 << 20, "{model}");
    assert_eq!(r["cpu_limit"], 1.0, "{model}");
    assert_eq!(r["pids_limit"], 512, "{model}");
    assert!(
        r["oom_kills"].as_u64().unwrap_or(0) >= 1,
        "no OOM kill seen: {model}"
    );
    assert!(r["memory_bytes"].as_u64().unwrap() > 0, "{model}");
    // Alice's server and bob's still work; the hub noted the OOM.
    let after = run_in_kernel(&alice_b, &alice, "print(6 * 7)").await;
    assert_eq!(after.trim(), "42");
    bobs_works().await;
    let log = hub_log(&w);
    assert!(log.contains("out of memory"), "{log}");
    let metrics = api_client()
        .get(url(&w, "/hub/metrics"))
        .header("Authorization", format!("token {}", w.service_token))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{metrics}"))
    };
    assert!(value("sudohub_servers_memory_bytes ") > 0.0);
    assert!(value("sudohub_servers_oom_kills ") >= 1.0);
    assert!(value("sudohub_servers_cpu_seconds ") > 0.0);
}

/// The setuid mode end to end: no sudoers rule for the hub at all, the helper installed
/// setuid root (`root:<hub's group>`, 4750) and hub.toml's `[spawner] sudo = []`: the real
/// hub runs the helper directly, alice's kernel runs as her, and a stop through the API
/// leaves none of her processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setuid_mode_runs_jupyterlab_with_no_sudo_at_all() {
    let w = world();
    std::fs::remove_file(w._sudoers.path()).unwrap();
    let helper = w.helpers.dir.join("sudohub-spawner-setuid");
    let bytes = std::fs::read(w.helpers.spawner()).unwrap();
    fs::write_owned(&helper, &bytes, Uid::from_raw(0), w.hub_user.gid, 0o4750);
    let spawner_line = format!("helper = \"{}\"", w.helpers.spawner().display());
    let text = std::fs::read_to_string(&w.config).unwrap();
    assert!(text.contains(&spawner_line));
    write_config(
        &w,
        &text.replace(
            &spawner_line,
            &format!("helper = \"{}\"\nsudo = []", helper.display()),
        ),
    );
    let _hub = start_hub(&w);
    let b = Browser::new();
    let server = server_of(&w, &b, &w.alice.name).await;
    let ids = run_in_kernel(&b, &server, "import os; print(os.getuid(), os.geteuid())").await;
    assert_eq!(
        ids.trim(),
        format!("{0} {0}", w.alice.uid),
        "{}",
        hub_log(&w)
    );
    stop_alices(&w, "server").await;
}

/// Alice kills her own spawner helper from a notebook (after its drop it is hers): the
/// hub loses it, and her server runs on unsupervised; an admin's stop still stops it all,
/// through a new helper that clears the server's cgroup as root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_clears_a_server_whose_user_killed_its_helper() {
    let w = world();
    let _hub = start_hub(&w);
    let b = Browser::new();
    let server = server_of(&w, &b, &w.alice.name).await;
    let code = "import os, signal\n\
                stat = open(f'/proc/{os.getppid()}/stat').read()\n\
                helper = int(stat.rsplit(')', 1)[1].split()[1])\n\
                os.kill(helper, signal.SIGKILL)\n\
                print(helper)";
    let helper = run_in_kernel(&b, &server, code).await;
    assert!(helper.trim().parse::<u32>().is_ok(), "{helper}");
    let lost = sudohub_tests::wait_for(Duration::from_secs(10), || {
        hub_log(&w)
            .contains("lost the connection to the spawner helper")
            .then_some(())
    });
    assert!(lost.is_some(), "{}", hub_log(&w));
    assert!(!proc::pids_of_uid(w.alice.uid.as_raw()).is_empty());
    stop_alices(&w, "server").await;
    assert!(
        hub_log(&w).contains("killed what was left"),
        "{}",
        hub_log(&w)
    );
}

/// Load across a planned restart: each request on a new connection, and on one
/// keep-alive connection, until `stop`; the failures, each with its error.
async fn load(
    hub_api: Url,
    cookie: String,
    server: Url,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<String>) {
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let kept = reqwest::Client::new();
    let (mut ok, mut failed) = (0, Vec::new());
    let status = server.join("api/status").unwrap();
    while !stop.load(Ordering::SeqCst) {
        for (client, target) in [(&fresh, &hub_api), (&kept, &status)] {
            match client
                .get(target.clone())
                .header("Cookie", &cookie)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(format!("{target}: body: {e:?}")),
                },
                Ok(r) => failed.push(format!("{target}: {}", r.status())),
                Err(e) => failed.push(format!("{target}: {e:?}")),
            }
        }
    }
    (ok, failed)
}

/// The pid in `sudohub upgrade`'s answer.
fn successor_pid(answer: &str) -> u32 {
    answer
        .split("pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in the upgrade's answer: {answer}"))
}

/// A planned upgrade to a new binary (install.sh's path): `sudohub upgrade` starts it, it
/// takes the listening sockets and the helpers, and the old process's kernel WebSocket
/// moves to it. Under a stream of requests (new connections, and a keep-alive one through
/// the proxy) nothing fails, no sudo runs, and the same WebSocket answers
/// `execute_request` before and after the old process has exited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_upgrade_drops_no_request_and_keeps_the_kernel_websocket() {
    let w = world_with("/", |_, _| "shutdown_drain_timeout = 60\n".into());
    // What systemd reads of a Type=notify service, on its own wire: a datagram socket
    // named by NOTIFY_SOCKET, which the new process inherits.
    let notify_path = w.state_dir.join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    std::fs::set_permissions(&notify_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut old = start_hub_with_env(&w, &[("NOTIFY_SOCKET", &notify_path)]);
    let said = |what: &str| {
        let mut buf = [0u8; 512];
        let n = notify
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {what}: {e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(
        said("READY from the first hub"),
        format!("MAINPID={}\nREADY=1\n", old.pid())
    );
    let b = Browser::new();
    let server = server_of(&w, &b, &w.alice.name).await;
    let cookie = b.cookie_header(&server).unwrap();
    let id = create_kernel(&b, &server).await;
    let mut ws_url = server.join(&format!("api/kernels/{id}/channels")).unwrap();
    ws_url.set_scheme("ws").unwrap();
    let mut ws = kernel::Session::open(ws_url.as_str(), Some(&cookie))
        .await
        .unwrap();
    assert_eq!(ws.execute("print(6 * 7)").await.unwrap().trim(), "42");
    let sudo_before = count_sudo();

    // The control socket is the hub's account's alone: another user cannot connect, and a
    // process of the hub's account that the hub did not start gets no socket.
    let cfg = sudohub::config::HubConfig::load(&w.config).unwrap();
    let control = sudohub::serve::control_path(&cfg);
    let py = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n\
              s.sendall(b'takeover\\n')\nprint(s.recv(200).decode())";
    let ask = |user: &sudohub_tests::system::TestUser| {
        user.command("/opt/sudohub/venv/bin/python3")
            .arg("-c")
            .arg(py)
            .arg(&control)
            .output()
            .unwrap()
    };
    let as_alice = ask(&w.alice);
    assert!(
        !as_alice.status.success()
            && String::from_utf8_lossy(&as_alice.stderr).contains("PermissionError"),
        "{as_alice:?}"
    );
    let as_hub = ask(&w.hub_user);
    assert!(
        String::from_utf8_lossy(&as_hub.stdout).contains("error no upgrade is waiting"),
        "{as_hub:?}"
    );

    // A keep-alive connection the old hub serves, and will still hold when it has
    // handed over.
    let mut kept = tokio::net::TcpStream::connect(w.addr).await.unwrap();
    let host = w.addr;
    let head = on_kept(
        &mut kept,
        &format!("GET /hub/api/ HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");

    let stop = Arc::new(AtomicBool::new(false));
    let loaded = tokio::spawn(load(
        url(&w, "/hub/api/"),
        cookie.clone(),
        server.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;

    // A new binary at the installed path (a new file, as install(1) leaves it).
    let fresh = w.hub_bin.with_extension("new");
    std::fs::copy(&w.hub_bin, &fresh).unwrap();
    std::fs::rename(&fresh, &w.hub_bin).unwrap();
    let out = hub_cli(&w, "upgrade");
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "upgrade failed: {answer} {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        hub_log(&w)
    );
    let pid = successor_pid(&answer);
    let _successor = sudohub_tests::hub::Successor(pid);
    assert_ne!(pid, old.pid());
    // A stop that reaches the old hub on its drained connection is the successor's to
    // do: the old hub changes nothing and sends the client there, the same request
    // (its helper is the successor's now: a stop here would have wiped the server's
    // record and token under the successor).
    let server_path = format!("/hub/api/users/{}/server", w.alice.name);
    let head = on_kept(
        &mut kept,
        &format!(
            "DELETE {server_path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: token {}\r\n\r\n",
            w.service_token
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 307"), "{head}");
    assert!(
        head.contains(&format!("\r\nlocation: {server_path}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    let user = api_get(&w, &format!("/hub/api/users/{}", w.alice.name)).await;
    assert!(user["servers"][""]["ready"] == true, "{user}");
    // systemd is told of the new main process by the old one, before it may exit, and
    // by the new one with its READY.
    let mut heard = [said("MAINPID"), said("MAINPID and READY")];
    heard.sort();
    assert_eq!(
        heard,
        [
            format!("MAINPID={pid}\n"),
            format!("MAINPID={pid}\nREADY=1\n")
        ]
    );
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, w.hub_bin, "the new hub runs the new binary");
    // The WebSocket opened before goes on, now carried by the new process.
    assert_eq!(ws.execute("print('moved')").await.unwrap().trim(), "moved");
    let exited = old.wait_exit(Duration::from_secs(30));
    assert!(
        exited.is_some_and(|s| s.success()),
        "the old hub did not drain and exit: {exited:?}\n{}",
        hub_log(&w)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = loaded.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed across the upgrade: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok > 50, "only {ok} requests ran");
    assert_eq!(
        ws.execute("print('after')").await.unwrap().trim(),
        "after",
        "the kernel WebSocket after the old hub exited"
    );
    assert_eq!(count_sudo(), sudo_before, "an upgrade must not run sudo");
    let log = hub_log(&w);
    assert!(
        log.contains("upgrade: WebSockets moved to the new hub websockets=1"),
        "{log}"
    );
    assert!(log.contains("drained; this hub exits"), "{log}");
    // The servers are the new hub's: it stops alice's.
    stop_from_home(&w, &b, singleuser_pid(w.alice.uid.as_raw())).await;
}

/// One request on a connection kept open: the response's status line and headers,
/// lower-cased (its body, of `content-length`, is read and dropped).
async fn on_kept(conn: &mut tokio::net::TcpStream, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut byte))
            .await
            .expect("a response within 30 s")
            .unwrap();
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await.unwrap();
    head
}

/// `sudohub --config … <command>` as the hub's user.
fn hub_cli(w: &World, command: &str) -> std::process::Output {
    w.hub_user
        .command(&w.hub_bin)
        .arg("--config")
        .arg(&w.config)
        .arg(command)
        .output()
        .unwrap()
}

/// The pid of the single-user server running as `uid`.
fn singleuser_pid(uid: u32) -> u32 {
    proc::pids_of_uid(uid)
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("jupyterhub-singleuser"))
        })
        .expect("the user's server process")
}

/// Stops the browser's user's server from the home page's form; its process `pid` must go.
async fn stop_from_home(w: &World, b: &Browser, pid: u32) {
    let home = b.get(&url(w, "/hub/home")).await;
    let xsrf = home.xsrf_field().expect("home has the stop form");
    let stopped = b.post_form(&url(w, "/hub/stop"), &[("_xsrf", &xsrf)]).await;
    assert!(stopped.status.is_redirection(), "{}", stopped.body);
    let gone = sudohub_tests::wait_for(Duration::from_secs(15), || {
        (!proc::exists(pid)).then_some(())
    });
    assert!(gone.is_some(), "server process {pid} still there");
}

/// systemd's socket activation, with systemd's own `systemd-socket-activate`: it holds
/// the listening socket and starts the hub at the first connection, which the hub (given
/// the socket through LISTEN_FDS, not binding one) answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_from_systemd_is_served_from_the_first_connection() {
    let w = world();
    let log = std::fs::File::create(w.state_dir.join("hub.log")).unwrap();
    let mut activator = w
        .hub_user
        .command("systemd-socket-activate")
        .arg("-l")
        .arg(w.addr.to_string())
        .arg(&w.hub_bin)
        .arg("--config")
        .arg(&w.config)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd)");
    let listening = sudohub_tests::wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(w.addr).ok()
    });
    assert!(listening.is_some(), "{}", hub_log(&w));
    // This first request starts the hub; it is answered, not refused.
    let r = Browser::new().get(&url(&w, "/hub/api/")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let log = hub_log(&w);
    assert!(log.contains("sockets=systemd"), "{log}");
    let _ = activator.kill();
    let _ = activator.wait();
}

/// `sudohub reload` applies hub.toml's allow and admin lists in the running process (no
/// new process, nothing dropped), and names a change that needs a new one, applying
/// nothing of that file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_the_allow_list_in_place_and_names_what_needs_a_new_process() {
    let w = world();
    let hub = start_hub(&w);
    let p = login(&w, &Browser::new(), &w.bob.name, PASSWORD).await;
    assert_eq!(
        p.status,
        StatusCode::SEE_OTHER,
        "bob is allowed by his group"
    );
    let text = std::fs::read_to_string(&w.config).unwrap();
    let group_line = text
        .lines()
        .find(|l| l.starts_with("allowed_groups"))
        .unwrap()
        .to_owned();
    // Only alice now, and as an admin.
    let narrowed = text.replace(
        &group_line,
        &format!(
            "allowed_groups = []\nallowed_users = [\"{a}\"]\nadmin_users = [\"{a}\"]",
            a = w.alice.name
        ),
    );
    std::fs::write(&w.config, &narrowed).unwrap();
    let out = hub_cli(&w, "reload");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains(
            "hub.toml applied: auth.admin_users, auth.allowed_groups, auth.allowed_users"
        ),
        "{said}"
    );
    let p = login(&w, &Browser::new(), &w.bob.name, PASSWORD).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN, "bob is no longer allowed");
    must_log_in(&w, &Browser::new(), &w.alice.name, PASSWORD).await;
    let model = api_get(&w, &format!("/hub/api/users/{}", w.alice.name)).await;
    assert_eq!(model["admin"], true, "{model}");
    assert!(proc::is_alive(hub.pid()));
    assert_eq!(hub_log(&w).matches("sudohub listening").count(), 1);

    // A key only a new process takes: named, and nothing of the file applied.
    let structural = narrowed.replace("[auth]\n", "allow_named_servers = true\n[auth]\n");
    std::fs::write(
        &w.config,
        structural.replace("allowed_groups = []", &group_line),
    )
    .unwrap();
    let out = hub_cli(&w, "reload");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        err.contains("allow_named_servers") && err.contains("sudohub upgrade"),
        "{err}"
    );
    let p = login(&w, &Browser::new(), &w.bob.name, PASSWORD).await;
    assert_eq!(
        p.status,
        StatusCode::FORBIDDEN,
        "the refused file changed the lists"
    );
    // The listening sockets move to a new process as they are: another port needs a
    // stop and start, and the answer says so instead of naming the upgrade.
    let other_port = narrowed.replace(
        &format!("bind = \"{}\"", w.addr),
        &format!("bind = \"127.0.0.1:{}\"", free_port()),
    );
    assert_ne!(other_port, narrowed, "the test's hub.toml has no bind line");
    std::fs::write(
        &w.config,
        other_port.replace("allowed_groups = []", &group_line),
    )
    .unwrap();
    let out = hub_cli(&w, "reload");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && err.contains("bind") && err.contains("stop and start"),
        "{err}"
    );
    // Nor can an upgrade turn TLS on (it needs a socket the running hub does not have):
    // the new process refuses, says why, and the running hub goes on.
    let (cert, key) = sudohub_tests::tls::self_signed(&w.state_dir);
    fs::chown_mode(&key, w.hub_user.uid, w.hub_user.gid, 0o600);
    fs::chown_mode(&cert, Uid::from_raw(0), Gid::from_raw(0), 0o644);
    let tls_on = format!(
        "ssl_cert = {:?}\nssl_key = {:?}\nhub_bind = \"127.0.0.1:{}\"\n{}",
        cert.display().to_string(),
        key.display().to_string(),
        free_port(),
        text
    );
    std::fs::write(&w.config, &tls_on).unwrap();
    let out = hub_cli(&w, "upgrade");
    assert!(!out.status.success(), "{out:?}");
    assert!(proc::is_alive(hub.pid()));
    let log = hub_log(&w);
    assert!(
        log.contains("turning TLS on needs a stop and start"),
        "{log}"
    );
    assert!(
        api_client()
            .get(url(&w, "/hub/api/"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success(),
        "the running hub serves on"
    );
    // A file that does not parse: said so, nothing changes.
    std::fs::write(&w.config, "bind = \n").unwrap();
    let out = hub_cli(&w, "reload");
    assert!(!out.status.success());
    assert!(proc::is_alive(hub.pid()));
}

/// A response still streaming when the hub hands over (a download, an event stream) is
/// finished by the old hub, however long past the 5 s a draining hub gives idle
/// connections, within `shutdown_drain_timeout`; the old hub exits once it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_hub_finishes_a_response_still_streaming() {
    use std::io::{BufRead, Write};
    let w = world_with("/", |_, _| "shutdown_drain_timeout = 60\n".into());
    // A service whose answer takes 10 s: one chunk a second.
    let backend = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in backend.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                for i in 0..10 {
                    let chunk = format!("part {i}\n");
                    let _ = write!(conn, "{:x}\r\n{chunk}\r\n", chunk.len());
                    let _ = conn.flush();
                    std::thread::sleep(Duration::from_secs(1));
                }
                let _ = conn.write_all(b"0\r\n\r\n");
            });
        }
    });
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(
        &w.config,
        format!("{text}[[services]]\nname = \"slow\"\nurl = \"http://{at}\"\n"),
    )
    .unwrap();
    let mut old = start_hub(&w);
    let mut r = api_client()
        .get(url(&w, "/services/slow/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let first = r.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"part 0\n");
    let out = hub_cli(&w, "upgrade");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        hub_log(&w)
    );
    let _successor =
        sudohub_tests::hub::Successor(successor_pid(&String::from_utf8_lossy(&out.stdout)));
    let mut body = first.to_vec();
    while let Some(c) = r.chunk().await.unwrap() {
        body.extend_from_slice(&c);
    }
    let want: String = (0..10).map(|i| format!("part {i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&body), want, "the response was cut");
    let exited = old.wait_exit(Duration::from_secs(20));
    assert!(
        exited.is_some_and(|s| s.success()),
        "the old hub did not exit once the response was done: {exited:?}\n{}",
        hub_log(&w)
    );
}
