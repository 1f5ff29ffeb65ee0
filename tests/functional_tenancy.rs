//! Differential test of the tenancy engine against real Prometheus.
//!
//! The local stack (`tools/stack.sh start`) loads one fixed data set into two
//! Prometheus servers: the main one holds projects A and B, series with no
//! project label (one of them with a label *value* naming project A) and the
//! live scraped series; the "only-A" one holds exactly project A's series.
//! For every query of the corpus, the query scoped to project A and run on
//! the main server must give the same answer as the original query run on
//! the only-A server — at the fixed evaluation time, and as a range query
//! over the data set's hour. Any series of another project, or without a
//! project label, would make the answers differ.
//!
//! Deliberate exception (documented in `doc/source/admin/tenancy.rst`):
//! `absent()`/`absent_over_time()` build their output labels from the
//! selector's equality matchers, so for an absent series the scoped answer
//! carries `project="<A>"` in addition; rows marked `Absent` compare with
//! that label removed from the scoped side.
//!
//! Run: `tools/stack.sh start`, then
//! `cargo test --features functional --test functional_tenancy`
//! (`AETOS_STACK_DIR` selects another stack state directory).

#![cfg(feature = "functional")]

use std::collections::BTreeMap;
use std::path::PathBuf;

use aetos::tenancy::scope_query;
use serde_json::Value;

/// How a corpus row is compared.
#[derive(Clone, Copy, PartialEq)]
enum Cmp {
    /// Identical answers.
    Same,
    /// `absent()`: the scoped answer may carry the project label in addition.
    Absent,
}
use Cmp::{Absent, Same};

/// The corpus; `{AT}` is replaced by a timestamp ten minutes before the
/// evaluation time.
const CORPUS: &[(&str, Cmp)] = &[
    ("diff_http_requests_total", Same),
    ("diff_http_requests_total[5m]", Same),
    ("diff_cpu_usage_ratio{host='h1'}", Same),
    ("diff_http_requests_total{instance=~`web-\\d`}", Same),
    ("sum(diff_http_requests_total)", Same),
    ("sum by (instance) (rate(diff_http_requests_total[5m]))", Same),
    ("sum without (instance) (diff_http_requests_total)", Same),
    ("rate(diff_http_requests_total{code=\"500\"}[5m])", Same),
    ("increase(diff_http_requests_total[10m])", Same),
    ("irate(diff_http_requests_total[5m])", Same),
    ("resets(diff_http_requests_total[1h])", Same),
    ("topk(2, diff_cpu_usage_ratio)", Same),
    ("bottomk(1, diff_queue_length)", Same),
    ("topk(scalar(count(diff_build_info)), diff_memory_used_bytes)", Same),
    ("quantile(0.9, diff_cpu_usage_ratio)", Same),
    ("count_values(\"v\", diff_build_info)", Same),
    ("stddev(diff_cpu_usage_ratio)", Same),
    ("group by (host) (diff_cpu_usage_ratio)", Same),
    ("histogram_quantile(0.9, sum by (le) (rate(diff_request_duration_seconds_bucket[5m])))", Same),
    ("histogram_quantile(0.5, sum by (le, handler) (rate(diff_request_duration_seconds_bucket[10m])))", Same),
    ("sum(rate(diff_request_duration_seconds_sum[5m])) / sum(rate(diff_request_duration_seconds_count[5m]))", Same),
    ("diff_memory_used_bytes / on (host) group_left diff_cpu_usage_ratio", Same),
    ("sum by (code) (diff_http_requests_total) / ignoring (code) group_left sum(diff_http_requests_total)", Same),
    ("diff_cpu_usage_ratio > 0.5", Same),
    ("diff_cpu_usage_ratio > bool 0.5", Same),
    ("diff_queue_length unless diff_queue_length{queue=\"low\"}", Same),
    ("diff_cpu_usage_ratio or diff_memory_used_bytes", Same),
    ("diff_cpu_usage_ratio and on (host) diff_memory_used_bytes > 4e9", Same),
    ("max_over_time(diff_cpu_usage_ratio[30m])", Same),
    ("avg_over_time(diff_queue_length[1h])", Same),
    ("max_over_time(rate(diff_http_requests_total[5m])[30m:1m])", Same),
    ("diff_cpu_usage_ratio offset 10m", Same),
    ("diff_cpu_usage_ratio @ {AT}", Same),
    ("rate(diff_http_requests_total[5m] @ end())", Same),
    ("label_replace(diff_build_info, \"v\", \"$1\", \"version\", \"(.*)\")", Same),
    ("sort_desc(sum by (host) (diff_memory_used_bytes))", Same),
    ("clamp_max(diff_cpu_usage_ratio * 2, 1)", Same),
    ("predict_linear(diff_memory_used_bytes[30m], 3600)", Same),
    ("deriv(diff_memory_used_bytes[10m])", Same),
    ("changes(diff_build_info[1h])", Same),
    ("timestamp(diff_cpu_usage_ratio)", Same),
    ("-diff_cpu_usage_ratio", Same),
    ("(diff_cpu_usage_ratio)", Same),
    ("count({__name__=~\"diff_.+\"})", Same),
    ("count by (__name__) ({__name__=~\"diff_.+\"})", Same),
    ("diff_a_only_total", Same),
    // Series only other projects (or nobody) own: empty on both sides.
    ("diff_b_only_total", Same),
    ("diff_cluster_temperature_celsius", Same),
    ("diff_http_requests_total{owner=\"diff-a\"}", Same),
    ("up", Same),
    // A caller's own project matchers are ANDed.
    ("diff_http_requests_total{project=\"diff-a\"}", Same),
    ("diff_http_requests_total{project=\"diff-b\"}", Same),
    ("diff_http_requests_total{project=~\".*\"}", Same),
    ("diff_http_requests_total{project=\"\"}", Same),
    // No selectors at all.
    ("vector(1)", Same),
    ("time()", Same),
    ("1+1", Same),
    ("scalar(sum(diff_build_info))", Same),
    // absent() gains the project label.
    ("absent(diff_nonexistent)", Absent),
    ("absent(diff_nonexistent{host=\"h1\"})", Absent),
    ("absent_over_time(diff_nonexistent[5m])", Absent),
    ("absent(diff_cpu_usage_ratio)", Same),
];

