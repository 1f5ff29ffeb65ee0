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
//!
//! Requests, and with them aetos' own backend credentials, only go to the
//! configured base URL and below it: the URL is built from the parsed base
//! plus known path segments ([`url_for`]) and checked again before sending,
//! and redirects are never followed (a 3xx answer becomes a 502).
//!
//! `[prometheus] timeout` bounds the wait for the answer's head;
//! `read_timeout` bounds each gap in its body ([`idle_limited`]).

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

use crate::request::Params;
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
    /// The backend answered with a redirect, which is not followed: the
    /// credentials aetos adds are only for the configured base URL.
    #[error("backend answered {0} (a redirect, which aetos does not follow)")]
    Redirect(u16),
}

/// Settings of the backend connection, from `[prometheus]`.
#[derive(Clone, Debug)]
pub struct BackendOptions {
    /// One URL, or several equivalent ones (HA); each may carry a path prefix.
    pub base_urls: Vec<Url>,
    /// Longest wait for the head of an answer (status and headers).
    pub timeout: Duration,
    /// Longest gap between two pieces of an answer's body.
    pub read_timeout: Duration,
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
    read_timeout: Duration,
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
    http_client_with(
        connect_timeout,
        timeout,
        ca_file,
        client_cert,
        insecure,
        reqwest::redirect::Policy::default(),
    )
}

/// [`http_client`] with a redirect policy.
fn http_client_with(
    connect_timeout: Duration,
    timeout: Option<Duration>,
    ca_file: Option<&str>,
    client_cert: Option<(&str, &str)>,
    insecure: bool,
    redirect: reqwest::redirect::Policy,
) -> Result<reqwest::Client, String> {
    install_crypto();
    let mut b = reqwest::Client::builder()
        .redirect(redirect)
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

/// `base` + `path` + `?query`, keeping the base's path prefix, or why not.
///
/// `path` is one of aetos' own routes (`/api/v1/query`,
/// `/api/v1/label/<validated name>/values`, the health-check path): every
/// segment must be plain (RFC 3986 unreserved characters, not `.` or `..`)
/// and is appended to the parsed base as a segment, never re-parsed as URL
/// text. The result is checked once more: its path must be exactly the
/// base's path followed by `path`, or nothing is sent.
fn url_for(base: &Url, path: &str, query: &str) -> Result<Url, String> {
    let refuse = |why: &str| Err(format!("refusing to send to backend path {path:?}: {why}"));
    let Some(rest) = path.strip_prefix('/') else {
        return refuse("not absolute");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    for s in &segments {
        let plain = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if s.is_empty() || *s == "." || *s == ".." || !plain {
            return refuse("not a plain path");
        }
    }
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| format!("backend URL {base} cannot have a path"))?
        .pop_if_empty()
        .extend(&segments);
    url.set_query((!query.is_empty()).then_some(query));
    url.set_fragment(None);
    let expected = format!("{}{path}", base.path().trim_end_matches('/'));
    if url.path() != expected || url.host() != base.host() || url.port() != base.port() {
        return refuse("it would leave the backend's base URL");
    }
    Ok(url)
}

/// The body of `resp` with every gap between two pieces bounded by `idle`:
/// when a gap is longer, the stream ends with an error (logged), so that the
/// caller's connection is aborted rather than a truncated answer ended cleanly.
fn idle_limited(resp: reqwest::Response, idle: Duration) -> reqwest::Response {
    use futures_util::StreamExt;
    type Body = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>;
    let mut head = http::Response::builder()
        .status(resp.status())
        .version(resp.version());
    if let Some(h) = head.headers_mut() {
        *h = resp.headers().clone();
    }
    let body: Body = Box::pin(resp.bytes_stream());
    let limited = futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(Some(Err(e))) => {
                let why = root_cause(&e);
                tracing::warn!("backend answer cut: {why}");
                Some((Err(std::io::Error::other(why)), None))
            }
            Ok(None) => None,
            Err(_) => {
                tracing::warn!(
                    "backend answer cut: no data for {idle:?} ([prometheus] read_timeout)"
                );
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("backend sent no data for {idle:?}"),
                    )),
                    None,
                ))
            }
        }
    });
    match head.body(reqwest::Body::wrap_stream(limited)) {
        Ok(r) => reqwest::Response::from(r),
        // Not reachable: status, version and headers come from a valid answer.
        Err(e) => unreachable!("rebuilding a backend answer: {e}"),
    }
}

