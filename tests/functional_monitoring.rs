//! The monitoring aetos ships for itself: the Prometheus rules
//! (`etc/prometheus/aetos-rules.yaml`) pass `promtool check rules` and
//! their unit tests, every alert has a test that makes it fire, and every
//! expression of the Grafana dashboard (`etc/grafana/aetos-dashboard.json`)
//! runs on the stack's real Prometheus. That the metric names they use are
//! the ones aetos exports is checked by the unit tests of `src/metrics.rs`.
#![cfg(feature = "functional")]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::{repo_root, stack};
use serde_json::Value;

fn rules() -> PathBuf {
    repo_root().join("etc/prometheus/aetos-rules.yaml")
}

fn rule_tests() -> PathBuf {
    repo_root().join("etc/prometheus/aetos-rules.test.yaml")
}

fn dashboard() -> Value {
    let path = repo_root().join("etc/grafana/aetos-dashboard.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs promtool (Debian's prometheus package, which tools/stack.sh
/// installs); its output on failure.
fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool: {e} (it comes with Debian's prometheus package: tools/stack.sh start)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn rules_pass_promtool_check() {
    let out = promtool(&["check", "rules", rules().to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn rules_pass_their_unit_tests() {
    let out = promtool(&["test", "rules", rule_tests().to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// A rule file's alerts, and the alerts a test file expects to fire.
fn alerts_and_fired() -> (BTreeSet<String>, BTreeSet<String>) {
    let rules: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(rules()).unwrap()).unwrap();
    let tests: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(rule_tests()).unwrap()).unwrap();
    let seq = |v: &yaml_serde::Value, key: &str| -> Vec<yaml_serde::Value> {
        v.get(key)
            .and_then(yaml_serde::Value::as_sequence)
            .cloned()
            .unwrap_or_default()
    };
    let alerts = seq(&rules, "groups")
        .iter()
        .flat_map(|g| seq(g, "rules"))
        .filter_map(|r| r.get("alert").and_then(|a| a.as_str()).map(str::to_owned))
        .collect();
    let fired = seq(&tests, "tests")
        .iter()
        .flat_map(|t| seq(t, "alert_rule_test"))
        .filter(|a| !seq(a, "exp_alerts").is_empty())
        .filter_map(|a| {
            a.get("alertname")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        })
        .collect();
    (alerts, fired)
}

#[test]
fn every_alert_is_shown_firing_by_a_unit_test() {
    let (alerts, fired) = alerts_and_fired();
    assert!(alerts.len() >= 9, "{alerts:?}");
    let untested: Vec<_> = alerts.difference(&fired).collect();
    assert!(
        untested.is_empty(),
        "alerts no test of aetos-rules.test.yaml makes fire: {untested:?}"
    );
}

/// Every `expr` of the dashboard's panels (rows hold none of their own
/// when expanded; a collapsed row's panels are included).
fn dashboard_exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = panels.pop() {
        if let Some(inner) = p["panels"].as_array() {
            panels.extend(inner);
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            out.push((title, t["expr"].as_str().unwrap().to_owned()));
        }
    }
    out
}

/// The dashboard's variables replaced as Grafana does: `$job` by the
/// "All" value, `$__rate_interval` by a range. Any other `$` is an
/// unknown variable.
fn as_grafana_sends(expr: &str) -> String {
    let e = expr.replace("$__rate_interval", "5m").replace("$job", ".+");
    assert!(!e.contains('$'), "unknown dashboard variable in {expr}");
    e
}

#[tokio::test]
async fn dashboard_expressions_run_on_the_real_prometheus() {
    let d = dashboard();
    let exprs = dashboard_exprs(&d);
    assert!(exprs.len() >= 15, "{} expressions", exprs.len());
    let client = common::client();
    let url = format!("{}/api/v1/query", stack().prometheus_url());
    let mut failures = Vec::new();
    for (title, expr) in &exprs {
        let q = as_grafana_sends(expr);
        let r = client
            .post(&url)
            .form(&[("query", q.as_str())])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        if status != 200 || body["status"] != "success" {
            failures.push(format!("{title}: {q}: {status} {body}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The check above can fail: a broken expression is refused by the same
/// Prometheus.
#[tokio::test]
async fn a_broken_expression_is_refused_by_the_real_prometheus() {
    let r = common::client()
        .post(format!("{}/api/v1/query", stack().prometheus_url()))
        .form(&[("query", "sum by (route) (rate(aetos_requests_total[5m])")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[test]
fn the_job_variable_lists_aetos_jobs() {
    let d = dashboard();
    let vars = d["templating"]["list"].as_array().unwrap();
    let job = vars
        .iter()
        .find(|v| v["name"] == "job")
        .expect("a job variable");
    assert_eq!(job["definition"], "label_values(aetos_requests_total, job)");
    // Every panel is on the variable's jobs, none on every job of the server.
    for (title, expr) in dashboard_exprs(&d) {
        assert!(expr.contains("job=~\"$job\""), "{title}: {expr}");
    }
}
