//! Unit tests of the crate, kept apart from the code an auditor reads.

mod request {
    use crate::request::*;
    use std::collections::BTreeMap;
    use sudohub_helpers_config::SpawnerConfig;
    use sudohub_protocol::spawner::EnvVar;
    use sudohub_protocol::spawner::{ErrorKind, Spawn};
    use sudohub_protocol::Bounded;

    fn spawn(port: u16, env: &[(&str, &str)]) -> Spawn {
        Spawn {
            port,
            env: env
                .iter()
                .map(|(k, v)| EnvVar {
                    name: Bounded::new(*k).unwrap(),
                    value: Bounded::new(*v).unwrap(),
                })
                .collect(),
        }
    }

    #[test]
    fn accepts_a_normal_request() {
        let c = check(
            spawn(8888, &[("JUPYTERHUB_API_TOKEN", "x")]),
            &SpawnerConfig::default(),
        )
        .unwrap();
        assert_eq!(c.env["JUPYTERHUB_API_TOKEN"], "x");
    }

    #[test]
    fn the_hub_api_comes_from_the_config() {
        let cfg = SpawnerConfig {
            hub_api_url: Some("http://127.0.0.1:8000/hub/api".into()),
            ..SpawnerConfig::default()
        };
        let ok = check(
            spawn(
                8888,
                &[
                    ("JUPYTERHUB_API_URL", "http://127.0.0.1:8000/hub/api"),
                    (
                        "JUPYTERHUB_ACTIVITY_URL",
                        "http://127.0.0.1:8000/hub/api/users/a/activity",
                    ),
                ],
            ),
            &cfg,
        )
        .unwrap();
        assert_eq!(
            ok.env["JUPYTERHUB_API_URL"],
            "http://127.0.0.1:8000/hub/api"
        );
        // Not sent: set from the config.
        let set = check(spawn(8888, &[]), &cfg).unwrap();
        assert_eq!(
            set.env["JUPYTERHUB_API_URL"],
            "http://127.0.0.1:8000/hub/api"
        );
        for (name, value) in [
            ("JUPYTERHUB_API_URL", "http://127.0.0.1:9999/hub/api"),
            ("JUPYTERHUB_API_URL", "http://127.0.0.1:8000/hub/api/"),
            (
                "JUPYTERHUB_ACTIVITY_URL",
                "http://evil.example/hub/api/users/a/activity",
            ),
            (
                "JUPYTERHUB_ACTIVITY_URL",
                "http://127.0.0.1:8000/hub/apix/users/a/activity",
            ),
            (
                "JUPYTERHUB_ACTIVITY_URL",
                "http://127.0.0.1:8000/hub/api/../../x",
            ),
        ] {
            let e = check(spawn(8888, &[(name, value)]), &cfg).unwrap_err();
            assert_eq!(e.kind, ErrorKind::BadValue, "{name}={value}");
            assert!(e.message.contains(name), "{}", e.message);
        }
    }

    #[test]
    fn refuses_dangerous_env_and_values() {
        let cfg = SpawnerConfig::default();
        for name in [
            "LD_PRELOAD",
            "PATH",
            "PYTHONPATH",
            "JUPYTERHUB_SERVICE_URL",
            "JUPYTER_CONFIG_DIR",
            "A-B",
        ] {
            let e = check(spawn(8888, &[(name, "x")]), &cfg).unwrap_err();
            assert_eq!(e.kind, ErrorKind::EnvNotAllowed, "{name}");
        }
        let e = check(spawn(80, &[]), &cfg).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadValue);
        for bad in [
            "../x",
            "-a",
            "a-",
            "A",
            "a--b",
            "a/b",
            "1a",
            &"a".repeat(31),
        ] {
            assert!(!valid_server_name(bad), "{bad}");
        }
    }

    #[test]
    fn prefix_is_sanitised() {
        let mut env = BTreeMap::new();
        assert_eq!(service_prefix(&env), "/");
        env.insert("JUPYTERHUB_SERVICE_PREFIX".into(), "/user/alice/".into());
        assert_eq!(service_prefix(&env), "/user/alice/");
        for bad in ["/user/../x/", "//evil/", "/a b/", "user/", "/user"] {
            env.insert("JUPYTERHUB_SERVICE_PREFIX".into(), bad.into());
            assert_eq!(service_prefix(&env), "/", "{bad}");
        }
    }
}

mod cgroup {
    use crate::cgroup::limit_files;
    use sudohub_helpers_config::LimitSet;

    #[test]
    fn limits_become_the_files_of_each_version() {
        let l = LimitSet {
            mem_limit: Some(128 << 20),
            cpu_limit: Some(500),
            pids_limit: Some(64),
            isolate_tmp: None,
        };
        let all: Vec<String> = ["memory", "cpu", "cpuacct", "pids", "freezer"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v1 = limit_files(false, &all, &l);
        assert!(v1.contains(&("memory.limit_in_bytes", "134217728".into())));
        assert!(v1.contains(&("memory.memsw.limit_in_bytes", "134217728".into())));
        assert!(v1.contains(&("cpu.cfs_quota_us", "50000".into())));
        assert!(v1.contains(&("pids.max", "64".into())));
        // A hierarchy gets only its own controller's files.
        let only_pids = limit_files(false, &["pids".to_string()], &l);
        assert_eq!(only_pids, vec![("pids.max", "64".to_string())]);
        let v2 = limit_files(true, &all, &l);
        assert!(v2.contains(&("memory.max", "134217728".into())));
        assert!(v2.contains(&("memory.swap.max", "0".into())));
        assert!(v2.contains(&("cpu.max", "50000 100000".into())));
        // The smallest quota the kernel takes is 1 ms per 100 ms.
        let tiny = LimitSet {
            cpu_limit: Some(1),
            ..LimitSet::default()
        };
        assert!(limit_files(true, &all, &tiny).contains(&("cpu.max", "1000 100000".into())));
        assert!(limit_files(false, &all, &LimitSet::default()).is_empty());
    }

    #[test]
    fn status_fields_are_read_by_name() {
        let status = "Name:\tx\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\n";
        assert_eq!(
            crate::drop::field(status, "CapBnd"),
            Some("0000000000000000")
        );
        assert_eq!(crate::drop::field(status, "NoNewPrivs"), Some("1"));
        assert_eq!(crate::drop::field(status, "Cap"), None);
    }
}
