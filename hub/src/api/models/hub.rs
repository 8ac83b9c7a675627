//! The hub's own shapes: the version, `/info`, and the service model.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::urls::Urls;

/// `GET /hub/api`.
#[derive(Debug, Serialize)]
pub struct Version {
    /// The JupyterHub version whose API this is.
    pub version: &'static str,
}

/// `GET /hub/api/info`.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The JupyterHub version whose API this is.
    pub version: &'static str,
    /// What runs the hub: `sudohub <version>` (JupyterHub puts Python's version here).
    pub python: String,
    /// The hub's executable.
    pub sys_executable: String,
    /// The spawner: class and version.
    pub spawner: ClassInfo,
    /// The authenticator: class and version.
    pub authenticator: ClassInfo,
}

/// `{"class", "version"}` of [`Info`].
#[derive(Debug, Serialize)]
pub struct ClassInfo {
    /// The implementation's name.
    pub class: &'static str,
    /// Its version.
    pub version: &'static str,
}

/// The service model: `GET /hub/api/services[/<name>]`.
#[derive(Debug, Serialize)]
pub struct ServiceModel {
    /// Always `service`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Admin rights.
    pub admin: bool,
    /// `["admin"]` for an admin service.
    pub roles: Vec<&'static str>,
    /// Where the hub proxies its prefix to (`""`: not proxied).
    pub url: String,
    /// `<base>services/<name>/` when proxied.
    pub prefix: String,
    /// The hub starts no service process: always empty.
    pub command: Vec<String>,
    /// Always 0 (no process of the hub's).
    pub pid: u32,
    /// Free-form information (none).
    pub info: BTreeMap<String, serde_json::Value>,
    /// Whether it is listed for users.
    pub display: bool,
}

impl ServiceModel {
    /// The model of the configured service `svc`.
    pub fn of(urls: &Urls, svc: &crate::config::ServiceSection) -> Self {
        let proxied = svc.url.clone().unwrap_or_default();
        Self {
            kind: "service",
            name: svc.name.clone(),
            admin: svc.admin,
            roles: if svc.admin { vec!["admin"] } else { Vec::new() },
            prefix: if proxied.is_empty() {
                String::new()
            } else {
                urls.service(&svc.name)
            },
            url: proxied,
            command: Vec::new(),
            pid: 0,
            info: BTreeMap::new(),
            display: true,
        }
    }
}

/// `GET /hub/api/user` for a service token: the service model plus the credential.
#[derive(Debug, Serialize)]
pub struct ServiceWhoAmI {
    /// The service.
    #[serde(flatten)]
    pub service: ServiceModel,
    /// The scopes of this credential.
    pub scopes: Vec<String>,
    /// Always null (a configured token, not a stored one).
    pub token_id: Option<String>,
    /// Always null.
    pub session_id: Option<String>,
}
