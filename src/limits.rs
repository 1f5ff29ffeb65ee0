//! Per-project limits: what one project may cost the service.
//!
//! Every authenticated request is counted against the project its token is
//! scoped to (privileged callers against a separate set of limits, none by
//! default), the way Cortex/Mimir limit a tenant:
//!
//! - **admission** ([`Limits::admit`]): at most `max_concurrent_requests`
//!   requests of a project are served at once; more wait in a bounded
//!   queue (`max_queued_requests`, at most `max_queue_time`), and past it
//!   are refused with 429. A token bucket (`requests_per_second`,
//!   `request_burst`) refuses floods with 429 and the `Retry-After` the
//!   bucket needs. The admission is held until the answer has been sent.
//! - **shape** ([`Limits::check_times`], [`Limits::check_scoped`]): the range
//!   of a `query_range` (`max_query_length`), how far back `start`/`time`
//!   may reach (`max_query_lookback`), the query text size
//!   (`max_query_bytes`) and the number of selectors (`max_selectors`) of a
//!   scoped request. Over one of these: 422, as Mimir answers.
//!
//! Defaults come from `[limits]`; `[limits] overrides_file` (YAML, reloaded
//! when it changes and on SIGHUP) overrides them per project and sets the
//! privileged callers' limits. A broken overrides file is refused at start-up;
//! a reload that fails keeps the last good overrides and logs why.
//!
//! Refusals are counted in `/metrics` by reason, never by project id (an
//! OpenStack cloud has thousands); the project is in the log line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits that apply to one caller. Zero (or `None`) means unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitValues {
    pub(crate) max_concurrent_requests: usize,
    pub(crate) max_queued_requests: usize,
    pub(crate) max_queue_time: Duration,
    pub(crate) requests_per_second: f64,
    pub(crate) request_burst: usize,
    pub(crate) max_query_length: Option<Duration>,
    pub(crate) max_query_lookback: Option<Duration>,
    pub(crate) max_query_bytes: usize,
    pub(crate) max_selectors: usize,
}

impl LimitValues {
    /// No limit at all (privileged callers by default).
    pub(crate) fn unlimited() -> LimitValues {
        LimitValues {
            max_concurrent_requests: 0,
            max_queued_requests: 0,
            max_queue_time: Duration::ZERO,
            requests_per_second: 0.0,
            request_burst: 0,
            max_query_length: None,
            max_query_lookback: None,
            max_query_bytes: 0,
            max_selectors: 0,
        }
    }

    /// The bucket size: `request_burst`, or one second's worth (at least 1).
    fn burst(&self) -> f64 {
        if self.request_burst > 0 {
            self.request_burst as f64
        } else {
            self.requests_per_second.ceil().max(1.0)
        }
    }
}

/// One entry of the overrides file: only the limits it names change.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitOverride {
    pub(crate) max_concurrent_requests: Option<usize>,
    pub(crate) max_queued_requests: Option<usize>,
    /// Seconds or a duration (`10s`).
    pub(crate) max_queue_time: Option<DurationText>,
    pub(crate) requests_per_second: Option<f64>,
    pub(crate) request_burst: Option<usize>,
    pub(crate) max_query_length: Option<DurationText>,
    pub(crate) max_query_lookback: Option<DurationText>,
    pub(crate) max_query_bytes: Option<usize>,
    pub(crate) max_selectors: Option<usize>,
}

/// A duration as written in the file (`30d`, `12h`, `90`, `0`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DurationText(pub Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let parsed = match Raw::deserialize(d)? {
            Raw::Number(n) => seconds(n),
            Raw::Text(t) => parse_duration(&t),
        };
        parsed.map(DurationText).map_err(serde::de::Error::custom)
    }
}

fn seconds(n: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(n).map_err(|_| format!("{n} is not a duration"))
}

/// A limit duration: a number of seconds, or a Prometheus-style duration
/// (`30d`, `1h30m`, `1w`, `1y`); `0` is "unlimited" where the limit allows.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<f64>() {
        return seconds(n);
    }
    humantime::parse_duration(t).map_err(|e| format!("{t:?} is not a duration: {e}"))
}

fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl LimitOverride {
    fn apply(&self, base: &LimitValues) -> LimitValues {
        let mut v = base.clone();
        if let Some(x) = self.max_concurrent_requests {
            v.max_concurrent_requests = x;
        }
        if let Some(x) = self.max_queued_requests {
            v.max_queued_requests = x;
        }
        if let Some(x) = &self.max_queue_time {
            v.max_queue_time = x.0;
        }
        if let Some(x) = self.requests_per_second {
            v.requests_per_second = x;
        }
        if let Some(x) = self.request_burst {
            v.request_burst = x;
        }
        if let Some(x) = &self.max_query_length {
            v.max_query_length = non_zero(x.0);
        }
        if let Some(x) = &self.max_query_lookback {
            v.max_query_lookback = non_zero(x.0);
        }
        if let Some(x) = self.max_query_bytes {
            v.max_query_bytes = x;
        }
        if let Some(x) = self.max_selectors {
            v.max_selectors = x;
        }
        v
    }
}

/// The overrides file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Overrides {
    /// Limits of privileged callers (admin, service), counted per project
    /// of their token; unlimited unless set here.
    #[serde(default)]
    pub(crate) privileged: Option<LimitOverride>,
    /// Per project id: overrides of `[limits]` for its scoped callers.
    #[serde(default)]
    pub(crate) projects: HashMap<String, LimitOverride>,
}

impl Overrides {
    /// Reads and checks an overrides file; errors name the file (and the
    /// line and column where the YAML parser says).
    pub(crate) fn load(path: &Path) -> Result<Overrides, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("limits overrides file {}: {e}", path.display()))?;
        if text.trim().is_empty() {
            return Ok(Overrides::default());
        }
        let o: Overrides = yaml_serde::from_str(&text)
            .map_err(|e| format!("limits overrides file {}: {e}", path.display()))?;
        let check = |who: &str, l: &LimitOverride| -> Result<(), String> {
            if l.requests_per_second
                .is_some_and(|r| !(r.is_finite() && r >= 0.0))
            {
                return Err(format!(
                    "limits overrides file {}: {who}: requests_per_second must be a number >= 0",
                    path.display()
                ));
            }
            Ok(())
        };
        if let Some(p) = &o.privileged {
            check("privileged", p)?;
        }
        for (id, l) in &o.projects {
            check(&format!("project {id}"), l)?;
        }
        Ok(o)
    }
}

/// Who a request is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitKey {
    pub(crate) privileged: bool,
    /// The project of the token (`-` for an unscoped token).
    pub(crate) project: String,
}

/// Why a request was refused by a limit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("too many concurrent requests for this project (at most {limit}); retry later")]
    Concurrency { limit: usize },
    #[error("request rate limit of this project exceeded ({rate} per second); retry later")]
    Rate { rate: f64, retry_after: Duration },
    #[error("query range of {got:?} exceeds the limit of {max:?} for this project")]
    QueryLength { got: Duration, max: Duration },
    #[error(
        "the query reaches {got:?} into the past, beyond the limit of {max:?} for this project"
    )]
    Lookback { got: Duration, max: Duration },
    #[error("query text of {got} bytes exceeds the limit of {max} bytes for this project")]
    QueryBytes { got: usize, max: usize },
    #[error(
        "the request has {got} series selectors, more than the limit of {max} for this project"
    )]
    Selectors { got: usize, max: usize },
    #[error("cannot parse the {param} parameter {value:?}, needed to apply this project's limits")]
    BadTime { param: &'static str, value: String },
}

impl Refusal {
    /// The `reason` label of `aetos_limit_refusals_total`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::Concurrency { .. } => "concurrency",
            Refusal::Rate { .. } => "rate",
            Refusal::QueryLength { .. } => "query_length",
            Refusal::Lookback { .. } => "lookback",
            Refusal::QueryBytes { .. } => "query_bytes",
            Refusal::Selectors { .. } => "selectors",
            Refusal::BadTime { .. } => "bad_time",
        }
    }

    /// 429 for admission (with the seconds to wait), 422 for the shape of
    /// the request, 400 for a time that cannot be read.
    pub(crate) fn status(&self) -> (u16, Option<u64>) {
        match self {
            Refusal::Concurrency { .. } => (429, Some(1)),
            Refusal::Rate { retry_after, .. } => {
                (429, Some(retry_after.as_secs_f64().ceil().max(1.0) as u64))
            }
            Refusal::BadTime { .. } => (400, None),
            _ => (422, None),
        }
    }
}

