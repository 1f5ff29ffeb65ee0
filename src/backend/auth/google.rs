//! Google OAuth tokens for Google Cloud Managed Service for Prometheus.
//!
//! Two ways to get a token for scope
//! `https://www.googleapis.com/auth/monitoring.read`:
//!
//! * service account key — the JSON key file (`credentials_file`, else
//!   `GOOGLE_APPLICATION_CREDENTIALS`) holds an RSA key; a JWT (`RS256`,
//!   `iss` = the account, `aud` = the key's `token_uri`, one hour) signed
//!   with it is exchanged at `token_uri` with the `jwt-bearer` grant;
//! * metadata server — on GCE, or on GKE with Workload Identity: `GET
//!   {metadata}/computeMetadata/v1/instance/service-accounts/{account}/token?scopes=…`
//!   with `Metadata-Flavor: Google`. The server is the option, else
//!   `http://$GCE_METADATA_HOST`, else `http://metadata.google.internal`.
//!
//! The key is parsed once at start-up (a bad file stops aetos with a message
//! naming it) and signed with `ring`, which rustls already brings. Tokens are
//! cached in a [`Refreshing`] and fetched again shortly before expiry.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::oauth;
use crate::backend::env::{env_var, Env};
use crate::backend::refresh::{CacheState, Expiring, Refreshing};
use crate::config::{GoogleIdentityKind, GoogleSection};

/// Google's token endpoint, when a key names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The metadata server's host name on GCE and GKE.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Lifetime of the signed assertion; Google accepts at most one hour.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);

/// A service account key, parsed.
pub struct ServiceAccountKey {
    pub client_email: String,
    pub key_id: Option<String>,
    pub token_uri: Url,
    pub file: PathBuf,
    key: RsaKeyPair,
}

/// How the token is obtained.
pub enum GoogleIdentity {
    ServiceAccountKey(Box<ServiceAccountKey>),
    MetadataServer { endpoint: Url, account: String },
}

impl GoogleIdentity {
    /// The identity type as the option spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            GoogleIdentity::ServiceAccountKey(_) => "service_account_key",
            GoogleIdentity::MetadataServer { .. } => "metadata_server",
        }
    }
}

/// Cached, refreshing Google OAuth access tokens.
pub struct GoogleAuth {
    identity: GoogleIdentity,
    scope: String,
    http: reqwest::Client,
    cache: Refreshing<String>,
}

/// The fields of a key file aetos uses.
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// The DER bytes of a PEM `PRIVATE KEY` (PKCS#8) block.
fn pkcs8_der(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    let start = pem
        .find(BEGIN)
        .ok_or("private_key is not a PEM 'PRIVATE KEY' (PKCS#8) block")?
        + BEGIN.len();
    let end = start
        + pem[start..]
            .find(END)
            .ok_or("private_key has no END PRIVATE KEY line")?;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(b64)
        .map_err(|_| "private_key is not valid base64".to_owned())
}

impl ServiceAccountKey {
    /// Reads and checks a key file. Errors name the file, never the key.
    pub fn load(path: &str) -> Result<ServiceAccountKey, String> {
        let fail = |why: String| format!("service account key {path}: {why}");
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let k: KeyFile = serde_json::from_str(&text)
            .map_err(|e| fail(format!("not a JSON key file: line {}", e.line())))?;
        match k.kind.as_deref() {
            Some("service_account") => {}
            other => {
                return Err(fail(format!(
                    "type {:?} is not supported: use a service_account key, or the metadata \
                     server for Workload Identity",
                    other.unwrap_or("")
                )))
            }
        }
        let client_email = k
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or_else(|| fail("no client_email".into()))?;
        let der = pkcs8_der(&k.private_key.unwrap_or_default()).map_err(fail)?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| fail(format!("private_key is not a usable RSA key ({e})")))?;
        let token_uri = match k.token_uri.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => crate::config::parse_url(u).map_err(|e| fail(format!("token_uri: {e}")))?,
            None => Url::parse(DEFAULT_TOKEN_URI).map_err(|e| fail(e.to_string()))?,
        };
        Ok(ServiceAccountKey {
            client_email,
            key_id: k.private_key_id.filter(|id| !id.is_empty()),
            token_uri,
            file: PathBuf::from(path),
            key,
        })
    }

    /// The signed JWT that asks `token_uri` for a token of `scope`.
    pub fn assertion(&self, scope: &str, now: SystemTime) -> Result<String, String> {
        let iat = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| "the clock is before 1970".to_owned())?
            .as_secs();
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri.as_str(),
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "cannot sign the token request".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

