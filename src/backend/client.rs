//! The reqwest clients aetos makes, for the identity providers (STS, Azure
//! AD, Google) and the Keystone client: rustls on ring (no OpenSSL, no
//! aws-lc C build), our timeouts, CA bundle and client certificate. The
//! backend path's hyper client ([`super::transport`]) makes the same TLS
//! choices.

use std::time::Duration;

/// Installs rustls' ring provider unless one is installed: reqwest is
/// built without a default provider (no aws-lc C build).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a reqwest client with our TLS choices (rustls on ring; no
/// OpenSSL anywhere), for Keystone and the identity providers (the backend
/// path has its own client: [`super::transport`]).
pub fn http_client(
    connect_timeout: Duration,
    timeout: Option<Duration>,
    ca_file: Option<&str>,
    client_cert: Option<(&str, &str)>,
    insecure: bool,
) -> Result<reqwest::Client, String> {
    install_crypto();
    let mut b = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .no_proxy()
        .user_agent(concat!("aetos/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("cannot read {ca}: {e}"))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("{ca}: {e}"))? {
            b = b.add_root_certificate(cert);
        }
    }
    if let Some((cert, key)) = client_cert {
        let mut pem = std::fs::read(cert).map_err(|e| format!("cannot read {cert}: {e}"))?;
        pem.push(b'\n');
        pem.extend(std::fs::read(key).map_err(|e| format!("cannot read {key}: {e}"))?);
        let id = reqwest::Identity::from_pem(&pem).map_err(|e| format!("{cert}/{key}: {e}"))?;
        b = b.identity(id);
    }
    if insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| e.to_string())
}

/// The innermost error message (reqwest's own says only "error sending
/// request"), without the URL, which may carry parameters.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
