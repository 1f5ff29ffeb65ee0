//! HTTP basic authentication: `[prometheus] username` / `password`, as
//! upstream Aetos sends them to a Prometheus behind a reverse proxy.

use crate::config::Secret;

/// A user name and its password, sent with every request.
#[derive(Debug, Clone)]
pub struct Basic {
    pub username: String,
    pub password: Secret,
}

impl Basic {
    /// The `Authorization: Basic …` value of every request.
    pub fn authorization(&self) -> String {
        use base64::Engine;
        let pair = format!("{}:{}", self.username, self.password.expose());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}
