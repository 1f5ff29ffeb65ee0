//! cargo-fuzz target over the tenancy engine: no input may make scoping
//! panic, and every accepted input must satisfy the invariant (see
//! `fuzz/harness.rs`). Run: `cargo +nightly fuzz run scope_query`.

#![no_main]

/// The tenancy engine, compiled from the service's own source file.
#[path = "../../src/tenancy/mod.rs"]
#[allow(dead_code)]
mod scoping;

#[path = "../oracle.rs"]
mod oracle;

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
