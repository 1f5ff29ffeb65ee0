//! The HTTP API: one request, one straight path through the stages
//! `authn → authz → tenancy → backend`.
//!
//! [`handle`] is the only entry point; it resolves the route from the
//! table in [`routes`], and each stage returns a plain value or an error
//! answer. Nothing here knows how a stage works inside.
// Error answers are returned as ready `HttpResponse`s: they are the rare
// path, and boxing them would only add an allocation.
#![allow(clippy::result_large_err)]

pub mod errors;
pub mod filter;
pub mod rewrite;
pub mod routes;
pub mod versions;

use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::auth::{self, AuthError};
use crate::authz::{self, Access};
use crate::backend::{
    BackendError, BackendRequest, FORWARDED_REQUEST_HEADERS, FORWARDED_RESPONSE_HEADERS,
};
use crate::identity::Identity;
use crate::limits::{Admission, LimitKey, Refusal, TimeKind};
use crate::server::{Authn, State};
use rewrite::Params;
use routes::{Api, Route, Scoping};

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
    match routes::route(path) {
        Some(Route::Versions) if req.method() == Method::GET || req.method() == Method::HEAD => {
            versions::versions(&req, &state)
        }
        Some(Route::Healthcheck) if req.method() == Method::GET || req.method() == Method::HEAD => {
            versions::healthcheck(&req, &state).await
        }
        Some(Route::Metrics) if req.method() == Method::GET => own_metrics(&req, &state).await,
        Some(Route::Versions) | Some(Route::Healthcheck) | Some(Route::Metrics) => {
            method_not_allowed(&["GET", "HEAD"])
        }
        Some(Route::Api(api, backend_path)) => {
            if !api.allows(req.method()) {
                return method_not_allowed(api.methods);
            }
            api_request(req, payload, state, api, Ok(backend_path)).await
        }
        Some(Route::InvalidLabelName(why)) => {
            let api = routes::LABEL_VALUES;
            if !api.allows(req.method()) {
                return method_not_allowed(api.methods);
            }
            api_request(req, payload, state, api, Err(why)).await
        }
        None => errors::prom_error(StatusCode::NOT_FOUND, "not_found", "404 page not found"),
    }
}

fn method_not_allowed(methods: &[&str]) -> HttpResponse {
    HttpResponse::build(StatusCode::METHOD_NOT_ALLOWED)
        .insert_header(("Allow", methods.join(", ")))
        .content_type("application/json")
        .body(
            serde_json::json!({"status": "error", "errorType": "bad_data",
                "error": format!("method not allowed; use {}", methods.join(" or "))})
            .to_string(),
        )
}

/// `GET /metrics`: authenticated, and allowed by `telemetry:metrics`
/// (admin or service by default). In signing-proxy mode, where nobody is
/// authenticated, it is open like every other route.
async fn own_metrics(req: &HttpRequest, state: &State) -> HttpResponse {
    if matches!(state.authn, Authn::Passthrough) {
        return metrics_response(&state.metrics);
    }
    let identity = match authenticate(req, state).await {
        Ok(i) => i,
        Err(AuthError::Unavailable(_)) => return errors::identity_unavailable(),
        Err(_) => return errors::unauthorized(&state.www_authenticate_uri),
    };
    if !state.enforcer.enforce(
        "telemetry:metrics",
        &identity.policy_target(),
        &identity.credentials(),
    ) {
        return errors::forbidden();
    }
    metrics_response(&state.metrics)
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
                a.authenticate(&token).await?
            } else {
                match auth::basic_from_headers(req.headers()) {
                    Some((id, secret)) => a.authenticate_basic(&id, &secret).await?,
                    None => return Err(AuthError::MissingToken),
                }
            };
            match auth::service_token_from_headers(req.headers()) {
                Some(service_token) => a.with_service_token(caller, &service_token).await,
                None => Ok(caller),
            }
        }
    }
}

