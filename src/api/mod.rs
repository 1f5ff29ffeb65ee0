//! The HTTP API: one request, one straight path through the stages
//! `authn → authz → tenancy → backend`.
//!
//! [`handle`] is the only entry point; it resolves the route from the
//! table in [`routes`], and an API request goes through the pipeline in
//! `pipeline` (admit → prepare → forward → answer). Each step returns a
//! plain value or a [`Refusal`], which becomes an HTTP answer in one place
//! ([`refusal`]). Nothing here knows how a stage works inside.

mod alertmanager;
mod cached;
pub mod filter;
mod pipeline;
pub mod probes;
pub mod refusal;
pub mod routes;
pub mod versions;

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::auth::{self, AuthError};
use crate::backend::{self, FORWARDED_RESPONSE_HEADERS};
use crate::identity::Identity;
use crate::limits::Admission;
use crate::state::{Authn, State};
pub use refusal::Refusal;
use routes::Route;

/// Entry point for every request.
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
) -> HttpResponse {
    if let Some(preflight) = state.cors.preflight(req.method().as_str(), req.headers()) {
        return preflight;
    }
    let path = routes::strip_root(req.path(), &state.root_path);
    let get_or_head = req.method() == Method::GET || req.method() == Method::HEAD;
    let answered = match routes::route(path) {
        Some(Route::Versions) if get_or_head => Ok(versions::versions(&req, &state)),
        Some(Route::Healthcheck) if get_or_head => Ok(versions::healthcheck(&req, &state).await),
        Some(Route::Metrics) if req.method() == Method::GET => own_metrics(&req, &state).await,
        Some(Route::Healthy) if get_or_head => Ok(probes::healthy(req.method() == Method::HEAD)),
        Some(Route::Ready) if get_or_head => {
            Ok(probes::ready(&state, req.method() == Method::HEAD).await)
        }
        Some(
            Route::Versions | Route::Healthcheck | Route::Metrics | Route::Healthy | Route::Ready,
        ) => Err(Refusal::MethodNotAllowed(&["GET", "HEAD"])),
        Some(Route::Api(api, _) | Route::InvalidLabelName(api, _)) if !api.allows(req.method()) => {
            Err(Refusal::MethodNotAllowed(api.methods))
        }
        Some(Route::Api(api, backend_path)) if api.is_alertmanager() => {
            // On the heap: only Alertmanager's requests carry its future.
            return Box::pin(alertmanager::api_request(
                req,
                payload,
                state,
                api,
                backend_path,
            ))
            .await;
        }
        Some(Route::Api(api, backend_path)) => {
            return pipeline::api_request(req, payload, state, api, Ok(backend_path)).await
        }
        Some(Route::InvalidLabelName(api, why)) => {
            return pipeline::api_request(req, payload, state, api, Err(why)).await
        }
        None => Err(Refusal::NotFound),
    };
    match answered {
        Ok(r) => r,
        Err(refusal) => refusal.respond(&state).await,
    }
}

/// `GET /metrics`: authenticated, and allowed by `telemetry:metrics`
/// (admin or service by default). In signing-proxy mode, where nobody is
/// authenticated, it is open like every other route.
async fn own_metrics(req: &HttpRequest, state: &State) -> Result<HttpResponse, Refusal> {
    if !matches!(state.authn, Authn::Passthrough) {
        let identity = authenticate(req, state).await.map_err(|e| match e {
            AuthError::Unavailable(_) => Refusal::IdentityUnavailable,
            _ => Refusal::Unauthenticated,
        })?;
        let rule = "telemetry:metrics";
        if !state
            .enforcer
            .enforce(rule, identity.policy_target(), identity.credentials())
        {
            return Err(Refusal::Forbidden(crate::authz::Denied {
                rule: rule.to_owned(),
            }));
        }
    }
    Ok(metrics_response(&state.metrics))
}

/// The exposition text as an HTTP answer.
pub fn metrics_response(m: &crate::metrics::Metrics) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(m.encode())
}

/// Authentication stage.
async fn authenticate(req: &HttpRequest, state: &State) -> Result<Arc<Identity>, AuthError> {
    match &state.authn {
        // No identity at all; api_request and own_metrics never ask.
        Authn::Passthrough => Err(AuthError::MissingToken),
        Authn::Noauth => Ok(Arc::new(auth::noauth_identity(req.headers()))),
        Authn::Keystone(a) => {
            let caller = if let Some(token) = auth::token_from_headers(req.headers()) {
                a.authenticate(token).await?
            } else {
                match auth::basic_from_headers(req.headers()) {
                    // On the heap: a Keystone login's future is kilobytes.
                    Some((id, secret)) => Box::pin(a.authenticate_basic(&id, &secret)).await?,
                    None => return Err(AuthError::MissingToken),
                }
            };
            match auth::service_token_from_headers(req.headers()) {
                Some(service_token) => a.with_service_token(caller, service_token).await,
                None => Ok(caller),
            }
        }
    }
}

