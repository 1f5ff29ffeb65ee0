//! `[api]` (aetos only): where and how the API listens, and the limits of
//! one request.

use super::resolve::Resolver;
use super::ConfigError;

/// `[api]` (aetos only): where and how the API listens.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSection {
    pub host: String,
    pub port: u16,
    /// Normalized: empty (no prefix) or `/…` without a trailing slash.
    pub root_path: String,
    /// 0 means one worker per CPU.
    pub workers: usize,
    /// Bytes.
    pub max_request_body_size: usize,
    /// Bytes: largest backend answer filtered for a scoped caller.
    pub max_filtered_response_bytes: usize,
    /// Seconds.
    pub graceful_shutdown_timeout: u64,
    /// Seconds to receive a request's head.
    pub client_header_timeout: f64,
    /// Seconds to receive a whole request body.
    pub client_body_timeout: f64,
    /// Signing-proxy mode: no authentication, no policy, no scoping.
    pub unauthenticated_passthrough: bool,
    /// `host:port` of the unauthenticated internal listener (checked to be
    /// of that shape; resolved when serving), if any.
    pub internal_listen: Option<String>,
    /// `tls_cert_file`, `tls_key_file`: both or neither (checked readable).
    pub tls: Option<(String, String)>,
    /// `tls_client_ca_file` (only with `tls`).
    pub tls_client_ca: Option<String>,
}

pub(super) fn build_api(r: &mut Resolver<'_>) -> Result<ApiSection, ConfigError> {
    let host = r.string("api", "host")?.trim().to_owned();
    if host.is_empty() {
        return Err(ConfigError::new("api", "host", "must not be empty"));
    }
    let root = r.string("api", "root_path")?;
    let root_path = root.trim().trim_end_matches('/').to_owned();
    if !root_path.is_empty() && !root_path.starts_with('/') {
        return Err(ConfigError::new(
            "api",
            "root_path",
            format!("invalid value {root:?}: must start with '/'"),
        ));
    }
    if root_path.contains(['?', '#', '%', ' ']) {
        return Err(ConfigError::new(
            "api",
            "root_path",
            format!("invalid value {root:?}: must be a plain path"),
        ));
    }
    Ok(ApiSection {
        host,
        port: r.uint("api", "port")?,
        root_path,
        workers: r.uint("api", "workers")?,
        max_request_body_size: r.uint("api", "max_request_body_size")?,
        max_filtered_response_bytes: r.uint("api", "max_filtered_response_bytes")?,
        graceful_shutdown_timeout: r.uint("api", "graceful_shutdown_timeout")?,
        client_header_timeout: r.float("api", "client_header_timeout")?,
        client_body_timeout: r.float("api", "client_body_timeout")?,
        unauthenticated_passthrough: r.bool("api", "unauthenticated_passthrough")?,
        internal_listen: internal_listen(&r.string("api", "internal_listen")?)?,
        tls: tls_pair(r)?,
        tls_client_ca: match r.string("api", "tls_client_ca_file")?.trim() {
            "" => None,
            ca => {
                super::check_readable("api", "tls_client_ca_file", ca)?;
                Some(ca.to_owned())
            }
        },
    })
}

/// `tls_cert_file` and `tls_key_file`: both set (and readable) or neither.
fn tls_pair(r: &mut Resolver<'_>) -> Result<Option<(String, String)>, ConfigError> {
    let cert = r.string("api", "tls_cert_file")?.trim().to_owned();
    let key = r.string("api", "tls_key_file")?.trim().to_owned();
    match (cert.is_empty(), key.is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Err(ConfigError::new(
            "api",
            "tls_key_file",
            "required with tls_cert_file",
        )),
        (true, false) => Err(ConfigError::new(
            "api",
            "tls_cert_file",
            "required with tls_key_file",
        )),
        (false, false) => {
            super::check_readable("api", "tls_cert_file", &cert)?;
            super::check_readable("api", "tls_key_file", &key)?;
            Ok(Some((cert, key)))
        }
    }
}

/// `[api] internal_listen`: empty, or `host:port` (`[v6]:port` for an IPv6
/// address) with a port from 1 to 65535.
fn internal_listen(raw: &str) -> Result<Option<String>, ConfigError> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        ConfigError::new(
            "api",
            "internal_listen",
            format!("invalid value {value:?}: {why}"),
        )
    };
    let (host, port) = value
        .rsplit_once(':')
        .ok_or_else(|| bad("must be host:port, e.g. 127.0.0.1:9191"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty()
        || host.contains(['/', ' ', '[', ']'])
        || (host.contains(':') && !value.starts_with('['))
    {
        return Err(bad("must be host:port, e.g. 127.0.0.1:9191 or [::1]:9191"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(Some(value.to_owned())),
        _ => Err(bad("the port must be a number from 1 to 65535")),
    }
}
