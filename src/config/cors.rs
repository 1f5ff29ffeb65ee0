//! `[cors]`: browser cross-origin access (applied by `crate::cors`).

use super::resolve::Resolver;
use super::{non_empty, ConfigError};

/// `[cors]`: browser cross-origin access.
#[derive(Debug, Clone, PartialEq)]
pub struct CorsSection {
    /// Empty disables CORS.
    pub allowed_origin: Vec<String>,
    pub allow_credentials: bool,
    pub expose_headers: Vec<String>,
    /// Seconds.
    pub max_age: u64,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
}

pub(super) fn build_cors(r: &mut Resolver<'_>) -> Result<CorsSection, ConfigError> {
    Ok(CorsSection {
        allowed_origin: non_empty(r.list("cors", "allowed_origin")?),
        allow_credentials: r.bool("cors", "allow_credentials")?,
        expose_headers: non_empty(r.list("cors", "expose_headers")?),
        max_age: r.uint("cors", "max_age")?,
        allow_methods: non_empty(r.list("cors", "allow_methods")?),
        allow_headers: non_empty(r.list("cors", "allow_headers")?),
    })
}
