//! `reload` in place (`sudohub reload`, SIGHUP, `systemctl reload`): no new process and
//! nothing dropped. The TLS certificate and key are read again; hub.toml is read again,
//! and what may change in a running hub changes from the next request on: who may log in
//! and who is an admin (`[auth]` `allowed_users`, `allowed_groups`, `admin_users`,
//! `admin_groups`) and the lockout settings. Any other change is named and refused, with
//! the way to apply it (`sudohub upgrade`: a new process, still nothing dropped); a file
//! that does not load changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::upgrade::Reload;
use crate::config::HubConfig;
use crate::state::AppState;

/// The `[auth]` keys a running hub takes.
const LIVE_AUTH_KEYS: &[&str] = &[
    "allowed_users",
    "allowed_groups",
    "admin_users",
    "admin_groups",
    "allowed_failed_logins",
    "seconds_before_next_try",
];

/// hub.toml as the running hub last took it.
pub struct LiveConfig {
    path: PathBuf,
    text: Mutex<String>,
}

impl LiveConfig {
    /// `text` is what the hub started with, read from `path`.
    pub fn new(path: PathBuf, text: String) -> Self {
        Self {
            path,
            text: Mutex::new(text),
        }
    }

    /// Reads hub.toml again and applies it to `state`: what changed, or why nothing did.
    fn reload(&self, state: &AppState) -> Result<String, String> {
        let fresh = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let cfg = HubConfig::parse(&fresh, &self.path).map_err(|e| e.to_string())?;
        let mut text = self.text.lock().unwrap_or_else(|p| p.into_inner());
        let (old, new) = (table(&text)?, table(&fresh)?);
        let (fixed, live) = differences(&old, &new);
        if !fixed.is_empty() {
            // The listening sockets move to a new process as they are.
            let sockets = ["bind", "hub_bind", "reattach_socket"];
            let tls_turned = old.contains_key("ssl_cert") != new.contains_key("ssl_cert");
            let how = if tls_turned || fixed.iter().any(|k| sockets.contains(&k.as_str())) {
                "a stop and start applies them (the listening sockets move to a new process \
                 as they are)"
            } else {
                "`sudohub upgrade` applies them with nothing dropped"
            };
            return Err(format!(
                "hub.toml not applied: {} change only with a new process; {how}",
                fixed.join(", ")
            ));
        }
        if live.is_empty() {
            return Ok("hub.toml unchanged".into());
        }
        state.auth.set_rules(cfg.auth);
        *text = fresh;
        tracing::info!(keys = %live.join(", "), "reload: hub.toml applied");
        Ok(format!("hub.toml applied: {}", live.join(", ")))
    }
}

fn table(text: &str) -> Result<toml::Table, String> {
    text.parse::<toml::Table>().map_err(|e| e.to_string())
}

/// The keys that differ between `old` and `new`: those a running hub cannot take, and
/// those it can (`auth.<key>`).
fn differences(old: &toml::Table, new: &toml::Table) -> (Vec<String>, Vec<String>) {
    let (mut fixed, mut live) = (Vec::new(), Vec::new());
    let keys = old
        .keys()
        .chain(new.keys().filter(|k| !old.contains_key(*k)));
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        match (key.as_str(), a, b) {
            ("auth", a, b) => {
                let empty = toml::Table::new();
                let table = |v: Option<&toml::Value>| v.and_then(|v| v.as_table()).cloned();
                let (a, b) = (
                    table(a).unwrap_or_else(|| empty.clone()),
                    table(b).unwrap_or(empty),
                );
                let names = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k)));
                for k in names {
                    if a.get(k) != b.get(k) {
                        let name = format!("auth.{k}");
                        if LIVE_AUTH_KEYS.contains(&k.as_str()) {
                            live.push(name);
                        } else {
                            fixed.push(name);
                        }
                    }
                }
            }
            _ => fixed.push(key.clone()),
        }
    }
    fixed.sort();
    live.sort();
    (fixed, live)
}

/// What `reload` does, as the control socket and SIGHUP call it.
pub(super) fn reloader(
    certs: Option<Arc<crate::tls::CertStore>>,
    state: &AppState,
    live: LiveConfig,
) -> Reload {
    let files: Option<(PathBuf, PathBuf)> =
        state.cfg.ssl_cert.clone().zip(state.cfg.ssl_key.clone());
    let state = state.clone();
    Arc::new(move || {
        let mut done = Vec::new();
        if let (Some(store), Some((cert, key))) = (&certs, &files) {
            store
                .reload(cert, key)
                .map_err(|e| format!("TLS certificate not reloaded; the one in use stays: {e}"))?;
            tracing::info!(cert = %cert.display(), "reload: TLS certificate reloaded");
            done.push("TLS certificate reloaded".to_owned());
        }
        done.push(live.reload(&state)?);
        Ok(done.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allow_and_admin_lists_and_lockouts_are_live() {
        let old = table("bind = \"127.0.0.1:8000\"\n[auth]\nallowed_users = [\"a\"]\n").unwrap();
        let new = table(
            "bind = \"127.0.0.1:8000\"\n[auth]\nallowed_users = [\"a\", \"b\"]\nadmin_users = [\"b\"]\n",
        )
        .unwrap();
        let (fixed, live) = differences(&old, &new);
        assert!(fixed.is_empty(), "{fixed:?}");
        assert_eq!(live, ["auth.admin_users", "auth.allowed_users"]);
        let moved = table("bind = \"127.0.0.1:9000\"\n[auth]\nsource = \"native\"\n").unwrap();
        let (fixed, live) = differences(&old, &moved);
        assert_eq!(fixed, ["auth.source", "bind"]);
        assert_eq!(live, ["auth.allowed_users"]);
        assert_eq!(differences(&old, &old), (vec![], vec![]));
    }
}
