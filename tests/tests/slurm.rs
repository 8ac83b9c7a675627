//! The single-node Slurm cluster the Slurm backend is tested on: Debian's slurmctld,
//! slurmd and munge, started by the test as root with a generated `slurm.conf`
//! (tests/src/slurm.rs), runs a batch job as the user who submitted it, queues what does
//! not fit, cancels on `scancel` by that user and refuses it from another.

use std::time::Duration;

use sudohub_tests::slurm::Cluster;
use sudohub_tests::system::TestUser;
use sudohub_tests::{unique_name, wait_for};

fn submit(c: &Cluster, user: &TestUser, script: &str) -> String {
    let path = user.home.join(format!("{}.sh", unique_name("job")));
    std::fs::write(&path, script).unwrap();
    std::process::Command::new("chown")
        .arg(format!("{}:{}", user.uid, user.gid))
        .arg(&path)
        .status()
        .unwrap();
    let out = c.client_as(user, "sbatch", &["--parsable", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "sbatch: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(id.chars().all(|c| c.is_ascii_digit()), "job id {id:?}");
    id
}

fn state_becomes(c: &Cluster, id: &str, want: &str) {
    let got = wait_for(Duration::from_secs(60), || {
        c.job_state(id).filter(|s| s == want)
    });
    assert!(
        got.is_some(),
        "job {id} never became {want}: it is {:?}\n{}",
        c.job_state(id),
        c.log()
    );
}

#[test]
fn the_test_cluster_runs_queues_and_cancels_jobs_as_their_user() {
    let c = Cluster::start();
    let alice = TestUser::create(&unique_name("sla"), &[], None);
    let mallory = TestUser::create(&unique_name("slm"), &[], None);

    // A job runs as its user, inside Slurm (its job id in its environment).
    let out = alice.home.join("out.txt");
    let id = submit(
        &c,
        &alice,
        &format!(
            "#!/bin/sh\n#SBATCH --output={}\nid -u; echo \"job=$SLURM_JOB_ID\"\n",
            out.display()
        ),
    );
    state_becomes(&c, &id, "COMPLETED");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, format!("{}\njob={id}\n", alice.uid), "{text}");

    // The node's CPUs taken, the next job waits in the queue.
    let busy = "#!/bin/sh\n#SBATCH --cpus-per-task=1\n#SBATCH --output=/dev/null\nsleep 300\n";
    let running: Vec<String> = (0..c.cpus).map(|_| submit(&c, &alice, busy)).collect();
    for id in &running {
        state_becomes(&c, id, "RUNNING");
    }
    let queued = submit(&c, &alice, busy);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(c.job_state(&queued).as_deref(), Some("PENDING"));

    // Another user cannot cancel alice's job; alice can.
    let out = c.client_as(&mallory, "scancel", &[&running[0]]);
    assert!(
        !out.status.success() || !String::from_utf8_lossy(&out.stderr).is_empty(),
        "scancel by another user said nothing"
    );
    assert_eq!(c.job_state(&running[0]).as_deref(), Some("RUNNING"));
    let out = c.client_as(&alice, "scancel", &[&running[0]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    state_becomes(&c, &running[0], "CANCELLED");
    // The freed CPU goes to the queued job.
    state_becomes(&c, &queued, "RUNNING");
}

// ---------------------------------------------------------------------------------------
// The hub with `[spawner] backend = "slurm"` on the test cluster: the real hub, helpers,
// sudo, sbatch/scancel/squeue, batchspawner-singleuser and JupyterLab inside the job.

mod hub {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use nix::unistd::{Gid, Uid};
    use reqwest::StatusCode;
    use sudohub_tests::browser::Browser;
    use sudohub_tests::hub::{free_port, HubProcess, Successor};
    use sudohub_tests::slurm::Cluster;
    use sudohub_tests::system::{
        ConfigLock, HelpersConfigFile, InstalledHelpers, SudoersDropIn, TestGroup, TestUser,
    };
    use sudohub_tests::{fs, kernel, unique_name, wait_for};

    const PASSWORD: &str = "a good long test password";

    struct World {
        hub_user: TestUser,
        helpers: InstalledHelpers,
        alice: TestUser,
        bob: TestUser,
        hub_bin: PathBuf,
        config: PathBuf,
        state_dir: PathBuf,
        token: String,
        addr: SocketAddr,
        _sudoers: SudoersDropIn,
        _helpers_config: HelpersConfigFile,
        _group: TestGroup,
        _gpu: TestGroup,
        _dirs: [fs::OwnedDir; 2],
        _pam: fs::RemovedFile,
        _lock: ConfigLock,
    }

    fn world(c: &Cluster, spawner_extra: &str) -> World {
        assert!(
            std::path::Path::new("/opt/sudohub/venv/bin/batchspawner-singleuser").exists(),
            "batchspawner is missing from the venv: scripts/deps.sh installs it"
        );
        let lock = ConfigLock::acquire();
        let group = TestGroup::create(&unique_name("slg"));
        let gpu = TestGroup::create(&unique_name("slgpu"));
        let hub_user = TestUser::create_system(&unique_name("slh"));
        let alice = TestUser::create(&unique_name("sla"), &[&group.name], Some(PASSWORD));
        let bob = TestUser::create(&unique_name("slb"), &[&group.name], None);
        let pam_service = unique_name("sudohubpamsl");
        let pam_file = fs::RemovedFile(PathBuf::from("/etc/pam.d").join(&pam_service));
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../pam.d/sudohub"),
            &pam_file.0,
        )
        .unwrap();
        let helpers = InstalledHelpers::install();
        let hub_bin = helpers.install_hub();
        let root = (Uid::from_raw(0), Gid::from_raw(0));
        let run_dir = fs::OwnedDir::create(
            format!("/run/{}", unique_name("slr")),
            hub_user.uid,
            hub_user.gid,
            0o755,
        );
        let socket = run_dir.path.join("spawners.sock");
        let sudoers = SudoersDropIn::install(
            &unique_name("sudohubsl"),
            &SudoersDropIn::rule(&hub_user.name, &helpers.spawner()),
        );
        let state = fs::OwnedDir::create(
            format!("/var/lib/{}", unique_name("sls")),
            hub_user.uid,
            hub_user.gid,
            0o700,
        );
        let state_dir = state.path.clone();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let token = sudohub::secrets::new_api_token();
        let config = state_dir.join("hub.toml");
        let conf = c.conf();
        let text = format!(
            r#"bind = "{addr}"
db = "{state}/sudohub.sqlite"
cookie_secret_file = "{state}/cookie_secret"
reattach_socket = "{socket}"
[auth]
allowed_groups = ["{group}"]
[pam]
helper = "{pam}"
[spawner]
backend = "slurm"
helper = "{spawner}"
http_timeout_secs = 90
[slurm]
hub_api_url = "http://{addr}/hub/api"
slurm_conf = "{conf}"
poll_secs = 1
[[services]]
name = "probe"
api_token = "{token}"
admin = true
"#,
            state = state_dir.display(),
            socket = socket.display(),
            group = group.name,
            spawner = helpers.spawner().display(),
            pam = helpers.pam().display(),
            conf = conf.display(),
        );
        fs::write_owned(&config, text.as_bytes(), root.0, hub_user.gid, 0o640);
        let api = sudohub::config::HubConfig::parse(&text, &config)
            .unwrap()
            .server_api_url();
        let helpers_config = HelpersConfigFile::write(&format!(
            r#"hub_user = {hub:?}
allowed_group = {group:?}
[spawner]
backend = "slurm"
{spawner_extra}
reattach_socket = {socket:?}
hub_api_url = {api:?}
[pam]
service = {pam_service:?}
[slurm]
slurm_conf = {conf:?}
listen_ip = "127.0.0.1"
[[slurm.profile]]
name = "small"
description = "One CPU for ten minutes"
cpus = 1
time = "10"
[[slurm.profile]]
name = "short"
description = "One CPU for a minute"
cpus = 1
time = "1"
[[slurm.profile]]
name = "gpu"
cpus = 1
extra = ["--comment=gpu"]
groups = [{gpu:?}]
"#,
            hub = hub_user.name,
            group = group.name,
            socket = socket.display().to_string(),
            conf = conf.display().to_string(),
            gpu = gpu.name,
        ));
        World {
            hub_user,
            alice,
            bob,
            hub_bin,
            config,
            state_dir,
            token,
            addr,
            helpers,
            _sudoers: sudoers,
            _helpers_config: helpers_config,
            _group: group,
            _gpu: gpu,
            _dirs: [state, run_dir],
            _pam: pam_file,
            _lock: lock,
        }
    }

    fn start_hub(w: &World) -> HubProcess {
        HubProcess::start(
            &w.hub_bin,
            &w.config,
            &w.hub_user,
            w.addr,
            w.state_dir.join("hub.log"),
            Duration::from_secs(20),
            &[],
        )
    }

    fn log(w: &World, c: &Cluster) -> String {
        format!(
            "{}\n{}",
            std::fs::read_to_string(w.state_dir.join("hub.log")).unwrap_or_default(),
            c.log()
        )
    }

    fn client() -> reqwest::Client {
        sudohub_tests::tls::install_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap()
    }

    async fn api(
        w: &World,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut r = client()
            .request(method, format!("http://{}/hub/api{path}", w.addr))
            .header("Authorization", format!("token {}", w.token));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::json!(text)),
        )
    }

    /// The user's default server's model, or None when it is stopped.
    async fn server(w: &World, user: &TestUser) -> Option<serde_json::Value> {
        let (status, v) = api(
            w,
            reqwest::Method::GET,
            &format!("/users/{}", user.name),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v["servers"].get("").cloned()
    }

    /// Slurm's job ids of `user`'s jobs that are not over.
    fn jobs_of(c: &Cluster, user: &TestUser) -> Vec<String> {
        let out = c.client("squeue", &["-h", "-u", &user.name, "-o", "%i"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// Reads the spawn's progress stream until an event's message contains `want`.
    async fn progress_says(w: &World, user: &TestUser, want: &str) -> String {
        let mut resp = client()
            .get(format!(
                "http://{}/hub/api/users/{}/server/progress",
                w.addr, user.name
            ))
            .header("Authorization", format!("token {}", w.token))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let mut seen = String::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await {
                Ok(Ok(Some(bytes))) => {
                    seen.push_str(&String::from_utf8_lossy(&bytes));
                    if seen.contains(want) {
                        return seen;
                    }
                }
                Ok(_) => break,
                Err(_) => {}
            }
        }
        panic!("the progress never said {want:?}: {seen}");
    }

    async fn run_code(w: &World, user: &TestUser, code: &str) -> Result<String, String> {
        let base = format!("http://{}/user/{}/", w.addr, user.name);
        let created = client()
            .post(format!("{base}api/kernels"))
            .header("Authorization", format!("token {}", w.token))
            .json(&serde_json::json!({"name": "python3"}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if created.status() != StatusCode::CREATED {
            return Err(format!("create kernel: {}", created.status()));
        }
        let id = created.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let ws = format!(
            "ws://{}/user/{}/api/kernels/{id}/channels",
            w.addr, user.name
        );
        kernel::execute_with_token(&ws, &w.token, code).await
    }

    async fn wait_ready(w: &World, c: &Cluster, user: &TestUser) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(150);
        loop {
            if let Some(s) = server(w, user).await {
                if s["ready"] == true {
                    return s;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}'s server never became ready:\n{}",
                user.name,
                log(w, c)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn wait_stopped(w: &World, c: &Cluster, user: &TestUser, within: Duration) {
        let deadline = Instant::now() + within;
        while server(w, user).await.is_some() {
            assert!(
                Instant::now() < deadline,
                "{}'s server is still shown:\n{}",
                user.name,
                log(w, c)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn servers_run_as_slurm_jobs_queue_reattach_stop_and_time_out() {
        let c = Cluster::start();
        let w = world(&c, "");
        let mut hub = start_hub(&w);
        let post = reqwest::Method::POST;
        for u in [&w.alice, &w.bob] {
            let (status, v) = api(&w, post.clone(), &format!("/users/{}", u.name), None).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
        }

        // Bad profile values are refused with what to pick, and nothing is submitted.
        for (profile, says) in [
            (serde_json::json!("gpu"), "not open"),
            (
                serde_json::json!("huge\n#SBATCH --uid=0"),
                "there is no profile",
            ),
            (serde_json::json!(7), "must be a string"),
        ] {
            let (status, v) = api(
                &w,
                post.clone(),
                &format!("/users/{}/server", w.alice.name),
                Some(serde_json::json!({ "profile": profile })),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
            assert!(v["message"].as_str().unwrap().contains(says), "{v}");
        }
        // The spawn page offers alice the profiles open to her, and refuses another.
        let b = Browser::new();
        let page = |path: &str| reqwest::Url::parse(&format!("http://{}{path}", w.addr)).unwrap();
        let form = b.get(&page("/hub/login")).await;
        let xsrf = form.xsrf_field().unwrap();
        let p = b
            .post_form(
                &page("/hub/login"),
                &[
                    ("username", w.alice.name.as_str()),
                    ("password", PASSWORD),
                    ("_xsrf", &xsrf),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", log(&w, &c));
        let spawn = b.get(&page("/hub/spawn")).await;
        assert!(
            spawn.body.contains(r#"value="small" checked"#),
            "{}",
            spawn.body
        );
        assert!(spawn.body.contains(r#"value="short""#), "{}", spawn.body);
        assert!(spawn.body.contains("--time=10"), "{}", spawn.body);
        assert!(!spawn.body.contains(r#"value="gpu""#), "{}", spawn.body);
        let xsrf = spawn.xsrf_field().unwrap();
        let refused = b
            .post_form(&page("/hub/spawn"), &[("_xsrf", &xsrf), ("profile", "gpu")])
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(refused.body.contains("not open"), "{}", refused.body);
        assert!(jobs_of(&c, &w.alice).is_empty());

        // bob's "short" server: Slurm's one-minute time limit will end it.
        let (status, v) = api(
            &w,
            post.clone(),
            &format!("/users/{}/server", w.bob.name),
            Some(serde_json::json!({"profile": "short"})),
        )
        .await;
        assert!(status.is_success(), "{v}\n{}", log(&w, &c));
        let bob_started = Instant::now();
        wait_ready(&w, &c, &w.bob).await;

        // The node's other CPU taken: alice's job waits, and she is told so.
        let filler = c.client(
            "sbatch",
            &[
                "--parsable",
                "-c",
                "1",
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 600",
            ],
        );
        assert!(filler.status.success(), "{filler:?}");
        let filler = String::from_utf8_lossy(&filler.stdout).trim().to_owned();
        assert!(
            wait_for(Duration::from_secs(30), || {
                (c.job_state(&filler).as_deref() == Some("RUNNING")).then_some(())
            })
            .is_some(),
            "{}",
            c.log()
        );
        let (status, v) = api(
            &w,
            post.clone(),
            &format!("/users/{}/server", w.alice.name),
            Some(serde_json::json!({"profile": "small"})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{v}");
        let said = progress_says(&w, &w.alice, "queued (position 1").await;
        assert!(said.contains("Submitted to Slurm as job"), "{said}");
        let jobs = jobs_of(&c, &w.alice);
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        let job = jobs[0].clone();
        assert_eq!(c.job_state(&job).as_deref(), Some("PENDING"));
        // The API token is in no job script and on no command line.
        let script = c.client("scontrol", &["write", "batch_script", &job, "-"]);
        let script = String::from_utf8_lossy(&script.stdout);
        assert!(script.contains("#SBATCH --time=10"), "{script}");
        let script = script.into_owned();

        // A planned upgrade while alice's job waits: the new hub goes on with the start,
        // the same job.
        let out = w
            .hub_user
            .command(&w.hub_bin)
            .arg("--config")
            .arg(&w.config)
            .arg("upgrade")
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{out:?}\n{}", log(&w, &c));
        let successor = Successor(
            answer
                .split("pid ")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("no pid in {answer}")),
        );
        assert!(
            log(&w, &c).contains("the start of a Slurm job goes on in this hub"),
            "{}",
            log(&w, &c)
        );
        assert_eq!(jobs_of(&c, &w.alice), std::slice::from_ref(&job));

        // The CPU freed, alice's job runs and her server is ready through the proxy.
        assert!(c.client("scancel", &[&filler]).status.success());
        let _ = progress_says(&w, &w.alice, "running on node").await;
        wait_ready(&w, &c, &w.alice).await;
        let tokens: Vec<String> = std::fs::read_dir(w.alice.home.join(".local/state/sudohub"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".token"))
            .collect();
        assert!(
            tokens.is_empty(),
            "the job removes its token file once read: {tokens:?}"
        );
        let out = run_code(
            &w,
            &w.alice,
            "import os; print(os.getuid(), os.environ.get('SLURM_JOB_ID'), os.environ['JUPYTERHUB_API_TOKEN'])",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", log(&w, &c)));
        let fields: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(
            fields[..2],
            [w.alice.uid.to_string().as_str(), job.as_str()],
            "{}",
            log(&w, &c)
        );
        // The server's API token reached the job through its file only: not in the job
        // script, not in what Slurm shows of the job, on no command line.
        let server_token = fields[2];
        assert!(server_token.len() >= 32);
        assert!(!script.contains(server_token));
        let shown = c.client("scontrol", &["show", "job", "-d", &job]);
        assert!(!String::from_utf8_lossy(&shown.stdout).contains(server_token));
        let cmdlines = std::process::Command::new("ps")
            .args(["-e", "-o", "args="])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&cmdlines.stdout).contains(server_token));
        // The port is heard once, from the server's own token, while it starts: neither
        // the job later (to move the route) nor any other token.
        for (token, body, want) in [
            (
                server_token,
                serde_json::json!({"port": 2222}),
                StatusCode::BAD_REQUEST,
            ),
            (
                w.token.as_str(),
                serde_json::json!({"port": 2222}),
                StatusCode::FORBIDDEN,
            ),
            (
                server_token,
                serde_json::json!({"port": "x"}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            let r = client()
                .post(format!("http://{}/hub/api/batchspawner", w.addr))
                .header("Authorization", format!("token {token}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), want, "{body}: {}", r.text().await.unwrap());
        }
        let out = run_code(&w, &w.alice, "print('still here')").await.unwrap();
        assert_eq!(out.trim(), "still here");

        // A crash and a start follow the same job: no new job, the route back, code runs.
        let followed = |h: &HubProcess| h.log_text().matches("Slurm job followed again").count();
        let before = followed(&hub);
        drop(successor);
        hub.kill9();
        hub = start_hub(&w);
        assert!(
            wait_for(Duration::from_secs(30), || {
                (followed(&hub) >= before + 2).then_some(())
            })
            .is_some(),
            "{}",
            hub.log_text()
        );
        assert_eq!(jobs_of(&c, &w.alice), std::slice::from_ref(&job));
        let out = run_code(&w, &w.alice, "print(6 * 7)")
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", log(&w, &c)));
        assert_eq!(out.trim(), "42");

        // A stop cancels the job, as alice.
        let (status, v) = api(
            &w,
            reqwest::Method::DELETE,
            &format!("/users/{}/server", w.alice.name),
            None,
        )
        .await;
        assert!(status.is_success(), "{v}");
        assert!(
            wait_for(Duration::from_secs(30), || {
                (c.job_state(&job).as_deref() == Some("CANCELLED")).then_some(())
            })
            .is_some(),
            "job {job} is {:?}\n{}",
            c.job_state(&job),
            log(&w, &c)
        );
        wait_stopped(&w, &c, &w.alice, Duration::from_secs(10)).await;

        // bob's job hits its time limit: Slurm ends it and the hub shows it stopped.
        wait_stopped(&w, &c, &w.bob, Duration::from_secs(150)).await;
        assert!(bob_started.elapsed() >= Duration::from_secs(55));
        let text = hub.log_text();
        assert!(
            text.lines().any(|l| l.contains("Slurm job over")
                && (l.contains("state=TIMEOUT") || l.contains("reason=TimeLimit"))),
            "{text}"
        );
    }

    /// What the hub's account can make the helper do, driven as the hub runs it (sudo
    /// as that account): a job of one of root's profiles open to the user, with the
    /// allow-listed environment, and a cancel of the user's own job; nothing else.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_compromised_hub_gets_a_job_of_roots_profile_and_nothing_else() {
        use sudohub::spawner::{SpawnArgs, SpawnerClient, SpawnerError};
        use sudohub::types::{ServerName, Username};
        use sudohub_protocol::spawner::ErrorKind;
        let c = Cluster::start();
        let w = world(
            &c,
            r#"env_allow = ["JUPYTERHUB_*", "JPY_API_TOKEN", "SBATCH_*", "SLURM_CONF", "LD_PRELOAD"]"#,
        );
        let mut sudo = w.hub_user.setpriv();
        sudo.extend(["sudo".to_owned(), "-n".to_owned()]);
        let slurm = sudohub::config::SlurmSection {
            slurm_conf: Some(c.conf()),
            poll_secs: 1,
            ..Default::default()
        };
        let local = SpawnerClient::new(sudo.clone(), w.helpers.spawner());
        let client = SpawnerClient::new(sudo, w.helpers.spawner())
            .with_slurm(sudohub::slurm::JobWatch::start(slurm));
        let alice = Username::parse(&w.alice.name).unwrap();
        let args = |profile: &str, extra: &[(&str, &str)]| {
            let mut env = vec![(
                "JUPYTERHUB_API_TOKEN".to_owned(),
                "a-secret-server-token-value".to_owned(),
            )];
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            SpawnArgs {
                user: alice.clone(),
                server_name: ServerName::DEFAULT,
                port: 0,
                env,
                profile: profile.to_owned(),
            }
        };
        let t = Duration::from_secs(30);
        for (profile, env, kind, says) in [
            (
                "gpu",
                vec![],
                ErrorKind::UserNotAllowed,
                "is for members of",
            ),
            (
                "x\n#SBATCH --uid=0",
                vec![],
                ErrorKind::BadValue,
                "no Slurm profile",
            ),
            (
                "small",
                vec![("SBATCH_PARTITION", "root-only")],
                ErrorKind::EnvNotAllowed,
                "not allowed for a Slurm job",
            ),
            (
                "small",
                vec![("SLURM_CONF", "/tmp/evil.conf")],
                ErrorKind::EnvNotAllowed,
                "not allowed for a Slurm job",
            ),
            (
                "small",
                vec![("LD_PRELOAD", "/tmp/evil.so")],
                ErrorKind::EnvNotAllowed,
                "LD_PRELOAD",
            ),
        ] {
            match client.spawn(args(profile, &env), t).await {
                Err(SpawnerError::Refused { kind: k, message }) => {
                    assert_eq!(k, kind, "{profile:?} {env:?}: {message}");
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{profile:?} {env:?}: {other:?}"),
            }
        }
        // A local spawn to a helper configured for Slurm.
        match local.spawn(args("", &[]), t).await {
            Err(SpawnerError::Refused { kind, message }) => {
                assert_eq!(kind, ErrorKind::BadFrame, "{message}");
                assert!(message.contains("configured for Slurm"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            jobs_of(&c, &w.alice).is_empty(),
            "a refusal submitted a job"
        );

        // The node kept busy, so that the job waits (its server would find no hub here).
        let filler = c.client(
            "sbatch",
            &[
                "--parsable",
                "-c",
                "2",
                "-o",
                "/dev/null",
                "--wrap",
                "sleep 600",
            ],
        );
        assert!(filler.status.success(), "{filler:?}");
        let handle = client
            .spawn(args("small", &[]), t)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", c.log()));
        let job = handle.pid().to_string();
        assert_eq!(jobs_of(&c, &w.alice), std::slice::from_ref(&job));
        let script = c.client("scontrol", &["write", "batch_script", &job, "-"]);
        let script = String::from_utf8_lossy(&script.stdout);
        assert!(script.contains("#SBATCH --cpus-per-task=1\n"), "{script}");
        assert!(!script.contains("a-secret-server-token-value"), "{script}");

        // A cancel reaches only this server's job of this user: not alice's other work,
        // not her job through another server's name, not hers through bob's helper.
        let other = c.client_as(
            &w.alice,
            "sbatch",
            &["--parsable", "-o", "/dev/null", "--wrap", "sleep 300"],
        );
        let other = String::from_utf8_lossy(&other.stdout).trim().to_owned();
        let other_id: u32 = other.parse().unwrap_or_else(|_| panic!("{other:?}"));
        let job_id: u32 = job.parse().unwrap();
        let bob = Username::parse(&w.bob.name).unwrap();
        let lab = ServerName::parse("lab").unwrap();
        let _ = client
            .cancel(&alice, &ServerName::DEFAULT, other_id, t)
            .await;
        let _ = client.cancel(&alice, &lab, job_id, t).await;
        let _ = client.cancel(&bob, &ServerName::DEFAULT, job_id, t).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        for j in [&job, &other] {
            let state = c.job_state(j).unwrap_or_default();
            assert!(
                matches!(state.as_str(), "PENDING" | "RUNNING"),
                "job {j}: {state}\n{}",
                c.log()
            );
        }
        assert!(c.client("scancel", &[&other]).status.success());
        // alice's own cancel works.
        client
            .cancel(&alice, &ServerName::DEFAULT, job_id, t)
            .await
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(30), || {
                matches!(
                    c.job_state(&job).as_deref(),
                    Some("CANCELLED") | Some("FAILED") | Some("COMPLETED")
                )
                .then_some(())
            })
            .is_some(),
            "{:?}",
            c.job_state(&job)
        );
        drop(handle);

        // `sudohub check` asks Slurm itself: its partitions, and a profile's that is not.
        let hub_cfg = sudohub::config::HubConfig::load(&w.config).unwrap();
        let helpers = sudohub_helpers_config::parse(
            &format!(
                "hub_user = \"sudohub\"\n[spawner]\nbackend = \"slurm\"\nhub_api_url = \"http://127.0.0.1:1/hub/api\"\n[slurm]\nslurm_conf = {:?}\n[[slurm.profile]]\nname = \"ok\"\npartition = \"debug\"\n[[slurm.profile]]\nname = \"typo\"\npartition = \"debgu\"\n",
                c.conf().display().to_string()
            ),
            std::path::Path::new("helpers.toml"),
        )
        .unwrap();
        let findings = sudohub::check::slurm_only(&hub_cfg, &helpers);
        let text: Vec<String> = findings
            .iter()
            .map(|f| format!("{} {}", if f.ok { "ok" } else { "FAIL" }, f.text))
            .collect();
        let has = |s: &str| text.iter().any(|t| t.starts_with(s));
        assert!(has("ok Slurm answers; its partitions: debug"), "{text:#?}");
        assert!(has("ok profile ok uses partition debug"), "{text:#?}");
        assert!(has("FAIL profile typo names partition debgu"), "{text:#?}");
        assert!(
            has("ok hub.toml and helpers.toml both say backend = \"slurm\""),
            "{text:#?}"
        );
        assert!(has("ok http://127.0.0.1:"), "{text:#?}");
    }
}
