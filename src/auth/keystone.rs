//! A small native Keystone v3 client: exactly the calls keystonemiddleware's
//! `auth_token` makes, and nothing else.
//!
//! The `openstack` crate cannot validate tokens (doc/source/contributor/
//! decisions.rst), so this is ~200 lines on reqwest + serde: log in as the
//! service user (password or application credential), validate user tokens
//! with `GET /v3/auth/tokens`, re-login once when our own token is refused.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::{Mutex, RwLock};
use url::Url;

use super::token_hash;
use crate::config::Secret;

/// How the service user logs in (`[keystone_authtoken] auth_type`).
#[derive(Clone, Debug)]
pub(crate) enum Credentials {
    /// `auth_type = password` / `v3password`.
    Password {
        user: NameOrId,
        user_domain: NameOrId,
        password: Secret,
        project: Option<(NameOrId, NameOrId)>,
    },
    /// `auth_type = v3applicationcredential`.
    ApplicationCredential { id: String, secret: Secret },
}

/// Keystone lets most things be named either by name or by id.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum NameOrId {
    Name(String),
    Id(String),
}

impl NameOrId {
    fn to_json(&self) -> Value {
        match self {
            NameOrId::Name(n) => json!({ "name": n }),
            NameOrId::Id(i) => json!({ "id": i }),
        }
    }
}

impl Credentials {
    fn auth_body(&self) -> Value {
        match self {
            Credentials::Password {
                user,
                user_domain,
                password,
                project,
            } => {
                let mut u = user.to_json();
                u["password"] = json!(password.expose());
                if matches!(user, NameOrId::Name(_)) {
                    u["domain"] = user_domain.to_json();
                }
                let mut auth =
                    json!({"identity": {"methods": ["password"], "password": {"user": u}}});
                if let Some((p, d)) = project {
                    let mut pj = p.to_json();
                    if matches!(p, NameOrId::Name(_)) {
                        pj["domain"] = d.to_json();
                    }
                    auth["scope"] = json!({ "project": pj });
                }
                json!({ "auth": auth })
            }
            Credentials::ApplicationCredential { id, secret } => json!({"auth": {"identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.expose()}
            }}}),
        }
    }
}

/// What a failed Keystone call means for the caller.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub(crate) enum KeystoneError {
    /// The user token (or the login credentials) were refused.
    #[error("credentials refused by Keystone")]
    Refused,
    /// Keystone could not give an answer we can act on: down, slow, or it
    /// refuses our own service token. Always answered with 503.
    #[error("identity service unavailable: {0}")]
    Unavailable(String),
}

/// A token together with when it expires.
#[derive(Clone)]
pub(crate) struct IssuedToken {
    pub(crate) token: String,
    pub(crate) expires_at: SystemTime,
}

/// The service's connection to Keystone.
pub(crate) struct KeystoneClient {
    http: reqwest::Client,
    v3: Url,
    credentials: Credentials,
    max_retries: u32,
    service_token: RwLock<Option<IssuedToken>>,
    login_lock: Mutex<()>,
}

/// A service token with less than this left is renewed before use.
const RENEW_BEFORE: Duration = Duration::from_secs(120);

/// `auth_url` may name the unversioned root (devstack: `http://h/identity`)
/// or the v3 endpoint; keystoneauth discovers v3 in both cases.
pub(crate) fn v3_url(auth_url: &Url) -> Url {
    let mut u = auth_url.clone();
    let path = u.path().trim_end_matches('/').to_owned();
    if path.ends_with("/v3") {
        u.set_path(&format!("{path}/"));
    } else {
        u.set_path(&format!("{path}/v3/"));
    }
    u
}

impl KeystoneClient {
    /// `http` carries the TLS settings and timeouts of `[keystone_authtoken]`.
    pub(crate) fn new(
        http: reqwest::Client,
        auth_url: &Url,
        credentials: Credentials,
        max_retries: u32,
    ) -> Self {
        KeystoneClient {
            http,
            v3: v3_url(auth_url),
            credentials,
            max_retries,
            service_token: RwLock::new(None),
            login_lock: Mutex::new(()),
        }
    }

    fn endpoint(&self, rel: &str) -> Url {
        // `rel` is a constant relative path; joining it cannot fail.
        self.v3.join(rel).unwrap_or_else(|_| self.v3.clone())
    }

