//! Stand-ins for Google's two token sources:
//!
//! * [`GoogleOAuthStandin`] — the OAuth 2.0 token endpoint
//!   (`https://oauth2.googleapis.com/token`) for the JWT bearer grant: the
//!   form must say `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//!   and carry an `assertion` whose RS256 signature verifies with the
//!   service account's public key, whose `kid` is the key's id, `iss` the
//!   account, `aud` this endpoint, `scope` the monitoring scope, and whose
//!   `iat`/`exp` are current and at most an hour apart — as Google checks.
//! * [`GceMetadataStandin`] — the GCE/GKE metadata server's token path
//!   (`/computeMetadata/v1/instance/service-accounts/<account>/token`),
//!   which requires `Metadata-Flavor: Google` and refuses proxied requests.
//!
//! Tokens are issued through the shared [`Registry`] for
//! [`MONITORING_AUDIENCE`], so the Prometheus stand-in accepts them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use super::{form, Registry, Server};

/// Scope of the tokens aetos asks for.
pub const MONITORING_READ: &str = "https://www.googleapis.com/auth/monitoring.read";
/// What the Prometheus stand-in checks issued tokens against.
pub const MONITORING_AUDIENCE: &str = "https://monitoring.googleapis.com";

/// A service account key made for one test: the PKCS#8 PEM from
/// `openssl genpkey`, and the JSON key file Google would hand out.
pub struct TestKey {
    pub pem: String,
    pub key_id: String,
    pub client_email: String,
    /// The RSAPublicKey DER, for verification.
    pub public_der: Vec<u8>,
}

impl TestKey {
    pub fn generate(dir: &std::path::Path, client_email: &str) -> TestKey {
        let path = dir.join("sa-private.pem");
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .output()
            .expect("run openssl genpkey");
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(b64).unwrap();
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("PKCS#8 RSA key");
        TestKey {
            pem,
            key_id: super::random("", 40).to_lowercase(),
            client_email: client_email.to_owned(),
            public_der: pair.public().as_ref().to_vec(),
        }
    }

    /// The JSON key file, with `token_uri` pointing at `token_uri`.
    pub fn key_file(&self, token_uri: &str) -> String {
        json!({
            "type": "service_account",
            "project_id": "aetos-standin",
            "private_key_id": self.key_id,
            "private_key": self.pem,
            "client_email": self.client_email,
            "client_id": "101234567890123456789",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com"
        })
        .to_string()
    }
}

/// One token request, for assertions.
#[derive(Debug, Clone)]
pub struct GoogleCall {
    pub principal: Option<String>,
    pub status: u16,
    /// Why it was refused.
    pub error: Option<String>,
}

pub struct GoogleState {
    pub key: Option<TestKey>,
    /// The metadata server's account e-mail (served for `default` too).
    pub account: String,
    pub lifetime: Duration,
    pub registry: Arc<Registry>,
    pub port: Mutex<u16>,
    pub calls: Mutex<Vec<GoogleCall>>,
}

impl GoogleState {
    fn new(
        key: Option<TestKey>,
        account: &str,
        lifetime: Duration,
        registry: Arc<Registry>,
    ) -> Arc<Self> {
        Arc::new(GoogleState {
            key,
            account: account.to_owned(),
            lifetime,
            registry,
            port: Mutex::new(0),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn calls(&self) -> Vec<GoogleCall> {
        self.calls.lock().unwrap().clone()
    }

    pub fn issued(&self) -> usize {
        self.calls().iter().filter(|c| c.status == 200).count()
    }

    fn answer(&self, principal: String, result: Result<(), String>) -> HttpResponse {
        let resp = match &result {
            Ok(()) => {
                let token =
                    self.registry
                        .issue_bearer(MONITORING_AUDIENCE, &principal, self.lifetime);
                HttpResponse::Ok()
                    .content_type("application/json; charset=utf-8")
                    .insert_header(("Metadata-Flavor", "Google"))
                    .body(
                        json!({
                            "access_token": token,
                            "expires_in": self.lifetime.as_secs(),
                            "token_type": "Bearer"
                        })
                        .to_string(),
                    )
            }
            Err(e) => HttpResponse::BadRequest()
                .content_type("application/json; charset=utf-8")
                .body(json!({"error": "invalid_grant", "error_description": e}).to_string()),
        };
        self.calls.lock().unwrap().push(GoogleCall {
            principal: result.is_ok().then_some(principal),
            status: resp.status().as_u16(),
            error: result.err(),
        });
        resp
    }
}

// ------------------------------------------------------- token endpoint

/// The OAuth token endpoint stand-in.
pub struct GoogleOAuthStandin {
    pub state: Arc<GoogleState>,
    pub server: Server,
}

impl GoogleOAuthStandin {
    pub fn start(key: TestKey, lifetime: Duration, registry: Arc<Registry>) -> Self {
        let account = key.client_email.clone();
        let state = GoogleState::new(Some(key), &account, lifetime, registry);
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(token_endpoint));
        });
        *state.port.lock().unwrap() = server.port;
        GoogleOAuthStandin { state, server }
    }

