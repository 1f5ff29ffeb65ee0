//! cargo-fuzz target over the tenancy engine: no input may make scoping
//! panic, and every accepted input must satisfy the invariant (see
//! `aetos_tenancy_oracle::harness`). Run: `cargo +nightly fuzz run scope_query`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| aetos_tenancy_oracle::harness::run(data));
