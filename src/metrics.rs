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

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~65 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

/// Every metric aetos exports, cheap to clone into the stages that count.
#[derive(Clone)]
pub struct Metrics {
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
        Metrics {
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
        }
    }

    /// The exposition text (OpenMetrics text format, which Prometheus reads).
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub(crate) fn kind(&self, family: &Family<KindLabel, Counter>, kind: &str) {
        family
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
