//! Backend stage: `BackendRequest → streamed response`.
//!
//! One HTTP client for the Prometheus-compatible backends, built once from
//! `[prometheus]` (TLS, client certificate, timeouts); one place —
//! [`auth::BackendAuth`] — that decides how an outgoing request is
//! authenticated (one file per method: [`bearer_file`], [`sigv4`] with
//! [`aws_credentials`], [`azure`]); an optional tenant header
//! ([`tenant`]); and one or more equivalent backends ([`pool`]) with
//! background health checks, round robin and failover. Nothing of the
//! caller's own credentials (`X-Auth-Token`, `Authorization`, cookies,
//! identity headers) is ever copied here: only the headers listed in
//! [`FORWARDED_REQUEST_HEADERS`] go out.

pub mod auth;
pub mod aws_credentials;
pub mod aws_metadata;
pub mod azure;
pub mod bearer_file;
pub mod google;
pub mod oauth;
pub mod pool;
pub mod refresh;
pub mod sigv4;
pub mod tenant;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::api::rewrite::Params;
pub use auth::{BackendAuth, Outgoing};
pub use pool::TargetReport;
pub use tenant::TenantHeader;

/// Request headers copied from the caller to the backend. Everything else
/// (tokens, `Authorization`, cookies, identity headers) stays behind.
pub const FORWARDED_REQUEST_HEADERS: &[&str] =
    &["accept", "accept-encoding", "content-type", "user-agent"];

/// Response headers copied from the backend to the caller.
pub const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "content-disposition",
    "cache-control",
    "vary",
    "warning",
];

/// One request to the backend, after the tenancy stage.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    pub method: Method,
    /// Path below the backend's base URL, e.g. `/api/v1/query`.
    pub path: String,
    pub params: Params,
    /// Raw body for non-form requests (forwarded as is, usually empty).
    pub raw_body: Bytes,
    /// `(name, value)` of the forwarded request headers.
    pub headers: Vec<(String, String)>,
    /// The project a scoped caller is confined to (`None`: privileged), for
    /// a per-project tenant header.
    pub project: Option<String>,
}

impl BackendRequest {
    /// Whether sending the request twice does no harm: reads (GET, HEAD,
    /// and the form POSTs of the query APIs), not the admin APIs.
    pub fn is_idempotent(&self) -> bool {
        self.method == Method::GET
            || self.method == Method::HEAD
            || (self.method == Method::POST && !self.path.contains("/admin/"))
    }
}

/// Why the backend did not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    #[error("backend did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot authenticate to the backend ({method}): {why}")]
    Credentials { method: &'static str, why: String },
    #[error("backend request failed: {0}")]
    Other(String),
}

/// Settings of the backend connection, from `[prometheus]`.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// One URL, or several equivalent ones (HA); each may carry a path prefix.
    pub base_urls: Vec<Url>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// PEM CA bundle to trust instead of the system roots.
    pub ca_file: Option<String>,
    /// PEM client certificate and key (mTLS).
    pub client_cert: Option<(String, String)>,
    pub insecure: bool,
    pub auth: BackendAuth,
    pub tenant: Option<TenantHeader>,
    /// Path below each base URL for health checks (`/-/ready`).
    pub health_check_path: String,
    /// Time between background health checks (several backends only).
    pub health_check_interval: Duration,
}

/// How far a failed attempt got, to decide whether another backend may
/// be tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// No connection: nothing was sent; safe to retry any request.
    NotConnected,
    /// The exchange broke after sending began: retry only idempotent requests.
    Broken,
    /// Failed before sending or by timing out: another backend would not help.
    NotTried,
}

/// The forwarding client (cheap to clone: the health-check task holds one).
#[derive(Clone)]
pub struct Backend {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    pool: pool::Pool,
    timeout: Duration,
    auth: BackendAuth,
    tenant: Option<TenantHeader>,
    health_path: String,
    health_interval: Duration,
}

