//! The route table: every Prometheus endpoint aetos answers, as data.
//!
//! One row says which path it is, which methods it takes, which policy rule
//! guards it and how a scoped caller's request is rewritten. Handlers do
//! not decide any of this; they read the row. [`route`] finds a path's row
//! by the path written in the row itself.

use actix_web::http::Method;

use crate::authz::Guard;
use crate::limits::TimeKind;
use crate::request::{AmEndpoint, Filter, Scoping};

/// Where an endpoint reads its parameters from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsIn {
    /// The URL only: a form body is refused for a scoped endpoint.
    Url,
    /// The URL or a form-encoded body (the query APIs' POST form).
    UrlOrForm,
}

/// One Prometheus API endpoint: one row of [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// Name used in logs and metrics (the `route` label).
    pub name: &'static str,
    /// The path below the root, as sent to the backend. `{name}` stands for
    /// one path segment that must be a label name (label values).
    pub path: &'static str,
    /// Base policy rule name.
    pub rule: &'static str,
    pub guard: Guard,
    pub scoping: Scoping,
    pub methods: &'static [&'static str],
    pub params: ParamsIn,
    /// Which time parameters `[limits]` look at.
    pub times: TimeKind,
}

const GET: &[&str] = &["GET"];
const GET_POST: &[&str] = &["GET", "POST"];
const POST_PUT: &[&str] = &["POST", "PUT"];
const GET_DELETE: &[&str] = &["GET", "DELETE"];

/// The `query` row, named for the handlers and tests that need it.
pub const QUERY: Api = Api {
    name: "query",
    path: "/api/v1/query",
    rule: "telemetry:query",
    guard: Guard::ScopedOrAll,
    scoping: Scoping::Query,
    methods: GET_POST,
    params: ParamsIn::UrlOrForm,
    times: TimeKind::Instant,
};
/// The `label_values` row, named for the handlers and tests that need it.
pub const LABEL_VALUES: Api = Api {
    name: "label_values",
    path: "/api/v1/label/{name}/values",
    rule: "telemetry:label",
    guard: Guard::ScopedOrAll,
    scoping: Scoping::Match,
    methods: GET,
    params: ParamsIn::Url,
    times: TimeKind::Series,
};
/// The `targets` row, named for the handlers and tests that need it.
pub const TARGETS: Api = Api {
    name: "targets",
    path: "/api/v1/targets",
    rule: "telemetry:targets",
    guard: Guard::Only,
    scoping: Scoping::None,
    methods: GET,
    params: ParamsIn::Url,
    times: TimeKind::None,
};
/// The `admin_delete_series` row, named for the handlers and tests that need it.
pub const DELETE_SERIES: Api = Api {
    name: "admin_delete_series",
    path: "/api/v1/admin/tsdb/delete_series",
    rule: "telemetry:admin_delete_metrics",
    guard: Guard::RequiredThenScope,
    scoping: Scoping::MatchRequired,
    methods: POST_PUT,
    params: ParamsIn::Url,
    times: TimeKind::None,
};

