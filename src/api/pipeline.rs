//! One API request as a short pipeline: **admit** (authn, authz, the
//! project's admission) → **prepare** (the request as the backend will see
//! it, scoped for a scoped caller) → **forward** → **answer** (streamed, or
//! filtered for a scoped caller). Each step takes the values it needs and
//! returns a plain value or a [`Refusal`].

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::refusal::BackendKind;
use super::routes::{Api, ParamsIn};
use super::{authenticate, filter, learn_route, set_mode, stream_held, Mode, Refusal};
use crate::auth::AuthError;
use crate::authz::{self, Access};
use crate::backend::{BackendRequest, FORWARDED_REQUEST_HEADERS};
use crate::identity::Identity;
use crate::limits::{Admission, LimitKey, LimitValues};
use crate::request::{self, CallerGrants, Params, Scoper, Scoping};
use crate::state::{Authn, State};

/// Runs the pipeline for `api`; `backend_path` is the path to call on the
/// backend, or why the request's path cannot be sent anywhere.
pub(super) async fn api_request(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    api: Api,
    backend_path: Result<String, String>,
) -> HttpResponse {
    learn_route(&api);
    let answered = async {
        let admitted = admit(&req, &state, &api, backend_path).await?;
        let prepared = prepare(&req, payload, &state, &api, &admitted).await?;
        if let (Some(project), Scoping::FilterResponse(f)) = (&prepared.project, api.scoping) {
            if f.builds_own_answer() {
                // metadata, targets/metadata: built from the project's targets
                // (on the heap: kilobytes of future only these requests carry).
                let (params, grants) = (&prepared.request.params, prepared.grants.as_ref());
                return Box::pin(filter::scoped_metadata(f, params, &state, project, grants)).await;
            }
        }
        let grants = prepared.grants;
        if let Some(cached) = super::cached::answer(&req, &state, &api, &prepared.request).await {
            return cached;
        }
        let resp = forward(&state, &api, prepared.request).await?;
        answer(
            resp,
            &api,
            &state,
            (prepared.project, grants),
            admitted.admission,
        )
        .await
    };
    match answered.await {
        Ok(r) => r,
        Err(refusal) => refusal.respond(&state).await,
    }
}

/// A caller let in: what it may do, whom it is counted against, and the
/// admission held until its answer has been sent.
pub(super) struct Admitted {
    pub(super) access: Access,
    /// `None` in signing-proxy mode: nobody to count against.
    pub(super) key: Option<LimitKey>,
    pub(super) admission: Option<Admission>,
    /// The path to call on the backend.
    pub(super) path: String,
    /// Who the caller is (`None` in signing-proxy mode): the cached
    /// identity itself, not a copy of its roles.
    pub(super) identity: Option<Arc<Identity>>,
}

/// authn → authz → a path that stays below the backend's base → the
/// project's admission.
pub(super) async fn admit(
    req: &HttpRequest,
    state: &State,
    api: &Api,
    backend_path: Result<String, String>,
) -> Result<Admitted, Refusal> {
    let (access, key, identity) = if matches!(state.authn, Authn::Passthrough) {
        // Signing-proxy mode: privileged without identity, forwarded as is.
        set_mode(Mode::Passthrough);
        (Access::Privileged, None, None)
    } else {
        let identity = authenticate(req, state).await.map_err(|e| match e {
            AuthError::MissingToken | AuthError::InvalidToken => Refusal::Unauthenticated,
            AuthError::Unavailable(why) => {
                tracing::warn!("identity service unavailable: {why}");
                Refusal::IdentityUnavailable
            }
        })?;
        match authz::authorize(&state.enforcer, &identity, api.rule, api.guard) {
            Ok(access) => {
                set_mode(mode(&access));
                let key = limit_key(&access, &identity);
                (access, Some(key), Some(identity))
            }
            Err(denied) => {
                set_mode(Mode::Denied);
                tracing::info!(user = identity.user_id.as_deref().unwrap_or("-"),
                    project = identity.project_id.as_deref().unwrap_or("-"),
                    rule = %denied.rule, "policy denied the request");
                return Err(Refusal::Forbidden(denied));
            }
        }
    };
    // A path that would not stay below the backend's base: refused as
    // Prometheus refuses it, after authentication like any API request.
    let path = backend_path.map_err(|why| {
        tracing::info!("refused the request: {why}");
        Refusal::BadData(why)
    })?;
    let admission = match &key {
        Some(k) => Some(limited(k, state.limits.admit(k).await)?),
        None => None,
    };
    Ok(Admitted {
        access,
        key,
        admission,
        path,
        identity,
    })
}

