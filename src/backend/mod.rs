//! Backend stage: `BackendRequest → streamed response`.
//!
//! One HTTP client for the Prometheus-compatible backends, built once from
//! `[prometheus]` (hyper's, TLS, client certificate, timeouts:
//! [`transport`]); one
//! place — [`auth::BackendAuth`] — that decides how an outgoing request is
//! authenticated (one file per method under [`auth`]); an optional tenant
//! header ([`tenant`]); and one or more equivalent backends ([`pool`]) with
//! background health checks, round robin and failover. Nothing of the
//! caller's own credentials (`X-Auth-Token`, `Authorization`, cookies,
//! identity headers) is ever copied here: only the headers listed in
//! [`FORWARDED_REQUEST_HEADERS`] go out.
//!
//! Requests, and with them aetos' own backend credentials, only go to the
//! configured base URL and below it: the URL is the base, prepared once,
//! plus known path segments ([`url::Endpoint::url_for`]), checked again
//! before sending, and redirects are never followed (a 3xx answer becomes
//! a 502).
//!
//! `[prometheus] timeout` bounds the wait for the answer's head;
//! `read_timeout` bounds each gap in its body ([`transport::Body`]).
//!
//! This file is the forwarding itself; the modules below it point one way:
//! `auth` uses `env`, `refresh`, `client` and `error`, never this file.

pub mod auth;
pub mod client;
pub mod discovery;
pub mod env;
mod error;
pub mod pool;
pub mod refresh;
pub mod tenant;
pub mod transport;
mod url;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::time::Duration;

use ::url::Url;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, StatusCode};
use http_body_util::Full;

use self::url::Endpoint;
use crate::request::Params;
pub use auth::{BackendAuth, Outgoing};
pub use client::http_client;
#[cfg(test)]
pub use client::install_crypto;
use client::root_cause;
pub use discovery::DiscoveryOptions;
pub use error::BackendError;
pub use pool::TargetReport;
pub use tenant::TenantHeader;
pub use transport::{Body, Response};

/// Request headers copied from the caller to the backend. Everything else
/// (tokens, `Authorization`, cookies, identity headers) stays behind.
pub const FORWARDED_REQUEST_HEADERS: &[HeaderName] = &[
    http::header::ACCEPT,
    http::header::ACCEPT_ENCODING,
    CONTENT_TYPE,
    USER_AGENT,
];

/// The request id aetos gives its own requests (oslo's header).
const REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");

/// `User-Agent` of aetos' own requests when the caller sent none.
const OWN_USER_AGENT: &str = concat!("aetos/", env!("CARGO_PKG_VERSION"));

/// Response headers copied from the backend to the caller.
pub const FORWARDED_RESPONSE_HEADERS: [HeaderName; 6] = {
    use http::header::*;
    [
        CONTENT_TYPE,
        CONTENT_ENCODING,
        CONTENT_DISPOSITION,
        CACHE_CONTROL,
        VARY,
        WARNING,
    ]
};

/// One request to the backend, after the tenancy stage.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    pub method: Method,
    /// Path below the backend's base URL, e.g. `/api/v1/query`.
    pub path: String,
    pub params: Params,
    /// `(name, value)` of the forwarded request headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
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
    /// Backends discovered by DNS (`dns+` / `dnssrv+` entries), besides
    /// `base_urls`.
    pub discovery: Option<DiscoveryOptions>,
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
    http: transport::Client,
    /// The targets, each with its base prepared once; swapped as a whole
    /// by DNS discovery.
    pool: pool::Pool,
    /// The configured (not discovered) targets' bases.
    static_bases: Vec<Url>,
    /// The first configured base, or the first discovered entry's URL.
    first_configured: Url,
    discovery: Option<discovery::Discovery>,
    timeout: Duration,
    read_timeout: Duration,
    auth: BackendAuth,
    tenant: Option<TenantHeader>,
    health_path: String,
    health_interval: Duration,
}