impl Backend {
    pub fn new(opts: BackendOptions) -> Result<Backend, String> {
        if opts.base_urls.is_empty() {
            return Err("no backend URL".to_owned());
        }
        // No overall timeout: `timeout` bounds the head (in `send_to`),
        // `read_timeout` each gap of the body. No redirects: credentials
        // only go to the configured base URL.
        let http = http_client_with(
            opts.connect_timeout,
            None,
            opts.ca_file.as_deref(),
            opts.client_cert
                .as_ref()
                .map(|(c, k)| (c.as_str(), k.as_str())),
            opts.insecure,
            reqwest::redirect::Policy::none(),
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
            .collect::<Vec<Url>>();
        for base in &bases {
            url_for(base, &opts.health_check_path, "")
                .map_err(|e| format!("[prometheus] health_check_path: {e}"))?;
        }
        Ok(Backend {
            inner: Arc::new(Inner {
                http,
                pool: pool::Pool::new(bases),
                timeout: opts.timeout,
                read_timeout: opts.read_timeout,
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
        let url = url_for(&inner.pool.target(i).base, &req.path, &query).map_err(|why| {
            tracing::error!("{why}");
            not_sent(BackendError::Other(why))
        })?;
        let body = match &req.params.body {
            Some(b) => Bytes::from(b.clone().into_bytes()),
            None => req.raw_body.clone(),
        };
        let mut rb = inner.http.request(req.method.clone(), url.clone());
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
                    url: url.as_str(),
                    content_type,
                    body: &body,
                },
            )
            .await
            .map_err(not_sent)?;
        let resp = match tokio::time::timeout(inner.timeout, rb.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                let transport = if e.is_connect() {
                    Transport::NotConnected
                } else if e.is_timeout() || e.is_builder() {
                    Transport::NotTried
                } else {
                    Transport::Broken
                };
                return Err((self.classify(e), transport));
            }
            Err(_) => return Err((BackendError::Timeout(inner.timeout), Transport::NotTried)),
        };
        let status = resp.status();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let to = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok());
            // Where it pointed, without its query (which may carry anything).
            let to = to.map_or_else(
                || "-".to_owned(),
                |u| format!("{}{}", u.origin().ascii_serialization(), u.path()),
            );
            tracing::warn!(
                status = status.as_u16(),
                location = %to,
                "backend answered a redirect; not followed"
            );
            return Err((BackendError::Redirect(status.as_u16()), Transport::NotTried));
        }
        Ok(idle_limited(resp, inner.read_timeout))
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
        let url = url_for(&inner.pool.target(i).base, &inner.health_path, "")?;
        let timeout = inner
            .health_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(5));
        let mut rb = inner.http.get(url.clone()).timeout(timeout);
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
                    url: url.as_str(),
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
        /// `302 Found` to this location.
        Redirect(&'static str),
        /// The head after this long.
        SlowHead(Duration),
        /// The head at once, then `pieces` pieces of the body `gap` apart;
        /// with `stall`, the connection is then held open without ending.
        Trickle {
            pieces: usize,
            gap: Duration,
            stall: bool,
        },
    }

    /// A server on a free port; every connection gets `behaviour`.
    async fn serve(behaviour: Behaviour) -> u16 {
        serve_logged(behaviour).await.0
    }