/// Every API endpoint, in the order Prometheus documents them.
pub const ROUTES: &[Api] = &[
    QUERY,
    Api {
        name: "query_range",
        path: "/api/v1/query_range",
        rule: "telemetry:query_range",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::Query,
        methods: GET_POST,
        params: ParamsIn::UrlOrForm,
        times: TimeKind::Range,
    },
    Api {
        name: "query_exemplars",
        path: "/api/v1/query_exemplars",
        rule: "telemetry:query_exemplars",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::Query,
        methods: GET_POST,
        params: ParamsIn::UrlOrForm,
        times: TimeKind::Series,
    },
    Api {
        name: "series",
        path: "/api/v1/series",
        rule: "telemetry:series",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::Match,
        methods: GET_POST,
        params: ParamsIn::UrlOrForm,
        times: TimeKind::Series,
    },
    Api {
        name: "labels",
        path: "/api/v1/labels",
        rule: "telemetry:labels",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::Match,
        methods: GET_POST,
        params: ParamsIn::UrlOrForm,
        times: TimeKind::Series,
    },
    LABEL_VALUES,
    Api {
        name: "federate",
        path: "/federate",
        rule: "telemetry:federate",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::Match,
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "metadata",
        path: "/api/v1/metadata",
        rule: "telemetry:metadata",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::FilterResponse(Filter::Metadata),
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "rules",
        path: "/api/v1/rules",
        rule: "telemetry:rules",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::FilterResponse(Filter::Rules),
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "alerts",
        path: "/api/v1/alerts",
        rule: "telemetry:alerts",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::FilterResponse(Filter::Alerts),
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    TARGETS,
    Api {
        name: "targets_metadata",
        path: "/api/v1/targets/metadata",
        rule: "telemetry:targets_metadata",
        guard: Guard::ScopedOrAll,
        scoping: Scoping::FilterResponse(Filter::TargetsMetadata),
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "status_runtimeinfo",
        path: "/api/v1/status/runtimeinfo",
        rule: "telemetry:status",
        guard: Guard::Only,
        scoping: Scoping::None,
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "status_buildinfo",
        path: "/api/v1/status/buildinfo",
        rule: "telemetry:status_buildinfo",
        guard: Guard::Only,
        scoping: Scoping::None,
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "status_flags",
        path: "/api/v1/status/flags",
        rule: "telemetry:status_flags",
        guard: Guard::Only,
        scoping: Scoping::None,
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "status_config",
        path: "/api/v1/status/config",
        rule: "telemetry:status_config",
        guard: Guard::Only,
        scoping: Scoping::None,
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "status_tsdb",
        path: "/api/v1/status/tsdb",
        rule: "telemetry:status_tsdb",
        guard: Guard::Only,
        scoping: Scoping::None,
        methods: GET,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    DELETE_SERIES,
    Api {
        name: "admin_clean_tombstones",
        path: "/api/v1/admin/tsdb/clean_tombstones",
        rule: "telemetry:admin_clean_tombstones",
        guard: Guard::Only,
        scoping: Scoping::None,
        methods: POST_PUT,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
    Api {
        name: "admin_snapshot",
        path: "/api/v1/admin/tsdb/snapshot",
        rule: "telemetry:admin_snapshot",
        guard: Guard::Only,
        scoping: Scoping::None,
        methods: POST_PUT,
        params: ParamsIn::Url,
        times: TimeKind::None,
    },
];

/// Where the Alertmanager API is served: `/alertmanager/api/v2/…` (and
/// the same below `[api] root_path`), so that a client given
/// `http://aetos/alertmanager` as its Alertmanager URL (amtool, Grafana)
/// finds `api/v2/…` below it.
pub const AM_ROOT: &str = "/alertmanager";

/// An Alertmanager row: `path` is the path on Alertmanager, below its base
/// URL; callers reach it below [`AM_ROOT`].
const fn am(
    name: &'static str,
    path: &'static str,
    rule: &'static str,
    guard: Guard,
    endpoint: AmEndpoint,
    methods: &'static [&'static str],
) -> Api {
    Api {
        name,
        path,
        rule,
        guard,
        scoping: Scoping::Alertmanager(endpoint),
        methods,
        params: ParamsIn::Url,
        times: TimeKind::None,
    }
}

/// The `silences` row (GET; POST is [`AM_SILENCES_WRITE`]'s rule).
pub const AM_SILENCES: Api = am(
    "am_silences",
    "/api/v2/silences",
    "telemetry:alertmanager:silences",
    Guard::ScopedOrAll,
    AmEndpoint::Silences,
    GET_POST,
);
/// `silence/{id}` (GET; DELETE is [`AM_SILENCES_WRITE`]'s rule). `{id}` is
/// one segment that must be a silence id (a UUID).
pub const AM_SILENCE: Api = am(
    "am_silence",
    "/api/v2/silence/{id}",
    "telemetry:alertmanager:silences",
    Guard::ScopedOrAll,
    AmEndpoint::Silence,
    GET_DELETE,
);
/// The rule of the methods that change silences (`POST silences`,
/// `DELETE silence/{id}`).
pub const AM_SILENCES_WRITE: &str = "telemetry:alertmanager:silences:write";

/// The Alertmanager API v2 endpoints, below [`AM_ROOT`].
pub const AM_ROUTES: &[Api] = &[
    am(
        "am_alerts",
        "/api/v2/alerts",
        "telemetry:alertmanager:alerts",
        Guard::ScopedOrAll,
        AmEndpoint::Alerts,
        GET,
    ),
    am(
        "am_alert_groups",
        "/api/v2/alerts/groups",
        "telemetry:alertmanager:alerts",
        Guard::ScopedOrAll,
        AmEndpoint::AlertGroups,
        GET,
    ),
    AM_SILENCES,
    AM_SILENCE,
    am(
        "am_status",
        "/api/v2/status",
        "telemetry:alertmanager:status",
        Guard::Only,
        AmEndpoint::Privileged,
        GET,
    ),
    am(
        "am_receivers",
        "/api/v2/receivers",
        "telemetry:alertmanager:receivers",
        Guard::Only,
        AmEndpoint::Privileged,
        GET,
    ),
];

/// Whether `s` is a silence id as Alertmanager writes them (a UUID:
/// hexadecimal digits and dashes); nothing else is put in a backend path.
pub fn is_silence_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The Alertmanager route of `rest`, the path below [`AM_ROOT`].
fn am_route(rest: &str) -> Option<Route> {
    if let Some(id) = rest.strip_prefix("/api/v2/silence/") {
        // Anything but a UUID: no such route (Alertmanager answers 422).
        return is_silence_id(id).then(|| Route::Api(AM_SILENCE, format!("/api/v2/silence/{id}")));
    }
    AM_ROUTES
        .iter()
        .filter(|a| !a.path.contains('{'))
        .find(|a| a.path == rest)
        .map(|a| Route::Api(*a, rest.to_owned()))
}

/// Where a path (with any root prefix already removed) leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the versions document.
    Versions,
    /// `/healthcheck`.
    Healthcheck,
    /// `/metrics`: aetos' own metrics (policy `telemetry:metrics`).
    Metrics,
    /// `/-/healthy`: the process runs (unauthenticated, as Prometheus').
    Healthy,
    /// `/-/ready`: a backend is ready (unauthenticated, as Prometheus').
    Ready,
    /// An API endpoint, with the path to call on the backend (made only of
    /// known segments and, for label values, a validated label name).
    Api(Api, String),
    /// `/api/v1/label/<name>/values` with a `<name>` that is not a label
    /// name: answered 400 `bad_data` (after authentication, like any API
    /// request, as the row says), never sent anywhere. Carries the error
    /// message.
    InvalidLabelName(Api, String),
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
    match path {
        "/metrics" => return Some(Route::Metrics),
        "/-/healthy" => return Some(Route::Healthy),
        "/-/ready" => return Some(Route::Ready),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix(AM_ROOT) {
        if rest.starts_with('/') {
            return am_route(rest);
        }
    }
    ROUTES.iter().find_map(|api| api.resolve(path))
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
    /// This row's route for `path`, if the path is this row's.
    fn resolve(&self, path: &str) -> Option<Route> {
        // Most rows have no `{name}`: one byte search tells them (the row's
        // path is the table's, so `{` only ever starts `{name}`).
        let Some(at) = self.path.find('{') else {
            return (path == self.path).then(|| Route::Api(*self, path.to_owned()));
        };
        let (prefix, suffix) = (&self.path[..at], &self.path[at..]);
        let suffix = suffix.strip_prefix("{name}")?;
        let raw = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
        if raw.contains('/') {
            // Not one segment: no such route (Prometheus answers 404 too).
            return None;
        }
        Some(match label_name(raw) {
            // Built from known segments and the validated name only.
            Ok(name) => Route::Api(*self, format!("{prefix}{name}{suffix}")),
            Err(why) => Route::InvalidLabelName(*self, why),
        })
    }

    /// Whether this is an Alertmanager row (served by `api::alertmanager`).
    pub fn is_alertmanager(&self) -> bool {
        matches!(self.scoping, Scoping::Alertmanager(_))
    }

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
    fn a_brace_in_a_row_path_only_ever_starts_its_one_name_segment() {
        for api in ROUTES {
            let braces = api.path.matches('{').count();
            assert!(braces <= 1, "{}", api.path);
            if braces == 1 {
                assert_eq!(api.path.matches("{name}").count(), 1, "{}", api.path);
            }
        }
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
            Some(Route::InvalidLabelName(a, why)) if a == LABEL_VALUES => Err(why),
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
    fn alertmanager_paths_lead_to_their_rows_and_backend_paths() {
        let id = "0b0c6a4e-3f1d-4c1e-9c2b-1a2b3c4d5e6f";
        for (path, name, backend) in [
            (
                "/alertmanager/api/v2/alerts",
                "am_alerts",
                "/api/v2/alerts".to_owned(),
            ),
            (
                "/alertmanager/api/v2/alerts/groups",
                "am_alert_groups",
                "/api/v2/alerts/groups".to_owned(),
            ),
            (
                "/alertmanager/api/v2/silences",
                "am_silences",
                "/api/v2/silences".to_owned(),
            ),
            (
                &format!("/alertmanager/api/v2/silence/{id}"),
                "am_silence",
                format!("/api/v2/silence/{id}"),
            ),
            (
                "/alertmanager/api/v2/status",
                "am_status",
                "/api/v2/status".to_owned(),
            ),
            (
                "/alertmanager/api/v2/receivers",
                "am_receivers",
                "/api/v2/receivers".to_owned(),
            ),
        ] {
            match route(strip_root(path, "/prometheus")) {
                Some(Route::Api(a, p)) => {
                    assert_eq!((a.name, p.as_str()), (name, backend.as_str()), "{path}")
                }
                other => panic!("{path}: {other:?}"),
            }
            // The same below the root path.
            let below = format!("/prometheus{path}");
            assert!(
                matches!(route(strip_root(&below, "/prometheus")), Some(Route::Api(a, _)) if a.name == name)
            );
        }
    }

    #[test]
    fn alertmanager_paths_that_are_not_plain_ids_or_known_are_not_routed() {
        for path in [
            "/alertmanager",
            "/alertmanager/",
            "/alertmanagerx/api/v2/alerts",
            "/alertmanager/api/v2/silence/",
            "/alertmanager/api/v2/silence/..",
            "/alertmanager/api/v2/silence/%2e%2e",
            "/alertmanager/api/v2/silence/0b0c6a4e-3f1d-4c1e-9c2b-1a2b3c4d5e6f/x",
            "/alertmanager/api/v2/silence/0b0c6a4e-3f1d-4c1e-9c2b-1a2b3c4d5e6",
            "/alertmanager/api/v2/silence/0b0c6a4e-3f1d-4c1e-9c2b-1a2b3c4d5e6g",
            "/alertmanager/api/v2/silence/{id}",
            "/alertmanager/api/v1/alerts",
            "/alertmanager/api/v2/alerts/",
            "/alertmanager/-/reload",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }

    #[test]
    fn label_names_follow_the_legacy_grammar() {
        assert!(is_label_name("a") && is_label_name("_") && is_label_name("__name__"));
        assert!(!is_label_name("") && !is_label_name("1") && !is_label_name("a-b"));
        assert!(!is_label_name("é") && !is_label_name("a b") && !is_label_name("a\0"));
    }
}
