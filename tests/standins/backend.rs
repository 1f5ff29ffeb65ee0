//! A stand-in for a managed Prometheus front door (AMP, Azure Monitor,
//! OpenShift's oauth-proxy, a Mimir/Thanos gateway): it authenticates
//! every request the way the real service does, records what it saw, and
//! only then forwards the request to the stack's real Prometheus, so the
//! answer is real data.
//!
//! * [`Check::SigV4`] — the request must carry a valid AWS SigV4 signature
//!   for the region and service (verified by [`super::sigv4_verify`]), made
//!   with credentials of the expected principal (role);
//! * [`Check::IssuedBearer`] — `Authorization: Bearer` with a token the
//!   Azure AD, IMDS or Google stand-ins issued for this service, not expired;
//! * [`Check::Tokens`] — `Authorization: Bearer` with one of a set of
//!   tokens the test can change (a rotated service-account token);
//! * [`Check::Nothing`] — only records (tenant headers).
//!
//! A path prefix (`/workspaces/ws-…` for AMP) is required and stripped
//! before forwarding. Failures answer 403/401 with the service's JSON.
//!
//! An accepted request for the label [`REDIRECT_PROBE`] is answered `302
//! Found` to [`PrometheusStandin::redirect_to`] (by default a path outside
//! the prefix on this server), to prove that aetos does not follow it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::sigv4_verify::{self, Received};
use super::{Registry, Server};

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Check {
    SigV4 {
        region: String,
        service: String,
        /// Only credentials of this principal are accepted.
        principal: Option<String>,
    },
    IssuedBearer {
        audience: String,
    },
    Tokens(Arc<Mutex<HashSet<String>>>),
    Nothing,
}

/// One request the stand-in accepted or refused.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Who signed / whose token (when accepted).
    pub principal: Option<String>,
    pub signed_headers: Option<String>,
    /// `None` when accepted, else why not.
    pub refused: Option<String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The label name whose values the stand-in answers with a redirect.
pub const REDIRECT_PROBE: &str = "redirect_probe";

/// Where the redirect probe points by default: this server, outside any prefix.
pub const STOLEN_PATH: &str = "/stolen/api/v1/label/job/values";

pub struct BackendState {
    pub check: Check,
    /// `Location` of the redirect probe's answer.
    pub redirect_to: Mutex<String>,
    pub prefix: String,
    pub upstream: String,
    pub registry: Arc<Registry>,
    pub seen: Mutex<Vec<Seen>>,
    http: reqwest::Client,
}

pub struct PrometheusStandin {
    pub state: Arc<BackendState>,
    pub server: Server,
}

impl PrometheusStandin {
    /// Serves below `prefix` (e.g. `/workspaces/ws-standin`, or empty),
    /// forwarding accepted requests to `upstream` (a real Prometheus).
    pub fn start(
        check: Check,
        prefix: &str,
        upstream: &str,
        registry: Arc<Registry>,
    ) -> PrometheusStandin {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = Arc::new(BackendState {
            check,
            redirect_to: Mutex::new(STOLEN_PATH.to_owned()),
            prefix: prefix.trim_end_matches('/').to_owned(),
            upstream: upstream.trim_end_matches('/').to_owned(),
            registry,
            seen: Mutex::new(Vec::new()),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        });
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(handle));
        });
        PrometheusStandin { state, server }
    }

    /// The URL aetos is configured with (prefix included).
    pub fn url(&self) -> String {
        format!("{}{}", self.server.url(), self.state.prefix)
    }

    /// Points the redirect probe at `location` (relative or absolute).
    pub fn redirect_to(&self, location: &str) {
        *self.state.redirect_to.lock().unwrap() = location.to_owned();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn accepted(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.refused.is_none())
            .collect()
    }

    pub fn refused(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.refused.is_some())
            .collect()
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn authenticate(
    req: &HttpRequest,
    body: &[u8],
    headers: &[(String, String)],
    s: &BackendState,
) -> Result<(Option<String>, Option<String>), String> {
    match &s.check {
        Check::Nothing => Ok((None, None)),
        Check::SigV4 {
            region,
            service,
            principal,
        } => {
            let received = Received {
                method: req.method().as_str(),
                raw_path: req.path(),
                raw_query: req.query_string(),
                headers: headers.to_vec(),
                body,
            };
            let v =
                sigv4_verify::verify(&received, &s.registry, region, service, SystemTime::now())?;
            if let Some(p) = principal {
                if &v.principal != p {
                    return Err(format!(
                        "AccessDeniedException: {} has no access to this workspace",
                        v.principal
                    ));
                }
            }
            Ok((Some(v.principal), Some(v.signed_headers)))
        }
        Check::IssuedBearer { audience } => {
            let token = bearer(req).ok_or("missing bearer token")?;
            let b = s.registry.bearer(&token).ok_or("invalid token: unknown")?;
            if SystemTime::now() >= b.expires {
                return Err("invalid token: expired".into());
            }
            if &b.audience != audience {
                return Err(format!("invalid token: audience {}", b.audience));
            }
            Ok((Some(b.principal), None))
        }
        Check::Tokens(valid) => {
            let token = bearer(req).ok_or("missing bearer token")?;
            if valid.lock().unwrap().contains(&token) {
                Ok((
                    Some(format!("token:{}", &token[..token.len().min(8)])),
                    None,
                ))
            } else {
                Err("invalid token".into())
            }
        }
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, s: web::Data<BackendState>) -> HttpResponse {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let mut seen = Seen {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        query: req.query_string().to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        headers: headers.clone(),
        principal: None,
        signed_headers: None,
        refused: None,
    };
    let outcome = authenticate(&req, &body, &headers, &s);
    let (principal, signed) = match outcome {
        Ok(p) => p,
        Err(why) => {
            seen.refused = Some(why.clone());
            s.seen.lock().unwrap().push(seen);
            let status = if matches!(s.check, Check::SigV4 { .. }) {
                403
            } else {
                401
            };
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                .content_type("application/json")
                .body(json!({"message": why}).to_string());
        }
    };
    seen.principal = principal;
    seen.signed_headers = signed;
    s.seen.lock().unwrap().push(seen);
    if req
        .path()
        .ends_with(&format!("/api/v1/label/{REDIRECT_PROBE}/values"))
    {
        let to = s.redirect_to.lock().unwrap().clone();
        return HttpResponse::Found()
            .insert_header(("Location", to))
            .finish();
    }
    let Some(rest) = req.path().strip_prefix(&s.prefix) else {
        return HttpResponse::NotFound().body("no such workspace");
    };
    let mut url = format!("{}{rest}", s.upstream);
    if !req.query_string().is_empty() {
        url.push('?');
        url.push_str(req.query_string());
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut rb = s.http.request(method, &url).body(body.to_vec());
    if let Some(ct) = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        rb = rb.header("content-type", ct);
    }
    match rb.send().await {
        Ok(r) => {
            let status = actix_web::http::StatusCode::from_u16(r.status().as_u16()).unwrap();
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            let bytes = r.bytes().await.unwrap_or_default();
            HttpResponse::build(status).content_type(ct).body(bytes)
        }
        Err(e) => HttpResponse::BadGateway().body(format!("stand-in upstream: {e}")),
    }
}
