//! aetos: a Keystone-authenticated, multi-tenant front door to Prometheus.
#![forbid(unsafe_code)]

pub mod config;
