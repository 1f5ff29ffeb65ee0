//! Alertmanager's API v2 through aetos: the same pipeline as the
//! Prometheus routes — **admit** (authn, the row's policy rule, the
//! project's admission) → **prepare** → **forward** (to `[alertmanager]`,
//! through the same backend layer) → **answer** — with Alertmanager's own
//! tenancy for a scoped caller instead of the PromQL rewrite:
//!
//! | endpoint | scoped caller |
//! |---|---|
//! | `GET alerts`, `GET alerts/groups` | `filter=<label>="<project>"` added; answer filtered (and, under metric access rules that restrict the caller, by the expression in each alert's `generatorURL`) |
//! | `GET silences` | only silences that pin the project |
//! | `POST silences` | project matcher enforced ([`scope::scope_silence`]); an update must be of the project's silence |
//! | `GET`/`DELETE silence/{id}` | only the project's silence (another's is 404) |
//! | `status`, `receivers` | privileged only (the row's guard) |
//!
//! Privileged callers are forwarded unchanged. The pure parts are in
//! [`scope`] (requests) and [`answer`] (answers).

mod answer;
mod scope;

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use super::filter;
use super::pipeline::{self, Admitted};
use super::refusal::BackendKind;
use super::routes::{Api, AM_SILENCES_WRITE};
use super::{learn_route, stream_held, stream_unfiltered, Refusal};
use crate::authz::Access;
use crate::backend::{Backend, BackendRequest};
use crate::request::{AmEndpoint, Params, Scoping};
use crate::state::State;
use crate::tenancy::Grants;
use scope::AmRefusal;

impl From<AmRefusal> for Refusal {
    fn from(r: AmRefusal) -> Refusal {
        Refusal::Alertmanager {
            status: r.status,
            message: r.message,
        }
    }
}

/// Runs an Alertmanager route's request; `path` is the path on Alertmanager.
pub(super) async fn api_request(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<State>,
    api: Api,
    path: String,
) -> HttpResponse {
    learn_route(&api);
    let answered = async {
        let Some(am) = state.alertmanager.as_ref() else {
            return Err(Refusal::Alertmanager {
                status: 404,
                message: "Alertmanager is not configured on this service ([alertmanager] url)"
                    .to_owned(),
            });
        };
        let api = for_method(api, req.method());
        let admitted = pipeline::admit(&req, &state, &api, Ok(path)).await?;
        let body = pipeline::read_body(payload, state.max_body, state.client_body_timeout).await?;
        let request = backend_request(&req, &admitted, body)?;
        let Scoping::Alertmanager(endpoint) = api.scoping else {
            return Err(Refusal::NotFound);
        };
        match admitted.access {
            Access::Privileged => {
                let resp = send(&state, am, &api, request).await?;
                Ok(stream_held(resp, admitted.admission))
            }
            Access::Scoped { ref project } => {
                let roles = admitted
                    .identity
                    .as_deref()
                    .map_or(&[][..], |i| &i.roles[..]);
                // Metric access rules govern alerts (silences read no series).
                let reads_alerts = matches!(endpoint, AmEndpoint::Alerts | AmEndpoint::AlertGroups);
                let grants = reads_alerts
                    .then(|| state.scoper.grants(project, roles))
                    .flatten()
                    .filter(|g| g.restricted().is_some())
                    .map(|g| g.grants);
                let answer = Scoped {
                    state: &state,
                    am,
                    api: &api,
                    project,
                    grants,
                };
                let r = answer.respond(endpoint, request).await;
                drop(admitted);
                r
            }
        }
    };
    match answered.await {
        Ok(r) => r,
        Err(refusal) => refusal.respond(&state).await,
    }
}

/// The row as a method sees it: the methods that change silences (POST,
/// DELETE) are guarded by [`AM_SILENCES_WRITE`] instead of the read rule.
fn for_method(api: Api, method: &Method) -> Api {
    if method == Method::GET || method == Method::HEAD {
        api
    } else {
        Api {
            rule: AM_SILENCES_WRITE,
            ..api
        }
    }
}

/// The request as Alertmanager will get it: the caller's method, path and
/// query string, a JSON body (POST only), and only the headers of
/// [`crate::backend::FORWARDED_REQUEST_HEADERS`].
fn backend_request(
    req: &HttpRequest,
    admitted: &Admitted,
    body: Bytes,
) -> Result<BackendRequest, Refusal> {
    let mut headers = super::pipeline::forwarded_headers(req);
    let body = if body.is_empty() {
        None
    } else {
        if req.method() != Method::POST {
            return Err(am_error(400, "a request body is only accepted with POST"));
        }
        let json = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|ct| ct.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(am_error(415, "request bodies must be application/json"));
        }
        headers.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        ));
        Some(
            String::from_utf8(body.to_vec())
                .map_err(|_| am_error(400, "request body is not UTF-8"))?,
        )
    };
    Ok(BackendRequest {
        method: http::Method::from_bytes(req.method().as_str().as_bytes())
            .unwrap_or(http::Method::GET),
        path: admitted.path.clone(),
        params: Params {
            url: req.query_string().to_owned(),
            body,
        },
        headers,
        project: None,
    })
}

fn am_error(status: u16, message: &str) -> Refusal {
    Refusal::Alertmanager {
        status,
        message: message.to_owned(),
    }
}

/// Sends one request to Alertmanager, timed by route; a failure is counted
/// by kind, as for Prometheus.
async fn send(
    state: &State,
    am: &Backend,
    api: &Api,
    request: BackendRequest,
) -> Result<crate::backend::Response, Refusal> {
    let started = std::time::Instant::now();
    let sent = am.send(request).await;
    state
        .metrics
        .observe_backend(api.name, started.elapsed().as_secs_f64());
    sent.map_err(|e| {
        state
            .metrics
            .kind(&state.metrics.backend_errors, BackendKind::of(&e).label());
        Refusal::Backend(e)
    })
}

