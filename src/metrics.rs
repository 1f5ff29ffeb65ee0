//! aetos' own `/metrics`, in Prometheus exposition format.
//!
//! Requests by route, method, status and access mode; latency of the whole
//! request and of the backend; token cache and Keystone figures; backend
//! errors by kind; requests in flight. Project ids are never a label
//! (unbounded cardinality).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) route: &'static str,
    pub(crate) method: &'static str,
    pub(crate) status: u16,
    /// privileged | scoped | denied | unauthenticated | none
    pub(crate) access: &'static str,
}

/// Label values are the route table's own names: nothing is allocated
/// per request to count it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabel {
    pub(crate) route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabel {
    pub(crate) kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub(crate) reason: String,
}

/// How the results cache answered: hit, miss, partial, passed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub(crate) outcome: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~65 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// Every metric aetos exports, cheap to clone into the stages that count.
#[derive(Clone)]
pub struct Metrics {
    /// Tells this set's series from another's in the per-thread handles.
    id: u64,
    registry: Arc<Registry>,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) request_duration: Family<RouteLabel, Histogram>,
    pub(crate) backend_duration: Family<RouteLabel, Histogram>,
    pub(crate) backend_errors: Family<KindLabel, Counter>,
    pub(crate) in_flight: Gauge,
    pub(crate) token_cache_hits: Counter,
    pub(crate) token_cache_misses: Counter,
    pub(crate) token_cache_evictions: Counter,
    pub(crate) token_negative_hits: Counter,
    pub(crate) token_shared_hits: Counter,
    pub(crate) keystone_validation_duration: Histogram,
    pub(crate) keystone_errors: Family<KindLabel, Counter>,
    /// Requests refused by `[limits]`, by reason (never by project).
    pub(crate) limit_refusals: Family<ReasonLabel, Counter>,
    /// Answers of the results cache by outcome.
    pub(crate) results_cache_answers: Family<OutcomeLabel, Counter>,
    /// Bytes of answers sent from the results cache (hits and partial hits).
    pub(crate) results_cache_answered_bytes: Counter,
    /// Bytes of entries written to the results cache.
    pub(crate) results_cache_stored_bytes: Counter,
    /// Entries not stored because they exceed the store's item limit.
    pub(crate) results_cache_too_large: Counter,
    /// Pieces answered by an identical request's lookup or fetch in flight.
    pub(crate) results_cache_coalesced: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration = Family::<RouteLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let backend_duration = Family::<RouteLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let backend_errors = Family::<KindLabel, Counter>::default();
        let in_flight = Gauge::default();
        let token_cache_hits = Counter::default();
        let token_cache_misses = Counter::default();
        let token_cache_evictions = Counter::default();
        let token_negative_hits = Counter::default();
        let token_shared_hits = Counter::default();
        let keystone_validation_duration = latency_histogram();
        let keystone_errors = Family::<KindLabel, Counter>::default();
        let limit_refusals = Family::<ReasonLabel, Counter>::default();
        let results_cache_answers = Family::<OutcomeLabel, Counter>::default();
        let results_cache_answered_bytes = Counter::default();
        let results_cache_stored_bytes = Counter::default();
        let results_cache_too_large = Counter::default();
        let results_cache_coalesced = Counter::default();

        let mut r = Registry::with_prefix("aetos");
        r.register(
            "requests",
            "API requests by route, method, status and access mode",
            requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Whole-request latency by route",
            request_duration.clone(),
        );
        r.register(
            "backend_request_duration_seconds",
            "Backend latency by route (until response headers)",
            backend_duration.clone(),
        );
        r.register(
            "backend_errors",
            "Backend failures by kind (unreachable, timeout, credentials, other)",
            backend_errors.clone(),
        );
        r.register(
            "requests_in_flight",
            "Requests being served now",
            in_flight.clone(),
        );
        r.register(
            "token_cache_hits",
            "Token validations answered from the cache",
            token_cache_hits.clone(),
        );
        r.register(
            "token_cache_misses",
            "Token validations that went to Keystone",
            token_cache_misses.clone(),
        );
        r.register(
            "token_cache_evictions",
            "Cached tokens evicted (expired, replaced or over capacity)",
            token_cache_evictions.clone(),
        );
        r.register(
            "token_shared_cache_hits",
            "Token validations answered from memcached (shared with other replicas)",
            token_shared_hits.clone(),
        );
        r.register(
            "token_negative_cache_hits",
            "Requests refused from the invalid-token cache",
            token_negative_hits.clone(),
        );
        r.register(
            "limit_refusals",
            "Requests refused by [limits], by reason (concurrency, rate, query_length, lookback, \
             query_bytes, selectors, bad_time)",
            limit_refusals.clone(),
        );
        r.register(
            "keystone_validation_duration_seconds",
            "Latency of Keystone token validations",
            keystone_validation_duration.clone(),
        );
        r.register(
            "keystone_errors",
            "Keystone failures by kind (invalid, unavailable)",
            keystone_errors.clone(),
        );
        r.register(
            "results_cache_answers",
            "query_range and query answers of the results cache by outcome (hit, miss, partial; \
             passed: a backend answer sent as it came, not merged)",
            results_cache_answers.clone(),
        );
        r.register(
            "results_cache_answered_bytes",
            "Bytes of answers served from the results cache (hits and partial hits)",
            results_cache_answered_bytes.clone(),
        );
        r.register(
            "results_cache_stored_bytes",
            "Bytes of entries written to the results cache",
            results_cache_stored_bytes.clone(),
        );
        r.register(
            "results_cache_too_large",
            "Results not cached because they exceed the store's item size",
            results_cache_too_large.clone(),
        );
        r.register(
            "results_cache_coalesced",
            "Pieces (and instant queries) of the results cache answered by an identical \
             request's lookup or backend request in flight, not asked again",
            results_cache_coalesced.clone(),
        );
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Metrics {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            registry: Arc::new(r),
            requests,
            request_duration,
            backend_duration,
            backend_errors,
            in_flight,
            token_cache_hits,
            token_cache_misses,
            token_cache_evictions,
            token_negative_hits,
            token_shared_hits,
            keystone_validation_duration,
            keystone_errors,
            limit_refusals,
            results_cache_answers,
            results_cache_answered_bytes,
            results_cache_stored_bytes,
            results_cache_too_large,
            results_cache_coalesced,
        }
    }

    /// The exposition text (OpenMetrics text format, which Prometheus reads).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one API request.
    pub(crate) fn count_request(&self, labels: RequestLabels) {
        REQUESTS.with_borrow_mut(|h| {
            let make = |l: &RequestLabels| self.requests.get_or_create(l).clone();
            h.with(self.id, labels, make, |c| {
                c.inc();
            });
        });
    }

    /// Observes a whole request's latency on its route.
    pub(crate) fn observe_request(&self, route: &'static str, seconds: f64) {
        self.observe(REQUEST_DURATION, route, seconds);
    }

    /// Observes the backend's latency (until its answer's head) on a route.
    pub(crate) fn observe_backend(&self, route: &'static str, seconds: f64) {
        self.observe(BACKEND_DURATION, route, seconds);
    }

    fn observe(&self, which: u8, route: &'static str, seconds: f64) {
        let family = match which {
            REQUEST_DURATION => &self.request_duration,
            _ => &self.backend_duration,
        };
        DURATIONS.with_borrow_mut(|h| {
            h.with(
                self.id,
                (which, route),
                |_| family.get_or_create(&RouteLabel { route }).clone(),
                |m| m.observe(seconds),
            );
        });
    }

    pub(crate) fn kind(&self, family: &Family<KindLabel, Counter>, kind: &str) {
        family
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }
}

