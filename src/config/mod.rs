//! `aetos.conf`: oslo.config-compatible configuration.
//!
//! aetos must start from the `aetos.conf` an operator already has for
//! upstream Aetos, so files are read with oslo.config's INI dialect
//! ([`ini`]), through config-rs.

pub mod ini;