async fn api_request(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    api: Api,
    backend_path: Result<String, String>,
) -> HttpResponse {
    req.extensions_mut().insert(RequestFacts {
        api: api.name,
        mode: "unauthenticated",
    });
    let (access, key) = if matches!(state.authn, Authn::Passthrough) {
        // Signing-proxy mode: privileged without identity, forwarded as is.
        set_mode(&req, "passthrough");
        (Access::Privileged, None)
    } else {
        // authn
        let identity = match authenticate(&req, &state).await {
            Ok(i) => i,
            Err(AuthError::MissingToken) | Err(AuthError::InvalidToken) => {
                return errors::unauthorized(&state.www_authenticate_uri)
            }
            Err(AuthError::Unavailable(why)) => {
                tracing::warn!("identity service unavailable: {why}");
                return errors::identity_unavailable();
            }
        };
        // authz
        let access = authz::authorize(&state.enforcer, &identity, &api);
        set_mode(&req, authz::mode_name(&access));
        match access {
            Ok(a) => {
                let key = limit_key(&a, &identity);
                (a, Some(key))
            }
            Err(denied) => {
                tracing::info!(user = identity.user_id.as_deref().unwrap_or("-"),
                    project = identity.project_id.as_deref().unwrap_or("-"),
                    rule = %denied.rule, "policy denied the request");
                return errors::forbidden();
            }
        }
    };
    // A path that would not stay below the backend's base: refused as
    // Prometheus refuses it, after authentication like any API request.
    let backend_path = match backend_path {
        Ok(p) => p,
        Err(why) => {
            tracing::info!("refused the request: {why}");
            return errors::bad_data(&why);
        }
    };
    // admission: held until the answer has been sent
    let admission = match &key {
        Some(k) => match state.limits.admit(k).await {
            Ok(a) => Some(a),
            Err(r) => return limit_refused(&state, k, &r).await,
        },
        None => None,
    };
    // the request as the backend will see it
    let body = match read_body(payload, state.max_body, state.client_body_timeout).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut breq = match backend_request(&req, &api, backend_path, body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(k) = &key {
        let params = &breq.params;
        let get = |name: &str| rewrite::param(params, name);
        match state
            .limits
            .check_times(k, time_kind(&api), &get, std::time::SystemTime::now())
        {
            Ok(None) => {}
            Ok(Some((name, value))) => rewrite::push_param(&mut breq.params, &name, &value),
            Err(r) => return limit_refused(&state, k, &r).await,
        }
    }
    // tenancy
    let project = match (&access, &key) {
        (Access::Privileged, _) | (_, None) => None,
        (Access::Scoped { project }, Some(k)) => {
            let bytes = rewrite::scoped_input_bytes(&breq.params, api.scoping);
            if let Err(r) = state.limits.check_query_bytes(k, bytes) {
                return limit_refused(&state, k, &r).await;
            }
            let (params, selectors) = match scope(&state, &breq.params, &api, project).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::info!("refused a scoped request: {e}");
                    return errors::bad_data(&e.to_string());
                }
            };
            if let Err(r) = state.limits.check_selectors(k, selectors) {
                return limit_refused(&state, k, &r).await;
            }
            breq.params = params;
            if api.scoping == Scoping::FilterResponse {
                // The answer is filtered as JSON: ask for it uncompressed.
                breq.headers.retain(|(k, _)| k != "accept-encoding");
            }
            breq.project = Some(project.clone());
            Some(project.clone())
        }
    };
    if let Some(project) = &project {
        if filter::builds_own_answer(&api) {
            // metadata, targets/metadata: built from the project's targets.
            return filter::scoped_metadata(&api, &breq.params, &state, project).await;
        }
    }
    // backend
    let started = std::time::Instant::now();
    let sent = state.backend.send(breq).await;
    state
        .metrics
        .backend_duration
        .get_or_create(&crate::metrics::RouteLabel {
            route: api.name.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let kind = match &e {
                BackendError::Timeout(_) => "timeout",
                BackendError::Unreachable(_) => "unreachable",
                BackendError::Credentials { .. } => "credentials",
                BackendError::Other(_) => "other",
                BackendError::Redirect(_) => "redirect",
            };
            state.metrics.kind(&state.metrics.backend_errors, kind);
            return backend_error(e);
        }
    };
    match (project, api.scoping) {
        (Some(project), Scoping::FilterResponse) => {
            filter::filtered(resp, &api, &state, &project).await
        }
        _ => stream_held(resp, admission),
    }
}