fn mode(access: &Access) -> Mode {
    match access {
        Access::Privileged => Mode::Privileged,
        Access::Scoped { .. } => Mode::Scoped,
    }
}

/// A limit's verdict for `key`, as a refusal.
fn limited<T>(key: &LimitKey, r: Result<T, crate::limits::Refusal>) -> Result<T, Refusal> {
    r.map_err(|refusal| Refusal::Limited {
        key: key.clone(),
        refusal,
    })
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

/// The request as the backend will see it.
struct Prepared {
    request: BackendRequest,
    /// The project a scoped caller is confined to.
    project: Option<String>,
    /// Its metric access rules (`None`: no rules file, or privileged).
    grants: Option<CallerGrants>,
}

/// Reads the body, builds the backend request, applies the time limits
/// and, for a scoped caller, the tenancy stage.
async fn prepare(
    req: &HttpRequest,
    payload: web::Payload,
    state: &State,
    api: &Api,
    admitted: &Admitted,
) -> Result<Prepared, Refusal> {
    let body = read_body(payload, state.max_body, state.client_body_timeout).await?;
    let mut breq = backend_request(req, api, admitted.path.clone(), body)?;
    let limits = admitted.key.as_ref().zip(admitted.admission.as_ref());
    if let Some((k, a)) = limits {
        let params = &breq.params;
        let get = |name: &str| params.get(name);
        let now = std::time::SystemTime::now();
        if let Some((name, value)) = limited(k, a.values.check_times(api.times, &get, now))? {
            breq.params.push(&name, &value);
        }
    }
    let mut grants = None;
    let project = match (&admitted.access, limits) {
        (Access::Privileged, _) | (_, None) => None,
        (Access::Scoped { project }, Some((k, a))) => {
            let roles = admitted
                .identity
                .as_deref()
                .map_or(&[][..], |i| &i.roles[..]);
            grants = state.scoper.grants(project, roles);
            breq.params = scoped(
                &a.values,
                k,
                &state.scoper,
                api.scoping,
                &breq.params,
                project,
                grants.clone(),
            )
            .await?;
            if let Scoping::FilterResponse(f) = api.scoping {
                // The answer is filtered as JSON: ask for it uncompressed.
                breq.headers
                    .retain(|(k, _)| k != http::header::ACCEPT_ENCODING);
                // `alerts` under restricting metric access rules: from the
                // alerting rules, whose expressions can be checked.
                filter::answers_alerts_from_rules(f, grants.as_ref(), &mut breq);
            }
            breq.project = Some(project.clone());
            Some(project.clone())
        }
    };
    Ok(Prepared {
        request: breq,
        project,
        grants,
    })
}

/// The tenancy stage for a scoped caller, within the project's shape limits.
async fn scoped(
    limits: &LimitValues,
    key: &LimitKey,
    scoper: &Scoper,
    scoping: Scoping,
    params: &Params,
    project: &str,
    grants: Option<CallerGrants>,
) -> Result<Params, Refusal> {
    // What is sent bounds what it decodes to: decoded only when over the limit as sent.
    let sent = params.url.len() + params.body.as_ref().map_or(0, String::len);
    let bytes = || request::scoped_input_bytes(params, scoping);
    limited(key, limits.check_query_bytes(sent, bytes))?;
    let done = scope(scoper, params, scoping, project, grants).await;
    let (params, selectors) = done.map_err(|e| {
        tracing::info!("refused a scoped request: {e}");
        Refusal::BadData(e.to_string())
    })?;
    limited(key, limits.check_selectors(selectors))?;
    Ok(params)
}

/// The tenancy stage; long inputs are rewritten on the blocking pool (at
/// most one per core at once) so that no async worker is held by them.
async fn scope(
    scoper: &Scoper,
    params: &Params,
    scoping: Scoping,
    project: &str,
    grants: Option<CallerGrants>,
) -> Result<(Params, usize), request::RewriteError> {
    let len = params.url.len() + params.body.as_ref().map_or(0, String::len);
    if len <= request::INLINE_REWRITE_BYTES {
        return request::scope_params_counted(params, scoping, scoper, project, grants.as_ref());
    }
    let slot = scoper.blocking_slot().await;
    let (scoper, params, project) = (scoper.clone(), params.clone(), project.to_owned());
    let done = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        request::scope_params_counted(&params, scoping, &scoper, &project, grants.as_ref())
    })
    .await;
    done.unwrap_or_else(|_| {
        Err(request::RewriteError::Tenancy(
            crate::tenancy::TenancyError::Parse("the rewrite of this query failed".to_owned()),
        ))
    })
}

