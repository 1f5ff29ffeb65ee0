//! Every way a request is refused, as one value ([`Refusal`]), and the one
//! place where a refusal becomes an HTTP answer ([`Refusal::render`]) in
//! the shape each client expects: Prometheus' JSON envelope for API
//! errors, keystonemiddleware's body and `WWW-Authenticate` for 401.
//!
//! The stages return `Result<_, Refusal>` and know nothing of HTTP
//! answers; [`Refusal::respond`] counts, logs and holds a refusal where
//! that is part of the answer, then renders it.

use std::time::Duration;

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::HttpResponse;
use serde_json::json;

use crate::authz::Denied;
use crate::backend::BackendError;
use crate::limits::{self, LimitKey};
use crate::metrics::ReasonLabel;
use crate::state::State;

/// Why a request is not answered by the backend's answer.
#[derive(Debug)]
pub enum Refusal {
    /// No token, or one Keystone says is not valid: keystonemiddleware's 401.
    Unauthenticated,
    /// The identity service could not give an answer: 503.
    IdentityUnavailable,
    /// The policy refused the request: 403 (the failed rule is for the log).
    Forbidden(Denied),
    /// Parameters, PromQL or a body that are refused: 400 `bad_data`.
    BadData(String),
    /// A request body over `[api] max_request_body_size`: 413.
    TooLarge { limit: usize },
    /// A body that is not form-encoded: 415.
    UnsupportedMedia,
    /// A method the endpoint does not take: 405 with `Allow`.
    MethodNotAllowed(&'static [&'static str]),
    /// The body did not arrive within `[api] client_body_timeout`: 408, and
    /// the connection is closed.
    BodyTimeout(Duration),
    /// A `[limits]` limit of the caller's project: 429 with `Retry-After`,
    /// or 400/422 for the shape of a query.
    Limited {
        key: LimitKey,
        refusal: limits::Refusal,
    },
    /// No such route: 404 as Prometheus answers it.
    NotFound,
    /// The backend could not be asked: 502, 503 or 504 by [`BackendKind`].
    Backend(BackendError),
    /// A backend answer that cannot be confined to the caller's project
    /// (not JSON, too large, an unknown encoding): 502.
    Unfilterable(String),
    /// The backend's own error answer to a request aetos made for a scoped
    /// caller's answer: passed on as it is.
    Upstream(Box<crate::backend::Response>),
    /// An Alertmanager request of a scoped caller that is refused, in
    /// Alertmanager's error format (the message as a JSON string): a
    /// silence that would reach beyond the project (403), a body that is
    /// not a silence (400), another project's silence (404, as absent).
    Alertmanager { status: u16, message: String },
}

/// What went wrong with the backend, decided once from a [`BackendError`]:
/// the `kind` label of `aetos_backend_errors_total` and the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Timeout,
    Unreachable,
    Credentials,
    Other,
    Redirect,
}

impl BackendKind {
    pub fn of(e: &BackendError) -> BackendKind {
        match e {
            BackendError::Timeout(_) => BackendKind::Timeout,
            BackendError::Unreachable(_) => BackendKind::Unreachable,
            BackendError::Credentials { .. } => BackendKind::Credentials,
            BackendError::Other(_) => BackendKind::Other,
            BackendError::Redirect(_) => BackendKind::Redirect,
        }
    }

    /// The `kind` label of `aetos_backend_errors_total`.
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Timeout => "timeout",
            BackendKind::Unreachable => "unreachable",
            BackendKind::Credentials => "credentials",
            BackendKind::Other => "other",
            BackendKind::Redirect => "redirect",
        }
    }

    fn status(self) -> (StatusCode, &'static str) {
        match self {
            BackendKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            BackendKind::Credentials => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            BackendKind::Unreachable | BackendKind::Other | BackendKind::Redirect => {
                (StatusCode::BAD_GATEWAY, "unavailable")
            }
        }
    }
}

impl From<BackendError> for Refusal {
    fn from(e: BackendError) -> Refusal {
        Refusal::Backend(e)
    }
}

