//! The tenancy specification, as a table: input → exact scoped output, or
//! the refusal (a substring of the error message).
//!
//! Unless a row says otherwise the caller is scoped to project `p1` with the
//! default label name `project`. Every accepted output is additionally
//! checked by the independent oracle (`aetos_tenancy_oracle::oracle`, in
//! `crates/aetos-tenancy-oracle/`): it parses, every selector carries
//! `project="p1"`, it means exactly the input plus that matcher, and scoping
//! it again changes nothing.

use aetos::tenancy::{
    scope_match_params, scope_query, scope_selector, TenancyError, MAX_NESTING, MAX_QUERY_BYTES,
};
use aetos_tenancy_oracle::oracle;

const L: &str = "project";
const P: &str = "p1";

/// What a row expects.
enum Want {
    /// Accepted, with exactly this output.
    Out(&'static str),
    /// Refused, with a message containing this text.
    Refused(&'static str),
}
use Want::{Out, Refused};

/// `scope_query` rows: (input, expectation).
#[rustfmt::skip]
const QUERY_CASES: &[(&str, Want)] = &[
    // ── Expressions without selectors pass through (and still work) ──
    ("1+1", Out("1 + 1")),
    ("vector(1)", Out("vector(1)")),
    ("time()", Out("time()")),
    ("pi()", Out("pi()")),
    ("\"hello\"", Out("\"hello\"")),
    ("-1", Out("-1")),
    ("1 > bool 0", Out("1 > bool 0")),
    ("scalar(vector(1)) * 2", Out("scalar(vector(1)) * 2")),
    ("0x1F", Out("31")),
    (".5", Out("0.5")),
    ("1e3", Out("1000")),
    ("NaN", Out("NaN")),
    ("-Inf", Out("-Inf")),

    // ── Every selector form gains the matcher ──
    ("up", Out("up{project=\"p1\"}")),
    ("unknown_metric_xyz", Out("unknown_metric_xyz{project=\"p1\"}")),
    ("up{}", Out("up{project=\"p1\"}")),
    ("up{job=\"api\"}", Out("up{job=\"api\",project=\"p1\"}")),
    ("up{job=\"api\",}", Out("up{job=\"api\",project=\"p1\"}")),
    ("{job=\"api\"}", Out("{job=\"api\",project=\"p1\"}")),
    ("{__name__=\"up\"}", Out("{__name__=\"up\",project=\"p1\"}")),
    ("{__name__=~\"node_.*\"}", Out("{__name__=~\"node_.*\",project=\"p1\"}")),
    ("{__name__=~\".+\"}", Out("{__name__=~\".+\",project=\"p1\"}")),
    (":job:rate5m", Out(":job:rate5m{project=\"p1\"}")),
    ("job:http_requests:rate5m{code=\"500\"}", Out("job:http_requests:rate5m{code=\"500\",project=\"p1\"}")),
    ("sum{job=\"a\"}", Out("sum{job=\"a\",project=\"p1\"}")),
    ("up # a comment\n", Out("up{project=\"p1\"}")),
    ("sum(\n  rate(x[5m])\n)", Out("sum(rate(x{project=\"p1\"}[5m]))")),

    // ── Matcher operators are kept as written ──
    ("x{a!=\"b\"}", Out("x{a!=\"b\",project=\"p1\"}")),
    ("x{a=~\"b.*\"}", Out("x{a=~\"b.*\",project=\"p1\"}")),
    ("x{a!~\"b.*\"}", Out("x{a!~\"b.*\",project=\"p1\"}")),
    ("x{a=~\"foo|bar\"}", Out("x{a=~\"foo|bar\",project=\"p1\"}")),
    ("x{a=~\"(?i)foo\"}", Out("x{a=~\"(?i)foo\",project=\"p1\"}")),
    ("x{a=~\"a{bbb}\"}", Out("x{a=~\"a{bbb}\",project=\"p1\"}")),
    ("x{job=~\".*\"}", Out("x{job=~\".*\",project=\"p1\"}")),
    ("x{b=\"2\",a=\"1\"}", Out("x{a=\"1\",b=\"2\",project=\"p1\"}")),

    // ── Quote styles and escapes round-trip exactly ──
    ("x{a='b'}", Out("x{a=\"b\",project=\"p1\"}")),
    ("x{a='say \"hi\"'}", Out("x{a=\"say \\\"hi\\\"\",project=\"p1\"}")),
    ("x{a='it\\'s'}", Out("x{a=\"it's\",project=\"p1\"}")),
    ("x{a=\"C:\\\\dir\"}", Out("x{a=\"C:\\\\dir\",project=\"p1\"}")),
    ("x{a=\"l1\\nl2\"}", Out("x{a=\"l1\\nl2\",project=\"p1\"}")),
    ("x{a=\"t\\tr\\r\"}", Out("x{a=\"t\\tr\\r\",project=\"p1\"}")),
    ("x{a=\"\\u00e9\"}", Out("x{a=\"é\",project=\"p1\"}")),
    ("x{a=\"日本\"}", Out("x{a=\"日本\",project=\"p1\"}")),
    ("x{a=\"🦀\"}", Out("x{a=\"🦀\",project=\"p1\"}")),
    ("x{a=\"\\U0001F980\"}", Out("x{a=\"🦀\",project=\"p1\"}")),
    ("x{a=\"\\x41\\101\"}", Out("x{a=\"AA\",project=\"p1\"}")),
    ("x{a=\"\\a\\v\\f\\b\"}", Out("x{a=\"\u{7}\u{b}\u{c}\u{8}\",project=\"p1\"}")),
    ("x{a=`raw \\d+ \"q\"`}", Out("x{a=\"raw \\\\d+ \\\"q\\\"\",project=\"p1\"}")),
    ("x{a=~`10\\.0\\..*`}", Out("x{a=~\"10\\\\.0\\\\..*\",project=\"p1\"}")),
    ("x{a=\"`\"}", Out("x{a=\"`\",project=\"p1\"}")),
    ("x{a=\"#not a comment\"}", Out("x{a=\"#not a comment\",project=\"p1\"}")),
    ("x{\"my.label\"=\"v\"}", Out("x{\"my.label\"=\"v\",project=\"p1\"}")),
    ("{\"my.metric\"}", Out("{__name__=\"my.metric\",project=\"p1\"}")),
    ("{\"my.metric\", job=\"a\"}", Out("{__name__=\"my.metric\",job=\"a\",project=\"p1\"}")),
    ("x{a=\"\\'\"}", Refused("parse error")),
    ("x{a=\"\\xff\"}", Refused("byte escapes")),
    ("x{a='\\377'}", Refused("byte escapes")),
    ("x{a=\"\\ufffd\"}", Refused("U+FFFD")),
    ("x{a=\"\u{FFFD}\"}", Refused("U+FFFD")),

    // ── Label values that look like metric names are untouched ──
    ("x{job=\"up\"}", Out("x{job=\"up\",project=\"p1\"}")),
    ("up{instance=\"node_cpu_seconds_total\"}", Out("up{instance=\"node_cpu_seconds_total\",project=\"p1\"}")),
    ("label_replace(up, \"dst\", \"up\", \"src\", \"(.*)\")", Out("label_replace(up{project=\"p1\"}, \"dst\", \"up\", \"src\", \"(.*)\")")),

    // ── A caller's own project matchers are ANDed, never replaced ──
    ("x{project=\"other\"}", Out("x{project=\"other\",project=\"p1\"}")),
    ("{project=\"other\"}", Out("{project=\"other\",project=\"p1\"}")),
    ("x{project=\"p1\"}", Out("x{project=\"p1\"}")),
    ("x{project='p1'}", Out("x{project=\"p1\"}")),
    ("x{project=~\".*\"}", Out("x{project=\"p1\",project=~\".*\"}")),
    ("x{project=~\"p1|other\"}", Out("x{project=\"p1\",project=~\"p1|other\"}")),
    ("x{project!=\"p1\"}", Out("x{project!=\"p1\",project=\"p1\"}")),
    ("x{project=\"\"}", Out("x{project=\"\",project=\"p1\"}")),
    ("x{project=\"p1\",project=\"other\"}", Out("x{project=\"other\",project=\"p1\"}")),
    ("sum by (project) (x{project=~\"o.*\"})", Out("sum by (project) (x{project=\"p1\",project=~\"o.*\"})")),

    // ── Aggregations: operand and parameter ──
    ("sum(x)", Out("sum(x{project=\"p1\"})")),
    ("sum by (job) (x)", Out("sum by (job) (x{project=\"p1\"})")),
    ("sum(x) by (job)", Out("sum by (job) (x{project=\"p1\"})")),
    ("sum by () (x)", Out("sum(x{project=\"p1\"})")),
    ("sum without (instance) (x)", Out("sum without (instance) (x{project=\"p1\"})")),
    ("avg(x)", Out("avg(x{project=\"p1\"})")),
    ("min(x) + max(x)", Out("min(x{project=\"p1\"}) + max(x{project=\"p1\"})")),
    ("count(x)", Out("count(x{project=\"p1\"})")),
    ("group(x)", Out("group(x{project=\"p1\"})")),
    ("stddev(x) / stdvar(x)", Out("stddev(x{project=\"p1\"}) / stdvar(x{project=\"p1\"})")),
    ("topk(5, x)", Out("topk(5, x{project=\"p1\"})")),
    ("bottomk(3, x)", Out("bottomk(3, x{project=\"p1\"})")),
    ("topk(scalar(count(secret)), x)", Out("topk(scalar(count(secret{project=\"p1\"})), x{project=\"p1\"})")),
    ("quantile(scalar(y), x)", Out("quantile(scalar(y{project=\"p1\"}), x{project=\"p1\"})")),
    ("quantile(0.9, x)", Out("quantile(0.9, x{project=\"p1\"})")),
    ("count_values(\"value\", x)", Out("count_values(\"value\", x{project=\"p1\"})")),
    ("limitk(2, x)", Out("limitk(2, x{project=\"p1\"})")),

    // ── Function arguments ──
    ("rate(x[5m])", Out("rate(x{project=\"p1\"}[5m])")),
    ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", Out("histogram_quantile(0.9, sum by (le) (rate(x_bucket{project=\"p1\"}[5m])))")),
    ("label_join(x, \"d\", \",\", \"a\", \"b\")", Out("label_join(x{project=\"p1\"}, \"d\", \",\", \"a\", \"b\")")),
    ("clamp(x, 0, 1)", Out("clamp(x{project=\"p1\"}, 0, 1)")),
    ("absent(nonexistent{job=\"x\"})", Out("absent(nonexistent{job=\"x\",project=\"p1\"})")),
    ("absent_over_time(x[5m])", Out("absent_over_time(x{project=\"p1\"}[5m])")),
    ("predict_linear(x[1h], 3600)", Out("predict_linear(x{project=\"p1\"}[1h], 3600)")),
    ("round(x, 0.5)", Out("round(x{project=\"p1\"}, 0.5)")),
    ("sort_desc(timestamp(x))", Out("sort_desc(timestamp(x{project=\"p1\"}))")),
    ("sort_by_label(x, \"a\")", Out("sort_by_label(x{project=\"p1\"}, \"a\")")),
    ("vector(scalar(x))", Out("vector(scalar(x{project=\"p1\"}))")),
    ("double_exponential_smoothing(x[5m], 0.5, 0.5)", Out("double_exponential_smoothing(x{project=\"p1\"}[5m], 0.5, 0.5)")),
    ("last_over_time(up[5m])", Out("last_over_time(up{project=\"p1\"}[5m])")),

    // ── Both sides of binary operations, with every modifier ──
    ("a + b", Out("a{project=\"p1\"} + b{project=\"p1\"}")),
    ("1 - a", Out("1 - a{project=\"p1\"}")),
    ("a ^ 2", Out("a{project=\"p1\"} ^ 2")),
    ("a == b", Out("a{project=\"p1\"} == b{project=\"p1\"}")),
    ("a > bool 1", Out("a{project=\"p1\"} > bool 1")),
    ("a and b", Out("a{project=\"p1\"} and b{project=\"p1\"}")),
    ("a or b", Out("a{project=\"p1\"} or b{project=\"p1\"}")),
    ("a unless b", Out("a{project=\"p1\"} unless b{project=\"p1\"}")),
    ("a atan2 b", Out("a{project=\"p1\"} atan2 b{project=\"p1\"}")),
    ("a / on (job) group_left (x) b", Out("a{project=\"p1\"} / on (job) group_left (x) b{project=\"p1\"}")),
    ("a * ignoring (i) group_right b", Out("a{project=\"p1\"} * ignoring (i) group_right () b{project=\"p1\"}")),
    ("a + on () b", Out("a{project=\"p1\"} + on () b{project=\"p1\"}")),
    ("a + ignoring () b", Out("a{project=\"p1\"} + b{project=\"p1\"}")),
    ("a and ignoring () b", Out("a{project=\"p1\"} and b{project=\"p1\"}")),
    ("a + fill(1) b", Out("a{project=\"p1\"} + fill (1) b{project=\"p1\"}")),

    // ── Unary, parentheses, subqueries ──
    ("-x", Out("-x{project=\"p1\"}")),
    ("(x)", Out("(x{project=\"p1\"})")),
    ("-(a + b)", Out("-(a{project=\"p1\"} + b{project=\"p1\"})")),
    ("x[5m:]", Out("x{project=\"p1\"}[5m:]")),
    ("max_over_time(rate(x[5m])[1h:1m])", Out("max_over_time(rate(x{project=\"p1\"}[5m])[1h:1m])")),
    ("rate(x[5m])[30m:1m] offset 1h", Out("rate(x{project=\"p1\"}[5m])[30m:1m] offset 1h")),
    ("(a + b)[5m:1m] @ 100", Out("(a{project=\"p1\"} + b{project=\"p1\"})[5m:1m] @ 100.000")),

    // ── offset and @ modifiers ──
    ("x offset 5m", Out("x{project=\"p1\"} offset 5m")),
    ("x offset -5m", Out("x{project=\"p1\"} offset -5m")),
    ("x[5m] offset 1h", Out("x{project=\"p1\"}[5m] offset 1h")),
    ("x @ 1700000000", Out("x{project=\"p1\"} @ 1700000000.000")),
    ("prometheus_ready@1700000000", Out("prometheus_ready{project=\"p1\"} @ 1700000000.000")),
    ("x[5m] @ 1700000000.5", Out("x{project=\"p1\"}[5m] @ 1700000000.500")),
    ("x @ start()", Out("x{project=\"p1\"} @ start()")),
    ("x[5m:] @ end()", Out("x{project=\"p1\"}[5m:] @ end()")),
    ("x offset 5m @ 1609746000", Out("x{project=\"p1\"} @ 1609746000.000 offset 5m")),
    ("x @ 0", Out("x{project=\"p1\"} @ 0.000")),

    // ── Durations may be re-spelled, never re-valued ──
    ("x[300s]", Out("x{project=\"p1\"}[5m]")),
    ("x[90m]", Out("x{project=\"p1\"}[1h30m]")),
    ("x[1h30m]", Out("x{project=\"p1\"}[1h30m]")),
    ("x[1d]", Out("x{project=\"p1\"}[1d]")),
    ("x[2w]", Out("x{project=\"p1\"}[2w]")),
    ("x[1y]", Out("x{project=\"p1\"}[1y]")),
    ("x[500ms]", Out("x{project=\"p1\"}[500ms]")),
    ("x[300]", Out("x{project=\"p1\"}[5m]")),

    // ── Watcher's four templates (single quotes, as Watcher sends them) ──
    ("100 - (avg by (fqdn)(rate(node_cpu_seconds_total{mode='idle',fqdn='compute-0'}[300s])) * 100)",
     Out("100 - (avg by (fqdn) (rate(node_cpu_seconds_total{fqdn=\"compute-0\",mode=\"idle\",project=\"p1\"}[5m])) * 100)")),
    ("(node_memory_MemTotal_bytes{fqdn='compute-0'} - max_over_time(node_memory_MemAvailable_bytes{fqdn='compute-0'}[600s])) / 1024",
     Out("(node_memory_MemTotal_bytes{fqdn=\"compute-0\",project=\"p1\"} - max_over_time(node_memory_MemAvailable_bytes{fqdn=\"compute-0\",project=\"p1\"}[10m])) / 1024")),
    ("min_over_time(ceilometer_memory_usage{resource='6b0c1f2e-3d4a-4b5c-9d8e-7f6a5b4c3d2e'}[300s])",
     Out("min_over_time(ceilometer_memory_usage{project=\"p1\",resource=\"6b0c1f2e-3d4a-4b5c-9d8e-7f6a5b4c3d2e\"}[5m])")),
    ("clamp_max((avg by (resource)(rate(ceilometer_cpu{resource='6b0c1f2e'}[300s]))/10e+8) *(100/2), 100)",
     Out("clamp_max((avg by (resource) (rate(ceilometer_cpu{project=\"p1\",resource=\"6b0c1f2e\"}[5m])) / 1000000000) * (100 / 2), 100)")),

    // ── Fail closed ──
    ("x @ -1", Refused("negative @ timestamps")),
    ("x[5m] @ -100", Refused("negative @ timestamps")),
    ("x[5m:] @ -100", Refused("negative @ timestamps")),
    ("x @ 1e17", Refused("@ timestamp out of the supported range")),
    ("x{a=\"b\" or c=\"d\"}", Refused("`or` inside a label matcher list")),
    ("info(up)", Refused("info()")),
    ("info(up, {k=\"v\"})", Refused("info()")),
    ("x[1e30]", Refused("duration out of the supported range")),
    ("x[5m:1e400]", Refused("duration out of the supported range")),
    ("x offset 1e300", Refused("duration out of the supported range")),
    ("x offset Inf", Refused("duration out of the supported range")),
    ("x[99999999999s5m]", Refused("duration out of the supported range")),
    ("x[999999999y999m]", Refused("duration out of the supported range")),
    ("x offset 4294967295w", Refused("duration out of the supported range")),
    ("x[4294967295d]", Out("x{project=\"p1\"}[4294967295d]")),
    ("a + fill(NaN) b", Refused("fill(NaN)")),
    ("x[1.0005]", Refused("whole number of milliseconds")),
    ("x offset 0", Refused("whole number of milliseconds")),
    ("x[5m:0.0001]", Refused("whole number of milliseconds")),
    ("a + ignoring () group_left b", Refused("ignoring () with group_left")),

    // ── Invalid PromQL is a parse error, as in Prometheus ──
    ("", Refused("parse error")),
    ("x{", Refused("parse error")),
    ("{}", Refused("parse error")),
    ("{job=~\".*\"}", Refused("parse error")),
    ("{job!~\"x\",a=\"\"}", Refused("parse error")),
    ("{job=~\"a*|b\"} + {c=~\"(?:)\"}", Refused("parse error")),

    // ── Regex matchers are never compiled by aetos, only carried ──
    // (the parser sees placeholders; the values are put back as written)
    ("{job!~\".*\"}", Out("{job!~\".*\",project=\"p1\"}")),
    ("{job=~\"a+\"}", Out("{job=~\"a+\",project=\"p1\"}")),
    ("{job=~\"\\\\b\"}", Out("{job=~\"\\\\b\",project=\"p1\"}")),
    ("x{a=~\"\\\\w{0,99}\\\\w{0,99}\", b!~'\\\\p{L}{1,50}'}",
        Out("x{a=~\"\\\\w{0,99}\\\\w{0,99}\",b!~\"\\\\p{L}{1,50}\",project=\"p1\"}")),
    ("x{a=~`\\d+\"`, b=~\"0\", c=~\"|1\"}", Out("x{a=~\"\\\\d+\\\"\",b=~\"0\",c=~\"|1\",project=\"p1\"}")),
    ("x{a=~ # why\n \"a.b\"}", Out("x{a=~\"a.b\",project=\"p1\"}")),
    ("x{project=~\"other|p1\"}", Out("x{project=\"p1\",project=~\"other|p1\"}")),
    ("x{a=~\"\\uFFFD\"}", Refused("U+FFFD")),
    ("x{__name__=\"y\"}", Refused("parse error")),
    ("unknownfunc(x)", Refused("parse error")),
    ("rate(x)", Refused("parse error")),
    ("1 > 0", Refused("parse error")),
    ("holt_winters(x[5m], 0.5, 0.5)", Refused("parse error")),
];

/// Rows with another label name or project id: (label, project, input, expectation).
#[rustfmt::skip]
const SCOPE_CASES: &[(&str, &str, &str, Want)] = &[
    ("project_id", "0123abcd", "up", Out("up{project_id=\"0123abcd\"}")),
    ("project_id", "0123abcd", "up{project=\"x\"}", Out("up{project=\"x\",project_id=\"0123abcd\"}")),
    ("project", "a\"b", "up", Out("up{project=\"a\\\"b\"}")),
    ("project", "a\\b", "up", Out("up{project=\"a\\\\b\"}")),
    ("project", "a\nb", "up", Out("up{project=\"a\\nb\"}")),
    ("project", "projé-日本", "up", Out("up{project=\"projé-日本\"}")),
    ("project", "it's", "up{project='it\\'s'}", Out("up{project=\"it's\"}")),
    ("tenant.id", "p1", "up", Out("up{\"tenant.id\"=\"p1\"}")),
    ("project", "p\u{FFFD}", "up", Refused("project id is empty")),
    ("project", "", "up", Refused("project id is empty")),
    ("", "p1", "up", Refused("cannot be enforced")),
    ("__name__", "p1", "up", Refused("cannot be enforced")),
];

/// `scope_selector` rows (a `match[]` value): (input, expectation).
#[rustfmt::skip]
const SELECTOR_CASES: &[(&str, Want)] = &[
    ("up", Out("up{project=\"p1\"}")),
    ("{job=\"api\"}", Out("{job=\"api\",project=\"p1\"}")),
    ("{__name__=~\".+\"}", Out("{__name__=~\".+\",project=\"p1\"}")),
    ("up{project=\"other\"}", Out("up{project=\"other\",project=\"p1\"}")),
    ("up{fqdn='h1'}", Out("up{fqdn=\"h1\",project=\"p1\"}")),
    ("{\"my.metric\"}", Out("{__name__=\"my.metric\",project=\"p1\"}")),
    ("rate(up[5m])", Refused("invalid series selector")),
    ("up offset 5m", Refused("invalid series selector")),
    ("up[5m]", Refused("invalid series selector")),
    ("up @ 100", Refused("invalid series selector")),
    ("up + up", Refused("invalid series selector")),
    ("(up)", Refused("invalid series selector")),
    ("1", Refused("invalid series selector")),
    ("\"str\"", Refused("invalid series selector")),
    ("up{a=\"b\" or c=\"d\"}", Refused("`or` inside a label matcher list")),
    ("", Refused("parse error")),
    ("{}", Refused("parse error")),
];

/// Check one row; return a failure description.
fn check(
    label: &str,
    project: &str,
    input: &str,
    want: &Want,
    got: Result<String, TenancyError>,
) -> Option<String> {
    match (want, got) {
        (Out(expected), Ok(out)) => {
            if out != *expected {
                return Some(format!("{input:?}: expected {expected:?}, got {out:?}"));
            }
            if let Err(e) = oracle::check_scoped(&out, label, project) {
                return Some(format!("{input:?}: oracle: {e}"));
            }
            if let Err(e) = oracle::same_meaning(input, &out, label, project) {
                return Some(format!("{input:?}: oracle: {e}"));
            }
            None
        }
        (Out(expected), Err(e)) => Some(format!("{input:?}: expected {expected:?}, refused: {e}")),
        (Refused(part), Err(e)) => {
            let msg = e.to_string();
            (!msg.contains(part))
                .then(|| format!("{input:?}: expected refusal with {part:?}, got {msg:?}"))
        }
        (Refused(part), Ok(out)) => Some(format!(
            "{input:?}: expected refusal with {part:?}, accepted as {out:?}"
        )),
    }
}

#[test]
fn the_table_has_at_least_one_hundred_cases() {
    assert!(QUERY_CASES.len() + SCOPE_CASES.len() + SELECTOR_CASES.len() >= 100);
}

#[test]
fn queries_are_scoped_as_specified() {
    let failures: Vec<String> = QUERY_CASES
        .iter()
        .filter_map(|(input, want)| check(L, P, input, want, scope_query(input, L, P)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn other_labels_and_project_ids_are_written_exactly() {
    let failures: Vec<String> = SCOPE_CASES
        .iter()
        .filter_map(|(label, project, input, want)| {
            check(
                label,
                project,
                input,
                want,
                scope_query(input, label, project),
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn series_selectors_are_scoped_as_specified() {
    let failures: Vec<String> = SELECTOR_CASES
        .iter()
        .filter_map(|(input, want)| check(L, P, input, want, scope_selector(input, L, P)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_accepted_output_is_a_fixed_point() {
    for (input, want) in QUERY_CASES {
        if let Out(expected) = want {
            assert_eq!(
                scope_query(expected, L, P).as_deref(),
                Ok(*expected),
                "re-scoping {input:?}"
            );
        }
    }
    for (input, want) in SELECTOR_CASES {
        if let Out(expected) = want {
            assert_eq!(
                scope_selector(expected, L, P).as_deref(),
                Ok(*expected),
                "re-scoping {input:?}"
            );
        }
    }
}

#[test]
fn no_match_param_becomes_the_project_selector() {
    assert_eq!(
        scope_match_params(&[], L, P),
        Ok(vec!["{project=\"p1\"}".to_owned()])
    );
    assert_eq!(
        scope_match_params(&[], "project_id", "a\"b"),
        Ok(vec!["{project_id=\"a\\\"b\"}".to_owned()])
    );
}

#[test]
fn each_match_param_is_scoped_in_order() {
    let got = scope_match_params(&["up".to_owned(), "{job='x'}".to_owned()], L, P);
    assert_eq!(
        got,
        Ok(vec![
            "up{project=\"p1\"}".to_owned(),
            "{job=\"x\",project=\"p1\"}".to_owned()
        ])
    );
}

#[test]
fn one_bad_match_param_refuses_the_whole_list() {
    let got = scope_match_params(&["up".to_owned(), "rate(up[5m])".to_owned()], L, P);
    assert!(matches!(got, Err(TenancyError::NotASelector(_))), "{got:?}");
}

#[test]
fn size_and_nesting_limits_are_reported() {
    let long = format!("x{{a=\"{}\"}}", "a".repeat(MAX_QUERY_BYTES));
    let e = scope_query(&long, L, P).unwrap_err();
    assert!(e.to_string().contains("query too long"), "{e}");
    let deep = format!("{}x{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
    let e = scope_query(&deep, L, P).unwrap_err();
    assert!(e.to_string().contains("nested too deeply"), "{e}");
}
