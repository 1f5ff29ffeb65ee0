//! The one place that decides how an outgoing backend request is
//! authenticated. Each method lives in its own file; adding one is adding
//! a file, a variant here and its arm in [`BackendAuth::headers`].
//!
//! Whatever goes wrong while obtaining credentials becomes
//! [`BackendError::Credentials`] naming the method (503 to the caller);
//! no secret, token or key ever appears in a message, a log line or the
//! `Debug` output of these types.

use std::fmt;
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::Method;
use serde_json::{json, Value};

pub mod aws;
pub mod azure;
pub mod basic;
pub mod bearer_file;
pub mod google;
mod oauth;

use aws::sign::ToSign;
use aws::SigV4;
use azure::AzureAd;
use basic::Basic;
use bearer_file::BearerFile;
use google::GoogleAuth;

use crate::backend::error::BackendError;
use crate::backend::refresh::CacheState;

/// How requests to the backend authenticate.
#[derive(Clone, Default)]
pub enum BackendAuth {
    /// Plain Prometheus on a trusted network (mTLS, if any, is a property of
    /// the HTTP client, not of each request).
    #[default]
    None,
    /// `[prometheus] username` / `password`.
    Basic(Basic),
    /// `Authorization: Bearer` from `[prometheus] bearer_token_file`.
    BearerFile(Arc<BearerFile>),
    /// AWS SigV4 (Amazon Managed Service for Prometheus).
    SigV4(Arc<SigV4>),
    /// An Azure AD token (Azure Monitor managed service for Prometheus).
    Azure(Arc<AzureAd>),
    /// A Google OAuth token (Google Cloud Managed Service for Prometheus).
    Google(Arc<GoogleAuth>),
}

impl fmt::Debug for BackendAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method())
    }
}

/// One request as it will be sent, for the methods that sign it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    pub method: &'a Method,
    /// The absolute URL, query string included, exactly as sent.
    pub url: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

fn cache_json(state: CacheState, last_error: Option<String>) -> Value {
    let (held, expires_in) = match state {
        CacheState::Empty => ("none yet", None),
        CacheState::Permanent => ("long-lived", None),
        CacheState::Valid { expires_in } => ("valid", Some(expires_in.as_secs())),
        CacheState::Expired => ("expired", None),
    };
    json!({"credentials": held, "expires_in_s": expires_in, "last_error": last_error})
}

impl BackendAuth {
    /// The method's name as `[prometheus] auth_method` spells it; never a secret.
    pub fn method(&self) -> &'static str {
        match self {
            BackendAuth::None => "none",
            BackendAuth::Basic(_) => "basic",
            BackendAuth::BearerFile(_) => "bearer_file",
            BackendAuth::SigV4(_) => "sigv4",
            BackendAuth::Azure(_) => "azure",
            BackendAuth::Google(_) => "google",
        }
    }

    /// Whether credentials are obtained (and may fail) at run time: a
    /// token file, a cloud identity; not for none or static basic.
    pub fn obtains_credentials(&self) -> bool {
        !matches!(self, BackendAuth::None | BackendAuth::Basic(_))
    }

    /// Whether the query string must be sent in SigV4's canonical encoding.
    pub fn canonical_query(&self) -> bool {
        matches!(self, BackendAuth::SigV4(_))
    }

    /// One line for the start-up log: the method and where its credentials
    /// come from (file names, ids, role ARNs; no secret).
    pub fn describe(&self) -> String {
        match self {
            BackendAuth::None => "none".to_owned(),
            BackendAuth::Basic(b) => format!("basic (user {})", b.username),
            BackendAuth::BearerFile(b) => format!("bearer_file ({})", b.path().display()),
            BackendAuth::SigV4(s) => format!(
                "sigv4 (service {}, region {}, credentials: {}, STS {})",
                s.service,
                s.region,
                s.credentials.describe(),
                s.credentials.sts_endpoint()
            ),
            BackendAuth::Azure(a) => format!("azure ({})", a.describe()),
            BackendAuth::Google(g) => format!("google ({})", g.describe()),
        }
    }

    /// The credentials' state for `/healthcheck?detailed` (no secret).
    pub fn status(&self) -> Value {
        let mut v = match self {
            BackendAuth::None | BackendAuth::Basic(_) => json!({}),
            BackendAuth::BearerFile(b) => match b.token() {
                Ok(_) => json!({"credentials": "readable"}),
                Err(e) => json!({"credentials": "unreadable", "last_error": e}),
            },
            BackendAuth::SigV4(s) => {
                let (state, err) = s.credentials.state();
                cache_json(state, err)
            }
            BackendAuth::Azure(a) => {
                let (state, err) = a.state();
                cache_json(state, err)
            }
            BackendAuth::Google(g) => {
                let (state, err) = g.state();
                cache_json(state, err)
            }
        };
        v["method"] = json!(self.method());
        v
    }

    fn fail(&self, why: String) -> BackendError {
        BackendError::Credentials {
            method: self.method(),
            why,
        }
    }

    /// The credential headers of one request (none for [`BackendAuth::None`]),
    /// marked sensitive so that no debug output shows them.
    pub async fn headers(
        &self,
        out: Outgoing<'_>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, BackendError> {
        let bearer = |token: String| -> Result<Vec<(HeaderName, HeaderValue)>, BackendError> {
            Ok(vec![(
                AUTHORIZATION,
                self.sensitive(format!("Bearer {token}"))?,
            )])
        };
        match self {
            BackendAuth::None => Ok(Vec::new()),
            BackendAuth::Basic(b) => Ok(vec![(AUTHORIZATION, self.sensitive(b.authorization())?)]),
            BackendAuth::BearerFile(b) => bearer(b.token().map_err(|e| self.fail(e))?),
            // The identity providers' futures on the heap: inline, every
            // forwarded request's future would carry (and copy) them.
            BackendAuth::Azure(a) => bearer(Box::pin(a.token()).await.map_err(|e| self.fail(e))?),
            BackendAuth::Google(g) => bearer(Box::pin(g.token()).await.map_err(|e| self.fail(e))?),
            BackendAuth::SigV4(s) => {
                let signed_headers: Vec<(&str, &str)> = out
                    .content_type
                    .map(|ct| vec![("content-type", ct)])
                    .unwrap_or_default();
                let headers = Box::pin(s.headers_for(ToSign {
                    method: out.method.as_str(),
                    url: out.url,
                    headers: &signed_headers,
                    body: out.body,
                }))
                .await
                .map_err(|e| self.fail(e))?;
                headers
                    .into_iter()
                    .map(|(k, v)| {
                        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                            self.fail(format!("the signer named a bad header {k:?}"))
                        })?;
                        Ok((name, self.sensitive(v)?))
                    })
                    .collect()
            }
        }
    }

    /// A credential as a header value, never shown by `Debug`.
    fn sensitive(&self, v: String) -> Result<HeaderValue, BackendError> {
        let mut v = HeaderValue::try_from(v)
            .map_err(|_| self.fail("the credential is not a valid header value".to_owned()))?;
        v.set_sensitive(true);
        Ok(v)
    }
}