impl Refusal {
    /// One word per kind of refusal, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::IdentityUnavailable => "identity_unavailable",
            Refusal::Forbidden(_) => "forbidden",
            Refusal::BadData(_) => "bad_data",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::UnsupportedMedia => "unsupported_media",
            Refusal::MethodNotAllowed(_) => "method_not_allowed",
            Refusal::BodyTimeout(_) => "body_timeout",
            Refusal::Limited { .. } => "limited",
            Refusal::NotFound => "not_found",
            Refusal::Backend(e) => BackendKind::of(e).label(),
            Refusal::Unfilterable(_) => "unfilterable",
            Refusal::Upstream(_) => "upstream",
            Refusal::Alertmanager { .. } => "alertmanager",
        }
    }

    /// Counts, logs and holds the refusal where the answer needs it (a
    /// limit's 429 waits `[limits] refusal_delay`), then renders it.
    pub async fn respond(self, state: &State) -> HttpResponse {
        match &self {
            Refusal::Limited { key, refusal } => {
                state
                    .metrics
                    .limit_refusals
                    .get_or_create(&ReasonLabel {
                        reason: refusal.reason().to_owned(),
                    })
                    .inc();
                tracing::info!(project = %key.project, privileged = key.privileged,
                    reason = refusal.reason(), "refused by a limit: {refusal}");
                state.limits.hold(refusal).await;
            }
            Refusal::Backend(e) => tracing::warn!("backend error: {e}"),
            _ => {}
        }
        self.render(&state.www_authenticate_uri)
    }

    /// The HTTP answer; `www_authenticate_uri` is where a 401 sends the
    /// caller for a token.
    pub fn render(self, www_authenticate_uri: &str) -> HttpResponse {
        match self {
            Refusal::Unauthenticated => unauthorized(www_authenticate_uri),
            Refusal::IdentityUnavailable => prom_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The identity service is unavailable; the token could not be validated.",
            ),
            Refusal::Forbidden(_) => prom_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "RBAC Authorization Failed",
            ),
            Refusal::BadData(message) => bad_data(&message),
            Refusal::TooLarge { limit } => prom_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bad_data",
                &format!("request body larger than {limit} bytes"),
            ),
            Refusal::UnsupportedMedia => prom_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_data",
                "request bodies must be application/x-www-form-urlencoded",
            ),
            Refusal::MethodNotAllowed(methods) => {
                HttpResponse::build(StatusCode::METHOD_NOT_ALLOWED)
                    .insert_header(("Allow", methods.join(", ")))
                    .content_type("application/json")
                    .body(
                        json!({"status": "error", "errorType": "bad_data",
                    "error": format!("method not allowed; use {}", methods.join(" or "))})
                        .to_string(),
                    )
            }
            Refusal::BodyTimeout(timeout) => {
                let mut r = prom_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "timeout",
                    &format!("request body not received within {timeout:?}"),
                );
                r.head_mut().set_connection_type(ConnectionType::Close);
                r
            }
            Refusal::Limited { refusal, .. } => {
                let (status, retry_after) = refusal.status();
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
                let error_type = if status == StatusCode::TOO_MANY_REQUESTS {
                    "unavailable"
                } else {
                    "bad_data"
                };
                let mut resp = prom_error(status, error_type, &refusal.to_string());
                if let Some(secs) = retry_after {
                    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                        resp.headers_mut().insert(RETRY_AFTER, v);
                    }
                }
                resp
            }
            Refusal::NotFound => {
                prom_error(StatusCode::NOT_FOUND, "not_found", "404 page not found")
            }
            Refusal::Backend(e) => {
                let (status, error_type) = BackendKind::of(&e).status();
                prom_error(status, error_type, &e.to_string())
            }
            Refusal::Unfilterable(message) => {
                prom_error(StatusCode::BAD_GATEWAY, "unavailable", &message)
            }
            Refusal::Upstream(resp) => super::stream_unfiltered(*resp),
            Refusal::Alertmanager { status, message } => {
                HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
                    .content_type("application/json")
                    .body(serde_json::Value::String(message).to_string())
            }
        }
    }
}

/// `{"status":"error","errorType":…,"error":…}` with `status`.
fn prom_error(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(json!({"status": "error", "errorType": error_type, "error": message}).to_string())
}

/// 400 `bad_data`, for PromQL and parameters we refuse.
fn bad_data(message: &str) -> HttpResponse {
    prom_error(StatusCode::BAD_REQUEST, "bad_data", message)
}

