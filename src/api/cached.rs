//! The results cache's place in the pipeline: between the tenancy stage and
//! the forwarding, for `query_range` and `query` (see `crate::cache`). A
//! request the cache does not take on is forwarded as without it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::refusal::BackendKind;
use super::routes::Api;
use super::Refusal;
use crate::backend::BackendRequest;
use crate::cache::{Answer, Directive, Failed};
use crate::state::State;

/// The header that says where an answer came from: hit, miss or partial.
pub(super) const CACHE_HEADER: &str = "x-aetos-cache";

/// The answer from the results cache, or `None` to forward `request`.
pub(super) async fn answer(
    req: &HttpRequest,
    state: &State,
    api: &Api,
    request: &BackendRequest,
) -> Option<Result<HttpResponse, Refusal>> {
    let cache = state.cache.as_ref()?;
    let directive = Directive::of(
        req.headers()
            .get(actix_web::http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok()),
    );
    let started = std::time::Instant::now();
    // On the heap: the cache's futures are kilobytes, which every request's
    // future would carry (and copy) if they were inline.
    let answered = match api.name {
        "query_range" => Box::pin(cache.range(&state.backend, request, directive)).await?,
        "query" => Box::pin(cache.instant(&state.backend, request, directive)).await?,
        _ => return None,
    };
    state
        .metrics
        .observe_backend(api.name, started.elapsed().as_secs_f64());
    Some(answered.map(respond).map_err(|f| match f {
        Failed::Backend(e) => {
            let kind = BackendKind::of(&e);
            state
                .metrics
                .kind(&state.metrics.backend_errors, kind.label());
            Refusal::Backend(e)
        }
        Failed::Answer(why) => Refusal::Unfilterable(why),
    }))
}

fn respond(a: Answer) -> HttpResponse {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HttpResponse::build(status);
    if let Ok(ct) = a.content_type.to_str() {
        out.insert_header(("content-type", ct));
    }
    out.insert_header((CACHE_HEADER, a.outcome.as_str()));
    out.body(a.body)
}
