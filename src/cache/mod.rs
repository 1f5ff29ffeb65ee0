//! The results cache (`[cache]`, off by default): repeated `query_range`
//! requests — dashboards, periodic audits — are answered from stored
//! intervals instead of the backend, as Thanos' query-frontend does.
//!
//! It runs after the tenancy stage, on the request exactly as the backend
//! would be sent it, and inside the project's admission (held for the
//! whole request). A range is put on its step grid (rounded to the step
//! with `align_to_step`), cut at multiples of `split_interval`
//! ([`split`]), each piece looked up by its key ([`key`]) in the store
//! ([`store`]) and the missing ones fetched from the backend, at most
//! `max_parallel` at once; the pieces are merged into one answer
//! ([`merge`], on the backend's bytes). Only
//! clean answers (200, `success`, no `warnings` / `infos`) of pieces that
//! end before `now - freshness` are stored; anything else is answered as
//! the backend sent it.
//!
//! A request the cache cannot answer exactly as the backend would — an
//! unknown parameter, `@ start()` / `@ end()` (whose meaning changes when
//! a range is split), a step it does not read the way Prometheus does —
//! is not its business: [`Cache::range`] returns `None` and the request
//! is forwarded as without a cache.
//!
//! Identical requests at the same time share their work ([`coalesce`]):
//! a piece being looked up and fetched for one request is not fetched
//! again for another that needs it meanwhile; that one waits for it.

mod coalesce;
mod instant;
mod key;
mod merge;
mod params;
mod split;
mod store;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::HeaderValue;
use url::form_urlencoded;

use crate::backend::{Backend, BackendError, BackendRequest};
use crate::metrics::Metrics;
use crate::request::Params;
use coalesce::{Coalescer, Joined};
use key::Key;
use params::{read_params, uses_start_or_end};
use split::Range;
pub(crate) use store::Store;

/// How the cache answers, from `[cache]`.
#[derive(Debug, Clone)]
pub(crate) struct ResultsOptions {
    pub(crate) split_interval: Duration,
    pub(crate) freshness: Duration,
    pub(crate) align_to_step: bool,
    pub(crate) max_parallel: usize,
    pub(crate) ttl: Duration,
    /// Zero: instant queries are not cached.
    pub(crate) instant_ttl: Duration,
    /// Largest backend answer held to be merged or stored (`[api]
    /// max_filtered_response_bytes`).
    pub(crate) max_answer_bytes: usize,
    /// `[prometheus] timeout`: what a request that waited in vain for an
    /// identical one's answer is told it waited for.
    pub(crate) backend_timeout: Duration,
    /// The longest a request waits for an identical one's answer: what
    /// that one's store lookup and backend request may take.
    pub(crate) wait_limit: Duration,
}

/// Where an answer came from (the `X-Aetos-Cache` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every piece from the store.
    Hit,
    /// Every piece from the backend.
    Miss,
    /// Some from each.
    Partial,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Partial => "partial",
        }
    }
}

/// What the caller is sent.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The backend's `Content-Type` (JSON for merged answers).
    pub content_type: HeaderValue,
    pub body: Bytes,
    pub outcome: Outcome,
}

/// Why a request the cache took on has no answer.
#[derive(Debug)]
pub enum Failed {
    /// The backend did not answer.
    Backend(BackendError),
    /// The backend's answer could not be held or read (too large, cut).
    Answer(String),
}

/// Every request that waited for one backend request gets its error.
impl Clone for Failed {
    fn clone(&self) -> Failed {
        match self {
            Failed::Backend(e) => Failed::Backend(copy_error(e)),
            Failed::Answer(why) => Failed::Answer(why.clone()),
        }
    }
}

/// An equal `BackendError` (the backend stage's type, not `Clone`).
fn copy_error(e: &BackendError) -> BackendError {
    match e {
        BackendError::Unreachable(why) => BackendError::Unreachable(why.clone()),
        BackendError::Timeout(t) => BackendError::Timeout(*t),
        BackendError::Credentials { method, why } => BackendError::Credentials {
            method,
            why: why.clone(),
        },
        BackendError::Other(why) => BackendError::Other(why.clone()),
        BackendError::Redirect(status) => BackendError::Redirect(*status),
    }
}

