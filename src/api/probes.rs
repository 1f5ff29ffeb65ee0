//! The platform's probes, as Prometheus answers them: `/-/healthy` (the
//! process runs) and `/-/ready` (a backend is ready), on the API port
//! without authentication, and the internal listener (`[api]
//! internal_listen`) that serves them with an unauthenticated `/metrics`
//! for a stock Prometheus scraper or a kubelet.
//!
//! Only these exact paths skip authentication; the internal listener
//! answers nothing else, so it cannot reach a backend.

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::state::State;

/// `GET|HEAD /-/healthy`: 200 while the process answers at all.
pub fn healthy(head: bool) -> HttpResponse {
    text(StatusCode::OK, "OK", head)
}

/// `GET|HEAD /-/ready`: 200 when the configuration is loaded (it is, once
/// serving) and the policy is in force, and at least one backend is ready.
/// With several backends (`[prometheus] urls`) their background health
/// checks decide; a single backend is not checked in the background, so it
/// is checked now (`[prometheus] health_check_path`). 503 otherwise, with
/// the reason (no addresses: the probe is unauthenticated).
pub async fn ready(state: &State, head: bool) -> HttpResponse {
    match not_ready(state).await {
        None => text(StatusCode::OK, "OK", head),
        Some(why) => {
            tracing::warn!(reason = why, "not ready");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("NOT READY: {why}"),
                head,
            )
        }
    }
}

/// Why aetos should not be sent requests now, if it should not.
async fn not_ready(state: &State) -> Option<&'static str> {
    if state.enforcer.load_error().is_some() {
        return Some("the policy failed to load; every request is denied");
    }
    let reports = if state.backend.len() > 1 {
        state.backend.report()
    } else {
        state.backend.check_all().await
    };
    (!reports.iter().any(|r| r.up)).then_some("no backend is ready")
}

fn text(status: StatusCode, body: &str, head: bool) -> HttpResponse {
    let mut out = HttpResponse::build(status);
    out.content_type("text/plain; charset=utf-8");
    if head {
        out.finish()
    } else {
        out.body(body.to_owned())
    }
}

/// The internal listener's only handler: `/metrics`, `/-/healthy` and
/// `/-/ready` (GET or HEAD), nothing else, no authentication.
pub async fn internal(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return HttpResponse::MethodNotAllowed()
            .insert_header(("allow", "GET, HEAD"))
            .content_type("text/plain; charset=utf-8")
            .body("method not allowed");
    }
    match req.path() {
        "/metrics" => {
            let mut r = super::metrics_response(&state.metrics);
            if head {
                r = r.map_body(|_, _| actix_web::body::BoxBody::new(()));
            }
            r
        }
        "/-/healthy" => healthy(head),
        "/-/ready" => ready(&state, head).await,
        _ => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body(
                "404 page not found: this listener serves /metrics, /-/healthy and /-/ready only",
            ),
    }
}
