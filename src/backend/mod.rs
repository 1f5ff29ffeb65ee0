//! Backend stage: `BackendRequest → streamed response`.
//!
//! One HTTP client for the Prometheus-compatible backend, built once from
//! `[prometheus]` (TLS, client certificate, timeouts), and one place —
//! [`auth::BackendAuth`] — that decides how an outgoing request is
//! authenticated. Nothing of the caller's own credentials (`X-Auth-Token`,
//! `Authorization`, cookies, identity headers) is ever copied here: only the
//! headers listed in [`FORWARDED_REQUEST_HEADERS`] go out.

pub mod auth;

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::api::rewrite::Params;
pub use auth::BackendAuth;

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
    pub base_url: Url,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// PEM CA bundle to trust instead of the system roots.
    pub ca_file: Option<String>,
    /// PEM client certificate and key (mTLS).
    pub client_cert: Option<(String, String)>,
    pub insecure: bool,
    pub auth: BackendAuth,
}

/// The forwarding client.
pub struct Backend {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
    auth: BackendAuth,
}

/// Builds a reqwest client with our TLS choices (rustls on ring; no
/// OpenSSL anywhere). Shared by the backend and the Keystone client.
pub fn http_client(
    connect_timeout: Duration,
    timeout: Option<Duration>,
    ca_file: Option<&str>,
    client_cert: Option<(&str, &str)>,
    insecure: bool,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
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

impl Backend {
    pub fn new(opts: BackendOptions) -> Result<Backend, String> {
        let http = http_client(
            opts.connect_timeout,
            Some(opts.timeout),
            opts.ca_file.as_deref(),
            opts.client_cert
                .as_ref()
                .map(|(c, k)| (c.as_str(), k.as_str())),
            opts.insecure,
        )?;
        let mut base = opts.base_url;
        // Join below the prefix: `https://h/workspaces/ws` + `/api/v1/query`.
        let trimmed = base.path().trim_end_matches('/').to_owned();
        base.set_path(&trimmed);
        Ok(Backend {
            http,
            base,
            timeout: opts.timeout,
            auth: opts.auth,
        })
    }

    /// The base URL requests go to (for health reports).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url_for(&self, path: &str, query: &str) -> String {
        let mut s = self.base.as_str().trim_end_matches('/').to_owned();
        s.push_str(path);
        if !query.is_empty() {
            s.push('?');
            s.push_str(query);
        }
        s
    }

    /// Sends one request; the answer's body is not read here so that it can
    /// be streamed to the caller.
    pub async fn send(&self, req: BackendRequest) -> Result<reqwest::Response, BackendError> {
        let url = self.url_for(&req.path, &req.params.url);
        let body = match &req.params.body {
            Some(b) => Bytes::from(b.clone().into_bytes()),
            None => req.raw_body.clone(),
        };
        let mut rb = self.http.request(req.method.clone(), &url);
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        if !body.is_empty() || req.method == Method::POST || req.method == Method::PUT {
            rb = rb.body(body.clone());
        }
        let rb = self.auth.apply(rb, &req.method, &url, &body).await?;
        rb.send().await.map_err(|e| self.classify(e))
    }

    /// `GET /-/ready` on the backend: `Ok(status)` or why it failed.
    pub async fn ready(&self) -> Result<StatusCode, BackendError> {
        let url = self.url_for("/-/ready", "");
        let rb = self.http.get(&url).timeout(Duration::from_secs(5));
        let rb = self
            .auth
            .apply(rb, &Method::GET, &url, &Bytes::new())
            .await?;
        rb.send()
            .await
            .map(|r| r.status())
            .map_err(|e| self.classify(e))
    }

    fn classify(&self, e: reqwest::Error) -> BackendError {
        if e.is_timeout() {
            BackendError::Timeout(self.timeout)
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
