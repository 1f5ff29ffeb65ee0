//! What a request needs, built once at start-up: the components of every
//! stage (authn, policy, tenancy, backend, limits) and the `[api]` settings
//! the handlers read.
//!
//! It sits below both `server` (which hands it to actix) and `api` (whose
//! handlers read it), so that neither imports the other for it; it knows
//! no actix types.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::backend::Backend;
use crate::cache::Cache;
use crate::cors::CorsOptions;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::policy::Enforcer;
use crate::request::Scoper;

/// How callers are authenticated.
pub enum Authn {
    /// Keystone tokens (production).
    Keystone(Arc<Authenticator>),
    /// `X-User-Id` / `X-Project-Id` / `X-Roles` are believed (tests only).
    Noauth,
    /// `[api] unauthenticated_passthrough`: nobody is authenticated and
    /// every caller is privileged (signing proxy on a trusted network).
    Passthrough,
}

/// `[healthcheck]` settings.
#[derive(Debug, Clone, Default)]
pub struct HealthOptions {
    pub detailed: bool,
    /// `disable_by_file` backend: unavailable while this file exists.
    pub disable_by_file: Option<PathBuf>,
    /// `disable_by_files_ports` backend: per listening port.
    pub disable_by_port_files: Vec<(u16, PathBuf)>,
    /// `enable_by_files` backend: unavailable unless all exist.
    pub enable_by_files: Vec<PathBuf>,
    /// The port this server listens on.
    pub port: u16,
}

/// Everything a request handler needs, built once at start-up.
pub struct State {
    pub authn: Authn,
    pub enforcer: Enforcer,
    pub backend: Backend,
    /// `[alertmanager]`, when configured (else its routes answer 404).
    pub alertmanager: Option<Backend>,
    /// The tenancy stage for `[prometheus] project_label_name`, with its rewrite cache.
    pub scoper: Scoper,
    /// `[api] root_path`, e.g. `/prometheus`.
    pub root_path: String,
    pub www_authenticate_uri: String,
    pub proxy_headers: bool,
    pub max_body: usize,
    /// `[api] max_filtered_response_bytes`.
    pub max_filtered: usize,
    /// `[api] client_body_timeout`: longest time to receive a whole request body.
    pub client_body_timeout: Duration,
    pub health: HealthOptions,
    /// Host to name in hrefs when the caller sent no `Host`.
    pub listen_host: String,
    pub metrics: Metrics,
    pub cors: CorsOptions,
    /// `[limits]`: admission and shape limits per project.
    pub limits: Arc<Limits>,
    /// `[cache]`: the results cache, when enabled.
    pub cache: Option<Cache>,
}
