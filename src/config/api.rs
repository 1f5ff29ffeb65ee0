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
    })
}
