//! Stand-ins for Azure AD's v2 token endpoint and for the instance
//! metadata service (IMDS) of a VM with a managed identity.
//!
//! Azure AD (`POST /{tenant}/oauth2/v2.0/token`) checks what the real one
//! checks for the client-credentials grant: the tenant, `client_id`, the
//! scope, and either the `client_secret` or a federated
//! `client_assertion` of type `jwt-bearer` (AKS workload identity). IMDS
//! (`GET /metadata/identity/oauth2/token`) requires `Metadata: true`,
//! `api-version` and `resource`, and answers with numbers as strings, as
//! the real one does. Issued tokens go into the shared [`Registry`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{form, Registry, Server};

/// The resource Azure Monitor managed Prometheus tokens are for.
pub const PROMETHEUS_RESOURCE: &str = "https://prometheus.monitor.azure.com";

/// The app registration and identities the stand-ins know.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// Federated token (the AKS service-account token) accepted as assertion.
    pub federated_token: String,
    /// Client id of the user-assigned managed identity IMDS serves (the
    /// system-assigned one is served when no client_id is asked for).
    pub managed_identity_client_id: String,
    pub lifetime: Duration,
}

/// One token request, for assertions.
#[derive(Debug, Clone)]
pub struct TokenCall {
    /// `client_secret`, `client_assertion` or `imds`.
    pub kind: String,
    pub client_id: Option<String>,
    pub status: u16,
}

pub struct AzureState {
    pub config: AzureConfig,
    pub registry: Arc<Registry>,
    pub calls: Mutex<Vec<TokenCall>>,
    pub refuse: AtomicBool,
    pub issued: AtomicU64,
}

impl AzureState {
    fn new(config: AzureConfig, registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(AzureState {
            config,
            registry,
            calls: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
            issued: AtomicU64::new(0),
        })
    }

    fn record(&self, kind: &str, client_id: Option<String>, resp: &HttpResponse) {
        self.calls.lock().unwrap().push(TokenCall {
            kind: kind.to_owned(),
            client_id,
            status: resp.status().as_u16(),
        });
    }

    pub fn count(&self, kind: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.kind == kind && c.status == 200)
            .count()
    }
}

fn aad_error(status: u16, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json; charset=utf-8")
        .body(
            json!({"error": error, "error_description": description,
                "error_codes": [7000215], "timestamp": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                "trace_id": uuid::Uuid::new_v4().to_string(), "correlation_id": uuid::Uuid::new_v4().to_string()})
            .to_string(),
        )
}

/// The Azure AD token endpoint stand-in.
pub struct AzureAdStandin {
    pub state: Arc<AzureState>,
    pub server: Server,
}

impl AzureAdStandin {
    pub fn start(config: AzureConfig, registry: Arc<Registry>) -> AzureAdStandin {
        let state = AzureState::new(config, registry);
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(token_endpoint));
        });
        AzureAdStandin { state, server }
    }

    /// The authority host (what AZURE_AUTHORITY_HOST would hold).
    pub fn authority(&self) -> String {
        format!("{}/", self.server.url())
    }
}

async fn token_endpoint(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AzureState>,
) -> HttpResponse {
    let c = &state.config;
    let f = form(&body);
    let kind = if f.contains_key("client_assertion") {
        "client_assertion"
    } else {
        "client_secret"
    };
    let client_id = f.get("client_id").cloned();
    let resp = (|| {
        let expected_path = format!("/{}/oauth2/v2.0/token", c.tenant_id);
        if req.method() != actix_web::http::Method::POST || req.path() != expected_path {
            return aad_error(
                400,
                "invalid_request",
                &format!("AADSTS90002: Tenant not found: {}", req.path()),
            );
        }
        if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
            return aad_error(
                400,
                "unsupported_grant_type",
                "AADSTS70003: grant_type must be client_credentials",
            );
        }
        if client_id.as_deref() != Some(c.client_id.as_str()) {
            return aad_error(
                400,
                "unauthorized_client",
                "AADSTS700016: Application not found in the directory",
            );
        }
        if f.get("scope").map(String::as_str)
            != Some("https://prometheus.monitor.azure.com/.default")
        {
            return aad_error(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid",
            );
        }
        let authenticated = match kind {
            "client_assertion" => {
                f.get("client_assertion_type").map(String::as_str)
                    == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                    && f.get("client_assertion") == Some(&c.federated_token)
            }
            _ => f.get("client_secret") == Some(&c.client_secret),
        };
        if !authenticated || state.refuse.load(Ordering::SeqCst) {
            return aad_error(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
            );
        }
        let token = state
            .registry
            .issue_bearer(PROMETHEUS_RESOURCE, &c.client_id, c.lifetime);
        state.issued.fetch_add(1, Ordering::SeqCst);
        let secs = c.lifetime.as_secs();
        HttpResponse::Ok()
            .content_type("application/json; charset=utf-8")
            .body(json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token}).to_string())
    })();
    state.record(kind, client_id, &resp);
    resp
}

/// The IMDS stand-in.
pub struct ImdsStandin {
    pub state: Arc<AzureState>,
    pub server: Server,
}

impl ImdsStandin {
    pub fn start(config: AzureConfig, registry: Arc<Registry>) -> ImdsStandin {
        let state = AzureState::new(config, registry);
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(imds));
        });
        ImdsStandin { state, server }
    }

    /// The token endpoint URL (what [prometheus_azure] imds_endpoint holds).
    pub fn endpoint(&self) -> String {
        format!("{}/metadata/identity/oauth2/token", self.server.url())
    }
}

async fn imds(req: HttpRequest, state: web::Data<AzureState>) -> HttpResponse {
    let c = &state.config;
    let q = form(req.query_string().as_bytes());
    let client_id = q.get("client_id").cloned();
    let bad = |d: &str| {
        HttpResponse::BadRequest()
            .content_type("application/json")
            .body(json!({"error": "invalid_request", "error_description": d}).to_string())
    };
    let resp = if req.path() != "/metadata/identity/oauth2/token"
        || req.method() != actix_web::http::Method::GET
    {
        HttpResponse::NotFound().finish()
    } else if req.headers().get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        bad("Required metadata header not specified")
    } else if !q.contains_key("api-version") {
        bad("Required query variable 'api-version' is missing")
    } else if q.get("resource").map(String::as_str) != Some(PROMETHEUS_RESOURCE) {
        bad("Resource not supported by this stand-in")
    } else if client_id
        .as_deref()
        .is_some_and(|id| id != c.managed_identity_client_id)
    {
        bad("Identity not found")
    } else {
        let principal = client_id
            .clone()
            .unwrap_or_else(|| "system-assigned".to_owned());
        let token = state
            .registry
            .issue_bearer(PROMETHEUS_RESOURCE, &principal, c.lifetime);
        state.issued.fetch_add(1, Ordering::SeqCst);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let secs = c.lifetime.as_secs();
        HttpResponse::Ok()
            .content_type("application/json; charset=utf-8")
            .body(
                json!({
                    "access_token": token,
                    "client_id": principal,
                    "expires_in": secs.to_string(),
                    "expires_on": (now + secs).to_string(),
                    "ext_expires_in": secs.to_string(),
                    "not_before": now.to_string(),
                    "resource": PROMETHEUS_RESOURCE,
                    "token_type": "Bearer"
                })
                .to_string(),
            )
    };
    state.record("imds", client_id, &resp);
    resp
}
