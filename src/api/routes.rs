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
    /// An API endpoint, with the path to call on the backend (made only of
    /// known segments and, for label values, a validated label name).
    Api(Api, String),
    /// `/api/v1/label/<name>/values` with a `<name>` that is not a label
    /// name: answered 400 `bad_data` (after authentication, like any API
    /// request), never sent anywhere. Carries the error message.
    InvalidLabelName(String),
}

/// Longest label name accepted, in bytes (Mimir's default
/// `max_label_name_length`); a longer one is refused before it is quoted
/// anywhere.
pub const MAX_LABEL_NAME_LEN: usize = 1024;

/// Whether `s` is a legacy Prometheus label name, `[a-zA-Z_][a-zA-Z0-9_]*`
/// (Prometheus 3's `U__…` escaped form of a UTF-8 name is one too).
pub fn is_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|c| c == b'_' || c.is_ascii_alphabetic())
        && bytes.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

/// The label name of a raw (still percent-encoded) path segment, decoded
/// and validated as Prometheus does (`invalid label name: "…"`). Only a
/// name made of `[a-zA-Z0-9_]` comes out, so it can never change the
/// backend path it is put in (`..`, `%2e%2e`, `\`, `%2f`, `%00` are all refused).
pub fn label_name(raw: &str) -> Result<String, String> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    if decoded.len() > MAX_LABEL_NAME_LEN {
        return Err(format!(
            "invalid label name: longer than {MAX_LABEL_NAME_LEN} bytes"
        ));
    }
    if is_label_name(&decoded) {
        return Ok(decoded.into_owned());
    }
    // Quoted like Go's %q, and short: the name is the caller's text.
    let mut quoted: String = decoded.chars().take(64).collect();
    if quoted.len() < decoded.len() {
        quoted.push('…');
    }
    Err(format!("invalid label name: {quoted:?}"))
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
            let raw = other.strip_prefix("label/")?.strip_suffix("/values")?;
            if raw.contains('/') {
                // Not one segment: no such route (Prometheus answers 404 too).
                return None;
            }
            return Some(match label_name(raw) {
                // Built from known segments and the validated name only.
                Ok(name) => Route::Api(LABEL_VALUES, format!("/api/v1/label/{name}/values")),
                Err(why) => Route::InvalidLabelName(why),
            });
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
        assert_eq!(route("/api/v1/label/a/b/values"), None);
        assert_eq!(route("/api/v1/label/../../values"), None);
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

    /// The backend path a label-values request leads to, or its 400 message.
    fn label_route(path: &str) -> Result<String, String> {
        match route(path) {
            Some(Route::Api(a, p)) if a == LABEL_VALUES => Ok(p),
            Some(Route::InvalidLabelName(why)) => Err(why),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn valid_label_names_are_decoded_and_rebuilt_into_the_backend_path() {
        for (path, backend) in [
            ("/api/v1/label/job/values", "/api/v1/label/job/values"),
            (
                "/api/v1/label/__name__/values",
                "/api/v1/label/__name__/values",
            ),
            (
                "/api/v1/label/%5F%5Fname%5f%5f/values",
                "/api/v1/label/__name__/values",
            ),
            ("/api/v1/label/%6Aob/values", "/api/v1/label/job/values"),
            // Prometheus 3's escaped form of the UTF-8 name `http.status`.
            (
                "/api/v1/label/U__http_2e_status/values",
                "/api/v1/label/U__http_2e_status/values",
            ),
            ("/api/v1/label/_/values", "/api/v1/label/_/values"),
            ("/api/v1/label/A9_z/values", "/api/v1/label/A9_z/values"),
        ] {
            assert_eq!(label_route(path).as_deref(), Ok(backend), "{path}");
        }
        let longest = "a".repeat(MAX_LABEL_NAME_LEN);
        assert_eq!(
            label_route(&format!("/api/v1/label/{longest}/values")),
            Ok(format!("/api/v1/label/{longest}/values"))
        );
    }

    #[test]
    fn path_tricks_in_label_names_are_refused_as_prometheus_does() {
        for (raw, message) in [
            ("..", r#"invalid label name: "..""#),
            (".", r#"invalid label name: ".""#),
            ("%2e%2e", r#"invalid label name: "..""#),
            ("%2E%2e", r#"invalid label name: "..""#),
            ("%2e%2e%2fadmin", r#"invalid label name: "../admin""#),
            ("..%2f..%2fapi", r#"invalid label name: "../../api""#),
            ("%2f", r#"invalid label name: "/""#),
            ("job%2F..", r#"invalid label name: "job/..""#),
            ("\\", r#"invalid label name: "\\""#),
            ("%5c", r#"invalid label name: "\\""#),
            ("%5C..%5C", r#"invalid label name: "\\..\\""#),
            ("job%00", r#"invalid label name: "job\0""#),
            ("%00", r#"invalid label name: "\0""#),
            ("", r#"invalid label name: """#),
            ("%", r#"invalid label name: "%""#),
            ("%zz", r#"invalid label name: "%zz""#),
            ("job%3Fx%3D1", r#"invalid label name: "job?x=1""#),
            ("job%23frag", r#"invalid label name: "job#frag""#),
            ("job;x", r#"invalid label name: "job;x""#),
            ("9job", r#"invalid label name: "9job""#),
            ("job-name", r#"invalid label name: "job-name""#),
            ("%C3%A9t%C3%A9", r#"invalid label name: "été""#),
            ("été", r#"invalid label name: "été""#),
            ("%ff%fe", "invalid label name: \"\u{fffd}\u{fffd}\""),
            ("http.status", r#"invalid label name: "http.status""#),
        ] {
            let path = format!("/api/v1/label/{raw}/values");
            assert_eq!(label_route(&path), Err(message.to_owned()), "{path}");
        }
        // Over-long: refused without quoting it.
        let long = "a".repeat(MAX_LABEL_NAME_LEN + 1);
        let why = label_route(&format!("/api/v1/label/{long}/values")).unwrap_err();
        assert_eq!(why, "invalid label name: longer than 1024 bytes");
        // A long invalid name is quoted only in part.
        let why = label_route(&format!("/api/v1/label/{}/values", "-".repeat(500))).unwrap_err();
        assert!(why.len() < 100 && why.ends_with("…\""), "{why}");
    }

    #[test]
    fn label_names_follow_the_legacy_grammar() {
        assert!(is_label_name("a") && is_label_name("_") && is_label_name("__name__"));
        assert!(!is_label_name("") && !is_label_name("1") && !is_label_name("a-b"));
        assert!(!is_label_name("é") && !is_label_name("a b") && !is_label_name("a\0"));
    }
}
