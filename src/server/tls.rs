//! TLS on the API listener (`[api] tls_cert_file`, `tls_key_file`,
//! `tls_client_ca_file`), with rustls and the ring provider the clients
//! already use.
//!
//! The certificate is re-read when its files change (cert-manager or a
//! Kubernetes Secret rotating it): each handshake, at most once per
//! [`CHECK_EVERY`], looks at the files' modification times and sizes, and
//! a changed pair that loads and matches replaces the one in use. New
//! connections get the new certificate; established ones keep theirs, so
//! nothing is dropped. A pair that does not load (a half-written rotation,
//! a key that does not match) is logged once and the last good one stays.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

/// Longest time between two looks at the certificate files.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The files TLS is configured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to (mTLS); a client
    /// without a valid certificate is refused in the handshake.
    pub client_ca: Option<PathBuf>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listener's TLS configuration: the reloading certificate and, with
/// a client CA, mandatory client certificates. Fails with a message
/// naming the option at fault.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, String> {
    let resolver = Reloading::new(files.cert.clone(), files.key.clone())?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("[api] tls_cert_file: {e}"))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let label = "[api] tls_client_ca_file";
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca).map_err(|e| format!("{label}: {e}"))? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{label}: {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| format!("{label}: {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// Reads a certificate chain and its key, and checks that they belong
/// together. The message names the option and file (never key material).
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = read_certs(cert).map_err(|e| format!("[api] tls_cert_file: {e}"))?;
    let der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("[api] tls_key_file: {}: {e}", key.display()))?;
    let pair = CertifiedKey::from_der(chain, der, &provider()).map_err(|e| {
        format!(
            "[api] tls_key_file: {} does not go with {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    Ok(pair)
}

/// What the files looked like when last loaded: modification time and size
/// of each.
type Stamp = [(Option<SystemTime>, u64); 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| std::fs::metadata(p).map_or((None, 0), |m| (m.modified().ok(), m.len()));
    [one(cert), one(key)]
}

/// A certificate resolver that follows its files.
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamp when `current` was loaded, and the last stamp that
    /// failed to load (logged once).
    seen: Mutex<(Stamp, Option<Stamp>)>,
    epoch: Instant,
    /// Milliseconds after `epoch` before which the files are not looked at.
    next_check_ms: AtomicU64,
}

impl fmt::Debug for Reloading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloading")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Reloading {
    /// Loads the pair now (an error stops start-up).
    pub fn new(cert: PathBuf, key: PathBuf) -> Result<Reloading, String> {
        let seen = stamp(&cert, &key);
        let pair = load_pair(&cert, &key)?;
        Ok(Reloading {
            current: RwLock::new(Arc::new(pair)),
            seen: Mutex::new((seen, None)),
            cert,
            key,
            epoch: Instant::now(),
            next_check_ms: AtomicU64::new(0),
        })
    }

    /// Reloads the pair if the files changed since it was loaded.
    fn maybe_reload(&self) {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_check_ms.load(Ordering::Relaxed);
        let every = u64::try_from(CHECK_EVERY.as_millis()).unwrap_or(1000);
        if now_ms < next
            || self
                .next_check_ms
                .compare_exchange(next, now_ms + every, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let now = stamp(&self.cert, &self.key);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if now == seen.0 {
            return;
        }
        match load_pair(&self.cert, &self.key) {
            Ok(pair) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
                *seen = (now, None);
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                if seen.1 != Some(now) {
                    tracing::error!("TLS certificate not reloaded, keeping the one in use: {e}");
                    seen.1 = Some(now);
                }
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}