/// Held while a request is served; dropping it lets the next one in.
#[derive(Debug)]
pub(crate) struct Admission {
    _permit: Option<OwnedSemaphorePermit>,
    /// The limits in force when the request was admitted: the later checks
    /// of the same request use these, so a reload never splits a request
    /// between two sets of limits, and the overrides are read once.
    pub(crate) values: LimitValues,
}

/// The per-key state of admission.
struct Gate {
    /// The concurrency limit the semaphore was made for.
    limit: usize,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Most admission refusals held back at once (see [`Limits::hold`]).
pub(crate) const MAX_HELD_REFUSALS: usize = 4096;

/// The limits of every caller, and their admission state.
pub struct Limits {
    /// How long a 429 is held before it is sent (see [`Limits::hold`]).
    refusal_delay: Duration,
    /// Refusals being held now, at most [`MAX_HELD_REFUSALS`].
    held: Arc<Semaphore>,
    scoped: LimitValues,
    overrides_file: Option<PathBuf>,
    overrides: RwLock<Arc<Overrides>>,
    gates: moka::sync::Cache<LimitKey, Arc<Gate>>,
}

impl Limits {
    /// `scoped`: the `[limits]` defaults; `overrides_file` is read now (an
    /// error here stops start-up).
    pub(crate) fn new(
        scoped: LimitValues,
        overrides_file: Option<PathBuf>,
    ) -> Result<Limits, String> {
        let overrides = match &overrides_file {
            Some(p) => Overrides::load(p)?,
            None => Overrides::default(),
        };
        Ok(Limits {
            refusal_delay: Duration::ZERO,
            held: Arc::new(Semaphore::new(MAX_HELD_REFUSALS)),
            scoped,
            overrides_file,
            overrides: RwLock::new(Arc::new(overrides)),
            // One entry per project seen recently; an idle one is forgotten
            // (its bucket is full again by then anyway).
            gates: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        })
    }

    /// Hold each admission refusal (429) for up to `delay` before it is
    /// sent (`[limits] refusal_delay`).
    pub(crate) fn with_refusal_delay(mut self, delay: Duration) -> Limits {
        self.refusal_delay = delay;
        self
    }

    /// Waits before a 429 is sent: `refusal_delay`, at most the answer's
    /// `Retry-After`. A client that floods on many connections
    /// otherwise turns each refusal into its next request at once, and
    /// answering thousands of refusals a second takes the CPU the other
    /// projects need; held, each of its connections costs one refusal per
    /// delay. At most [`MAX_HELD_REFUSALS`] are held at once; past that a
    /// refusal is sent at once.
    pub(crate) async fn hold(&self, r: &Refusal) {
        if r.status().0 != 429 || self.refusal_delay.is_zero() {
            return;
        }
        // Never longer than the Retry-After the answer carries (whole
        // seconds, at least 1).
        let retry_after = Duration::from_secs(r.status().1.unwrap_or(1));
        let wait = self.refusal_delay.min(retry_after);
        if let Ok(_slot) = self.held.clone().try_acquire_owned() {
            tokio::time::sleep(wait).await;
        }
    }

    /// The overrides file, if any (for the reload task).
    pub(crate) fn overrides_file(&self) -> Option<&Path> {
        self.overrides_file.as_deref()
    }

