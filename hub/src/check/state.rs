//! Checks of the hub's own state: database, cookie secret, TLS files, port, re-attach
//! socket directory.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Report;
use crate::config::HubConfig;

pub(super) fn state(cfg: &HubConfig, r: &mut Report) {
    if cfg.db.exists() {
        let version = rusqlite::Connection::open_with_flags(
            &cfg.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| c.pragma_query_value(None, "user_version", |row| row.get::<_, usize>(0)));
        match version {
            Ok(v) if v >= 1 => r.ok(format!(
                "database {} is readable, schema version {v}",
                cfg.db.display()
            )),
            Ok(v) => r.fail(format!(
                "database {} has schema version {v}: start the hub once to migrate it",
                cfg.db.display()
            )),
            Err(e) => r.fail(format!("database {} cannot be read: {e}", cfg.db.display())),
        }
    } else {
        r.ok(format!(
            "database {} will be created at the first start",
            cfg.db.display()
        ));
    }
    match std::fs::metadata(&cfg.cookie_secret_file) {
        Ok(m) => r.check(
            m.mode() & 0o077 == 0,
            format!(
                "cookie secret {} is private (mode {:04o})",
                cfg.cookie_secret_file.display(),
                m.mode() & 0o777
            ),
            format!(
                "cookie secret {} has mode {:04o}: fix with `chmod 600 {0}`",
                cfg.cookie_secret_file.display(),
                m.mode() & 0o777
            ),
        ),
        Err(_) => r.ok(format!(
            "cookie secret {} will be created at the first start",
            cfg.cookie_secret_file.display()
        )),
    }
    if let (Some(cert), Some(key)) = (&cfg.ssl_cert, &cfg.ssl_key) {
        tls(cert, key, r);
    }
    let free = std::net::TcpListener::bind(cfg.bind).is_ok();
    if free {
        r.ok(format!("port {} is free", cfg.bind.port()));
    } else {
        let hub = probe_hub(cfg);
        r.check(
            hub,
            format!("sudohub is running on port {}", cfg.bind.port()),
            format!("port {} is taken by something that is not sudohub: change `bind` in hub.toml or stop it", cfg.bind.port()),
        );
    }
    let dir = cfg.reattach_socket.parent().unwrap_or(Path::new("/"));
    r.check(
        dir.is_dir(),
        format!("re-attach socket directory {} exists", dir.display()),
        format!("re-attach socket directory {} is missing: `install -d -o sudohub -g sudohub -m 0755 {0}`", dir.display()),
    );
}

fn tls(cert: &Path, key: &Path, r: &mut Report) {
    match crate::tls::server_config(cert, key) {
        Ok(_) => r.ok(format!(
            "TLS certificate {} and key {} load and match",
            cert.display(),
            key.display()
        )),
        Err(e) => r.fail(format!("TLS: {e}")),
    }
    if let Ok(m) = std::fs::metadata(key) {
        r.check(
            m.mode() & 0o007 == 0,
            format!("TLS key {} is not readable by others", key.display()),
            format!(
                "TLS key {} has mode {:04o}: fix with `chown root:sudohub {0} && chmod 0640 {0}`",
                key.display(),
                m.mode() & 0o777
            ),
        );
    }
}

/// Whether sudohub answers on its plain-HTTP listener: `bind`, or `hub_bind` with TLS.
fn probe_hub(cfg: &HubConfig) -> bool {
    use std::io::{Read, Write};
    let port = if cfg.tls() {
        cfg.hub_bind.port()
    } else {
        cfg.bind.port()
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let req = format!(
        "GET {}hub/api HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        cfg.base_url
    );
    let mut out = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut out).is_ok()
        && out.to_ascii_lowercase().contains("x-jupyterhub-version")
}