/// What the caller's `Cache-Control` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Read and write.
    Normal,
    /// `no-cache`: answered from the backend, stored as usual.
    NoRead,
    /// `no-store`: not the cache's business at all.
    Bypass,
}

impl Directive {
    /// From a `Cache-Control` request header.
    pub fn of(cache_control: Option<&str>) -> Directive {
        let Some(v) = cache_control else {
            return Directive::Normal;
        };
        let has = |d: &str| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(d));
        if has("no-store") {
            Directive::Bypass
        } else if has("no-cache") {
            Directive::NoRead
        } else {
            Directive::Normal
        }
    }
}

/// The results cache of a process.
pub struct Cache {
    store: Store,
    opts: ResultsOptions,
    /// What backend the answers come from (the configured URLs): part of
    /// every key, so a reconfigured aetos never answers from another's
    /// entries.
    backend_id: String,
    metrics: Metrics,
    /// The pieces of ranges being looked up and fetched.
    ranges: Coalescer<FlightKey, Result<Piece, Stop>>,
    instants: instant::Flights,
}

/// What makes two lookups one: the entry's key, and what else shapes
/// the backend request and its fate (the caller's `timeout`, whether the
/// answer may be stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FlightKey {
    digest: [u8; 32],
    storable: bool,
    timeout: Option<String>,
}

/// One piece to answer: what to ask the backend for, and its entry.
#[derive(Clone, Copy)]
struct PieceAsk<'a> {
    backend: &'a Backend,
    req: &'a BackendRequest,
    query: &'a str,
    /// The caller's `timeout` parameter.
    timeout: Option<&'a str>,
    piece: Range,
    key: Key,
    /// Old enough to be stored.
    storable: bool,
}

/// One piece of a range as fetched or found (shared by the requests
/// that waited for it): a clean matrix answer, as Prometheus sent it.
#[derive(Clone)]
struct Piece {
    body: Bytes,
    from_store: bool,
}

/// A piece's backend answer that is not merged but sent as it came.
#[derive(Clone)]
struct Passed {
    status: u16,
    content_type: HeaderValue,
    body: Bytes,
}

impl Cache {
    pub(crate) fn new(
        store: Store,
        opts: ResultsOptions,
        backend_id: String,
        metrics: Metrics,
    ) -> Cache {
        Cache {
            store,
            opts,
            backend_id,
            metrics,
            ranges: Coalescer::new(),
            instants: Coalescer::new(),
        }
    }

    /// Answers a `query_range` from the cache and the backend, or `None`
    /// when the request is not one the cache answers (it is then
    /// forwarded as usual).
    pub async fn range(
        &self,
        backend: &Backend,
        req: &BackendRequest,
        directive: Directive,
    ) -> Option<Result<Answer, Failed>> {
        if directive == Directive::Bypass {
            return None;
        }
        let p = read_params(&req.params, &["query", "start", "end", "step", "timeout"])?;
        let query = p.get("query")?;
        if uses_start_or_end(query) {
            return None;
        }
        let step = split::parse_step_ms(p.get("step")?)?;
        let mut range = Range::new(
            split::parse_ms(p.get("start")?)?,
            split::parse_ms(p.get("end")?)?,
            step,
        )?;
        if self.opts.align_to_step {
            range = range.aligned();
        }
        let interval = i64::try_from(self.opts.split_interval.as_millis()).ok()?;
        let pieces = range.split(interval)?;
        let fresh_from =
            now_ms() - i64::try_from(self.opts.freshness.as_millis()).unwrap_or(i64::MAX / 2);
        let timeout = p.get("timeout");
        let base = self.key_base(req, query);
        let fetched = futures_util::stream::iter(pieces.into_iter().map(|piece| {
            let base = &base;
            async move {
                let key = base.range(piece);
                let storable = piece.end < fresh_from;
                let ask = PieceAsk {
                    backend,
                    req,
                    query,
                    timeout,
                    piece,
                    key,
                    storable,
                };
                self.piece(ask, directive).await
            }
        }))
        .buffered(self.opts.max_parallel.max(1))
        .try_collect::<Vec<_>>()
        .await;
        let pieces = match fetched {
            Ok(p) => p,
            Err(Stop::Failed(f)) => return Some(Err(f)),
            Err(Stop::Pass(p)) => {
                self.count(None, 0);
                return Some(Ok(Answer {
                    status: p.status,
                    content_type: p.content_type,
                    body: p.body,
                    outcome: Outcome::Miss,
                }));
            }
        };
        let hits = pieces.iter().filter(|p| p.from_store).count();
        let outcome = if hits == pieces.len() {
            Outcome::Hit
        } else if hits == 0 {
            Outcome::Miss
        } else {
            Outcome::Partial
        };
        let bodies: Vec<Bytes> = pieces.into_iter().map(|p| p.body).collect();
        let merged = match merge::merge(&bodies) {
            Ok(m) => m,
            Err(why) => {
                // Every piece was checked when it was fetched; a stored
                // entry that no longer merges is garbage: not answered.
                tracing::warn!("results cache: pieces do not merge ({why:?}); forwarding");
                return None;
            }
        };
        let body = Bytes::from(merged);
        self.count(Some(outcome), body.len());
        Some(Ok(Answer {
            status: 200,
            content_type: HeaderValue::from_static("application/json"),
            body,
            outcome,
        }))
    }