    /// [`serve`], with the request line of every request received.
    async fn serve_logged(behaviour: Behaviour) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    seen.lock()
                        .unwrap()
                        .push(text.lines().next().unwrap_or("").to_owned());
                    let answer = |status: u16, body: &str| {
                        format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    match behaviour {
                        Behaviour::Answer(status, body) => {
                            let _ = sock.write_all(answer(status, body).as_bytes()).await;
                        }
                        Behaviour::Hangup => {}
                        Behaviour::Redirect(to) => {
                            let resp = format!(
                                "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            );
                            let _ = sock.write_all(resp.as_bytes()).await;
                        }
                        Behaviour::SlowHead(delay) => {
                            tokio::time::sleep(delay).await;
                            let _ = sock.write_all(answer(200, "late").as_bytes()).await;
                        }
                        Behaviour::Trickle { pieces, gap, stall } => {
                            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n";
                            let _ = sock.write_all(head.as_bytes()).await;
                            for i in 0..pieces {
                                tokio::time::sleep(gap).await;
                                let _ = sock.write_all(format!("piece{i};").as_bytes()).await;
                            }
                            if stall {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                            }
                        }
                    }
                });
            }
        });
        (port, log)
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
        Backend::new(options(ports)).unwrap()
    }

    fn options(ports: &[u16]) -> BackendOptions {
        BackendOptions {
            base_urls: ports
                .iter()
                .map(|p| Url::parse(&format!("http://127.0.0.1:{p}/")).unwrap())
                .collect(),
            timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            ca_file: None,
            client_cert: None,
            insecure: false,
            auth: BackendAuth::None,
            tenant: None,
            health_check_path: "/-/ready".into(),
            health_check_interval: Duration::from_secs(5),
        }
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

    fn base(url: &str) -> Url {
        // As Backend::new keeps it: the prefix without its trailing slash.
        let mut u = Url::parse(url).unwrap();
        let trimmed = u.path().trim_end_matches('/').to_owned();
        u.set_path(&trimmed);
        u
    }

    #[test]
    fn urls_are_the_base_prefix_plus_plain_route_segments() {
        let b = base("https://h:8443/workspaces/ws-1/");
        let u = url_for(&b, "/api/v1/label/job/values", "match%5B%5D=up&x=%2e%2e").unwrap();
        assert_eq!(
            u.as_str(),
            "https://h:8443/workspaces/ws-1/api/v1/label/job/values?match%5B%5D=up&x=%2e%2e"
        );
        let root = base("http://127.0.0.1:9090/");
        assert_eq!(
            url_for(&root, "/-/ready", "").unwrap().as_str(),
            "http://127.0.0.1:9090/-/ready"
        );
        assert_eq!(
            url_for(&root, "/api/v1/query", "query=up")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9090/api/v1/query?query=up"
        );
    }

    #[test]
    fn a_health_check_path_that_is_not_plain_stops_the_start() {
        let mut opts = options(&[9090]);
        opts.health_check_path = "/-/../admin".into();
        let e = Backend::new(opts).err().unwrap();
        assert!(
            e.starts_with("[prometheus] health_check_path: refusing"),
            "{e}"
        );
    }

    #[test]
    fn a_path_that_could_leave_the_prefix_is_never_built() {
        let b = base("https://h/workspaces/ws-1");
        for path in [
            "/api/v1/label/../values",
            "/api/v1/label/../../../admin/values",
            "/api/v1/label/%2e%2e/values",
            "/api/v1/label/%2E%2e/values",
            "/api/v1/label/./values",
            "/api/v1/label/a\\b/values",
            "/api/v1/label/%5c/values",
            "/api/v1/label/a%2fb/values",
            "/api/v1/label/a%00/values",
            "/api/v1/label//values",
            "/api/v1/label/a?b/values",
            "/api/v1/label/a#b/values",
            "/api/v1/label/\u{e9}t\u{e9}/values",
            "/api/v1/label/a b/values",
            "api/v1/query",
            "//evil.example/api/v1/query",
            "/",
            "",
        ] {
            let e = url_for(&b, path, "").unwrap_err();
            assert!(
                e.starts_with("refusing to send to backend path"),
                "{path}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_and_becomes_an_error() {
        let (elsewhere, elsewhere_log) = serve_logged(Behaviour::Answer(200, "stolen")).await;
        let location: &'static str =
            Box::leak(format!("http://127.0.0.1:{elsewhere}/steal").into_boxed_str());
        for to in ["/other/path", "../../admin", location] {
            let (port, log) = serve_logged(Behaviour::Redirect(to)).await;
            let b = Backend::new(BackendOptions {
                auth: BackendAuth::Basic {
                    username: "u".into(),
                    password: "secret-password".into(),
                },
                ..options(&[port])
            })
            .unwrap();
            let e = b
                .send(request(Method::GET, "/api/v1/query"))
                .await
                .unwrap_err();
            assert!(matches!(e, BackendError::Redirect(302)), "{e}");
            assert_eq!(
                *log.lock().unwrap(),
                vec!["GET /api/v1/query?query=up HTTP/1.1".to_owned()]
            );
        }
        assert!(elsewhere_log.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn timeout_bounds_the_head_only() {
        let slow = serve(Behaviour::SlowHead(Duration::from_secs(3))).await;
        let mut opts = options(&[slow]);
        opts.timeout = Duration::from_millis(300);
        let e = Backend::new(opts)
            .unwrap()
            .send(request(Method::GET, "/api/v1/query"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, BackendError::Timeout(t) if t == Duration::from_millis(300)),
            "{e}"
        );
        // A body flowing for longer than `timeout`, with short gaps, arrives whole.
        let trickle = serve(Behaviour::Trickle {
            pieces: 8,
            gap: Duration::from_millis(100),
            stall: false,
        })
        .await;
        let mut opts = options(&[trickle]);
        opts.timeout = Duration::from_millis(300);
        opts.read_timeout = Duration::from_secs(5);
        let r = Backend::new(opts)
            .unwrap()
            .send(request(Method::GET, "/api/v1/query"))
            .await
            .unwrap();
        let want: String = (0..8).map(|i| format!("piece{i};")).collect();
        assert_eq!(r.text().await.unwrap(), want);
    }

    #[tokio::test]
    async fn a_stalled_body_ends_with_an_error_not_a_clean_end() {
        let stall = serve(Behaviour::Trickle {
            pieces: 2,
            gap: Duration::from_millis(10),
            stall: true,
        })
        .await;
        let mut opts = options(&[stall]);
        opts.read_timeout = Duration::from_millis(300);
        let r = Backend::new(opts)
            .unwrap()
            .send(request(Method::GET, "/api/v1/query"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut body = r.bytes_stream();
        let mut got = Vec::new();
        let mut failed = false;
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            match chunk {
                Ok(c) => got.extend_from_slice(&c),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert_eq!(String::from_utf8(got).unwrap(), "piece0;piece1;");
        assert!(failed, "a stalled body must end with an error");
        assert!(futures_util::StreamExt::next(&mut body).await.is_none());
    }
}
