//! The route table: every Prometheus endpoint aetos answers, as data.
//!
//! One row says which path it is, which methods it takes, which policy rule
//! guards it and how a scoped caller's request is rewritten. Handlers do
//! not decide any of this; they read the row.

use actix_web::http::Method;

/// How the parameters of a scoped caller's request are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoping {
    /// Every `query` parameter is PromQL: enforce the project matcher.
    Query,
    /// Every `match[]` is a series selector; with none, add
    /// `{<label>="<project>"}`.
    Match,
    /// Like `Match`, but a request without `match[]` is refused rather than
    /// widened to "everything of my project" (delete_series).
    MatchRequired,
    /// The answer is filtered to the caller's project: rules and alerts go
    /// out unchanged and their JSON comes back filtered; metadata and
    /// targets/metadata are built from the project's targets (api::filter).
    FilterResponse,
    /// No tenant data in the request or answer; only privileged callers or
    /// everyone allowed by the base rule (snapshot, buildinfo).
    None,
}

/// How the policy decides between privileged and scoped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `<rule>:all_projects` → privileged, else `<rule>` → scoped, else 403
    /// (upstream's query/series/labels/label).
    ScopedOrAll,
    /// `<rule>` → privileged, else 403 (targets, status, snapshot, …).
    Only,
    /// `<rule>` must pass; then `<rule>:all_projects` → privileged, else
    /// scoped (delete_series: a project admin allowed to delete by an
    /// operator's override may delete only its own series).
    RequiredThenScope,
}

/// One Prometheus API endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// Name used in logs and metrics.
    pub name: &'static str,
    /// Base policy rule name.
    pub rule: &'static str,
    pub guard: Guard,
    pub scoping: Scoping,
    pub methods: &'static [&'static str],
    /// Whether a form-encoded body may carry parameters.
    pub form_body: bool,
    /// Status a successful answer must have to be forwarded as is; the
    /// admin endpoints answer 204 where Prometheus says 204.
    pub admin: bool,
}

const GET: &[&str] = &["GET"];
const GET_POST: &[&str] = &["GET", "POST"];
const POST_PUT: &[&str] = &["POST", "PUT"];

macro_rules! api {
    ($name:expr, $rule:expr, $guard:ident, $scoping:ident, $methods:expr, $form:expr, $admin:expr) => {
        Api {
            name: $name,
            rule: $rule,
            guard: Guard::$guard,
            scoping: Scoping::$scoping,
            methods: $methods,
            form_body: $form,
            admin: $admin,
        }
    };
}

pub const QUERY: Api = api!(
    "query",
    "telemetry:query",
    ScopedOrAll,
    Query,
    GET_POST,
    true,
    false
);
pub const QUERY_RANGE: Api = api!(
    "query_range",
    "telemetry:query_range",
    ScopedOrAll,
    Query,
    GET_POST,
    true,
    false
);
pub const QUERY_EXEMPLARS: Api = api!(
    "query_exemplars",
    "telemetry:query_exemplars",
    ScopedOrAll,
    Query,
    GET_POST,
    true,
    false
);
pub const SERIES: Api = api!(
    "series",
    "telemetry:series",
    ScopedOrAll,
    Match,
    GET_POST,
    true,
    false
);
pub const LABELS: Api = api!(
    "labels",
    "telemetry:labels",
    ScopedOrAll,
    Match,
    GET_POST,
    true,
    false
);
pub const LABEL_VALUES: Api = api!(
    "label_values",
    "telemetry:label",
    ScopedOrAll,
    Match,
    GET,
    false,
    false
);
pub const FEDERATE: Api = api!(
    "federate",
    "telemetry:federate",
    ScopedOrAll,
    Match,
    GET,
    false,
    false
);
pub const METADATA: Api = api!(
    "metadata",
    "telemetry:metadata",
    ScopedOrAll,
    FilterResponse,
    GET,
    false,
    false
);
pub const RULES: Api = api!(
    "rules",
    "telemetry:rules",
    ScopedOrAll,
    FilterResponse,
    GET,
    false,
    false
);
pub const ALERTS: Api = api!(
    "alerts",
    "telemetry:alerts",
    ScopedOrAll,
    FilterResponse,
    GET,
    false,
    false
);
pub const TARGETS: Api = api!(
    "targets",
    "telemetry:targets",
    Only,
    None,
    GET,
    false,
    false
);
pub const TARGETS_METADATA: Api = api!(
    "targets_metadata",
    "telemetry:targets_metadata",
    ScopedOrAll,
    FilterResponse,
    GET,
    false,
    false
);
pub const RUNTIMEINFO: Api = api!(
    "status_runtimeinfo",
    "telemetry:status",
    Only,
    None,
    GET,
    false,
    false
);
pub const BUILDINFO: Api = api!(
    "status_buildinfo",
    "telemetry:status_buildinfo",
    Only,
    None,
    GET,
    false,
    false
);
pub const FLAGS: Api = api!(
    "status_flags",
    "telemetry:status_flags",
    Only,
    None,
    GET,
    false,
    false
);
pub const CONFIG: Api = api!(
    "status_config",
    "telemetry:status_config",
    Only,
    None,
    GET,
    false,
    false
);
pub const TSDB: Api = api!(
    "status_tsdb",
    "telemetry:status_tsdb",
    Only,
    None,
    GET,
    false,
    false
);
pub const DELETE_SERIES: Api = api!(
    "admin_delete_series",
    "telemetry:admin_delete_metrics",
    RequiredThenScope,
    MatchRequired,
    POST_PUT,
    false,
    true
);
pub const CLEAN_TOMBSTONES: Api = api!(
    "admin_clean_tombstones",
    "telemetry:admin_clean_tombstones",
    Only,
    None,
    POST_PUT,
    false,
    true
);
pub const SNAPSHOT: Api = api!(
    "admin_snapshot",
    "telemetry:admin_snapshot",
    Only,
    None,
    POST_PUT,
    false,
    true
);

