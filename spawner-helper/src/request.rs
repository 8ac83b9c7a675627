//! Validation of the hub's spawn request: the only free inputs the helper accepts there
//! are a port and allow-listed environment variables (the server name came with the
//! target, checked by the root phase with [`valid_server_name`]).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use sudohub_helpers_config::SpawnerConfig;
use sudohub_protocol::spawner::{EnvVar, ErrorKind, Spawn, MAX_ENV_VARS};

use crate::error::HelperError;

/// A spawn request that passed every check.
#[derive(Debug)]
pub struct Checked {
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Allowed variables from the hub, by name.
    pub env: BTreeMap<String, String>,
}

/// Checks a spawn request against the rules in `config`.
pub fn check(req: Spawn, config: &SpawnerConfig) -> Result<Checked, HelperError> {
    // Privileged ports are refused: the server must never look like a system service.
    if req.port < 1024 {
        return Err(HelperError::new(
            ErrorKind::BadValue,
            format!("port {} is below 1024", req.port),
        ));
    }
    let env = check_env(req.env, config)?;
    Ok(Checked {
        port: req.port,
        env,
    })
}

/// Checks the hub's environment variables against the allow-list (and `hub_api_url`).
pub fn check_env(
    vars: Vec<EnvVar>,
    config: &SpawnerConfig,
) -> Result<BTreeMap<String, String>, HelperError> {
    if vars.len() > MAX_ENV_VARS {
        return Err(HelperError::new(
            ErrorKind::EnvNotAllowed,
            format!(
                "{} environment variables; at most {MAX_ENV_VARS}",
                vars.len()
            ),
        ));
    }
    let mut env = BTreeMap::new();
    for var in vars {
        let name = var.name.into_inner();
        // The name is echoed in the error; the value never is (it may be a token).
        if !valid_env_name(&name) || !config.env_allowed(&name) {
            return Err(HelperError::new(
                ErrorKind::EnvNotAllowed,
                format!("environment variable {name:?} is not allowed"),
            ));
        }
        if env.insert(name.clone(), var.value.into_inner()).is_some() {
            return Err(HelperError::new(
                ErrorKind::EnvNotAllowed,
                format!("environment variable {name:?} given twice"),
            ));
        }
    }
    pin_hub_api(&mut env, config)?;
    Ok(env)
}

/// With `hub_api_url` in the config, the server talks to that Hub API only: a request
/// that names another one (for its API or its activity reports) is refused, and the
/// variable is set from the config.
fn pin_hub_api(
    env: &mut BTreeMap<String, String>,
    config: &SpawnerConfig,
) -> Result<(), HelperError> {
    let Some(api) = &config.hub_api_url else {
        return Ok(());
    };
    let elsewhere = |name: &str| {
        HelperError::new(
            ErrorKind::BadValue,
            format!("{name} must be under hub_api_url {api} of helpers.toml"),
        )
    };
    if env.get("JUPYTERHUB_API_URL").is_some_and(|v| v != api) {
        return Err(elsewhere("JUPYTERHUB_API_URL"));
    }
    let activity_ok = |v: &String| {
        v.strip_prefix(api.as_str())
            .is_some_and(|rest| rest.starts_with('/') && !rest.contains(".."))
    };
    if env
        .get("JUPYTERHUB_ACTIVITY_URL")
        .is_some_and(|v| !activity_ok(v))
    {
        return Err(elsewhere("JUPYTERHUB_ACTIVITY_URL"));
    }
    env.insert("JUPYTERHUB_API_URL".to_owned(), api.clone());
    Ok(())
}

/// The default server's `""`, or a named server's name by JupyterHub 6's rule (see
/// [`sudohub_helpers_config::is_server_name`]), which is also a safe file name.
pub fn valid_server_name(name: &str) -> bool {
    name.is_empty() || sudohub_helpers_config::is_server_name(name)
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The URL prefix the server is served under: the hub's `JUPYTERHUB_SERVICE_PREFIX` when it
/// is a plain absolute path ending in `/`, else `/`. It ends up in the URL the helper builds.
pub fn service_prefix(env: &BTreeMap<String, String>) -> String {
    let ok = |p: &str| {
        p.starts_with('/')
            && p.ends_with('/')
            && !p.contains("//")
            && !p.split('/').any(|seg| seg == "..")
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/-_.~%@+".contains(&c))
    };
    match env.get("JUPYTERHUB_SERVICE_PREFIX") {
        Some(p) if ok(p) => p.clone(),
        _ => "/".to_owned(),
    }
}
