//! Answers that are filtered, not rewritten, for scoped callers.
//!
//! - `rules` and `alerts`: only the rules (and their alerts) and alerts
//!   whose labels carry the caller's project; under metric access rules
//!   that restrict the caller, only of the rules whose expression they
//!   allow (`alerts` is then built from `rules?type=alert`).
//! - `metadata` and `targets/metadata`: built from the metadata of the
//!   scrape targets that hold the project's series (see
//!   [`ProjectSeries`]), so that HELP/TYPE text exported only by another
//!   project's targets is never shown, and `limit` / `limit_per_metric`
//!   apply to what the caller may see.
//!
//! Bodies are filtered without a `serde_json::Value` tree: the backend
//! answer is held once (at most `[api] max_filtered_response_bytes`), parsed
//! into borrowed views ([`raw`]) and every kept entry is copied to one
//! output buffer byte for byte, so a request holds at most about twice the
//! backend body. Large bodies are filtered on the blocking thread pool.
//!
//! Here: reading and decoding backend bodies, running a filter, and the two
//! entry points; [`metadata`](self::metadata_answer) builds the metadata
//! answers, `rules` filters rules and alerts, [`raw`] is the JSON view.

mod metadata;
pub mod raw;
mod rules;

use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;

use super::Refusal;
use crate::backend::BackendRequest;
use crate::request::{CallerGrants, Filter, Params};
use crate::state::State;
use crate::tenancy;
use metadata::FAMILY_SUFFIXES;
pub use metadata::{metadata_answer, targets_metadata_answer, MetadataQuery, ProjectSeries};
use raw::RawObject;
pub use rules::{
    alerts_from_rules, filter_alerts, filter_rules, filter_rules_granted, ALERTING_RULES,
};

/// Bodies at least this large are parsed and filtered on the blocking
/// thread pool rather than on an async worker.
const BLOCKING_THRESHOLD: usize = 1 << 20;

/// Why a backend answer could not be filtered (502 for the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("backend answer is not JSON")]
    NotJson,
    #[error("backend answer has an unexpected shape (at {0})")]
    Shape(&'static str),
}

/// How a backend body to be filtered is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
}

fn unavailable(message: &str) -> Refusal {
    Refusal::Unfilterable(message.to_owned())
}

fn too_large(cap: usize) -> Refusal {
    tracing::warn!(
        "refused to filter a backend answer larger than [api] max_filtered_response_bytes \
         ({cap} bytes) for a project-scoped caller"
    );
    unavailable(&format!(
        "backend answer larger than {cap} bytes, too large to filter for a project-scoped caller"
    ))
}

/// Reads a backend body of at most `cap` bytes (after decoding) into one
/// exactly-sized buffer.
pub(super) async fn read_body(
    resp: crate::backend::Response,
    cap: usize,
) -> Result<Vec<u8>, Refusal> {
    let encoding = match resp.headers().get("content-encoding").map(|v| v.as_bytes()) {
        None | Some(b"identity") => Encoding::Identity,
        Some(b"gzip") | Some(b"x-gzip") => Encoding::Gzip,
        Some(_) => {
            return Err(unavailable(
                "backend answered with a content encoding that cannot be filtered",
            ))
        }
    };
    // The chunks are kept as they come and joined once at the end, so the
    // body is never held in a buffer that grew by doubling.
    let mut chunks = Vec::new();
    let mut len = 0usize;
    let mut s = resp.into_body().into_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.map_err(|e| unavailable(&format!("backend body: {e}")))?;
        len += chunk.len();
        if len > cap {
            return Err(too_large(cap));
        }
        chunks.push(chunk);
    }
    let mut buf = Vec::with_capacity(len);
    for c in chunks.drain(..) {
        buf.extend_from_slice(&c);
    }
    drop(chunks);
    match decode(encoding, buf, cap) {
        Decoded::Body(b) => Ok(b),
        Decoded::TooLarge => Err(too_large(cap)),
        Decoded::Invalid => Err(unavailable("backend body is not valid gzip")),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    Body(Vec<u8>),
    TooLarge,
    Invalid,
}