    /// The key's `token_uri`.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.server.url())
    }
}

fn jwt_part(part: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "JWT part is not base64url".to_owned())?;
    serde_json::from_slice(&bytes).map_err(|_| "JWT part is not JSON".to_owned())
}

/// Google's checks of a JWT bearer assertion.
fn check_assertion(s: &GoogleState, assertion: &str) -> Result<String, String> {
    let key = s.key.as_ref().expect("the token endpoint has a key");
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe".into(),
        );
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &key.public_der,
    )
    .verify(format!("{header}.{claims}").as_bytes(), &signature)
    .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    let (h, c) = (jwt_part(header)?, jwt_part(claims)?);
    if h["alg"] != "RS256" || h["typ"] != "JWT" {
        return Err(format!("Invalid JWT header: {h}"));
    }
    if h["kid"] != key.key_id.as_str() {
        return Err("Invalid JWT: unknown key id".into());
    }
    let port = *s.port.lock().unwrap();
    if c["aud"] != format!("http://127.0.0.1:{port}/token").as_str() {
        return Err(format!("Invalid JWT: audience {}", c["aud"]));
    }
    if c["iss"] != key.client_email.as_str() {
        return Err("Invalid JWT: issuer is not the key's service account".into());
    }
    if c["scope"] != MONITORING_READ {
        return Err(format!("Invalid scope {}", c["scope"]));
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (iat, exp) = (
        c["iat"].as_u64().unwrap_or(0),
        c["exp"].as_u64().unwrap_or(0),
    );
    if iat > now + 60 || iat + 300 < now || exp <= now || exp <= iat || exp - iat > 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.".into());
    }
    Ok(key.client_email.clone())
}

async fn token_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    s: web::Data<GoogleState>,
) -> HttpResponse {
    let f = form(&body);
    let result = if req.method() != Method::POST || req.path() != "/token" {
        Err(format!(
            "{} {} is not the token endpoint",
            req.method(),
            req.path()
        ))
    } else if f.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        Err("Invalid grant_type".into())
    } else {
        check_assertion(&s, f.get("assertion").map(String::as_str).unwrap_or(""))
    };
    match result {
        Ok(principal) => s.answer(principal, Ok(())),
        Err(e) => s.answer(String::new(), Err(e)),
    }
}

// ------------------------------------------------------- metadata server

/// The metadata server stand-in.
pub struct GceMetadataStandin {
    pub state: Arc<GoogleState>,
    pub server: Server,
}

impl GceMetadataStandin {
    pub fn start(account: &str, lifetime: Duration, registry: Arc<Registry>) -> Self {
        let state = GoogleState::new(None, account, lifetime, registry);
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(metadata));
        });
        GceMetadataStandin { state, server }
    }

    /// What GCE_METADATA_HOST holds.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.port)
    }
}

async fn metadata(req: HttpRequest, s: web::Data<GoogleState>) -> HttpResponse {
    const PREFIX: &str = "/computeMetadata/v1/instance/service-accounts/";
    let flavor = req
        .headers()
        .get("metadata-flavor")
        .and_then(|v| v.to_str().ok());
    if flavor != Some("Google") || req.headers().contains_key("x-forwarded-for") {
        let resp = HttpResponse::Forbidden()
            .content_type("text/html")
            .body("Missing required header \"Metadata-Flavor\"");
        s.calls.lock().unwrap().push(GoogleCall {
            principal: None,
            status: 403,
            error: Some("no Metadata-Flavor".into()),
        });
        return resp;
    }
    let q = form(req.query_string().as_bytes());
    let account = req
        .path()
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix("/token"))
        .unwrap_or("");
    let result = if req.method() != Method::GET || !(account == "default" || account == s.account) {
        Err(format!("no such service account {account:?}"))
    } else if !q
        .get("scopes")
        .is_some_and(|sc| sc.split(',').any(|x| x == MONITORING_READ))
    {
        Err("the token does not carry the monitoring scope".into())
    } else {
        Ok(())
    };
    s.answer(s.account.clone(), result)
}
