//! TLS for the public listener (`ssl_cert` / `ssl_key`), with rustls.
//!
//! Handshakes run in their own tasks, so one slow or silent client cannot hold up the
//! accept loop; finished connections are handed to axum through [`TlsListener`]. Only
//! HTTP/1.1 is offered by ALPN: WebSockets to JupyterLab's kernels are HTTP/1.1 upgrades,
//! and a browser that negotiated HTTP/2 would need RFC 8441 for them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in flight at once; more wait in the kernel's accept queue.
const MAX_HANDSHAKES: usize = 256;

/// Why the certificate or key cannot be used. Each names the file and what to do.
#[derive(Debug)]
pub enum TlsError {
    /// A file cannot be read (missing, or not readable by the hub's user).
    Read(PathBuf, std::io::Error),
    /// The certificate file holds no PEM certificate.
    NoCertificate(PathBuf),
    /// The key file holds no PEM private key.
    NoKey(PathBuf),
    /// rustls refused the pair (for example a key that does not match the certificate).
    Rejected(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(p, e) => write!(
                f,
                "cannot read {}: {e} (it must be readable by the hub's user, e.g. root:sudohub 0640)",
                p.display()
            ),
            Self::NoCertificate(p) => write!(
                f,
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                p.display()
            ),
            Self::NoKey(p) => write!(
                f,
                "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                p.display()
            ),
            Self::Rejected(m) => write!(f, "ssl_cert/ssl_key rejected: {m}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The server config for `ssl_cert` and `ssl_key` (PEM). Refuses a missing file, a file
/// without a certificate or key, and a key that does not belong to the certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    reloadable(cert, key).map(|(config, _)| config)
}

/// [`server_config`], and the store its certificate comes from, which
/// [`CertStore::reload`] replaces in place (a renewed certificate, on SIGHUP): new
/// handshakes get the new one; established connections keep theirs.
pub fn reloadable(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<ServerConfig>, Arc<CertStore>), TlsError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let store = Arc::new(CertStore {
        current: RwLock::new(certified(cert, key, &provider)?),
        provider: provider.clone(),
    });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rejected(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(store.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), store))
}

/// The certificate and key being served, replaceable while the hub runs.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    provider: Arc<CryptoProvider>,
}

impl CertStore {
    /// Reads `cert` and `key` again and serves them from the next handshake on; on any
    /// error the certificate in use stays.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let fresh = certified(cert, key, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn certified(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|e| TlsError::Read(cert.to_owned(), e))?;
    let key_pem = std::fs::read(key).map_err(|e| TlsError::Read(key.to_owned(), e))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(key.to_owned()))?;
    CertifiedKey::from_der(chain, key_der, provider)
        .map(Arc::new)
        .map_err(|e| TlsError::Rejected(e.to_string()))
}

/// Connections accepted on `tcp` that finished their TLS handshake, until `stop`:
/// handshakes already under way then still finish and come out; the channel ends after
/// the last.
pub fn accept(
    tcp: TcpListener,
    config: Arc<ServerConfig>,
    stop: CancellationToken,
) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
    let (tx, ready) = mpsc::channel(64);
    tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx, stop));
    ready
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            r = tcp.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "tls: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "tls: handshake failed"),
                Err(_) => tracing::debug!(%peer, "tls: handshake timed out"),
            }
        });
    }
}