/// Where a path (with any root prefix already removed) leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the versions document.
    Versions,
    /// `/healthcheck`.
    Healthcheck,
    /// `/metrics`: aetos' own metrics (policy `telemetry:metrics`).
    Metrics,
    /// An API endpoint, with the path to call on the backend.
    Api(Api, String),
}

/// Resolves a path below the root (`/api/v1/query`, `/healthcheck`, …).
pub fn route(path: &str) -> Option<Route> {
    if path.is_empty() || path == "/" {
        return Some(Route::Versions);
    }
    if path == "/healthcheck" || path == "/healthcheck/" {
        return Some(Route::Healthcheck);
    }
    if path == "/metrics" {
        return Some(Route::Metrics);
    }
    if path == "/federate" {
        return Some(Route::Api(FEDERATE, path.to_owned()));
    }
    let rest = path.strip_prefix("/api/v1/")?;
    let api = match rest {
        "query" => QUERY,
        "query_range" => QUERY_RANGE,
        "query_exemplars" => QUERY_EXEMPLARS,
        "series" => SERIES,
        "labels" => LABELS,
        "metadata" => METADATA,
        "rules" => RULES,
        "alerts" => ALERTS,
        "targets" => TARGETS,
        "targets/metadata" => TARGETS_METADATA,
        "status/runtimeinfo" => RUNTIMEINFO,
        "status/buildinfo" => BUILDINFO,
        "status/flags" => FLAGS,
        "status/config" => CONFIG,
        "status/tsdb" => TSDB,
        "admin/tsdb/delete_series" => DELETE_SERIES,
        "admin/tsdb/clean_tombstones" => CLEAN_TOMBSTONES,
        "admin/tsdb/snapshot" => SNAPSHOT,
        other => {
            let name = other.strip_prefix("label/")?.strip_suffix("/values")?;
            if name.is_empty() || name.contains('/') {
                return None;
            }
            LABEL_VALUES
        }
    };
    Some(Route::Api(api, path.to_owned()))
}

/// Removes the configured root (`/prometheus`) from a request path, so that
/// both `/api/v1/query` and `/prometheus/api/v1/query` reach the same route.
pub fn strip_root<'a>(path: &'a str, root: &str) -> &'a str {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return path;
    }
    match path.strip_prefix(root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    }
}

impl Api {
    /// Whether `method` is one this endpoint takes.
    pub fn allows(&self, method: &Method) -> bool {
        self.methods.contains(&method.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_root_forms_reach_the_same_route() {
        for p in ["/api/v1/query", "/prometheus/api/v1/query"] {
            let r = route(strip_root(p, "/prometheus")).unwrap();
            assert_eq!(r, Route::Api(QUERY, "/api/v1/query".into()));
        }
        assert_eq!(
            route(strip_root("/prometheus", "/prometheus")),
            Some(Route::Versions)
        );
        assert_eq!(
            route(strip_root("/prometheus/", "/prometheus/")),
            Some(Route::Versions)
        );
        // A path that merely starts with the root's letters is not below it.
        assert_eq!(
            strip_root("/prometheusx/api", "/prometheus"),
            "/prometheusx/api"
        );
    }

    #[test]
    fn label_values_takes_exactly_one_name_segment() {
        assert!(
            matches!(route("/api/v1/label/__name__/values"), Some(Route::Api(a, _)) if a == LABEL_VALUES)
        );
        assert_eq!(route("/api/v1/label//values"), None);
        assert_eq!(route("/api/v1/label/a/b/values"), None);
        assert_eq!(route("/api/v1/status/nope"), None);
        assert_eq!(route("/api/v2/query"), None);
    }

    #[test]
    fn admin_endpoints_take_post_and_put_only() {
        assert!(DELETE_SERIES.allows(&Method::POST));
        assert!(DELETE_SERIES.allows(&Method::PUT));
        assert!(!DELETE_SERIES.allows(&Method::GET));
        assert!(!TARGETS.allows(&Method::POST));
        assert!(QUERY.allows(&Method::POST));
    }
}