/// Who a request is counted against: the project of the token, in the
/// privileged or the scoped set of limits.
fn limit_key(access: &Access, identity: &Identity) -> LimitKey {
    match access {
        Access::Scoped { project } => LimitKey {
            privileged: false,
            project: project.clone(),
        },
        Access::Privileged => LimitKey {
            privileged: true,
            project: identity
                .project_id
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
        },
    }
}

/// Which time parameters of an endpoint the limits look at.
fn time_kind(api: &Api) -> TimeKind {
    match api.name {
        "query" => TimeKind::Instant,
        "query_range" => TimeKind::Range,
        "series" | "labels" | "label_values" | "query_exemplars" => TimeKind::Series,
        _ => TimeKind::None,
    }
}

/// A limit's refusal: Prometheus-shaped, with `Retry-After` on a 429 (held
/// back for `[limits] refusal_delay` first); counted by reason, logged with
/// the project.
async fn limit_refused(state: &State, key: &LimitKey, r: &Refusal) -> HttpResponse {
    state
        .metrics
        .limit_refusals
        .get_or_create(&crate::metrics::ReasonLabel {
            reason: r.reason().to_owned(),
        })
        .inc();
    tracing::info!(project = %key.project, privileged = key.privileged,
        reason = r.reason(), "refused by a limit: {r}");
    state.limits.hold(r).await;
    let (status, retry_after) = r.status();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let error_type = if status == StatusCode::TOO_MANY_REQUESTS {
        "unavailable"
    } else {
        "bad_data"
    };
    let mut resp = errors::prom_error(status, error_type, &r.to_string());
    if let Some(secs) = retry_after {
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, v);
        }
    }
    resp
}

/// The tenancy stage; long inputs are rewritten on the blocking pool (at
/// most one per core at once) so that no async worker is held by them.
async fn scope(
    state: &web::Data<State>,
    params: &Params,
    api: &Api,
    project: &str,
) -> Result<(Params, usize), rewrite::RewriteError> {
    let len = params.url.len() + params.body.as_ref().map_or(0, String::len);
    if len <= rewrite::INLINE_REWRITE_BYTES {
        return rewrite::scope_params_counted(params, api.scoping, &state.scoper, project);
    }
    let slot = state.scoper.blocking_slot().await;
    let (st, params, scoping, project) = (
        state.clone(),
        params.clone(),
        api.scoping,
        project.to_owned(),
    );
    let done = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        rewrite::scope_params_counted(&params, scoping, &st.scoper, &project)
    })
    .await;
    done.unwrap_or_else(|_| {
        Err(rewrite::RewriteError::Tenancy(
            crate::tenancy::TenancyError::Parse("the rewrite of this query failed".to_owned()),
        ))
    })
}

/// What the access log and metrics need to know about a request.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts {
    pub api: &'static str,
    pub mode: &'static str,
}

fn set_mode(req: &HttpRequest, mode: &'static str) {
    if let Some(f) = req.extensions_mut().get_mut::<RequestFacts>() {
        f.mode = mode;
    }
}

