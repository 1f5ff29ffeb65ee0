//! The HTTP/1.1 client of the backend path: hyper's own client over a
//! rustls connector, with the TLS choices of [`super::client`] (the
//! platform's roots plus `ca_file`, a client certificate, `insecure`).
//!
//! reqwest stays for Keystone and the identity providers, where its
//! conveniences matter; on the path every forwarded request takes, its
//! layers cost more than the rest of the proxy (a URL parse of the request
//! and of a placeholder URL for every answer, redirect and retry layers:
//! doc/source/contributor/decisions.rst, "Backend HTTP client").
//!
//! An answer's body is a [`Body`]: hyper's, with every gap between two
//! pieces bounded by `[prometheus] read_timeout` — when a gap is longer the
//! body ends with an error (logged), so that the caller's connection is
//! aborted rather than a truncated answer ended cleanly.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::client::{install_crypto, root_cause};

/// hyper's client over the rustls connector: one connection pool.
type Pooled = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The backend client: one connection pool per thread.
///
/// hyper runs each connection as a task on the runtime that opened it, and
/// every actix worker is a runtime of its own. On SIGTERM each worker stops
/// as soon as *its* requests are done, and its runtime drops its tasks: a
/// connection one worker opened and another reused died with the first,
/// under a request the second was still draining (`502`, "runtime dropped
/// the dispatch task"). With a pool per thread a connection lives as long
/// as the worker that uses it (and its I/O stays on that worker's thread).
pub(crate) struct Client {
    connector: HttpsConnector<HttpConnector>,
    /// Tells this client's pools from those of other clients on a thread.
    id: u64,
}

thread_local! {
    /// This thread's pool of each client (a few clients per process).
    static POOLS: std::cell::RefCell<Vec<(u64, Pooled)>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Client {
    fn new(connector: HttpsConnector<HttpConnector>) -> Client {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Client {
            connector,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Sends `request` on this thread's pool (made on first use).
    pub(crate) fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> hyper_util::client::legacy::ResponseFuture {
        POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            let i = match pools.iter().position(|(id, _)| *id == self.id) {
                Some(i) => i,
                None => {
                    let pool = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(Duration::from_secs(60))
                        .build(self.connector.clone());
                    pools.push((self.id, pool));
                    pools.len() - 1
                }
            };
            pools[i].1.request(request)
        })
    }
}

/// A backend answer, its body bounded in its gaps.
pub type Response = http::Response<Body>;

/// Builds the backend client: HTTP and HTTPS, HTTP/1.1, `TCP_NODELAY`,
/// idle connections kept 60 s, never a proxy.
pub(crate) fn backend_client(
    connect_timeout: Duration,
    ca_file: Option<&str>,
    client_cert: Option<(&str, &str)>,
    insecure: bool,
) -> Result<Client, String> {
    install_crypto();
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous();
    let builder = if insecure {
        builder.with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
    } else {
        let extra = match ca_file {
            Some(ca) => CertificateDer::pem_file_iter(ca)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{ca}: {e}"))?,
            None => Vec::new(),
        };
        let verifier = if extra.is_empty() {
            rustls_platform_verifier::Verifier::new(provider)
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
        }
        .map_err(|e| format!("TLS roots: {e}"))?;
        builder.with_custom_certificate_verifier(Arc::new(verifier))
    };
    let tls = match client_cert {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{cert}: {e}"))?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{key}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{cert}: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::new(https))
}

/// `[prometheus] insecure`: any certificate is accepted (signatures are
/// still checked, so the handshake itself is sound).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The body of a backend answer; a gap longer than `idle` ends it with an
/// error. The timer is armed only when the backend has nothing ready, so an
/// answer that arrives in one piece never touches it.
pub struct Body {
    inner: hyper::body::Incoming,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the timer is running for the current gap.
    armed: bool,
    done: bool,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Body {
    pub(super) fn new(inner: hyper::body::Incoming, idle: Duration) -> Body {
        Body {
            inner,
            idle,
            timer: None,
            armed: false,
            done: false,
        }
    }

    /// The body as a stream of its data pieces.
    pub fn into_stream(self) -> http_body_util::BodyDataStream<Body> {
        http_body_util::BodyExt::into_data_stream(self)
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let me = self.get_mut();
        if me.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut me.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                me.armed = false;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                me.done = true;
                let why = root_cause(&e);
                tracing::warn!("backend answer cut: {why}");
                Poll::Ready(Some(Err(std::io::Error::other(why))))
            }
            Poll::Ready(None) => {
                me.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + me.idle;
                let timer = me
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !me.armed {
                    timer.as_mut().reset(deadline);
                    me.armed = true;
                }
                match timer.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        me.done = true;
                        let idle = me.idle;
                        tracing::warn!(
                            "backend answer cut: no data for {idle:?} ([prometheus] read_timeout)"
                        );
                        Poll::Ready(Some(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("backend sent no data for {idle:?}"),
                        ))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
