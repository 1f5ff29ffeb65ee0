//! The HTTP/1.1 client of the backend path: hyper's connections over a
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
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::client::{install_crypto, root_cause};

/// One backend connection: hyper's HTTP/1 sender; its connection runs as a
/// task on the runtime that opened it.
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Where connections go: a base URL's `scheme://host[:port]`, prepared once
/// per backend (the connector's URI and the text pooled connections are
/// told apart by).
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    key: Arc<str>,
    uri: http::Uri,
}

impl Origin {
    pub(crate) fn new(scheme_and_authority: &str) -> Result<Origin, String> {
        let uri = http::Uri::try_from(scheme_and_authority)
            .map_err(|e| format!("backend URL {scheme_and_authority}: {e}"))?;
        Ok(Origin {
            key: scheme_and_authority.into(),
            uri,
        })
    }

    /// `scheme://host[:port]`.
    #[cfg(test)]
    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    fn is(&self, other: &Origin) -> bool {
        Arc::ptr_eq(&self.key, &other.key) || self.key == other.key
    }
}

/// The backend client: hyper's HTTP/1 connections, pooled per thread.
///
/// hyper runs each connection as a task on the runtime that opened it, and
/// every actix worker is a runtime of its own. On SIGTERM each worker stops
/// as soon as *its* requests are done, and its runtime drops its tasks: a
/// connection one worker opened and another reused died with the first,
/// under a request the second was still draining (`502`, "runtime dropped
/// the dispatch task"). With a pool per thread a connection lives as long
/// as the worker that uses it (and its I/O stays on that worker's thread).
///
/// A connection goes back to its thread's list as soon as its answer's head
/// has arrived; a request takes the most recently returned one that is
/// ready again (its previous answer read to the end), and opens a new one
/// when none is. So the list holds every connection of the thread, each
/// ready or busy, at most as many as requests were ever in flight at once
/// on it; one found unused for `idle_timeout` when the thread next sends a
/// request, or closed by the backend, is dropped. (hyper-util's pool, used
/// before, did the same with a hashed per-origin map and a task per request
/// waiting for the connection to be ready: doc/source/contributor/decisions.rst.)
pub(crate) struct Client {
    connector: HttpsConnector<HttpConnector>,
    /// Tells this client's connections from those of other clients on a thread.
    id: u64,
    idle_timeout: Duration,
}

/// A connection in a thread's list.
struct Pooled {
    client: u64,
    origin: Origin,
    sender: Sender,
    /// When it was last given a request.
    used: std::time::Instant,
}