impl Backend {
    pub fn new(opts: BackendOptions) -> Result<Backend, String> {
        let discovering = opts
            .discovery
            .as_ref()
            .is_some_and(|d| !d.entries.is_empty());
        if opts.base_urls.is_empty() && !discovering {
            return Err("no backend URL".to_owned());
        }
        // No overall timeout: `timeout` bounds the head (in `send_to`),
        // `read_timeout` each gap of the body. hyper follows no redirects:
        // credentials only go to the configured base URL.
        let http = transport::backend_client(
            opts.connect_timeout,
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
            .collect::<Vec<Url>>();
        let targets = bases
            .iter()
            .map(|b| target(b.clone(), None, &opts.health_check_path))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(d) = opts.discovery.as_ref().filter(|_| discovering) {
            // The discovered bases are the templates with an address for the name.
            for e in &d.entries {
                target(e.template.clone(), None, &opts.health_check_path)?;
            }
        }
        let first_configured = match (bases.first(), &opts.discovery) {
            (Some(b), _) => b.clone(),
            (None, Some(d)) if !d.entries.is_empty() => d.entries[0].template.clone(),
            (None, _) => return Err("no backend URL".to_owned()),
        };
        let discovery = match opts.discovery.filter(|_| discovering) {
            Some(d) => Some(discovery::Discovery::new(d)?),
            None => None,
        };
        Ok(Backend {
            inner: Arc::new(Inner {
                http,
                pool: pool::Pool::new(targets),
                static_bases: bases,
                first_configured,
                discovery,
                timeout: opts.timeout,
                read_timeout: opts.read_timeout,
                auth: opts.auth,
                tenant: opts.tenant,
                health_path: opts.health_check_path,
                health_interval: opts.health_check_interval,
            }),
        })
    }

    /// The (first) base URL requests go to now; while DNS discovery has
    /// found no address, the first discovered entry's URL (with its name).
    pub fn base_url(&self) -> Url {
        let inner = &self.inner;
        match inner.pool.snapshot().first() {
            Some(t) => t.base.clone(),
            None => inner.first_configured.clone(),
        }
    }

    /// How requests are authenticated.
    pub fn auth(&self) -> &BackendAuth {
        &self.inner.auth
    }

    /// How many equivalent backends there are.
    pub fn len(&self) -> usize {
        self.inner.pool.len()
    }

    /// True only while DNS discovery has found no address.
    pub fn is_empty(&self) -> bool {
        self.inner.pool.is_empty()
    }

    /// Sends one request to backend `i`; the answer's body is not read here
    /// so that it can be streamed to the caller. An error says whether the
    /// exchange broke on the wire (worth trying another backend) or before
    /// (credentials, a request that cannot be built: it would fail anywhere).
    async fn send_to(
        &self,
        target: &pool::Target,
        req: &BackendRequest,
    ) -> Result<Response, (BackendError, Transport)> {
        let not_sent = |e: BackendError| (e, Transport::NotTried);
        let inner = &self.inner;
        let canonical;
        let query = if inner.auth.canonical_query() {
            canonical = auth::aws::sign::canonical_query_for_sending(&req.params.url);
            &canonical
        } else {
            &req.params.url
        };
        let endpoint = &target.endpoint;
        let (url, uri) = endpoint.url_for(&req.path, query).map_err(|why| {
            tracing::error!("{why}");
            not_sent(BackendError::Other(why))
        })?;
        let body = match &req.params.body {
            Some(b) => Bytes::copy_from_slice(b.as_bytes()),
            None => Bytes::new(),
        };
        let mut headers = http::HeaderMap::with_capacity(req.headers.len() + 4);
        headers.insert(HOST, endpoint.host.clone());
        for (k, v) in &req.headers {
            headers.append(k.clone(), v.clone());
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(OWN_USER_AGENT));
        }
        if let Some(basic) = &endpoint.userinfo {
            headers.insert(AUTHORIZATION, basic.clone());
        }
        if let Some(v) =
            crate::telemetry::request_id().and_then(|id| HeaderValue::from_str(&id).ok())
        {
            headers.insert(REQUEST_ID, v);
        }
        if let Some(t) = &inner.tenant {
            let v = t
                .value_for(req.project.as_deref())
                .map_err(|e| not_sent(BackendError::Other(e)))?;
            headers.insert(t.name().clone(), v);
        }
        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let added = inner
            .auth
            .headers(Outgoing {
                method: &req.method,
                url: url.as_str(),
                content_type,
                body: &body,
            })
            .await
            .map_err(not_sent)?;
        for (k, v) in added {
            headers.insert(k, v);
        }
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = req.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        // One timer for the whole exchange: the head's deadline, then (in
        // the body) each gap's.
        let mut timer = Box::pin(tokio::time::sleep(inner.timeout));
        let sent = inner.http.request(&endpoint.origin, request);
        let resp = match tokio::select! {
            biased;
            r = sent => Ok(r),
            () = timer.as_mut() => Err(()),
        } {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                let transport = if e.is_connect() {
                    Transport::NotConnected
                } else {
                    Transport::Broken
                };
                return Err((self.classify(&e), transport));
            }
            Err(_) => return Err((BackendError::Timeout(inner.timeout), Transport::NotTried)),
        };
        let status = resp.status();
        if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
            let to = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| Url::parse(url.as_str()).ok()?.join(l).ok());
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
        let idle = inner.read_timeout;
        Ok(resp.map(|b| Body::new(b, idle, timer)))
    }

    /// Sends one request. With several backends: to the next healthy one in
    /// round-robin order, and once more to another one when the connection
    /// failed (any request: nothing was sent) or, for an idempotent
    /// request, when the exchange broke or the backend answered 503 (not
    /// ready); the failed backend is taken out of rotation until its health
    /// check passes again.
    pub async fn send(&self, req: BackendRequest) -> Result<Response, BackendError> {
        let pool = &self.inner.pool;
        // One snapshot for the whole request: a target removed meanwhile
        // (DNS discovery) still serves this request, not the next ones.
        let targets = pool.snapshot();
        match targets.len() {
            0 => {
                return Err(BackendError::Unreachable(
                    "DNS discovery has found no backend address".to_owned(),
                ))
            }
            1 => return self.send_to(&targets[0], &req).await.map_err(|(e, _)| e),
            _ => {}
        }
        let order = pool.order(&targets);
        let first = &targets[order[0]];
        let result = self.send_to(first, &req).await;
        let Some(second) = order.get(1).map(|i| &targets[*i]) else {
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
        first.record(Err(why.clone()), false);
        tracing::warn!(
            failed = %first.base,
            retry = %second.base,
            reason = %why,
            "backend request failed, retrying on another backend"
        );
        self.send_to(second, &req).await.map_err(|(e, _)| e)
    }

    /// `GET <base><health_check_path>` on `target`: `Ok` when it answers 2xx.
    async fn check(&self, target: &pool::Target) -> Result<(), String> {
        let inner = &self.inner;
        let endpoint = &target.endpoint;
        let (url, uri) = endpoint.url_for(&inner.health_path, "")?;
        let timeout = inner
            .health_interval
            .clamp(Duration::from_secs(1), Duration::from_secs(5));
        let mut headers = http::HeaderMap::new();
        headers.insert(HOST, endpoint.host.clone());
        headers.insert(USER_AGENT, HeaderValue::from_static(OWN_USER_AGENT));
        if let Some(basic) = &endpoint.userinfo {
            headers.insert(AUTHORIZATION, basic.clone());
        }
        if let Some(t) = &inner.tenant {
            if let Ok(v) = t.value_for(None) {
                headers.insert(t.name().clone(), v);
            }
        }
        let added = inner
            .auth
            .headers(Outgoing {
                method: &Method::GET,
                url: url.as_str(),
                content_type: None,
                body: &[],
            })
            .await
            .map_err(|e| e.to_string())?;
        for (k, v) in added {
            headers.insert(k, v);
        }
        let mut request = http::Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        match tokio::time::timeout(timeout, inner.http.request(&endpoint.origin, request)).await {
            Ok(Ok(r)) if r.status().is_success() => Ok(()),
            Ok(Ok(r)) => Err(format!("{} answered {}", inner.health_path, r.status())),
            Ok(Err(e)) => Err(self.classify(&e).to_string()),
            Err(_) => Err(BackendError::Timeout(timeout).to_string()),
        }
    }

    /// Checks every backend now, records the outcome (a change of state is
    /// logged) and returns each one's state.
    pub async fn check_all(&self) -> Vec<TargetReport> {
        let targets = self.inner.pool.snapshot();
        let outcomes = futures_util::future::join_all(targets.iter().map(|t| self.check(t))).await;
        for (t, outcome) in targets.iter().zip(outcomes) {
            t.record(outcome, true);
        }
        self.inner.pool.report()
    }

    /// Resolves the discovered entries once and swaps the pool's targets
    /// (configured ones first, then the discovered ones); returns whether
    /// anything changed. Nothing to do without discovery.
    pub async fn rediscover(&self) -> bool {
        let inner = &self.inner;
        let Some(d) = &inner.discovery else {
            return false;
        };
        let mut list = Vec::new();
        for b in &inner.static_bases {
            if let Ok(t) = target(b.clone(), None, &inner.health_path) {
                list.push(t);
            }
        }
        for (base, source) in d.resolve_all().await {
            if inner.static_bases.contains(&base) {
                continue;
            }
            match target(base, Some(source), &inner.health_path) {
                Ok(t) => list.push(t),
                Err(why) => tracing::warn!("DNS discovery: {why}"),
            }
        }
        inner.pool.replace(list)
    }

    /// Every backend's last known state, without checking.
    pub fn report(&self) -> Vec<TargetReport> {
        self.inner.pool.report()
    }

    /// With several backends, checks them in the background every
    /// `health_check_interval`, for as long as the runtime runs. Must be
    /// called within a Tokio runtime.
    pub fn start_health_checks(&self) {
        if let Some(d) = &self.inner.discovery {
            let me = self.clone();
            let every = d.interval;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    me.rediscover().await;
                }
            });
        } else if self.inner.pool.len() < 2 {
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

    fn classify(&self, e: &transport::Error) -> BackendError {
        if e.is_connect() {
            BackendError::Unreachable(root_cause(e))
        } else {
            BackendError::Other(root_cause(e))
        }
    }
}

/// A pool target for `base`, checked: its health-check URL can be built.
fn target(base: Url, source: Option<String>, health_path: &str) -> Result<pool::Target, String> {
    let endpoint = Endpoint::new(&base)?;
    endpoint
        .url_for(health_path, "")
        .map_err(|e| format!("[prometheus] health_check_path: {e}"))?;
    Ok(pool::Target::new(base, endpoint, source))
}