/// Installs rustls' ring provider unless one is installed: reqwest is
/// built without a default provider (no aws-lc C build).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds a reqwest client with our TLS choices (rustls on ring; no
/// OpenSSL anywhere). Shared by the backend, the identity providers and
/// the Keystone client.
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

/// `base` + `path` + `?query`, keeping the base's path prefix.
fn url_for(base: &Url, path: &str, query: &str) -> String {
    let mut s = base.as_str().trim_end_matches('/').to_owned();
    s.push_str(path);
    if !query.is_empty() {
        s.push('?');
        s.push_str(query);
    }
    s
}

impl Backend {
    pub fn new(opts: BackendOptions) -> Result<Backend, String> {
        if opts.base_urls.is_empty() {
            return Err("no backend URL".to_owned());
        }
        let http = http_client(
            opts.connect_timeout,
            Some(opts.timeout),
            opts.ca_file.as_deref(),
            opts.client_cert
                .as_ref()
                .map(|(c, k)| (c.as_str(), k.as_str())),
            opts.insecure,
        )?;
        let bases = opts
            .base_urls
            .into_iter()
            .map(|mut base| {
                // Join below the prefix: `https://h/workspaces/ws` + `/api/v1/query`.
                let trimmed = base.path().trim_end_matches('/').to_owned();
                base.set_path(&trimmed);
                base
            })
            .collect();
        Ok(Backend {
            inner: Arc::new(Inner {
                http,
                pool: pool::Pool::new(bases),
                timeout: opts.timeout,
                auth: opts.auth,
                tenant: opts.tenant,
                health_path: opts.health_check_path,
                health_interval: opts.health_check_interval,
            }),
        })
    }

