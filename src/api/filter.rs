//! Answers that are filtered, not rewritten, for scoped callers.
//!
//! - `rules` and `alerts`: only the rules (and their alerts) and alerts
//!   whose labels carry the caller's project.
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
pub mod raw;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::value::RawValue;

use super::Refusal;
use crate::backend::BackendRequest;
use crate::request::{Filter, Params};
use crate::state::State;
use crate::tenancy;
use raw::{write_key, write_raw, RawObject};

/// Bodies at least this large are parsed and filtered on the blocking
/// thread pool rather than on an async worker.
const BLOCKING_THRESHOLD: usize = 1 << 20;

/// Suffixes by which a series name extends its metric family's name
/// (histograms, summaries, counters, info and gauge histograms in the text
/// and OpenMetrics formats).
const FAMILY_SUFFIXES: &[&str] = &[
    "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount", "_gsum",
];

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
async fn read_body(resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, Refusal> {
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
    let mut s = resp.bytes_stream();
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
async fn run<F>(input_len: usize, f: F) -> Result<Vec<u8>, Refusal>
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
    resp: reqwest::Response,
    filter: Filter,
    state: &State,
    project: &str,
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
            Filter::Rules => filter_rules(&body, &label, &project),
            Filter::Alerts => filter_alerts(&body, &label, &project),
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

/// `metadata` and `targets/metadata` for a caller scoped to `project`:
/// asks the backend which (job, instance, series name) the project has and
/// the targets' metadata, and keeps the entries of those targets for those
/// metric families (see [`ProjectSeries`]).
pub async fn scoped_metadata(
    filter: Filter,
    params: &Params,
    state: &State,
    project: &str,
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
    let query = project_series_query(state, project, q.metric.as_deref()).map_err(|e| {
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
/// to one metric family's series when the caller asked for one; built and
/// scoped by the tenancy engine.
fn project_series_query(
    state: &State,
    project: &str,
    metric: Option<&str>,
) -> Result<String, String> {
    match metric.filter(|m| is_metric_name(m)) {
        Some(m) => {
            let suffixes = FAMILY_SUFFIXES.join("|");
            let q = format!(
                "count by (__name__, job, instance) ({{__name__=~\"{m}(?:{suffixes})?\"}})"
            );
            state.scoper.query(&q, project).map_err(|e| e.to_string())
        }
        None => {
            let selector = tenancy::scope_match_params(&[], state.scoper.label(), project)
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "count by (__name__, job, instance) ({})",
                selector.concat()
            ))
        }
    }
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
        raw_body: Bytes::new(),
        headers: vec![("accept".into(), "application/json".into())],
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

/// The caller's `metadata` / `targets/metadata` parameters, read like
/// Prometheus' `r.FormValue` (first value; empty means absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataQuery {
    pub metric: Option<String>,
    pub match_target: Option<String>,
    /// Negative: no limit.
    pub limit: i64,
    /// Zero or negative: no limit.
    pub limit_per_metric: i64,
}

impl MetadataQuery {
    /// Parses a query string; a non-numeric limit is refused as Prometheus does.
    pub fn parse(query: &str) -> Result<MetadataQuery, String> {
        let first = |key: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
        };
        let number = |key: &str| match first(key) {
            None => Ok(-1),
            Some(v) => v
                .parse::<i64>()
                .map_err(|_| format!("{key} must be a number")),
        };
        Ok(MetadataQuery {
            metric: first("metric"),
            match_target: first("match_target"),
            limit: number("limit")?,
            limit_per_metric: number("limit_per_metric")?,
        })
    }
}

/// What a project has on each scrape target: `job → instance → series
/// names`, from the answer to `count by (__name__, job, instance)
/// ({<label>="<project>"})`.
///
/// A metadata entry of a target is the project's when the target's
/// (`job`, `instance`) holds a series of the project named like the entry's
/// metric family (equal, or the family plus one of [`FAMILY_SUFFIXES`]) and
/// the target's own labels do not name another project. This fails closed:
/// a series whose `job`/`instance` match no target (recording rules, remote
/// write, `honor_labels` overriding them) yields no metadata.
#[derive(Debug, Default)]
pub struct ProjectSeries {
    targets: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl ProjectSeries {
    /// Reads an instant-vector answer of `count by (__name__, job, instance)`.
    pub fn from_query_answer(body: &[u8]) -> Result<ProjectSeries, FilterError> {
        let top = parse_top(body)?;
        let data = top
            .get("data")
            .and_then(raw::object)
            .ok_or(FilterError::Shape("data"))?;
        let result = data
            .get("result")
            .and_then(raw::array)
            .ok_or(FilterError::Shape("data.result"))?;
        let mut held = ProjectSeries::default();
        for sample in result {
            let Some(metric) = raw::object(sample)
                .as_ref()
                .and_then(|s| s.get("metric"))
                .and_then(raw::object)
            else {
                return Err(FilterError::Shape("data.result[].metric"));
            };
            let (Some(name), Some(job), Some(instance)) = (
                metric.unique_str("__name__"),
                metric.unique_str("job"),
                metric.unique_str("instance"),
            ) else {
                continue;
            };
            held.targets
                .entry(job.into_owned())
                .or_default()
                .entry(instance.into_owned())
                .or_default()
                .insert(name.into_owned());
        }
        Ok(held)
    }

    /// Whether the entry of `target` for `family` may be shown to `project`.
    fn allows(&self, target: &RawObject, family: &str, label: &str, project: &str) -> bool {
        let other_project = target
            .0
            .iter()
            .filter(|(k, _)| k == label)
            .any(|(_, v)| raw::string(v).as_deref() != Some(project));
        if other_project {
            return false;
        }
        let (Some(job), Some(instance)) = (target.unique_str("job"), target.unique_str("instance"))
        else {
            return false;
        };
        let Some(names) = self
            .targets
            .get(job.as_ref())
            .and_then(|i| i.get(instance.as_ref()))
        else {
            return false;
        };
        names.contains(family)
            || FAMILY_SUFFIXES.iter().any(|s| {
                let mut n = String::with_capacity(family.len() + s.len());
                n.push_str(family);
                n.push_str(s);
                names.contains(&n)
            })
    }
}

/// One `targets/metadata` entry the project may see.
struct Entry<'a> {
    raw: &'a RawValue,
    target: &'a RawValue,
    family: Cow<'a, str>,
    fields: [Option<&'a RawValue>; 3],
}

/// Calls `f` with every entry of a `targets/metadata` answer that
/// `series` allows, in the backend's order.
fn for_each_allowed<'a>(
    body: &'a [u8],
    series: &ProjectSeries,
    label: &str,
    project: &str,
    metric: Option<&'a str>,
    mut f: impl FnMut(Entry<'a>) -> bool,
) -> Result<(), FilterError> {
    let top = parse_top(body)?;
    let data = top
        .get("data")
        .and_then(raw::array)
        .ok_or(FilterError::Shape("data"))?;
    for e in data {
        let obj = raw::object(e).ok_or(FilterError::Shape("data[]"))?;
        let Some(target_raw) = obj.get("target") else {
            continue;
        };
        let Some(target) = raw::object(target_raw) else {
            continue;
        };
        // With `metric=` Prometheus leaves the family out of each entry.
        let family = match (obj.get("metric").and_then(raw::string), metric) {
            (Some(f), _) => f,
            (None, Some(m)) => Cow::Borrowed(m),
            (None, None) => continue,
        };
        if metric.is_some_and(|m| m != family) {
            continue;
        }
        if !series.allows(&target, &family, label, project) {
            continue;
        }
        let entry = Entry {
            raw: e,
            target: target_raw,
            family,
            fields: [obj.get("type"), obj.get("help"), obj.get("unit")],
        };
        if !f(entry) {
            break;
        }
    }
    Ok(())
}

/// The `/api/v1/metadata` answer for `project`, from a `targets/metadata`
/// answer: `{metric: [{type, help, unit}, …]}` deduplicated per metric,
/// metrics in name order, then `limit_per_metric` (> 0: entries per metric)
/// and `limit` (≥ 0: number of metrics) applied, as Prometheus does.
pub fn metadata_answer(
    targets_body: &[u8],
    series: &ProjectSeries,
    label: &str,
    project: &str,
    q: &MetadataQuery,
) -> Result<Vec<u8>, FilterError> {
    type Fields<'a> = [Option<&'a RawValue>; 3];
    let mut metrics: BTreeMap<Cow<str>, Vec<Fields>> = BTreeMap::new();
    let same = |a: &Fields, b: &Fields| {
        a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.map(RawValue::get) == y.map(RawValue::get))
    };
    for_each_allowed(
        targets_body,
        series,
        label,
        project,
        q.metric.as_deref(),
        |e| {
            let list = metrics.entry(e.family).or_default();
            let full = q.limit_per_metric > 0 && list.len() as i64 >= q.limit_per_metric;
            if !full && !list.iter().any(|f| same(f, &e.fields)) {
                list.push(e.fields);
            }
            true
        },
    )?;
    let mut out = Vec::with_capacity(targets_body.len().min(1 << 16));
    out.extend_from_slice(br#"{"status":"success","data":{"#);
    let limit = usize::try_from(q.limit).ok();
    for (i, (name, list)) in metrics.iter().enumerate() {
        if limit.is_some_and(|l| i >= l) {
            break;
        }
        if i > 0 {
            out.push(b',');
        }
        write_key(&mut out, name);
        out.push(b'[');
        for (j, fields) in list.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.push(b'{');
            for (k, (key, v)) in ["type", "help", "unit"].iter().zip(fields).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_key(&mut out, key);
                match v {
                    Some(v) => write_raw(&mut out, v),
                    None => out.extend_from_slice(b"\"\""),
                }
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// The `/api/v1/targets/metadata` answer for `project`: the allowed
/// entries byte for byte (target labels included), then `limit` applied as
/// Prometheus does (≥ 0: no further target is started once that many
/// entries are listed).
pub fn targets_metadata_answer(
    targets_body: &[u8],
    series: &ProjectSeries,
    label: &str,
    project: &str,
    q: &MetadataQuery,
) -> Result<Vec<u8>, FilterError> {
    let mut out = Vec::with_capacity(targets_body.len());
    out.extend_from_slice(br#"{"status":"success","data":["#);
    let limit = usize::try_from(q.limit).ok();
    let mut n = 0usize;
    let mut last_target: Option<&str> = None;
    for_each_allowed(
        targets_body,
        series,
        label,
        project,
        q.metric.as_deref(),
        |e| {
            let new_target = last_target != Some(e.target.get());
            if new_target && limit.is_some_and(|l| n >= l) {
                return false;
            }
            last_target = Some(e.target.get());
            if n > 0 {
                out.push(b',');
            }
            write_raw(&mut out, e.raw);
            n += 1;
            true
        },
    )?;
    out.extend_from_slice(b"]}");
    Ok(out)
}

fn parse_top(body: &[u8]) -> Result<RawObject<'_>, FilterError> {
    let text = std::str::from_utf8(body).map_err(|_| FilterError::NotJson)?;
    serde_json::from_str(text).map_err(|_| FilterError::NotJson)
}

/// Whether `labels` (an object) gives `label` the value `project`, and
/// only that value.
fn labels_have(labels: Option<&RawValue>, label: &str, project: &str) -> bool {
    labels
        .and_then(raw::object)
        .and_then(|o| o.unique_str(label))
        .is_some_and(|v| v == project)
}

/// Copies the envelope of `body` (every top-level member as it is) with
/// `data` replaced by what `write_data` writes for it.
fn rewrite_data<'a>(
    body: &'a [u8],
    write_data: impl FnOnce(&mut Vec<u8>, &RawObject<'a>) -> Result<(), FilterError>,
) -> Result<Vec<u8>, FilterError> {
    let top = parse_top(body)?;
    let data = top
        .get("data")
        .and_then(raw::object)
        .ok_or(FilterError::Shape("data"))?;
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    let mut write_data = Some(write_data);
    let mut first = true;
    for (k, v) in &top.0 {
        if k == "data" {
            // Only once, even if the backend repeated the member.
            let Some(w) = write_data.take() else { continue };
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(&mut out, k);
            w(&mut out, &data)?;
        } else {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(&mut out, k);
            write_raw(&mut out, v);
        }
    }
    out.push(b'}');
    Ok(out)
}

/// `data.groups[].rules[]`: keep rules whose labels carry the project (and
/// of their alerts those that do); drop groups left empty. Of `data`, only
/// `groups` and the opaque `groupNextToken` are kept.
pub fn filter_rules(body: &[u8], label: &str, project: &str) -> Result<Vec<u8>, FilterError> {
    rewrite_data(body, |out, data| {
        let groups = data
            .get("groups")
            .and_then(raw::array)
            .ok_or(FilterError::Shape("data.groups"))?;
        out.extend_from_slice(br#"{"groups":["#);
        let mut kept = 0;
        for g in groups {
            if write_group(out, g, kept > 0, label, project)? {
                kept += 1;
            }
        }
        out.push(b']');
        if let Some(token) = data.get("groupNextToken") {
            out.push(b',');
            write_key(out, "groupNextToken");
            write_raw(out, token);
        }
        out.push(b'}');
        Ok(())
    })
}

/// Writes a group with its project's rules; nothing (and `false`) when
/// none is left.
fn write_group(
    out: &mut Vec<u8>,
    g: &RawValue,
    comma: bool,
    label: &str,
    project: &str,
) -> Result<bool, FilterError> {
    let obj = raw::object(g).ok_or(FilterError::Shape("data.groups[]"))?;
    let Some(rules) = obj.get("rules").and_then(raw::array) else {
        return Ok(false);
    };
    let mark = out.len();
    if comma {
        out.push(b',');
    }
    out.push(b'{');
    let mut kept = 0;
    let mut rules = Some(rules);
    let mut first = true;
    for (k, v) in &obj.0 {
        if k == "rules" {
            let Some(rules) = rules.take() else { continue };
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            out.push(b'[');
            for r in rules {
                if write_rule(out, r, kept > 0, label, project)? {
                    kept += 1;
                }
            }
            out.push(b']');
        } else {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            write_raw(out, v);
        }
    }
    out.push(b'}');
    if kept == 0 {
        out.truncate(mark);
        return Ok(false);
    }
    Ok(true)
}

/// Writes a rule of the project, as it is unless some of its alerts are
/// another project's.
fn write_rule(
    out: &mut Vec<u8>,
    r: &RawValue,
    comma: bool,
    label: &str,
    project: &str,
) -> Result<bool, FilterError> {
    let obj = raw::object(r).ok_or(FilterError::Shape("data.groups[].rules[]"))?;
    if !labels_have(obj.get("labels"), label, project) {
        return Ok(false);
    }
    if comma {
        out.push(b',');
    }
    let alerts_members = obj.0.iter().filter(|(k, _)| k == "alerts").count();
    let alerts = match obj.get("alerts") {
        None => {
            write_raw(out, r);
            return Ok(true);
        }
        Some(a) => raw::array(a).ok_or(FilterError::Shape("data.groups[].rules[].alerts"))?,
    };
    let keep: Vec<bool> = alerts
        .iter()
        .map(|a| labels_have(raw::object(a).and_then(|o| o.get("labels")), label, project))
        .collect();
    if alerts_members == 1 && keep.iter().all(|k| *k) {
        write_raw(out, r);
        return Ok(true);
    }
    out.push(b'{');
    let mut first = true;
    let mut pending = true;
    for (k, v) in &obj.0 {
        if k == "alerts" {
            if !std::mem::take(&mut pending) {
                continue;
            }
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            out.push(b'[');
            let kept = alerts.iter().zip(&keep).filter(|(_, k)| **k);
            for (n, (a, _)) in kept.enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                write_raw(out, a);
            }
            out.push(b']');
        } else {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(out, k);
            write_raw(out, v);
        }
    }
    out.push(b'}');
    Ok(true)
}

/// `data.alerts[]`: keep alerts whose labels carry the project. Of `data`,
/// only `alerts` is kept.
pub fn filter_alerts(body: &[u8], label: &str, project: &str) -> Result<Vec<u8>, FilterError> {
    rewrite_data(body, |out, data| {
        let alerts = data
            .get("alerts")
            .and_then(raw::array)
            .ok_or(FilterError::Shape("data.alerts"))?;
        out.extend_from_slice(br#"{"alerts":["#);
        let mut n = 0;
        for a in alerts {
            if labels_have(raw::object(a).and_then(|o| o.get("labels")), label, project) {
                if n > 0 {
                    out.push(b',');
                }
                write_raw(out, a);
                n += 1;
            }
        }
        out.extend_from_slice(b"]}");
        Ok(())
    })
}

#[cfg(test)]
mod tests;