/// What the test needs from `$AETOS_STACK_DIR/env.json`.
struct Stack {
    main: String,
    only_a: String,
    label: String,
    project_a: String,
    start: i64,
    end: i64,
    eval_time: i64,
}

fn stack() -> Stack {
    let dir = std::env::var_os("AETOS_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".stack"));
    let path = dir.join("env.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. The differential test needs the local stack: run \
             `tools/stack.sh start` (or point AETOS_STACK_DIR at a running stack's state directory)",
            path.display()
        )
    });
    let env: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let s = |v: &Value| {
        v.as_str()
            .unwrap_or_else(|| panic!("{}: expected a string, got {v}", path.display()))
            .to_owned()
    };
    let n = |v: &Value| {
        v.as_i64()
            .unwrap_or_else(|| panic!("{}: expected an integer, got {v}", path.display()))
    };
    Stack {
        main: s(&env["prometheus_url"]),
        only_a: s(&env["prometheus_only_a_url"]),
        label: s(&env["diff"]["label"]),
        project_a: s(&env["diff"]["project_a"]),
        start: n(&env["diff"]["start"]),
        end: n(&env["diff"]["end"]),
        eval_time: n(&env["diff"]["eval_time"]),
    }
}

/// One series of an answer: its labels and its samples (timestamp, value).
type Series = (BTreeMap<String, String>, Vec<(f64, f64)>);

/// One Prometheus answer, reduced to what must be equal.
#[derive(Debug)]
enum Answer {
    /// `errorType` of an error answer.
    Error(String),
    /// Sorted series: labels → samples (timestamp, value).
    Series { kind: String, series: Vec<Series> },
    /// Scalar or string result.
    Single {
        kind: String,
        ts: f64,
        value: String,
    },
}

