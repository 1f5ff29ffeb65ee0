//! Why the backend did not answer: the one error type of the backend stage,
//! shared by forwarding and by the authentication methods (which fail with
//! [`BackendError::Credentials`]).

use std::time::Duration;

/// Why the backend did not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    #[error("backend did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot authenticate to the backend ({method}): {why}")]
    Credentials { method: &'static str, why: String },
    #[error("backend request failed: {0}")]
    Other(String),
    /// The backend answered with a redirect, which is not followed: the
    /// credentials aetos adds are only for the configured base URL.
    #[error("backend answered {0} (a redirect, which aetos does not follow)")]
    Redirect(u16),
}
