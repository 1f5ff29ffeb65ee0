//! The one place that decides how an outgoing backend request is
//! authenticated. Adding a method (bearer file, SigV4, Azure AD, …) is
//! adding a variant and its `apply` arm.

use std::fmt;

use bytes::Bytes;
use reqwest::{Method, RequestBuilder};

use super::BackendError;

/// How requests to the backend authenticate.
#[derive(Clone, Default)]
pub enum BackendAuth {
    /// Plain Prometheus on a trusted network (mTLS, if any, is a property of
    /// the HTTP client, not of each request).
    #[default]
    None,
    /// `[prometheus] username` / `password` (upstream: only when both set).
    Basic { username: String, password: String },
}

impl fmt::Debug for BackendAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

impl BackendAuth {
    /// A short name for logs and error messages; never a secret.
    pub fn method(&self) -> &'static str {
        match self {
            BackendAuth::None => "none",
            BackendAuth::Basic { .. } => "basic",
        }
    }

    /// Adds credentials to one request. `url` and `body` are what will be
    /// sent, for methods that sign the request.
    pub async fn apply(
        &self,
        rb: RequestBuilder,
        _method: &Method,
        _url: &str,
        _body: &Bytes,
    ) -> Result<RequestBuilder, BackendError> {
        Ok(match self {
            BackendAuth::None => rb,
            BackendAuth::Basic { username, password } => rb.basic_auth(username, Some(password)),
        })
    }
}
