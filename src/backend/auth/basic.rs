//! HTTP basic authentication: `[prometheus] username` / `password`, as
//! upstream Aetos sends them to a Prometheus behind a reverse proxy.

use reqwest::RequestBuilder;

use crate::config::Secret;

/// A user name and its password, sent with every request.
#[derive(Debug, Clone)]
pub struct Basic {
    pub username: String,
    pub password: Secret,
}

impl Basic {
    /// Adds `Authorization: Basic …` to one request.
    pub fn apply(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.basic_auth(&self.username, Some(self.password.expose()))
    }
}
