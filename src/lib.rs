//! aetos: a Keystone-authenticated, multi-tenant front door to Prometheus.
//!
//! One request takes one straight path through four stages, each a plain
//! function of plain values (see `doc/source/contributor/architecture.rst`):
//!
//! ```text
//! http (server, api) → authn (auth) → authz (authz, policy)
//!      → tenancy (tenancy, api::rewrite) → backend (backend) → client
//! ```
#![forbid(unsafe_code)]

// Public: only what the binary (app, config, policy), the tests (api::filter,
// auth::memcache, policy, tenancy) and the benches (policy) use; everything
// else is crate-private, so that the compiler reports dead code.
pub mod api;
pub mod app;
pub mod auth;
mod authz;
mod backend;
pub mod config;
mod cors;
mod identity;
mod limits;
mod metrics;
pub mod policy;
mod server;
mod telemetry;
pub use aetos_tenancy as tenancy;
#[cfg(test)]
mod test_support;