/// Undoes the backend's content encoding, bounded like the body itself.
fn decode(encoding: Encoding, body: Vec<u8>, cap: usize) -> Decoded {
    use std::io::Read;
    match encoding {
        Encoding::Identity => Decoded::Body(body),
        Encoding::Gzip => {
            let mut out = Vec::new();
            if flate2::read::GzDecoder::new(body.as_slice())
                .take(cap as u64 + 1)
                .read_to_end(&mut out)
                .is_err()
            {
                return Decoded::Invalid;
            }
            if out.len() > cap {
                return Decoded::TooLarge;
            }
            out.shrink_to_fit();
            Decoded::Body(out)
        }
    }
}

/// Runs a filter, on the blocking pool when its input is large.
pub(super) async fn run<F>(input_len: usize, f: F) -> Result<Vec<u8>, Refusal>
where
    F: FnOnce() -> Result<Vec<u8>, FilterError> + Send + 'static,
{
    let done = if input_len >= BLOCKING_THRESHOLD {
        match actix_web::web::block(f).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("filtering a backend answer failed: {e}");
                return Err(unavailable("filtering the backend answer failed"));
            }
        }
    } else {
        f()
    };
    done.map_err(|e| {
        tracing::warn!("cannot filter the backend answer for a scoped caller: {e}");
        unavailable(&e.to_string())
    })
}

/// Gives back what the output buffer reserved beyond its length (it is
/// sized for the whole input) while the answer is sent.
fn shrunk(mut out: Vec<u8>) -> Vec<u8> {
    out.shrink_to_fit();
    out
}

/// Filters a successful `rules` or `alerts` answer for `project`; errors
/// pass through unchanged.
pub async fn filtered(
    resp: crate::backend::Response,
    filter: Filter,
    state: &State,
    project: &str,
    grants: Option<CallerGrants>,
) -> Result<HttpResponse, Refusal> {
    if !resp.status().is_success() {
        return Ok(super::stream_unfiltered(resp));
    }
    let mut head = super::response_head(&resp);
    let body = read_body(resp, state.max_filtered).await?;
    let label = state.scoper.label().to_owned();
    let project = project.to_owned();
    let out = run(body.len(), move || {
        let out = match filter {
            Filter::Rules => {
                let g = grants.as_ref().and_then(CallerGrants::restricted);
                filter_rules_granted(&body, &label, &project, g)
            }
            // The backend was asked for `rules?type=alert` instead (see
            // `answers_alerts_from_rules`).
            Filter::Alerts => match grants.as_ref().and_then(CallerGrants::restricted) {
                Some(g) => alerts_from_rules(&body, &label, &project, g),
                None => filter_alerts(&body, &label, &project),
            },
            // These build their own answer (scoped_metadata).
            Filter::Metadata | Filter::TargetsMetadata => {
                Err(FilterError::Shape("an endpoint that is not filtered"))
            }
        };
        drop(body);
        out.map(shrunk)
    })
    .await?;
    // The filtered body is re-encoded by us, uncompressed.
    head.content_type("application/json");
    let mut r = head.body(Bytes::from(out));
    r.headers_mut().remove("content-encoding");
    Ok(r)
}

/// Whether a scoped caller's `alerts` is answered from the backend's
/// alerting rules (its metric access rules restrict it: an alert is shown
/// only if its rule's expression is within them, see [`alerts_from_rules`]).
/// Then `request` is made that `rules?type=alert` request.
pub fn answers_alerts_from_rules(
    filter: Filter,
    grants: Option<&CallerGrants>,
    request: &mut BackendRequest,
) -> bool {
    if filter != Filter::Alerts || grants.and_then(CallerGrants::restricted).is_none() {
        return false;
    }
    let (path, query) = ALERTING_RULES;
    request.path = path.to_owned();
    request.params = Params {
        url: query.to_owned(),
        body: None,
    };
    request
        .headers
        .retain(|(k, _)| k != http::header::CONTENT_TYPE);
    true
}

