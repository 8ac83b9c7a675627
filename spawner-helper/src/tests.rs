//! Unit tests of the crate, kept apart from the code an auditor reads.

mod request {
    use crate::request::*;
    use std::collections::BTreeMap;
    use sudohub_helpers_config::SpawnerConfig;
    use sudohub_protocol::spawner::EnvVar;
    use sudohub_protocol::spawner::{ErrorKind, Spawn};
    use sudohub_protocol::Bounded;

    fn spawn(name: &str, port: u16, env: &[(&str, &str)]) -> Spawn {
        Spawn {
            server_name: Bounded::new(name).unwrap(),
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
            spawn("", 8888, &[("JUPYTERHUB_API_TOKEN", "x")]),
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
                "",
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
        let set = check(spawn("", 8888, &[]), &cfg).unwrap();
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
            let e = check(spawn("", 8888, &[(name, value)]), &cfg).unwrap_err();
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
            let e = check(spawn("", 8888, &[(name, "x")]), &cfg).unwrap_err();
            assert_eq!(e.kind, ErrorKind::EnvNotAllowed, "{name}");
        }
        let e = check(spawn("", 80, &[]), &cfg).unwrap_err();
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