/// keystonemiddleware's 401: JSON body and `WWW-Authenticate: Keystone uri=…`.
fn unauthorized(www_authenticate_uri: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .content_type("application/json")
        .insert_header((
            "WWW-Authenticate",
            format!("Keystone uri=\"{www_authenticate_uri}\""),
        ))
        .body(
            json!({"error": {"code": 401, "title": "Unauthorized",
                "message": "The request you have made requires authentication."}})
            .to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body(r: HttpResponse) -> serde_json::Value {
        let b = r.into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn prometheus_envelope() {
        let r = bad_data("parse error");
        assert_eq!(r.status(), 400);
        assert_eq!(
            body(r),
            json!({"status":"error","errorType":"bad_data","error":"parse error"})
        );
    }

    #[test]
    fn keystone_401_has_www_authenticate() {
        let r = unauthorized("http://k:5000");
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            "Keystone uri=\"http://k:5000\""
        );
        assert_eq!(body(r)["error"]["code"], 401);
    }

    /// Every refusal as it is answered: status, the headers that matter
    /// and the body text, byte for byte.
    #[test]
    fn every_refusal_renders_as_before() {
        let key = LimitKey {
            privileged: false,
            project: "A".into(),
        };
        let env =
            |t: &str, e: &str| format!(r#"{{"error":"{e}","errorType":"{t}","status":"error"}}"#);
        /// A refusal, its status, headers it must carry, its body text.
        type Row = (Refusal, u16, Vec<(&'static str, &'static str)>, String);
        let table: Vec<Row> = vec![
            (
                Refusal::IdentityUnavailable,
                503,
                vec![],
                env(
                    "unavailable",
                    "The identity service is unavailable; the token could not be validated.",
                ),
            ),
            (
                Refusal::Forbidden(Denied { rule: "r".into() }),
                403,
                vec![],
                env("forbidden", "RBAC Authorization Failed"),
            ),
            (
                Refusal::BadData("no".into()),
                400,
                vec![],
                env("bad_data", "no"),
            ),
            (
                Refusal::TooLarge { limit: 10 },
                413,
                vec![],
                env("bad_data", "request body larger than 10 bytes"),
            ),
            (
                Refusal::UnsupportedMedia,
                415,
                vec![],
                env(
                    "bad_data",
                    "request bodies must be application/x-www-form-urlencoded",
                ),
            ),
            (
                Refusal::MethodNotAllowed(&["GET", "POST"]),
                405,
                vec![("allow", "GET, POST")],
                env("bad_data", "method not allowed; use GET or POST"),
            ),
            (
                Refusal::BodyTimeout(Duration::from_secs(3)),
                408,
                vec![],
                env("timeout", "request body not received within 3s"),
            ),
            (
                Refusal::Limited {
                    key: key.clone(),
                    refusal: limits::Refusal::Concurrency { limit: 2 },
                },
                429,
                vec![("retry-after", "1")],
                env(
                    "unavailable",
                    "too many concurrent requests for this project (at most 2); retry later",
                ),
            ),
            (
                Refusal::Limited {
                    key: key.clone(),
                    refusal: limits::Refusal::QueryBytes { got: 9, max: 8 },
                },
                422,
                vec![],
                env(
                    "bad_data",
                    "query text of 9 bytes exceeds the limit of 8 bytes for this project",
                ),
            ),
            (
                Refusal::NotFound,
                404,
                vec![],
                env("not_found", "404 page not found"),
            ),
            (
                Refusal::Backend(BackendError::Timeout(Duration::from_secs(2))),
                504,
                vec![],
                env("timeout", "backend did not answer within 2s"),
            ),
            (
                Refusal::Backend(BackendError::Unreachable("x".into())),
                502,
                vec![],
                env("unavailable", "backend unreachable: x"),
            ),
            (
                Refusal::Backend(BackendError::Credentials {
                    method: "sigv4",
                    why: "y".into(),
                }),
                503,
                vec![],
                env(
                    "unavailable",
                    "cannot authenticate to the backend (sigv4): y",
                ),
            ),
            (
                Refusal::Backend(BackendError::Redirect(302)),
                502,
                vec![],
                env(
                    "unavailable",
                    "backend answered 302 (a redirect, which aetos does not follow)",
                ),
            ),
            (
                Refusal::Alertmanager {
                    status: 403,
                    message: "a \"silence\"".into(),
                },
                403,
                vec![],
                r#""a \"silence\"""#.to_owned(),
            ),
            (
                Refusal::Unfilterable("not JSON".into()),
                502,
                vec![],
                env("unavailable", "not JSON"),
            ),
        ];
        for (refusal, status, headers, text) in table {
            let what = format!("{refusal:?}");
            let close = matches!(refusal, Refusal::BodyTimeout(_));
            let r = refusal.render("");
            assert_eq!(r.status(), status, "{what}");
            assert_eq!(
                r.headers().get("content-type").unwrap(),
                "application/json",
                "{what}"
            );
            for (k, v) in headers {
                assert_eq!(r.headers().get(k).unwrap(), v, "{what}");
            }
            assert_eq!(
                r.head().connection_type() == ConnectionType::Close,
                close,
                "{what}"
            );
            let b = r.into_body().try_into_bytes().unwrap();
            assert_eq!(std::str::from_utf8(&b).unwrap(), text, "{what}");
        }
    }
}