    /// The (first) base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.inner.pool.target(0).base
    }

    /// How requests are authenticated.
    pub fn auth(&self) -> &BackendAuth {
        &self.inner.auth
    }

    /// How many equivalent backends there are.
    pub fn len(&self) -> usize {
        self.inner.pool.len()
    }

    /// Never true: a backend has at least one URL.
    pub fn is_empty(&self) -> bool {
        self.inner.pool.is_empty()
    }

    /// Sends one request to backend `i`; the answer's body is not read here
    /// so that it can be streamed to the caller. An error says whether the
    /// exchange broke on the wire (worth trying another backend) or before
    /// (credentials, a request that cannot be built: it would fail anywhere).
    async fn send_to(
        &self,
        i: usize,
        req: &BackendRequest,
    ) -> Result<reqwest::Response, (BackendError, Transport)> {
        let not_sent = |e: BackendError| (e, Transport::NotTried);
        let inner = &self.inner;
        let query = if inner.auth.canonical_query() {
            sigv4::canonical_query_for_sending(&req.params.url)
        } else {
            req.params.url.clone()
        };
        let url = url_for(&inner.pool.target(i).base, &req.path, &query);
        let body = match &req.params.body {
            Some(b) => Bytes::from(b.clone().into_bytes()),
            None => req.raw_body.clone(),
        };
        let mut rb = inner.http.request(req.method.clone(), &url);
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        if let Some(t) = &inner.tenant {
            let v = t
                .value_for(req.project.as_deref())
                .map_err(|e| not_sent(BackendError::Other(e)))?;
            rb = rb.header(t.name(), v);
        }
        if !body.is_empty() || req.method == Method::POST || req.method == Method::PUT {
            rb = rb.body(body.clone());
        }
        let content_type = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        let rb = inner
            .auth
            .apply(
                rb,
                Outgoing {
                    method: &req.method,
                    url: &url,
                    content_type,
                    body: &body,
                },
            )
            .await
            .map_err(not_sent)?;
        rb.send().await.map_err(|e| {
            let transport = if e.is_connect() {
                Transport::NotConnected
            } else if e.is_timeout() || e.is_builder() {
                Transport::NotTried
            } else {
                Transport::Broken
            };
            (self.classify(e), transport)
        })
    }

    /// Sends one request. With several backends: to the next healthy one in
    /// round-robin order, and once more to another one when the connection
    /// failed (any request: nothing was sent) or, for an idempotent
    /// request, when the exchange broke or the backend answered 503 (not
    /// ready); the failed backend is taken out of rotation until its health
    /// check passes again.
    pub async fn send(&self, req: BackendRequest) -> Result<reqwest::Response, BackendError> {
        let pool = &self.inner.pool;
        let order = pool.order();
        let first = order.first().copied().unwrap_or(0);
        let result = self.send_to(first, &req).await;
        let Some(&second) = order.get(1) else {
            return result.map_err(|(e, _)| e);
        };
        let why = match &result {
            Err((e, Transport::NotConnected)) => e.to_string(),
            Err((e, Transport::Broken)) if req.is_idempotent() => e.to_string(),
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE && req.is_idempotent() => {
                "answered 503 Service Unavailable".to_owned()
            }
            _ => return result.map_err(|(e, _)| e),
        };
        pool.record(first, Err(why.clone()), false);
        tracing::warn!(
            failed = %pool.target(first).base,
            retry = %pool.target(second).base,
            reason = %why,
            "backend request failed, retrying on another backend"
        );
        self.send_to(second, &req).await.map_err(|(e, _)| e)
    }

    /// `GET <base><health_check_path>` on backend `i`: `Ok` when it answers 2xx.
    async fn check(&self, i: usize) -> Result<(), String> {
        let inner = &self.inner;
        let url = url_for(&inner.pool.target(i).base, &inner.health_path, "");
        let timeout = inner
            .health_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(5));
        let mut rb = inner.http.get(&url).timeout(timeout);
        if let Some(t) = &inner.tenant {
            if let Ok(v) = t.value_for(None) {
                rb = rb.header(t.name(), v);
            }
        }
        let rb = inner
            .auth
            .apply(
                rb,
                Outgoing {
                    method: &Method::GET,
                    url: &url,
                    content_type: None,
                    body: &[],
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        match rb.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("{} answered {}", inner.health_path, r.status())),
            Err(e) => Err(self.classify(e).to_string()),
        }
    }

    /// Checks every backend now, records the outcome (a change of state is
    /// logged) and returns each one's state.
    pub async fn check_all(&self) -> Vec<TargetReport> {
        let n = self.inner.pool.len();
        let outcomes = futures_util::future::join_all((0..n).map(|i| self.check(i))).await;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            self.inner.pool.record(i, outcome, true);
        }
        self.inner.pool.report()
    }

    /// Every backend's last known state, without checking.
    pub fn report(&self) -> Vec<TargetReport> {
        self.inner.pool.report()
    }

    /// With several backends, checks them in the background every
    /// `health_check_interval`, for as long as the runtime runs. Must be
    /// called within a Tokio runtime.
    pub fn start_health_checks(&self) {
        if self.inner.pool.len() < 2 {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.inner.health_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.check_all().await;
            }
        });
    }

    fn classify(&self, e: reqwest::Error) -> BackendError {
        if e.is_timeout() {
            BackendError::Timeout(self.inner.timeout)
        } else if e.is_connect() {
            BackendError::Unreachable(root_cause(&e))
        } else {
            BackendError::Other(root_cause(&e))
        }
    }
}

