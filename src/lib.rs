//! aetos: a Keystone-authenticated, multi-tenant front door to Prometheus.
//!
//! One request takes one straight path through four stages, each a plain
//! function of plain values (see `doc/source/contributor/architecture.rst`):
//!
//! ```text
//! http (server, api) → authn (auth) → authz (authz, policy)
//!      → tenancy (request, tenancy) → backend (backend) → client
//! ```
//!
//! ## Module map
//!
//! Each module uses only modules on a row below its own (never one on its
//! own row or above), so every arrow points down and there is no import
//! cycle; `module_map`'s test reads this map and the sources and fails
//! when an import goes up or sideways.
//!
//! ```text
//!  inprocess ────────────────── tests of the whole route table, in-process (cfg(test))
//!   ▼
//!  app ──────────────────────── config → the components (State), and running them
//!   ▼
//!  server ───────────────────── actix App, request id, access log, listeners, shutdown
//!   ▼
//!  api ──────────────────────── route table; pipeline admit → prepare → forward →
//!   ▼                           answer; every Refusal rendered to HTTP in one place
//!  state ────────────────────── State: the components a request needs (no actix)
//!   ▼
//!  cache ────────────────────── results cache: split, key, merge, stores ([cache])
//!   ▼
//!  auth  authz  backend  cors ─ authn (Keystone, token caches), authz
//!   ▼                           ((Identity, rule, Guard) → Access), forwarding, CORS
//!  request  config ──────────── what the backend is sent (Params, Scoping, Scoper);
//!   ▼                           configuration sections
//!  policy  tenancy  limits  identity  metrics  telemetry ── engines and leaves:
//!   ▼                           oslo.policy, PromQL enforcement, [limits], Identity
//!  test_support  module_map ─── for the unit tests only
//! ```
//!
//! The binary (`main.rs`) parses the command line and calls `app`.
#![forbid(unsafe_code)]

// Public: only what the binary (app, config, policy), the tests (api::filter,
// auth::memcache, policy, tenancy) and the benches (policy) use; everything
// else is crate-private, so that the compiler reports dead code.
pub mod api;
pub mod app;
pub mod auth;
mod authz;
mod backend;
mod cache;
pub mod config;
mod cors;
mod identity;
#[cfg(test)]
mod inprocess;
mod limits;
mod metrics;
#[cfg(test)]
mod module_map;
pub mod policy;
mod request;
mod server;
mod state;
mod telemetry;
pub use aetos_tenancy as tenancy;
#[cfg(test)]
mod test_support;