const REQUEST_DURATION: u8 = 0;
const BACKEND_DURATION: u8 = 1;

thread_local! {
    static REQUESTS: std::cell::RefCell<Handles<RequestLabels, Counter>> =
        const { std::cell::RefCell::new(Handles(Vec::new())) };
    static DURATIONS: std::cell::RefCell<Handles<(u8, &'static str), Histogram>> =
        const { std::cell::RefCell::new(Handles(Vec::new())) };
}

/// How many label sets of one kind a thread keeps the series of.
const HANDLES_PER_THREAD: usize = 32;

/// The series of the label sets a thread counted last, by the id of their
/// [`Metrics`] and their label values. Every request counts three series;
/// a family lookup (a read lock and a SipHash of the labels) costs more
/// than a scan of the few sets a thread sees, and a series handle is the
/// family's own (an `Arc`), so what is counted here is what is exported.
struct Handles<K, M>(Vec<(u64, K, M)>);

impl<K: PartialEq, M> Handles<K, M> {
    /// Applies `f` to the series of `key`, made by `make` when the thread
    /// has not kept it; the oldest kept one goes when there are too many.
    fn with(&mut self, id: u64, key: K, make: impl FnOnce(&K) -> M, f: impl FnOnce(&M)) {
        let kept = &mut self.0;
        let i = match kept.iter().rposition(|(i, k, _)| *i == id && *k == key) {
            Some(i) => i,
            None => {
                if kept.len() == HANDLES_PER_THREAD {
                    kept.remove(0);
                }
                let m = make(&key);
                kept.push((id, key, m));
                kept.len() - 1
            }
        };
        f(&kept[i].2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series_value(m: &Metrics, starts: &str) -> Vec<String> {
        m.encode()
            .lines()
            .filter(|l| l.starts_with(starts))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn kept_series_count_into_their_own_metrics_past_the_thread_limit() {
        let (a, b) = (Metrics::new(), Metrics::new());
        let statuses: Vec<u16> = (0..HANDLES_PER_THREAD as u16 * 2)
            .map(|i| 200 + i)
            .collect();
        for round in 0..3 {
            for &status in &statuses {
                let labels = RequestLabels {
                    route: "query",
                    method: "GET",
                    status,
                    access: "scoped",
                };
                a.count_request(labels.clone());
                if round == 0 {
                    b.count_request(labels);
                }
            }
            a.observe_request("query", 0.001);
            a.observe_backend("query", 0.002);
        }
        for status in &statuses {
            let line = format!(
                "aetos_requests_total{{route=\"query\",method=\"GET\",status=\"{status}\",access=\"scoped\"}}"
            );
            assert_eq!(series_value(&a, &line), [format!("{line} 3")]);
            assert_eq!(series_value(&b, &line), [format!("{line} 1")]);
        }
        let count =
            |m: &Metrics, name: &str| series_value(m, &format!("{name}_count{{route=\"query\"}}"));
        assert_eq!(
            count(&a, "aetos_request_duration_seconds"),
            ["aetos_request_duration_seconds_count{route=\"query\"} 3"]
        );
        assert_eq!(
            count(&a, "aetos_backend_request_duration_seconds"),
            ["aetos_backend_request_duration_seconds_count{route=\"query\"} 3"]
        );
        assert!(count(&b, "aetos_request_duration_seconds").is_empty());
    }

    #[test]
    fn counters_appear_in_the_exposition_without_project_labels() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                route: "query",
                method: "GET",
                status: 200,
                access: "scoped",
            })
            .inc();
        m.token_cache_hits.inc();
        m.kind(&m.backend_errors, "timeout");
        let text = m.encode();
        assert!(text.contains("aetos_requests_total{route=\"query\",method=\"GET\",status=\"200\",access=\"scoped\"} 1"), "{text}");
        assert!(text.contains("aetos_token_cache_hits_total 1"));
        assert!(text.contains("aetos_backend_errors_total{kind=\"timeout\"} 1"));
        assert!(!text.contains("project"));
    }

    /// Every series name aetos can export, from the `# TYPE` lines of the
    /// exposition: a counter `x` is exported as `x_total`, a histogram as
    /// `x_bucket`, `x_sum` and `x_count`. A family with labels is listed
    /// once it has a child, so each gets one here (a new family needs a
    /// line too).
    fn exported_names() -> std::collections::BTreeSet<String> {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                route: "query",
                method: "GET",
                status: 200,
                access: "scoped",
            })
            .inc();
        let route = RouteLabel { route: "query" };
        m.request_duration.get_or_create(&route).observe(0.0);
        m.backend_duration.get_or_create(&route).observe(0.0);
        m.backend_errors
            .get_or_create(&KindLabel {
                kind: "timeout".into(),
            })
            .inc();
        m.keystone_errors
            .get_or_create(&KindLabel {
                kind: "unavailable".into(),
            })
            .inc();
        m.limit_refusals
            .get_or_create(&ReasonLabel {
                reason: "rate".into(),
            })
            .inc();
        let mut names = std::collections::BTreeSet::new();
        for line in m.encode().lines() {
            let mut words = line.split(' ');
            if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
                (words.next(), words.next(), words.next(), words.next())
            {
                match kind {
                    "counter" => {
                        names.insert(format!("{name}_total"));
                    }
                    "histogram" => {
                        for suffix in ["_bucket", "_sum", "_count"] {
                            names.insert(format!("{name}{suffix}"));
                        }
                    }
                    _ => {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
        names
    }

    /// The `aetos_…` metric names used by a rules file or dashboard:
    /// identifiers starting `aetos_`, recording-rule names (which contain
    /// `:`) left out.
    fn used_names(text: &str) -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| w.starts_with("aetos_") && !w.contains(':'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn exported_names_cover_every_family() {
        let names = exported_names();
        for name in [
            "aetos_requests_total",
            "aetos_request_duration_seconds_bucket",
            "aetos_backend_errors_total",
            "aetos_requests_in_flight",
            "aetos_limit_refusals_total",
            "aetos_keystone_validation_duration_seconds_count",
        ] {
            assert!(names.contains(name), "{name} not in {names:?}");
        }
    }

    /// The shipped rules and dashboard (etc/prometheus, etc/grafana) only
    /// use metrics aetos exports: a renamed metric fails here, not
    /// silently in an operator's Prometheus.
    #[test]
    fn shipped_rules_and_dashboard_use_only_exported_metrics() {
        let exported = exported_names();
        for (file, text) in [
            (
                "etc/prometheus/aetos-rules.yaml",
                include_str!("../etc/prometheus/aetos-rules.yaml"),
            ),
            (
                "etc/prometheus/aetos-rules.test.yaml",
                include_str!("../etc/prometheus/aetos-rules.test.yaml"),
            ),
            (
                "etc/grafana/aetos-dashboard.json",
                include_str!("../etc/grafana/aetos-dashboard.json"),
            ),
        ] {
            let used = used_names(text);
            assert!(!used.is_empty(), "{file} uses no aetos metric");
            let unknown: Vec<_> = used.difference(&exported).collect();
            assert!(
                unknown.is_empty(),
                "{file} uses metrics aetos does not export: {unknown:?} (exported: {exported:?})"
            );
        }
    }

    #[test]
    fn used_names_skip_recording_rules_and_see_metrics() {
        let used = used_names(
            "job:aetos_requests:rate5m / sum(rate(aetos_requests_total{job=~\"$job\"}[5m]))",
        );
        assert_eq!(
            used.into_iter().collect::<Vec<_>>(),
            vec!["aetos_requests_total"]
        );
        assert!(!exported_names().contains("aetos_request_total"));
    }
}