    /// Re-reads the overrides file. On failure the last good overrides stay.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.overrides_file else {
            return Ok(());
        };
        let o = Overrides::load(path)?;
        let mut cur = self
            .overrides
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if **cur != o {
            *cur = Arc::new(o);
            tracing::info!(file = %path.display(), "limits overrides reloaded");
        }
        Ok(())
    }

    /// The limits that apply to `key` now.
    pub(crate) fn values(&self, key: &LimitKey) -> LimitValues {
        let o = self
            .overrides
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if key.privileged {
            let base = LimitValues::unlimited();
            return o
                .privileged
                .as_ref()
                .map_or(base.clone(), |p| p.apply(&base));
        }
        match o.projects.get(&key.project) {
            Some(p) => p.apply(&self.scoped),
            None => self.scoped.clone(),
        }
    }

    fn gate(&self, key: &LimitKey, v: &LimitValues) -> Arc<Gate> {
        let make = || {
            Arc::new(Gate {
                limit: v.max_concurrent_requests,
                slots: Arc::new(Semaphore::new(v.max_concurrent_requests.max(1))),
                waiting: AtomicUsize::new(0),
                bucket: Mutex::new(Bucket {
                    tokens: v.burst(),
                    last: Instant::now(),
                }),
            })
        };
        let gate = self.gates.get_with(key.clone(), make);
        if gate.limit != v.max_concurrent_requests {
            // The limit changed (overrides reloaded): new requests use a
            // gate of the new size; those in flight finish on the old one.
            let fresh = make();
            self.gates.insert(key.clone(), fresh.clone());
            return fresh;
        }
        gate
    }

    /// Admission: the rate, then a concurrency slot (waiting in the
    /// project's bounded queue for at most `max_queue_time`).
    pub(crate) async fn admit(&self, key: &LimitKey) -> Result<Admission, Refusal> {
        let v = self.values(key);
        if v.max_concurrent_requests == 0 && v.requests_per_second <= 0.0 {
            return Ok(Admission {
                _permit: None,
                values: v,
            });
        }
        let gate = self.gate(key, &v);
        if v.requests_per_second > 0.0 {
            take_token(&gate, &v)?;
        }
        if v.max_concurrent_requests == 0 {
            return Ok(Admission {
                _permit: None,
                values: v,
            });
        }
        let refused = Refusal::Concurrency {
            limit: v.max_concurrent_requests,
        };
        if let Ok(p) = gate.slots.clone().try_acquire_owned() {
            return Ok(Admission {
                _permit: Some(p),
                values: v,
            });
        }
        if v.max_queued_requests == 0 || v.max_queue_time.is_zero() {
            return Err(refused);
        }
        if gate.waiting.fetch_add(1, Ordering::AcqRel) >= v.max_queued_requests {
            gate.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(refused);
        }
        let waited =
            tokio::time::timeout(v.max_queue_time, gate.slots.clone().acquire_owned()).await;
        gate.waiting.fetch_sub(1, Ordering::AcqRel);
        match waited {
            Ok(Ok(p)) => Ok(Admission {
                _permit: Some(p),
                values: v,
            }),
            _ => Err(refused),
        }
    }
}

