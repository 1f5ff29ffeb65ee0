//! Test support for the tenancy engine (`aetos-tenancy`), as a crate so that
//! the spec table and property tests of the service (`tests/tenancy_*.rs`)
//! and the cargo-fuzz target (`fuzz/`) share one copy without `#[path]`
//! includes.
//!
//! - [`oracle`]: an independent checker of the tenancy invariant; it uses
//!   only `promql-parser`, never the engine it judges.
//! - [`harness`]: what one fuzz input must satisfy (the engine checked by the
//!   oracle), run by the fuzzer and replayed over the seeds by the tests.
#![forbid(unsafe_code)]

pub mod harness;
pub mod oracle;