/// Sends the request, timing the backend by route; a failure is counted
/// by kind.
async fn forward(
    state: &State,
    api: &Api,
    request: BackendRequest,
) -> Result<crate::backend::Response, Refusal> {
    let started = std::time::Instant::now();
    let sent = state.backend.send(request).await;
    state
        .metrics
        .observe_backend(api.name, started.elapsed().as_secs_f64());
    sent.map_err(|e| {
        let kind = BackendKind::of(&e);
        state
            .metrics
            .kind(&state.metrics.backend_errors, kind.label());
        Refusal::Backend(e)
    })
}

/// The backend's answer as the caller gets it: filtered for a scoped
/// caller of a filtered endpoint, else streamed byte for byte (holding the
/// admission until the last byte).
async fn answer(
    resp: crate::backend::Response,
    api: &Api,
    state: &State,
    (project, grants): (Option<String>, Option<CallerGrants>),
    admission: Option<Admission>,
) -> Result<HttpResponse, Refusal> {
    match (project, api.scoping) {
        // On the heap, as the metadata answer above: a filtered answer's
        // future is kilobytes, which every request's would carry if inline.
        (Some(project), Scoping::FilterResponse(f)) => {
            Box::pin(filter::filtered(resp, f, state, &project, grants)).await
        }
        _ => Ok(stream_held(resp, admission)),
    }
}

/// Reads the whole request body: at most `limit` bytes (else 413), within
/// `timeout` (`[api] client_body_timeout`, else 408 and the connection is
/// closed: a body that never finishes does not hold a worker's slot).
pub(super) async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, Refusal> {
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| Refusal::BadData(format!("cannot read request body: {e}")))?;
            if buf.len() + chunk.len() > limit {
                return Err(Refusal::TooLarge { limit });
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
            Err(Refusal::BodyTimeout(timeout))
        }
    }
}

/// The caller's headers that go to the backend
/// ([`FORWARDED_REQUEST_HEADERS`]) but its `Content-Type`, which the
/// request builders set from the body they send.
pub(super) fn forwarded_headers(req: &HttpRequest) -> Vec<(http::HeaderName, http::HeaderValue)> {
    FORWARDED_REQUEST_HEADERS
        .iter()
        .zip(FORWARDED_AS_ACTIX)
        .filter(|(h, _)| **h != http::header::CONTENT_TYPE)
        .filter_map(|(h, name)| {
            let v = req.headers().get(name)?;
            Some((h.clone(), http::HeaderValue::from_bytes(v.as_bytes()).ok()?))
        })
        .collect()
}

/// [`FORWARDED_REQUEST_HEADERS`] as names of actix' own `http` version, in
/// the same order, to look them up in the request without parsing them.
const FORWARDED_AS_ACTIX: [actix_web::http::header::HeaderName; 4] = {
    use actix_web::http::header::*;
    [ACCEPT, ACCEPT_ENCODING, CONTENT_TYPE, USER_AGENT]
};

/// Builds the backend request from the caller's. Only form-encoded bodies
/// are accepted: Prometheus also reads multipart bodies, which would carry
/// parameters past the tenancy stage, so anything else with a body is refused.
fn backend_request(
    req: &HttpRequest,
    api: &Api,
    path: String,
    body: Bytes,
) -> Result<BackendRequest, Refusal> {
    let mut headers = forwarded_headers(req);
    let is_form = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
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
            return Err(Refusal::BadData(
                "a request body is only accepted with POST".to_owned(),
            ));
        }
        if !is_form {
            return Err(Refusal::UnsupportedMedia);
        }
        if api.params == ParamsIn::Url && api.scoping != Scoping::None {
            return Err(Refusal::BadData(
                "this endpoint takes its parameters in the URL".to_owned(),
            ));
        }
        let text = std::str::from_utf8(&body)
            .map_err(|_| Refusal::BadData("request body is not UTF-8".to_owned()))?;
        params.body = Some(text.to_owned());
    }
    if params.body.is_some() {
        headers.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
        ));
    }
    Ok(BackendRequest {
        // actix and the backend client use different `http` crate versions.
        method: http::Method::from_bytes(req.method().as_str().as_bytes())
            .unwrap_or(http::Method::GET),
        path,
        params,
        headers,
        project: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_names_are_the_same_in_both_http_versions() {
        assert_eq!(FORWARDED_REQUEST_HEADERS.len(), FORWARDED_AS_ACTIX.len());
        for (h, a) in FORWARDED_REQUEST_HEADERS.iter().zip(FORWARDED_AS_ACTIX) {
            assert_eq!(h.as_str(), a.as_str());
        }
    }
}
