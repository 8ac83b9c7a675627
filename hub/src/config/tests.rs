//! hub.toml's parsing and checks.
use super::*;

fn p(text: &str) -> Result<HubConfig, ConfigError> {
    HubConfig::parse(text, Path::new("hub.toml"))
}

#[test]
fn generated_file_parses_to_the_defaults() {
    let c = p(GENERATED).unwrap();
    assert_eq!(c, p("").unwrap());
    assert_eq!(c.bind.port(), 8000);
    assert_eq!(c.auth.allowed_groups, vec!["jupyterhub"]);
    assert_eq!(c.proxy.idle_timeout_secs, 3600);
    assert_eq!(c.api_url(), "http://127.0.0.1:8000/hub/api");
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let e = p("bnid = \"1.2.3.4:1\"").unwrap_err().to_string();
    assert!(e.contains("bnid"), "{e}");
    let e = p("[spawner]\nstart_timout_secs = 3")
        .unwrap_err()
        .to_string();
    assert!(e.contains("start_timout_secs"), "{e}");
    for (text, key) in [
        ("base_url = \"jupyter\"", "base_url"),
        ("bind = \"nonsense\"", "bind"),
        ("[spawner]\nport_range = [80, 90]", "port_range"),
        ("ssl_cert = \"/x\"", "ssl_key"),
        ("ssl_key = \"/x\"", "ssl_cert"),
        (
            "ssl_cert = \"/c\"\nssl_key = \"/k\"\nhub_bind = \"0.0.0.0:8081\"",
            "hub_bind",
        ),
        ("[[services]]\nname = \"a b\"", "services.name"),
        ("[auth]\nadmin_users = [\"-rf\"]", "admin_users"),
        ("[proxy]\nidle_timeout_secs = 0", "idle_timeout_secs"),
    ] {
        let e = p(text).unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}

#[test]
fn base_url_shapes_the_api_url() {
    let c = p("base_url = \"/jupyterlab/\"\nbind = \"127.0.0.1:9000\"").unwrap();
    assert_eq!(c.api_url(), "http://127.0.0.1:9000/jupyterlab/hub/api");
}

#[test]
fn tls_moves_the_api_to_hub_bind_and_secures_cookies() {
    let plain = p("").unwrap();
    assert!(!plain.tls() && !plain.secure_cookies());
    let c = p("ssl_cert = \"/c\"\nssl_key = \"/k\"\nhub_bind = \"127.0.0.1:8181\"").unwrap();
    assert!(c.tls() && c.secure_cookies());
    assert_eq!(c.api_url(), "http://127.0.0.1:8181/hub/api");
}