/// How far a request got in deciding who may do what: the `access` label
/// of `aetos_requests_total` and the access log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not (yet) authenticated.
    Unauthenticated,
    /// `[api] unauthenticated_passthrough`: privileged without identity.
    Passthrough,
    /// Forwarded unchanged.
    Privileged,
    /// Confined to the caller's project.
    Scoped,
    /// Refused by the policy.
    Denied,
}

impl Mode {
    /// The label value (stable: dashboards select on it).
    pub fn label(self) -> &'static str {
        match self {
            Mode::Unauthenticated => "unauthenticated",
            Mode::Passthrough => "passthrough",
            Mode::Privileged => "privileged",
            Mode::Scoped => "scoped",
            Mode::Denied => "denied",
        }
    }
}

/// The first thing a route's stages learn of a request: which route it is,
/// not yet authenticated (for the access log and metrics).
fn learn_route(api: &routes::Api) {
    crate::telemetry::learn(Some(api.name), Mode::Unauthenticated.label());
}

/// How far the request got in deciding who may do what.
fn set_mode(mode: Mode) {
    crate::telemetry::learn(None, mode.label());
}

/// [`stream_unfiltered`], holding the request's admission until the last
/// byte has been sent (or the caller went away).
fn stream_held(resp: backend::Response, held: Option<Admission>) -> HttpResponse {
    stream_body(resp, move |chunk| {
        let _held = &held;
        chunk
    })
}

/// Status, the headers that matter and the body, byte for byte, streamed.
pub(crate) fn stream_unfiltered(resp: backend::Response) -> HttpResponse {
    stream_body(resp, std::convert::identity)
}

type Chunk = Result<bytes::Bytes, std::io::Error>;

/// The answer with the body streamed through `each`: with the backend's
/// `Content-Length` when it sent one (written as such, not chunked; a body
/// longer than it says is cut there, a shorter one ends the connection),
/// else chunked.
fn stream_body(
    resp: backend::Response,
    each: impl FnMut(Chunk) -> Chunk + 'static,
) -> HttpResponse {
    let mut out = response_head(&resp);
    let length = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = resp.into_body().into_stream().map(each);
    match length {
        Some(n) => out.body(actix_web::body::SizedStream::new(n, body)),
        None => out.streaming(body),
    }
}

/// The caller-facing status and headers of a backend answer.
pub(crate) fn response_head<B>(resp: &http::Response<B>) -> actix_web::HttpResponseBuilder {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    // The same names in actix's `http` version, prepared once.
    use actix_web::http::header as ah;
    const NAMES: [ah::HeaderName; 6] = [
        ah::CONTENT_TYPE,
        ah::CONTENT_ENCODING,
        ah::CONTENT_DISPOSITION,
        ah::CACHE_CONTROL,
        ah::VARY,
        ah::WARNING,
    ];
    // One pass over the backend's few headers (no lookup of each name);
    // of a name sent more than once, the first value.
    let mut seen = 0u8;
    for (h, v) in resp.headers() {
        let Some(i) = FORWARDED_RESPONSE_HEADERS.iter().position(|f| f == h) else {
            continue;
        };
        if seen & 1 << i != 0 {
            continue;
        }
        seen |= 1 << i;
        debug_assert_eq!(h.as_str(), NAMES[i].as_str());
        if let Ok(v) = ah::HeaderValue::from_bytes(v.as_bytes()) {
            out.insert_header((NAMES[i].clone(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_head_keeps_the_forwarded_headers_first_values_only() {
        let backend = http::Response::builder()
            .status(503)
            .header("content-type", "application/json")
            .header("date", "Tue, 01 Dec 2026 00:00:00 GMT")
            .header("set-cookie", "a=b")
            .header("vary", "Accept-Encoding")
            .header("vary", "Origin")
            .header("warning", "199 - \"first\"")
            .header("warning", "199 - \"second\"")
            .header("cache-control", "no-store")
            .header("x-prometheus-api-version", "1")
            .body(())
            .unwrap();
        let head = response_head(&backend).finish();
        assert_eq!(head.status().as_u16(), 503);
        let got: Vec<(String, String)> = {
            let mut g: Vec<_> = head
                .headers()
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            g.sort();
            g
        };
        let want: Vec<(String, String)> = [
            ("cache-control", "no-store"),
            ("content-type", "application/json"),
            ("vary", "Accept-Encoding"),
            ("warning", "199 - \"first\""),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }
}