/// The innermost error message (reqwest's own says only "error sending
/// request"), without the URL, which may carry parameters.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// What a tiny test server does with each connection.
    #[derive(Clone, Copy)]
    enum Behaviour {
        Answer(u16, &'static str),
        /// Reads the request and closes without answering.
        Hangup,
    }

    /// A server on a free port; every connection gets `behaviour`.
    async fn serve(behaviour: Behaviour) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let _ = sock.read(&mut buf).await;
                    if let Behaviour::Answer(status, body) = behaviour {
                        let resp = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                });
            }
        });
        port
    }

    /// A port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn backend(ports: &[u16]) -> Backend {
        Backend::new(BackendOptions {
            base_urls: ports
                .iter()
                .map(|p| Url::parse(&format!("http://127.0.0.1:{p}/")).unwrap())
                .collect(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            ca_file: None,
            client_cert: None,
            insecure: false,
            auth: BackendAuth::None,
            tenant: None,
            health_check_path: "/-/ready".into(),
            health_check_interval: Duration::from_secs(5),
        })
        .unwrap()
    }

    fn request(method: Method, path: &str) -> BackendRequest {
        BackendRequest {
            method,
            path: path.into(),
            params: Params {
                url: "query=up".into(),
                body: None,
            },
            raw_body: Bytes::new(),
            headers: Vec::new(),
            project: None,
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_on_the_other_backend_for_any_method() {
        let ok = serve(Behaviour::Answer(200, "from-ok")).await;
        let b = backend(&[closed_port(), ok]);
        // Round robin starts with the first backend, the dead one.
        let r = b
            .send(request(Method::POST, "/api/v1/admin/tsdb/clean_tombstones"))
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), "from-ok");
        let report = b.report();
        assert!(!report[0].up && report[1].up);
        assert!(report[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("unreachable"));
        // Taken out of rotation: the next requests all go to the live one.
        for _ in 0..3 {
            let r = b.send(request(Method::GET, "/api/v1/query")).await.unwrap();
            assert_eq!(r.status(), 200);
        }
    }

    #[tokio::test]
    async fn a_broken_exchange_is_retried_only_for_reads() {
        let hangup = serve(Behaviour::Hangup).await;
        let ok = serve(Behaviour::Answer(200, "from-ok")).await;
        let b = backend(&[hangup, ok]);
        let r = b.send(request(Method::GET, "/api/v1/query")).await.unwrap();
        assert_eq!(r.text().await.unwrap(), "from-ok");
        let b = backend(&[hangup, ok]);
        let e = b
            .send(request(Method::POST, "/api/v1/admin/tsdb/delete_series"))
            .await
            .unwrap_err();
        assert!(matches!(e, BackendError::Other(_)), "{e}");
        // A failed admin request says nothing about health: not marked down.
        assert!(b.report()[0].up);
    }

    #[tokio::test]
    async fn a_not_ready_answer_is_retried_for_reads_and_kept_for_writes() {
        let not_ready = serve(Behaviour::Answer(503, "Service Unavailable")).await;
        let ok = serve(Behaviour::Answer(200, "from-ok")).await;
        let b = backend(&[not_ready, ok]);
        let r = b
            .send(request(Method::POST, "/api/v1/query"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let b = backend(&[not_ready, ok]);
        let r = b
            .send(request(Method::PUT, "/api/v1/admin/tsdb/snapshot"))
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }

    #[tokio::test]
    async fn a_single_backend_is_never_retried_nor_marked() {
        let b = backend(&[closed_port()]);
        let e = b
            .send(request(Method::GET, "/api/v1/query"))
            .await
            .unwrap_err();
        assert!(matches!(e, BackendError::Unreachable(_)), "{e}");
        assert!(b.report()[0].up);
    }

    #[tokio::test]
    async fn health_checks_mark_backends_down_and_up() {
        let ok = serve(Behaviour::Answer(200, "Prometheus Server is Ready.")).await;
        let not_ready = serve(Behaviour::Answer(503, "Service Unavailable")).await;
        let b = backend(&[ok, not_ready, closed_port()]);
        let r = b.check_all().await;
        assert!(r[0].up && !r[1].up && !r[2].up);
        assert_eq!(
            r[1].last_error.as_deref(),
            Some("/-/ready answered 503 Service Unavailable")
        );
        assert!(r.iter().all(|t| t.last_check.is_some()));
    }

    #[test]
    fn reads_are_idempotent_admin_writes_are_not() {
        assert!(request(Method::GET, "/api/v1/query").is_idempotent());
        assert!(request(Method::POST, "/api/v1/query_range").is_idempotent());
        assert!(request(Method::POST, "/api/v1/series").is_idempotent());
        assert!(!request(Method::POST, "/api/v1/admin/tsdb/delete_series").is_idempotent());
        assert!(!request(Method::PUT, "/api/v1/admin/tsdb/snapshot").is_idempotent());
    }
}