/// `metadata` and `targets/metadata` for a caller scoped to `project`:
/// asks the backend which (job, instance, series name) the project has and
/// the targets' metadata, and keeps the entries of those targets for those
/// metric families (see [`ProjectSeries`]).
pub async fn scoped_metadata(
    filter: Filter,
    params: &Params,
    state: &State,
    project: &str,
    grants: Option<&CallerGrants>,
) -> Result<HttpResponse, Refusal> {
    let targets_api = filter == Filter::TargetsMetadata;
    let q = MetadataQuery::parse(&params.url).map_err(|e| {
        let name = if targets_api {
            "targets_metadata"
        } else {
            "metadata"
        };
        tracing::info!("refused a scoped {name} request: {e}");
        Refusal::BadData(e)
    })?;
    let query = project_series_query(state, project, grants, q.metric.as_deref()).map_err(|e| {
        tracing::info!("cannot scope the metadata series query: {e}");
        Refusal::BadData(e)
    })?;
    let series_req = get_request("/api/v1/query", &[("query", query.as_str())], project);
    let mut forwarded: Vec<(&str, &str)> = Vec::new();
    if let Some(m) = &q.metric {
        forwarded.push(("metric", m));
    }
    if targets_api {
        if let Some(m) = &q.match_target {
            forwarded.push(("match_target", m));
        }
    }
    let targets_req = get_request("/api/v1/targets/metadata", &forwarded, project);
    let cap = state.max_filtered;
    let (series, targets) = futures_util::future::join(
        fetch(state, series_req, cap),
        fetch(state, targets_req, cap),
    )
    .await;
    let (series, targets) = (series?, targets?);
    let label = state.scoper.label().to_owned();
    let project = project.to_owned();
    let len = series.len() + targets.len();
    let out = run(len, move || {
        let held = ProjectSeries::from_query_answer(&series)?;
        drop(series);
        let out = if targets_api {
            targets_metadata_answer(&targets, &held, &label, &project, &q)
        } else {
            metadata_answer(&targets, &held, &label, &project, &q)
        };
        drop(targets);
        out.map(shrunk)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(Bytes::from(out)))
}

/// `count by (__name__, job, instance) ({<label>="<project>"})`, narrowed
/// to one metric family's series when the caller asked for one, and to
/// what the metric access rules allow (the union of their selectors, as
/// `or`); built and scoped by the tenancy engine.
fn project_series_query(
    state: &State,
    project: &str,
    grants: Option<&CallerGrants>,
    metric: Option<&str>,
) -> Result<String, String> {
    let matches: Vec<String> = match metric.filter(|m| is_metric_name(m)) {
        Some(m) => {
            let suffixes = FAMILY_SUFFIXES.join("|");
            vec![format!("{{__name__=~\"{m}(?:{suffixes})?\"}}")]
        }
        None => Vec::new(),
    };
    let g = grants.map(|g| g.grants.as_ref());
    let selectors = tenancy::scope_match_list_granted(&matches, state.scoper.label(), project, g)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "count by (__name__, job, instance) ({})",
        selectors.join(" or ")
    ))
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`: safe to place in a regular expression as is.
fn is_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn get_request(path: &str, pairs: &[(&str, &str)], project: &str) -> BackendRequest {
    let url = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    BackendRequest {
        method: Method::GET,
        path: path.into(),
        params: Params { url, body: None },
        headers: vec![(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/json"),
        )],
        project: Some(project.to_owned()),
    }
}

/// One backend request whose successful answer is read (bounded); an
/// error answer is passed to the caller as it is.
async fn fetch(state: &State, req: BackendRequest, cap: usize) -> Result<Vec<u8>, Refusal> {
    let resp = state.backend.send(req).await?;
    if !resp.status().is_success() {
        return Err(Refusal::Upstream(Box::new(resp)));
    }
    read_body(resp, cap).await
}

fn parse_top(body: &[u8]) -> Result<RawObject<'_>, FilterError> {
    let text = std::str::from_utf8(body).map_err(|_| FilterError::NotJson)?;
    serde_json::from_str(text).map_err(|_| FilterError::NotJson)
}

#[cfg(test)]
mod tests;