/// The shape limits, checked against the values a request was admitted
/// under (see [`Admission::values`]).
impl LimitValues {
    /// The time limits of a request: `max_query_length` on the range of a
    /// `query_range`, `max_query_lookback` on its `start` (or an instant
    /// query's `time`, or the `start` of series/labels/label values).
    /// Returns a parameter to add when a lookback limit applies to a
    /// request without `start` (which Prometheus would read as "all data").
    pub(crate) fn check_times(
        &self,
        kind: TimeKind,
        get: &dyn Fn(&str) -> Option<String>,
        now: SystemTime,
    ) -> Result<Option<(String, String)>, Refusal> {
        let v = self;
        if v.max_query_length.is_none() && v.max_query_lookback.is_none() {
            return Ok(None);
        }
        let now_s = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let read = |param: &'static str| -> Result<Option<f64>, Refusal> {
            match get(param) {
                None => Ok(None),
                Some(t) if t.is_empty() => Ok(None),
                Some(t) => parse_time(&t)
                    .map(Some)
                    .ok_or(Refusal::BadTime { param, value: t }),
            }
        };
        let lookback = |at: f64| -> Result<(), Refusal> {
            match v.max_query_lookback {
                Some(max) if now_s - at > max.as_secs_f64() => Err(Refusal::Lookback {
                    got: Duration::from_secs_f64((now_s - at).min(1e15)),
                    max,
                }),
                _ => Ok(()),
            }
        };
        match kind {
            TimeKind::None => Ok(None),
            TimeKind::Instant => {
                lookback(read("time")?.unwrap_or(now_s))?;
                Ok(None)
            }
            TimeKind::Range => {
                let (Some(start), Some(end)) = (read("start")?, read("end")?) else {
                    // Prometheus refuses a query_range without both.
                    return Ok(None);
                };
                if let Some(max) = v.max_query_length {
                    if end - start > max.as_secs_f64() {
                        return Err(Refusal::QueryLength {
                            got: Duration::from_secs_f64((end - start).min(1e15)),
                            max,
                        });
                    }
                }
                lookback(start)?;
                Ok(None)
            }
            TimeKind::Series => match (read("start")?, v.max_query_lookback) {
                (Some(start), _) => lookback(start).map(|()| None),
                (None, Some(max)) => {
                    let start = now_s - max.as_secs_f64();
                    Ok(Some(("start".to_owned(), format!("{start:.3}"))))
                }
                (None, None) => Ok(None),
            },
        }
    }

    /// The size limits of a scoped request: the query text before parsing
    /// (`bytes`, computed only when needed: the text is at most `at_most`
    /// bytes, as decoding never lengthens it), and the selectors it held
    /// after scoping.
    pub(crate) fn check_query_bytes(
        &self,
        at_most: usize,
        bytes: impl FnOnce() -> usize,
    ) -> Result<(), Refusal> {
        let max = self.max_query_bytes;
        if max == 0 || at_most <= max {
            return Ok(());
        }
        let got = bytes();
        if got > max {
            return Err(Refusal::QueryBytes { got, max });
        }
        Ok(())
    }

    /// See [`LimitValues::check_query_bytes`].
    pub(crate) fn check_selectors(&self, selectors: usize) -> Result<(), Refusal> {
        let max = self.max_selectors;
        if max > 0 && selectors > max {
            return Err(Refusal::Selectors {
                got: selectors,
                max,
            });
        }
        Ok(())
    }
}

/// Take one token from the bucket, or say how long until there is one.
fn take_token(gate: &Gate, v: &LimitValues) -> Result<(), Refusal> {
    let mut b = gate.bucket.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    let burst = v.burst();
    let refill = now.duration_since(b.last).as_secs_f64() * v.requests_per_second;
    b.tokens = (b.tokens + refill).min(burst);
    b.last = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        return Ok(());
    }
    let wait = (1.0 - b.tokens) / v.requests_per_second;
    Err(Refusal::Rate {
        rate: v.requests_per_second,
        retry_after: Duration::from_secs_f64(wait.min(3600.0)),
    })
}

/// Which time parameters an endpoint reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// `query`, `query_exemplars`... with `time` (instant).
    Instant,
    /// `query_range`: `start`, `end`.
    Range,
    /// `series`, `labels`, `label/<name>/values`: optional `start`.
    Series,
    /// No time parameters that the limits look at.
    None,
}

/// A Prometheus API time: Unix seconds (with a fraction) or RFC 3339, with
/// `Z` or a numeric offset (CloudKitty sends `…T13:20:05+00:00`).
pub(crate) fn parse_time(t: &str) -> Option<f64> {
    if let Ok(n) = t.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    let (base, offset) = match t
        .len()
        .checked_sub(6)
        .and_then(|i| t.get(i..).map(|o| (i, o)))
    {
        Some((i, o)) if matches!(o.as_bytes()[0], b'+' | b'-') && o.as_bytes()[3] == b':' => {
            let h: f64 = o.get(1..3)?.parse().ok()?;
            let m: f64 = o.get(4..6)?.parse().ok()?;
            let sign = if o.starts_with('-') { -1.0 } else { 1.0 };
            (t.get(..i)?, sign * (h * 3600.0 + m * 60.0))
        }
        _ => (t.strip_suffix('Z').or_else(|| t.strip_suffix('z'))?, 0.0),
    };
    let st = humantime::parse_rfc3339_weak(base).ok()?;
    let utc = match st.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    Some(utc - offset)
}

#[cfg(test)]
mod tests;