impl GoogleAuth {
    /// Chooses the identity from `[prometheus_google]` and the environment.
    pub fn resolve(
        g: &GoogleSection,
        env: &Env,
        http: reqwest::Client,
    ) -> Result<GoogleAuth, String> {
        const S: &str = "[prometheus_google]";
        let var = |name: &str| env_var(env, name).map(str::to_owned);
        let key_file = g
            .credentials_file
            .clone()
            .or_else(|| var("GOOGLE_APPLICATION_CREDENTIALS"));
        let identity = match (g.identity, key_file) {
            (GoogleIdentityKind::ServiceAccountKey, None) => {
                return Err(format!(
                    "{S} credentials_file: required with identity service_account_key (or \
                     GOOGLE_APPLICATION_CREDENTIALS)"
                ))
            }
            (GoogleIdentityKind::ServiceAccountKey | GoogleIdentityKind::Auto, Some(f)) => {
                GoogleIdentity::ServiceAccountKey(Box::new(ServiceAccountKey::load(&f)?))
            }
            (GoogleIdentityKind::MetadataServer | GoogleIdentityKind::Auto, _) => {
                let endpoint = match &g.metadata_endpoint {
                    Some(u) => u.clone(),
                    None => {
                        let host = var("GCE_METADATA_HOST")
                            .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned());
                        crate::config::parse_url(&format!("http://{host}"))
                            .map_err(|e| format!("GCE_METADATA_HOST: {e}"))?
                    }
                };
                GoogleIdentity::MetadataServer {
                    endpoint,
                    account: g.service_account.clone(),
                }
            }
        };
        Ok(GoogleAuth {
            identity,
            scope: g.scope.clone(),
            http,
            cache: Refreshing::new(),
        })
    }

    /// Where tokens come from, for logs and health reports (no secret).
    pub fn describe(&self) -> String {
        match &self.identity {
            GoogleIdentity::ServiceAccountKey(k) => format!(
                "service account key of {} ({}) at {}",
                k.client_email,
                k.file.display(),
                k.token_uri
            ),
            GoogleIdentity::MetadataServer { endpoint, account } => {
                format!("metadata server {endpoint} for service account {account}")
            }
        }
    }

    /// What the cache holds, and the last fetch error.
    pub fn state(&self) -> (CacheState, Option<String>) {
        (self.cache.state(), self.cache.last_error())
    }

    /// A current access token, from the cache or fetched.
    pub async fn token(&self) -> Result<String, String> {
        self.cache.get(|| self.fetch()).await
    }

    async fn fetch(&self) -> Result<Expiring<String>, String> {
        let who = format!("Google OAuth ({})", self.identity.kind());
        let resp = match &self.identity {
            GoogleIdentity::ServiceAccountKey(k) => {
                let assertion = k.assertion(&self.scope, SystemTime::now())?;
                self.http
                    .post(k.token_uri.clone())
                    .form(&[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)])
                    .send()
                    .await
            }
            GoogleIdentity::MetadataServer { endpoint, account } => {
                let mut u = endpoint.clone();
                let base = u.path().trim_end_matches('/').to_owned();
                u.set_path(&format!(
                    "{base}/computeMetadata/v1/instance/service-accounts/{account}/token"
                ));
                u.query_pairs_mut().append_pair("scopes", &self.scope);
                self.http
                    .get(u)
                    .header("Metadata-Flavor", "Google")
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
            }
        };
        oauth::token_from(resp, &who).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::env::env_of as env;

    fn section() -> GoogleSection {
        crate::config::default_config().prometheus_google
    }

    fn client() -> reqwest::Client {
        crate::backend::http_client(Duration::from_secs(2), None, None, None, false).unwrap()
    }

    #[test]
    fn metadata_server_is_the_default_and_honours_gce_metadata_host() {
        let g = GoogleAuth::resolve(&section(), &env(&[]), client()).unwrap();
        assert_eq!(
            g.describe(),
            "metadata server http://metadata.google.internal/ for service account default"
        );
        let g = GoogleAuth::resolve(
            &section(),
            &env(&[("GCE_METADATA_HOST", "127.0.0.1:8089")]),
            client(),
        )
        .unwrap();
        assert!(
            g.describe().contains("http://127.0.0.1:8089/"),
            "{}",
            g.describe()
        );
        let mut s = section();
        s.identity = GoogleIdentityKind::ServiceAccountKey;
        let e = GoogleAuth::resolve(&s, &env(&[]), client()).err().unwrap();
        assert!(e.contains("credentials_file"), "{e}");
    }

    #[test]
    fn unusable_key_files_are_refused_naming_the_file_not_the_key() {
        let dir = std::env::temp_dir().join(format!("aetos-gcp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            ("{", "not a JSON key file"),
            (r#"{"type":"external_account"}"#, "external_account"),
            (r#"{"type":"service_account"}"#, "client_email"),
            (
                r#"{"type":"service_account","client_email":"a@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n"}"#,
                "not a usable RSA key",
            ),
            (
                r#"{"type":"service_account","client_email":"a@p","private_key":"MIIsecret"}"#,
                "PKCS#8",
            ),
        ];
        for (i, (text, expected)) in cases.iter().enumerate() {
            let path = dir.join(format!("key-{i}.json"));
            std::fs::write(&path, text).unwrap();
            let e = ServiceAccountKey::load(path.to_str().unwrap())
                .err()
                .unwrap();
            assert!(e.contains(expected), "{text}: {e}");
            assert!(e.contains(path.to_str().unwrap()), "{e}");
            assert!(!e.contains("c2VjcmV0") && !e.contains("MIIsecret"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