thread_local! {
    /// This thread's backend connections, of every client and origin.
    static POOL: std::cell::RefCell<Vec<Pooled>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Why a backend request failed: while connecting (nothing was sent), or
/// on the connection. Its source is hyper's or the connector's error.
#[derive(Debug)]
pub(crate) struct Error {
    connect: bool,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl Error {
    /// Whether the connection could not be made (nothing was sent).
    pub(crate) fn is_connect(&self) -> bool {
        self.connect
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.connect {
            "error trying to connect"
        } else {
            "error sending request"
        })
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl Client {
    fn new(connector: HttpsConnector<HttpConnector>, idle_timeout: Duration) -> Client {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Client {
            connector,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            idle_timeout,
        }
    }

    /// Sends `request` (its URI in origin form, `/path?query`; its `Host`
    /// set) to `origin` on a ready connection of this thread, or a new one.
    /// A reused connection the backend closed before the request was
    /// written is not an error: the request is sent once more on a new one.
    pub(crate) async fn request(
        &self,
        origin: &Origin,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, Error> {
        loop {
            let (mut sender, reused) = match self.checkout(origin) {
                Some(sender) => (sender, true),
                // On the heap: a TLS handshake's future is kilobytes, which
                // every request's future would carry (and copy) if inline.
                None => (Box::pin(self.connect(origin)).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    self.put(origin, sender);
                    return Ok(response);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => {
                        tracing::debug!("pooled backend connection closed, reconnecting");
                        request = unsent;
                    }
                    _ => {
                        return Err(Error {
                            connect: false,
                            source: e.into_error().into(),
                        })
                    }
                },
            }
        }
    }

    /// The most recently used ready connection to `origin`; closed and
    /// long-unused ones met on the way are dropped.
    fn checkout(&self, origin: &Origin) -> Option<Sender> {
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let now = std::time::Instant::now();
            let mut i = pool.len();
            while i > 0 {
                i -= 1;
                let p = &pool[i];
                let stale = p.sender.is_closed()
                    || (p.sender.is_ready() && now.duration_since(p.used) >= self.idle_timeout);
                if stale {
                    pool.swap_remove(i);
                } else if p.client == self.id && p.origin.is(origin) && p.sender.is_ready() {
                    return Some(pool.swap_remove(i).sender);
                }
            }
            None
        })
    }

    fn put(&self, origin: &Origin, sender: Sender) {
        let p = Pooled {
            client: self.id,
            origin: origin.clone(),
            sender,
            used: std::time::Instant::now(),
        };
        POOL.with(|pool| pool.borrow_mut().push(p));
    }

    /// A new connection to `origin` (TCP, TLS for `https`), its task
    /// spawned on this thread (beside the request's, see
    /// [`crate::telemetry::spawn`]).
    async fn connect(&self, origin: &Origin) -> Result<Sender, Error> {
        let connect_error = |source| Error {
            connect: true,
            source,
        };
        let mut connector = self.connector.clone();
        let io = tower_service::Service::call(&mut connector, origin.uri.clone())
            .await
            .map_err(connect_error)?;
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| connect_error(e.into()))?;
        crate::telemetry::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("backend connection ended: {}", root_cause(&e));
            }
        });
        Ok(sender)
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
    Ok(Client::new(https, Duration::from_secs(60)))
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
    /// The exchange's timer, made for its head's deadline (which the head
    /// met), reset for each gap.
    timer: Pin<Box<tokio::time::Sleep>>,
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
    pub(super) fn new(
        inner: hyper::body::Incoming,
        idle: Duration,
        timer: Pin<Box<tokio::time::Sleep>>,
    ) -> Body {
        Body {
            inner,
            idle,
            timer,
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
                if !me.armed {
                    me.timer
                        .as_mut()
                        .reset(tokio::time::Instant::now() + me.idle);
                    me.armed = true;
                }
                match me.timer.as_mut().poll(cx) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A keep-alive HTTP/1.1 server on a free port answering `ok` to every
    /// request; with `close`, it closes each connection after its first
    /// answer (without saying so). Counts the connections it accepted.
    async fn server(close: bool) -> (Origin, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match sock.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.clear();
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if sock.write_all(answer).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        (
            Origin::new(&format!("http://127.0.0.1:{port}")).unwrap(),
            accepted,
        )
    }

    fn client(idle_timeout: Duration) -> Client {
        let mut c = backend_client(Duration::from_secs(2), None, None, false).unwrap();
        c.idle_timeout = idle_timeout;
        c
    }

    async fn get(c: &Client, origin: &Origin) -> Result<String, Error> {
        let mut req = http::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = http::Uri::from_static("/ready");
        req.headers_mut()
            .insert(http::header::HOST, http::HeaderValue::from_static("x"));
        let resp = c.request(origin, req).await?;
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_connection() {
        let (origin, accepted) = server(false).await;
        let c = client(Duration::from_secs(60));
        for _ in 0..20 {
            assert_eq!(get(&c, &origin).await.unwrap(), "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_requests_open_no_more_connections_than_in_flight() {
        let (origin, accepted) = server(false).await;
        let c = client(Duration::from_secs(60));
        for _ in 0..10 {
            let all = futures_util::future::join_all((0..4).map(|_| get(&c, &origin))).await;
            assert!(all.iter().all(|r| r.as_deref().ok() == Some("ok")));
        }
        let n = accepted.load(Ordering::SeqCst);
        assert!((1..=4).contains(&n), "{n} connections for 4 in flight");
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_is_replaced_without_an_error() {
        let (origin, accepted) = server(true).await;
        let c = client(Duration::from_secs(60));
        for _ in 0..5 {
            assert_eq!(get(&c, &origin).await.unwrap(), "ok");
            // Time for the close to arrive.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_connection_unused_for_the_idle_timeout_is_not_reused() {
        let (origin, accepted) = server(false).await;
        let c = client(Duration::from_millis(100));
        assert_eq!(get(&c, &origin).await.unwrap(), "ok");
        assert_eq!(get(&c, &origin).await.unwrap(), "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(get(&c, &origin).await.unwrap(), "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connections_are_not_shared_between_origins_or_clients() {
        let (a, accepted_a) = server(false).await;
        let (b, accepted_b) = server(false).await;
        let (c1, c2) = (
            client(Duration::from_secs(60)),
            client(Duration::from_secs(60)),
        );
        for _ in 0..3 {
            get(&c1, &a).await.unwrap();
            get(&c1, &b).await.unwrap();
            get(&c2, &a).await.unwrap();
        }
        assert_eq!(accepted_a.load(Ordering::SeqCst), 2);
        assert_eq!(accepted_b.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let origin = Origin::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = get(&client(Duration::from_secs(60)), &origin)
            .await
            .unwrap_err();
        assert!(e.is_connect());
        assert!(root_cause(&e).contains("refused"), "{}", root_cause(&e));
    }
}
