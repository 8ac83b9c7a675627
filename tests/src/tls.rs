//! TLS for the tests' clients: a throw-away certificate made with the `openssl` command,
//! and a rustls client configuration that trusts exactly that certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Makes ring the process's rustls provider: reqwest is built without one, so that the
/// tests use the same TLS code as the hub.
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A self-signed end-entity certificate for 127.0.0.1 and `localhost`, valid for a day:
/// `(cert.pem, key.pem)` in `dir`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    self_signed_for(dir, "localhost", "IP:127.0.0.1,DNS:localhost")
}

/// The same for the common name `cn` and the `subjectAltName`s `san`
/// (e.g. `"DNS:hub.test,DNS:*.hub.test"`).
pub fn self_signed_for(dir: &Path, cn: &str, san: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", &format!("/CN={cn}")])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl, installed by scripts/deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A client side that trusts only the certificates of one PEM file.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl ClientTls {
    /// Trusts the certificates in `cert_pem`.
    pub fn trusting(cert_pem: &Path) -> Self {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(cert_pem).expect("read certificate") {
            roots.add(c.expect("PEM certificate")).expect("usable root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            config: Arc::new(config),
        }
    }

    /// The rustls configuration, for reqwest.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Runs the TLS handshake with `host` over `tcp`.
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, String> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
        tokio_rustls::TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}: {e}"))
    }
}