/// A scoped caller's request, confined to `project`.
struct Scoped<'a> {
    state: &'a State,
    am: &'a Backend,
    api: &'a Api,
    project: &'a str,
    /// Its metric access rules, when they restrict it (alerts only).
    grants: Option<Arc<Grants>>,
}

impl Scoped<'_> {
    fn label(&self) -> &str {
        self.state.scoper.label()
    }

    async fn respond(
        &self,
        endpoint: AmEndpoint,
        mut request: BackendRequest,
    ) -> Result<HttpResponse, Refusal> {
        request.project = Some(self.project.to_owned());
        let post = request.method == http::Method::POST;
        let delete = request.method == http::Method::DELETE;
        match endpoint {
            AmEndpoint::Alerts | AmEndpoint::AlertGroups => {
                request.params.url =
                    scope::scope_alerts_query(&request.params.url, self.label(), self.project)?;
                let f = if endpoint == AmEndpoint::Alerts {
                    answer::filter_alerts
                } else {
                    answer::filter_groups
                };
                self.filtered(request, f).await
            }
            AmEndpoint::Silences if post => {
                let body = request.params.body.as_deref().unwrap_or("");
                let silence = scope::scope_silence(body, self.label(), self.project)?;
                if let Some(id) = &silence.updates {
                    self.check_owned(id).await?;
                }
                tracing::info!(project = %self.project, updates = silence.updates.as_deref().unwrap_or("-"),
                    "project-scoped silence sent to Alertmanager");
                request.params.body = Some(silence.body);
                if !request
                    .headers
                    .iter()
                    .any(|(k, _)| k == http::header::CONTENT_TYPE)
                {
                    request.headers.push((
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    ));
                }
                Ok(stream_unfiltered(self.send(request).await?))
            }
            AmEndpoint::Silences => self.filtered(request, answer::filter_silences).await,
            AmEndpoint::Silence if delete => {
                let id = request.path.rsplit('/').next().unwrap_or("").to_owned();
                self.check_owned(&id).await?;
                tracing::info!(project = %self.project, silence = %id,
                    "project-scoped silence expired through Alertmanager");
                Ok(stream_unfiltered(self.send(request).await?))
            }
            AmEndpoint::Silence => {
                let resp = self.send(without_compression(request)).await?;
                if !resp.status().is_success() {
                    return Ok(stream_unfiltered(resp));
                }
                let head = super::response_head(&resp);
                let body = filter::read_body(resp, self.state.max_filtered).await?;
                if !answer::silence_is_projects(&body, self.label(), self.project) {
                    return Err(not_found());
                }
                Ok(respond_json(head, body))
            }
            // The row's guard (`Only`) never scopes; fail closed anyway.
            AmEndpoint::Privileged => Err(Refusal::Forbidden(crate::authz::Denied {
                rule: self.api.rule.to_owned(),
            })),
        }
    }

    async fn send(&self, request: BackendRequest) -> Result<crate::backend::Response, Refusal> {
        send(self.state, self.am, self.api, request).await
    }

    /// Sends the request and keeps, of a successful answer, what `f` keeps.
    async fn filtered(
        &self,
        request: BackendRequest,
        f: answer::AnswerFilter,
    ) -> Result<HttpResponse, Refusal> {
        let resp = self.send(without_compression(request)).await?;
        if !resp.status().is_success() {
            return Ok(stream_unfiltered(resp));
        }
        let head = super::response_head(&resp);
        let body = filter::read_body(resp, self.state.max_filtered).await?;
        let (label, project) = (self.label().to_owned(), self.project.to_owned());
        let grants = self.grants.clone();
        let out = filter::run(body.len(), move || {
            let whom = answer::Confine {
                label: &label,
                project: &project,
                grants: grants.as_deref(),
            };
            f(&body, &whom)
        })
        .await?;
        Ok(respond_json(head, out))
    }

    /// `Ok` when silence `id` exists and pins the project; else 404, as if
    /// it did not exist (another project's silence ids are not revealed).
    async fn check_owned(&self, id: &str) -> Result<(), Refusal> {
        let get = BackendRequest {
            method: http::Method::GET,
            path: format!("/api/v2/silence/{id}"),
            params: Params {
                url: String::new(),
                body: None,
            },
            headers: vec![(
                http::header::ACCEPT,
                http::HeaderValue::from_static("application/json"),
            )],
            project: Some(self.project.to_owned()),
        };
        if !crate::api::routes::is_silence_id(id) {
            return Err(not_found());
        }
        let resp = self.send(get).await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(not_found());
        }
        if !resp.status().is_success() {
            return Err(Refusal::Upstream(Box::new(resp)));
        }
        let body = filter::read_body(resp, self.state.max_filtered).await?;
        if answer::silence_is_projects(&body, self.label(), self.project) {
            Ok(())
        } else {
            tracing::info!(project = %self.project, silence = %id,
                "refused: the silence is not the caller's project's");
            Err(not_found())
        }
    }
}

fn not_found() -> Refusal {
    am_error(404, "silence not found")
}

/// The answer is read as JSON: ask for it uncompressed.
fn without_compression(mut request: BackendRequest) -> BackendRequest {
    request.headers.retain(|(k, _)| k != "accept-encoding");
    request
}

fn respond_json(mut head: actix_web::HttpResponseBuilder, body: Vec<u8>) -> HttpResponse {
    head.content_type("application/json");
    let mut r = head.body(Bytes::from(body));
    r.headers_mut().remove("content-encoding");
    r
}
