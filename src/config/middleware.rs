//! `[oslo_middleware]`: proxy header handling.

use super::resolve::Resolver;
use super::ConfigError;

/// `[oslo_middleware]`: proxy header handling.
#[derive(Debug, Clone, PartialEq)]
pub struct MiddlewareSection {
    pub enable_proxy_headers_parsing: bool,
}

pub(super) fn build_middleware(r: &mut Resolver<'_>) -> Result<MiddlewareSection, ConfigError> {
    Ok(MiddlewareSection {
        enable_proxy_headers_parsing: r.bool("oslo_middleware", "enable_proxy_headers_parsing")?,
    })
}