/// Reads the whole request body: at most `limit` bytes (else 413), within
/// `timeout` (`[api] client_body_timeout`, else 408 and the connection is
/// closed: a body that never finishes does not hold a worker's slot).
async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, HttpResponse> {
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| errors::bad_data(&format!("cannot read request body: {e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(errors::prom_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "bad_data",
                    &format!("request body larger than {limit} bytes"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(read) => read,
        Err(_) => {
            tracing::info!(
                "request body not received within {timeout:?} ([api] client_body_timeout)"
            );
            let mut r = errors::prom_error(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                &format!("request body not received within {timeout:?}"),
            );
            r.head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            Err(r)
        }
    }
}

/// Builds the backend request from the caller's. Only form-encoded bodies
/// are accepted: Prometheus also reads multipart bodies, which would carry
/// parameters past the tenancy stage, so anything else with a body is refused.
fn backend_request(
    req: &HttpRequest,
    api: &Api,
    path: String,
    body: Bytes,
) -> Result<BackendRequest, HttpResponse> {
    let mut headers: Vec<(String, String)> = FORWARDED_REQUEST_HEADERS
        .iter()
        .filter(|h| **h != "content-type")
        .filter_map(|h| {
            let v = req.headers().get(*h)?.to_str().ok()?;
            Some(((*h).to_owned(), v.to_owned()))
        })
        .collect();
    let is_form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    let mut params = Params {
        url: req.query_string().to_owned(),
        body: None,
    };
    let sends_body = req.method() == Method::POST || req.method() == Method::PUT;
    if !body.is_empty() {
        if !sends_body {
            return Err(errors::bad_data(
                "a request body is only accepted with POST",
            ));
        }
        if !is_form {
            return Err(errors::prom_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_data",
                "request bodies must be application/x-www-form-urlencoded",
            ));
        }
        if !api.form_body && api.scoping != Scoping::None {
            return Err(errors::bad_data(
                "this endpoint takes its parameters in the URL",
            ));
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| errors::bad_data("request body is not UTF-8"))?;
        params.body = Some(text.to_owned());
    }
    if params.body.is_some() {
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    Ok(BackendRequest {
        // actix and reqwest use different `http` crate versions.
        method: reqwest::Method::from_bytes(req.method().as_str().as_bytes())
            .unwrap_or(reqwest::Method::GET),
        path,
        params,
        raw_body: Bytes::new(),
        headers,
        project: None,
    })
}

pub(crate) fn backend_error(e: BackendError) -> HttpResponse {
    tracing::warn!("backend error: {e}");
    match &e {
        BackendError::Timeout(_) => {
            errors::prom_error(StatusCode::GATEWAY_TIMEOUT, "timeout", &e.to_string())
        }
        BackendError::Unreachable(_) => {
            errors::prom_error(StatusCode::BAD_GATEWAY, "unavailable", &e.to_string())
        }
        BackendError::Credentials { .. } => errors::prom_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        ),
        BackendError::Other(_) | BackendError::Redirect(_) => {
            errors::prom_error(StatusCode::BAD_GATEWAY, "unavailable", &e.to_string())
        }
    }
}

/// [`stream_unfiltered`], holding the request's admission until the last
/// byte has been sent (or the caller went away).
fn stream_held(resp: reqwest::Response, held: Option<Admission>) -> HttpResponse {
    let mut out = response_head(&resp);
    out.streaming(resp.bytes_stream().map(move |chunk| {
        let _held = &held;
        chunk
    }))
}

/// Status, the headers that matter and the body, byte for byte, streamed.
pub(crate) fn stream_unfiltered(resp: reqwest::Response) -> HttpResponse {
    let mut out = response_head(&resp);
    out.streaming(resp.bytes_stream())
}

/// The caller-facing status and headers of a backend answer.
pub(crate) fn response_head(resp: &reqwest::Response) -> actix_web::HttpResponseBuilder {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    for h in FORWARDED_RESPONSE_HEADERS {
        if let Some(v) = resp.headers().get(*h) {
            if let Ok(v) = v.to_str() {
                out.insert_header((*h, v));
            }
        }
    }
    out
}
