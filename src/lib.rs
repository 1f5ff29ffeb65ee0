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

pub mod api;
pub mod app;
pub mod auth;
pub mod authz;
pub mod backend;
pub mod config;
pub mod cors;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod policy;
pub mod server;
pub mod telemetry;
pub use aetos_tenancy as tenancy;
#[cfg(test)]
mod test_support;
