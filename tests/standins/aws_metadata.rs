//! Stand-ins for the two AWS metadata services that hand out a role's
//! temporary credentials to a workload, with the real paths, headers and
//! JSON answers:
//!
//! * [`ContainerCredentialsStandin`] — the EKS Pod Identity agent
//!   (`http://169.254.170.23/v1/credentials`; the ECS agent answers the
//!   same JSON): every `GET` must carry, as `Authorization`, a service
//!   account token the agent currently accepts; a test rotates the pod's
//!   token file and then revokes the old token.
//! * [`Ec2ImdsStandin`] — the EC2 instance metadata service with IMDSv2
//!   required: `PUT /latest/api/token` with
//!   `X-aws-ec2-metadata-token-ttl-seconds` (1–21600) gives a session token
//!   that every `GET` must present as `X-aws-ec2-metadata-token`, else 401;
//!   `…/iam/security-credentials/` lists the instance profile's role and
//!   `…/iam/security-credentials/<role>` gives its credentials.
//!
//! Issued keys go into the shared [`Registry`] with the role as principal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{random, Registry, Server};

/// One request a metadata stand-in answered.
#[derive(Debug, Clone)]
pub struct MetadataCall {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Container: the `Authorization` presented.
    pub authorization: Option<String>,
}

pub struct MetadataState {
    /// The role whose credentials are handed out.
    pub role_arn: String,
    pub lifetime: Duration,
    pub registry: Arc<Registry>,
    /// Container: the authorization tokens currently accepted.
    pub accepted: Mutex<Vec<String>>,
    /// IMDS: session tokens issued, with their expiry.
    sessions: Mutex<HashMap<String, SystemTime>>,
    pub calls: Mutex<Vec<MetadataCall>>,
}

impl MetadataState {
    fn new(role_arn: &str, lifetime: Duration, registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(MetadataState {
            role_arn: role_arn.to_owned(),
            lifetime,
            registry,
            accepted: Mutex::new(Vec::new()),
            sessions: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn record(&self, req: &HttpRequest, resp: &HttpResponse) {
        self.calls.lock().unwrap().push(MetadataCall {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            status: resp.status().as_u16(),
            authorization: header(req, "authorization").map(str::to_owned),
        });
    }

    pub fn calls(&self) -> Vec<MetadataCall> {
        self.calls.lock().unwrap().clone()
    }

    /// Successful answers to `method path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.method == method && c.path == path && c.status == 200)
            .count()
    }

    /// New credentials for the role, as both services write them.
    fn credentials(&self, imds: bool) -> serde_json::Value {
        let (akid, key) = self.registry.issue_aws(&self.role_arn, self.lifetime);
        let expiration = humantime::format_rfc3339_seconds(key.expires.unwrap()).to_string();
        let mut v = json!({
            "AccessKeyId": akid,
            "SecretAccessKey": key.secret,
            "Token": key.session_token,
            "Expiration": expiration,
        });
        if imds {
            v["Code"] = json!("Success");
            v["Type"] = json!("AWS-HMAC");
            v["LastUpdated"] =
                json!(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
        } else {
            v["AccountId"] = json!(self.role_arn.split(':').nth(4).unwrap_or_default());
        }
        v
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

// ------------------------------------------------------------ container

/// The EKS Pod Identity agent stand-in.
pub struct ContainerCredentialsStandin {
    pub state: Arc<MetadataState>,
    pub server: Server,
}

impl ContainerCredentialsStandin {
    pub fn start(role_arn: &str, lifetime: Duration, registry: Arc<Registry>) -> Self {
        let state = MetadataState::new(role_arn, lifetime, registry);
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(container));
        });
        ContainerCredentialsStandin { state, server }
    }

    /// What AWS_CONTAINER_CREDENTIALS_FULL_URI holds.
    pub fn full_uri(&self) -> String {
        format!("{}/v1/credentials", self.server.url())
    }

    /// Accepts `token` as authorization from now on.
    pub fn accept(&self, token: &str) {
        self.state.accepted.lock().unwrap().push(token.to_owned());
    }

    /// Refuses `token` from now on.
    pub fn revoke(&self, token: &str) {
        self.state.accepted.lock().unwrap().retain(|t| t != token);
    }
}

async fn container(req: HttpRequest, state: web::Data<MetadataState>) -> HttpResponse {
    let error = |status: u16, code: &str, message: &str| {
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .content_type("application/json")
            .body(json!({"code": code, "message": message}).to_string())
    };
    let accepted = header(&req, "authorization")
        .is_some_and(|a| state.accepted.lock().unwrap().iter().any(|t| t == a));
    let resp = if req.method() != Method::GET || req.path() != "/v1/credentials" {
        error(404, "NotFound", "no such path")
    } else if header(&req, "authorization").is_none() {
        error(
            400,
            "InvalidParameterException",
            "Authorization header is missing",
        )
    } else if !accepted {
        error(
            401,
            "AccessDeniedException",
            "The service account token is not valid",
        )
    } else {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(state.credentials(false).to_string())
    };
    state.record(&req, &resp);
    resp
}

// ------------------------------------------------------------------ IMDS

/// The EC2 instance metadata stand-in (IMDSv2 required).
pub struct Ec2ImdsStandin {
    pub state: Arc<MetadataState>,
    pub server: Server,
}

pub const IMDS_TOKEN_PATH: &str = "/latest/api/token";
pub const IMDS_CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

impl Ec2ImdsStandin {
    pub fn start(role_arn: &str, lifetime: Duration, registry: Arc<Registry>) -> Self {
        let state = MetadataState::new(role_arn, lifetime, registry);
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(imds));
        });
        Ec2ImdsStandin { state, server }
    }

    /// What ec2_metadata_endpoint / AWS_EC2_METADATA_SERVICE_ENDPOINT holds.
    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    /// The instance profile's role name.
    pub fn role_name(&self) -> String {
        self.state.role_arn.rsplit('/').next().unwrap().to_owned()
    }
}