    /// Sends a request, retrying connection failures (not timeouts, not
    /// answers) up to `http_request_max_retries` times as keystoneauth does.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, KeystoneError> {
        let mut attempt = 0;
        loop {
            let Some(mut r) = req.try_clone() else {
                return Err(KeystoneError::Unavailable(
                    "request cannot be retried".into(),
                ));
            };
            // Keystone logs it, so one id follows the request across services.
            if let Some(id) = crate::telemetry::request_id() {
                r = r.header("x-openstack-request-id", &*id);
            }
            match r.send().await {
                Ok(resp) => return Ok(resp),
                Err(e) if e.is_connect() && attempt < self.max_retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) if e.is_timeout() => {
                    return Err(KeystoneError::Unavailable(
                        "Keystone did not answer in time".into(),
                    ))
                }
                Err(e) if e.is_connect() => {
                    return Err(KeystoneError::Unavailable(
                        "cannot connect to Keystone".into(),
                    ))
                }
                Err(e) => {
                    return Err(KeystoneError::Unavailable(format!(
                        "Keystone request failed: {e}"
                    )))
                }
            }
        }
    }

    /// `POST /v3/auth/tokens` with the given credentials. Used for the
    /// service login and for exchanging a caller's application credential
    /// (HTTP Basic from Grafana) for a token.
    pub(crate) async fn login(
        &self,
        credentials: &Credentials,
    ) -> Result<IssuedToken, KeystoneError> {
        let req = self
            .http
            .post(self.endpoint("auth/tokens?nocatalog"))
            .json(&credentials.auth_body());
        let resp = self.send(req).await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => {
                return Err(KeystoneError::Refused)
            }
            s => {
                return Err(KeystoneError::Unavailable(format!(
                    "Keystone login answered {s}"
                )))
            }
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| {
                KeystoneError::Unavailable("login answer without X-Subject-Token".into())
            })?;
        let body: Value = resp
            .json()
            .await
            .map_err(|e| KeystoneError::Unavailable(format!("unreadable login answer: {e}")))?;
        let expires_at = body
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .and_then(|s| humantime::parse_rfc3339_weak(s.trim_end_matches('Z')).ok())
            .ok_or_else(|| KeystoneError::Unavailable("login answer without expires_at".into()))?;
        Ok(IssuedToken { token, expires_at })
    }

    /// Our own token, logging in when there is none or it is about to expire.
    async fn service_token(&self, force: bool) -> Result<String, KeystoneError> {
        if !force {
            if let Some(t) = self.fresh_service_token().await {
                return Ok(t);
            }
        }
        // One login at a time; whoever waited re-checks what the winner got.
        let _guard = self.login_lock.lock().await;
        if !force {
            if let Some(t) = self.fresh_service_token().await {
                return Ok(t);
            }
        }
        let issued = match self.login(&self.credentials).await {
            Ok(t) => t,
            Err(KeystoneError::Refused) => {
                tracing::error!(
                    "Keystone refused the service credentials of [keystone_authtoken]; \
                     cannot validate tokens"
                );
                return Err(KeystoneError::Unavailable(
                    "service credentials refused by Keystone".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        tracing::info!(token = %token_hash(&issued.token), "logged in to Keystone as the service user");
        let t = issued.token.clone();
        *self.service_token.write().await = Some(issued);
        Ok(t)
    }

    async fn fresh_service_token(&self) -> Option<String> {
        let guard = self.service_token.read().await;
        let t = guard.as_ref()?;
        let left = t.expires_at.duration_since(SystemTime::now()).ok()?;
        (left > RENEW_BEFORE).then(|| t.token.clone())
    }

    /// Validates a user token: `Ok(body)` for a valid one,
    /// `Err(Refused)` for an invalid, expired or revoked one.
    pub(crate) async fn validate(&self, user_token: &str) -> Result<Value, KeystoneError> {
        let mut relogged = false;
        loop {
            let service = self.service_token(relogged).await?;
            let req = self
                .http
                .get(self.endpoint("auth/tokens?nocatalog"))
                .header("X-Auth-Token", &service)
                .header("X-Subject-Token", user_token);
            let resp = self.send(req).await?;
            match resp.status() {
                StatusCode::OK => {
                    return resp.json().await.map_err(|e| {
                        KeystoneError::Unavailable(format!("unreadable validation answer: {e}"))
                    })
                }
                StatusCode::NOT_FOUND => return Err(KeystoneError::Refused),
                StatusCode::UNAUTHORIZED if !relogged => {
                    tracing::info!("Keystone refused our service token; logging in again");
                    relogged = true;
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(KeystoneError::Unavailable(
                        "Keystone refuses the service token even after a new login".into(),
                    ))
                }
                StatusCode::FORBIDDEN => {
                    tracing::error!(
                        "the service user may not validate tokens: give it the `service` \
                         or `admin` role"
                    );
                    return Err(KeystoneError::Unavailable(
                        "service user lacks the right to validate tokens".into(),
                    ));
                }
                // Keystone answers 400 for a token it cannot even parse in
                // some versions: that is an invalid token, not an outage.
                StatusCode::BAD_REQUEST => return Err(KeystoneError::Refused),
                s => return Err(KeystoneError::Unavailable(format!("Keystone answered {s}"))),
            }
        }
    }

    /// Logs in once if needed; used at start-up to report bad service
    /// credentials early (a failure there is logged, not fatal).
    pub(crate) async fn warm_up(&self) -> Result<(), KeystoneError> {
        self.service_token(false).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_url_accepts_versioned_and_unversioned_auth_urls() {
        let u = |s: &str| v3_url(&Url::parse(s).unwrap()).to_string();
        assert_eq!(u("http://k:5000/v3"), "http://k:5000/v3/");
        assert_eq!(u("http://k:5000/v3/"), "http://k:5000/v3/");
        assert_eq!(u("http://k/identity"), "http://k/identity/v3/");
        assert_eq!(u("http://k:5000"), "http://k:5000/v3/");
    }

    #[test]
    fn password_login_body_scopes_to_project_by_name() {
        let c = Credentials::Password {
            user: NameOrId::Name("aetos".into()),
            user_domain: NameOrId::Name("Default".into()),
            password: "p\\w".into(),
            project: Some((
                NameOrId::Name("service".into()),
                NameOrId::Id("default".into()),
            )),
        };
        let b = c.auth_body();
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["password"],
            "p\\w"
        );
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Default"
        );
        assert_eq!(b["auth"]["scope"]["project"]["domain"]["id"], "default");
        assert!(!format!("{c:?}").contains("p\\w"));
    }

    #[test]
    fn application_credential_body_and_debug_hide_the_secret() {
        let c = Credentials::ApplicationCredential {
            id: "ac".into(),
            secret: "s3cret".into(),
        };
        assert_eq!(
            c.auth_body()["auth"]["identity"]["methods"][0],
            "application_credential"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