    /// The value of a flight this request led or waited for (counted), or
    /// the backend's timeout when it waited in vain.
    fn joined<V, E>(&self, joined: Joined<Result<V, E>>) -> Result<Result<V, E>, Failed> {
        match joined {
            Joined::Led(v) => Ok(v),
            Joined::Waited(v) => {
                self.metrics.results_cache_coalesced.inc();
                Ok(v)
            }
            Joined::TimedOut => {
                tracing::warn!(
                    "results cache: an identical request's answer did not come within {:?}",
                    self.opts.wait_limit
                );
                Err(Failed::Backend(BackendError::Timeout(
                    self.opts.backend_timeout,
                )))
            }
        }
    }

    /// What every key of this request shares: the backend, the caller's
    /// mode (privileged, or scoped to which project) and the query as the
    /// backend is sent it.
    fn key_base<'a>(&'a self, req: &'a BackendRequest, query: &'a str) -> key::Base<'a> {
        key::Base {
            backend: &self.backend_id,
            project: req.project.as_deref(),
            path: &req.path,
            query,
        }
    }

    /// One piece: from the store when allowed and present, else from the
    /// backend (and stored when it is clean and `storable`); shared with
    /// the identical requests that need it meanwhile (but `no-cache`
    /// ones, which ask the backend themselves).
    async fn piece(&self, ask: PieceAsk<'_>, directive: Directive) -> Result<Piece, Stop> {
        let read = ask.storable && directive == Directive::Normal;
        let fetch = || self.look_up_or_fetch(ask, read);
        if directive != Directive::Normal {
            return fetch().await;
        }
        let flight = FlightKey {
            digest: ask.key.digest,
            storable: ask.storable,
            timeout: ask.timeout.map(str::to_owned),
        };
        let joined = self.ranges.run(flight, self.opts.wait_limit, fetch).await;
        self.joined(joined).map_err(Stop::Failed)?
    }

    /// What one flight of [`Cache::piece`] does: the store when `read`,
    /// else the backend (storing a clean answer when `storable`).
    async fn look_up_or_fetch(&self, ask: PieceAsk<'_>, read: bool) -> Result<Piece, Stop> {
        let PieceAsk {
            backend,
            req,
            query,
            timeout,
            piece,
            key,
            storable,
        } = ask;
        if read {
            // Checked when stored; one that no longer merges is not answered.
            if let Some(body) = self.store.get(&key.digest).await {
                return Ok(Piece {
                    body,
                    from_store: true,
                });
            }
        }
        let pairs = [
            ("query", query.to_owned()),
            ("start", format_ms(piece.start)),
            ("end", format_ms(piece.end)),
            ("step", format_ms(piece.step)),
        ];
        let sent = self
            .send(backend, req, &pairs, timeout)
            .await
            .map_err(Stop::Failed)?;
        if sent.status != 200 {
            return Err(Stop::Pass(sent));
        }
        if merge::check(&sent.body).is_err() {
            // Warnings, an error, histograms, not JSON: as the backend sent it.
            return Err(Stop::Pass(sent));
        }
        if storable {
            self.store_entry(key, sent.body.clone(), self.opts.ttl)
                .await;
        }
        Ok(Piece {
            body: sent.body,
            from_store: false,
        })
    }

    async fn store_entry(&self, key: Key, body: Bytes, ttl: Duration) {
        let len = body.len();
        if self.store.set(key.digest, body, ttl).await {
            self.metrics.results_cache_stored_bytes.inc_by(len as u64);
        } else {
            self.metrics.results_cache_too_large.inc();
        }
    }

    /// Sends the request with `pairs` (and the caller's `timeout`) as its
    /// parameters, in the URL or the form body as the caller sent them,
    /// uncompressed, and reads the whole answer.
    async fn send(
        &self,
        backend: &Backend,
        req: &BackendRequest,
        pairs: &[(&str, String)],
        timeout: Option<&str>,
    ) -> Result<Passed, Failed> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            form.append_pair(k, v);
        }
        if let Some(t) = timeout {
            form.append_pair("timeout", t);
        }
        let form = form.finish();
        let mut sub = req.clone();
        sub.params = if req.params.body.is_some() {
            Params {
                url: String::new(),
                body: Some(form),
            }
        } else {
            Params {
                url: form,
                body: None,
            }
        };
        sub.headers
            .retain(|(k, _)| k != http::header::ACCEPT_ENCODING);
        let resp = backend.send(sub).await.map_err(Failed::Backend)?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/json"));
        let cap = self.opts.max_answer_bytes;
        let mut chunks = Vec::new();
        let mut len = 0usize;
        let mut body = resp.into_body().into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Failed::Answer(format!("backend body: {e}")))?;
            len += chunk.len();
            if len > cap {
                tracing::warn!(
                    "results cache: a backend answer is larger than [api] \
                     max_filtered_response_bytes ({cap} bytes)"
                );
                return Err(Failed::Answer(format!(
                    "backend answer larger than {cap} bytes, too large for the results cache"
                )));
            }
            chunks.push(chunk);
        }
        let mut buf = Vec::with_capacity(len);
        for c in chunks {
            buf.extend_from_slice(&c);
        }
        Ok(Passed {
            status,
            content_type,
            body: Bytes::from(buf),
        })
    }

    /// Counts an answer (`None`: passed through as the backend sent it).
    fn count(&self, outcome: Option<Outcome>, bytes: usize) {
        let label = outcome.map_or("passed", Outcome::as_str);
        self.metrics
            .results_cache_answers
            .get_or_create(&crate::metrics::OutcomeLabel { outcome: label })
            .inc();
        if outcome == Some(Outcome::Hit) || outcome == Some(Outcome::Partial) {
            self.metrics
                .results_cache_answered_bytes
                .inc_by(bytes as u64);
        }
    }
}

/// Why the pieces of a range stop being fetched.
#[derive(Clone)]
enum Stop {
    Failed(Failed),
    /// An answer that is not merged (not 200, warnings, histograms): the
    /// caller gets it as the backend sent it.
    Pass(Passed),
}

/// Milliseconds as Prometheus' seconds with three decimals.
fn format_ms(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_directives() {
        assert_eq!(Directive::of(None), Directive::Normal);
        assert_eq!(Directive::of(Some("max-age=0")), Directive::Normal);
        assert_eq!(Directive::of(Some("No-Cache")), Directive::NoRead);
        assert_eq!(Directive::of(Some("no-cache, no-store")), Directive::Bypass);
    }

    #[test]
    fn milliseconds_print_as_seconds() {
        assert_eq!(format_ms(1_700_000_000_123), "1700000000.123");
        assert_eq!(format_ms(7_000), "7.000");
        assert_eq!(format_ms(-1_500), "-1.500");
        assert_eq!(split::parse_ms(&format_ms(-1_500)), Some(-1_500));
    }
}