async fn imds(req: HttpRequest, state: web::Data<MetadataState>) -> HttpResponse {
    let role = state.role_arn.rsplit('/').next().unwrap().to_owned();
    let text = |status: u16, body: String| {
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .content_type("text/plain")
            .body(body)
    };
    let resp = if req.path() == IMDS_TOKEN_PATH {
        let ttl = header(&req, "x-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|v| v.parse::<u64>().ok());
        match ttl {
            _ if req.method() != Method::PUT => text(405, String::new()),
            // IMDS refuses token requests that went through a proxy.
            _ if req.headers().contains_key("x-forwarded-for") => text(403, String::new()),
            Some(ttl @ 1..=21600) => {
                let token = random("AQAEA", 56);
                state
                    .sessions
                    .lock()
                    .unwrap()
                    .insert(token.clone(), SystemTime::now() + Duration::from_secs(ttl));
                text(200, token)
            }
            _ => text(400, String::new()),
        }
    } else {
        let session_ok = header(&req, "x-aws-ec2-metadata-token").is_some_and(|t| {
            state
                .sessions
                .lock()
                .unwrap()
                .get(t)
                .is_some_and(|exp| *exp > SystemTime::now())
        });
        if req.method() != Method::GET {
            text(405, String::new())
        } else if !session_ok {
            // IMDSv2 required: no (or an expired) session token is 401.
            text(401, String::new())
        } else if req.path() == IMDS_CREDENTIALS_PATH {
            text(200, role.clone())
        } else if req.path() == format!("{IMDS_CREDENTIALS_PATH}{role}") {
            HttpResponse::Ok()
                .content_type("text/plain")
                .body(serde_json::to_string_pretty(&state.credentials(true)).unwrap())
        } else {
            text(404, "Not Found".into())
        }
    };
    state.record(&req, &resp);
    resp
}
