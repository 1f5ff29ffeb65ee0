//! The process environment as the credential sources read it.
//!
//! AWS, Azure and Google all fall back on environment variables
//! (`AWS_REGION`, `AZURE_TENANT_ID`, `GOOGLE_APPLICATION_CREDENTIALS`, …).
//! They are read once at start-up into an [`Env`] and passed down, so that
//! tests can hand in their own environment instead of mutating the
//! process's.

use std::collections::HashMap;

/// Environment variables as read at start-up (tests pass their own).
pub type Env = HashMap<String, String>;

/// The process environment.
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// An environment of `pairs`, for tests.
#[cfg(test)]
pub fn env_of(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `name` in `env`, unless it is unset or empty.
pub fn env_var<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
}