async fn ask(
    client: &reqwest::Client,
    base: &str,
    query: &str,
    range: Option<(i64, i64)>,
    at: i64,
) -> Answer {
    let req = match range {
        None => client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", query.to_owned()), ("time", at.to_string())]),
        Some((start, end)) => client.get(format!("{base}/api/v1/query_range")).query(&[
            ("query", query.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", "60".to_owned()),
        ]),
    };
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{base} is not answering ({e}); is the stack running?"));
    let body: Value = resp.json().await.expect("Prometheus answers JSON");
    if body["status"] != "success" {
        return Answer::Error(body["errorType"].as_str().unwrap_or("?").to_owned());
    }
    let data = &body["data"];
    let kind = data["resultType"].as_str().expect("resultType").to_owned();
    let result = &data["result"];
    let sample = |p: &Value| -> (f64, f64) {
        let ts = p[0].as_f64().expect("timestamp");
        let v = p[1]
            .as_str()
            .expect("value")
            .parse::<f64>()
            .expect("float value");
        (ts, v)
    };
    match kind.as_str() {
        "vector" | "matrix" => {
            let mut series: Vec<_> = result
                .as_array()
                .expect("result list")
                .iter()
                .map(|s| {
                    let labels = s["metric"]
                        .as_object()
                        .expect("metric")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().expect("label value").to_owned()))
                        .collect::<BTreeMap<_, _>>();
                    let samples = match s.get("values") {
                        Some(vs) => vs.as_array().expect("values").iter().map(sample).collect(),
                        None => vec![sample(&s["value"])],
                    };
                    (labels, samples)
                })
                .collect();
            series.sort_by(|a, b| a.0.cmp(&b.0));
            Answer::Series { kind, series }
        }
        _ => Answer::Single {
            kind,
            ts: result[0].as_f64().expect("timestamp"),
            value: result[1].as_str().expect("value").to_owned(),
        },
    }
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Compare the scoped answer (main server) with the original (only-A).
fn compare(scoped: &Answer, original: &Answer, cmp: Cmp, stack: &Stack) -> Result<(), String> {
    match (scoped, original) {
        (Answer::Error(a), Answer::Error(b)) if a == b => Ok(()),
        (
            Answer::Single {
                kind: ka,
                ts: ta,
                value: va,
            },
            Answer::Single {
                kind: kb,
                ts: tb,
                value: vb,
            },
        ) => {
            let same_value = va == vb
                || matches!((va.parse::<f64>(), vb.parse::<f64>()), (Ok(x), Ok(y)) if close(x, y));
            if ka == kb && ta == tb && same_value {
                Ok(())
            } else {
                Err(format!("{scoped:?} != {original:?}"))
            }
        }
        (
            Answer::Series {
                kind: ka,
                series: sa,
            },
            Answer::Series {
                kind: kb,
                series: sb,
            },
        ) => {
            if ka != kb {
                return Err(format!("result type {ka} != {kb}"));
            }
            let sa: Vec<_> = sa
                .iter()
                .map(|(labels, samples)| {
                    let mut labels = labels.clone();
                    if cmp == Absent && labels.get(&stack.label) == Some(&stack.project_a) {
                        labels.remove(&stack.label);
                    }
                    (labels, samples)
                })
                .collect();
            if sa.len() != sb.len() {
                return Err(format!(
                    "{} series scoped, {} original:\n{sa:?}\n{sb:?}",
                    sa.len(),
                    sb.len()
                ));
            }
            for ((la, xa), (lb, xb)) in sa.iter().zip(sb) {
                if la != lb {
                    return Err(format!("labels {la:?} != {lb:?}"));
                }
                let same = xa.len() == xb.len()
                    && xa
                        .iter()
                        .zip(xb)
                        .all(|((ta, va), (tb, vb))| ta == tb && close(*va, *vb));
                if !same {
                    return Err(format!("samples of {la:?} differ:\n{xa:?}\n{xb:?}"));
                }
            }
            Ok(())
        }
        _ => Err(format!("{scoped:?} != {original:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_queries_on_all_projects_equal_original_queries_on_project_a_alone() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let stack = stack();
    let client = reqwest::Client::new();

    // The data set must be there, or every comparison would be vacuous.
    match ask(&client, &stack.only_a, "count(diff_a_only_total)", None, stack.eval_time).await {
        Answer::Series { series, .. } if series.len() == 1 && series[0].1[0].1 == 1.0 => {}
        other => panic!(
            "the differential data set is missing on {} ({other:?}); restart the stack: tools/stack.sh start",
            stack.only_a
        ),
    }

    let at = (stack.eval_time - 600).to_string();
    let range = (stack.start + 600, stack.end);
    let mut failures = Vec::new();
    let mut non_empty = 0;
    for (template, cmp) in CORPUS {
        let original = template.replace("{AT}", &at);
        let scoped = match scope_query(&original, &stack.label, &stack.project_a) {
            Ok(q) => q,
            Err(e) => {
                failures.push(format!("{original}: refused: {e}"));
                continue;
            }
        };
        for r in [None, Some(range)] {
            let got = ask(&client, &stack.main, &scoped, r, stack.eval_time).await;
            let want = ask(&client, &stack.only_a, &original, r, stack.eval_time).await;
            if matches!(&want, Answer::Series { series, .. } if !series.is_empty()) {
                non_empty += 1;
            }
            if let Err(mut e) = compare(&got, &want, *cmp, &stack) {
                let how = if r.is_some() { "range" } else { "instant" };
                if e.len() > 800 {
                    let cut = (0..=800)
                        .rev()
                        .find(|&i| e.is_char_boundary(i))
                        .unwrap_or(0);
                    e.truncate(cut);
                    e.push_str(" …");
                }
                failures.push(format!("{original} ({how}), scoped as {scoped}: {e}"));
            }
        }
    }
    assert!(CORPUS.len() >= 40);
    assert!(
        failures.is_empty(),
        "{} of {} comparisons differ:\n{}",
        failures.len(),
        2 * CORPUS.len(),
        failures.join("\n\n")
    );
    // Most rows must have had data to compare.
    assert!(
        non_empty >= 60,
        "only {non_empty} comparisons had a non-empty answer"
    );
}
