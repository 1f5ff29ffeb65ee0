//! Metric access rules (`[prometheus] metric_rules_file`) against the real
//! Keystone and Prometheus of the stack: what a scoped caller reads through
//! aetos equals the same query sent to Prometheus restricted by hand; denied
//! metrics answer empty successes and never leak through series, labels or
//! label values; the rules reload without a restart (file change and
//! SIGHUP); a broken file is refused with its file and line named.
#![cfg(feature = "functional")]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{enc, json_of, stack, tempdir, token, Aetos};
use serde_json::Value;

/// Readers see the Ceilometer metrics; demo's readers also see
/// demo_only_metric, but only its `kind="demo"` series.
fn rules(demo: &str) -> String {
    format!(
        "rules:\n  - roles: [reader]\n    allow:\n      - '{{__name__=~\"ceilometer_.*\"}}'\n  \
         - roles: [reader]\n    projects: [{demo}]\n    allow:\n      - 'demo_only_metric{{kind=\"demo\"}}'\n"
    )
}

fn start(file: &std::path::Path, interval: &str) -> Aetos {
    Aetos::start(
        &format!(
            "[prometheus]\nmetric_rules_file = {}\nmetric_rules_reload_interval = {interval}\n",
            file.display()
        ),
        None,
    )
}

/// A fixed evaluation time a little in the past, so that aetos and the
/// direct query read exactly the same samples.
fn at() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    (now - 30).to_string()
}

async fn through(a: &Aetos, tok: &str, query: &str, time: &str) -> (u16, Value) {
    let path = format!("/api/v1/query?query={}&time={time}", enc(query));
    json_of(a.get(&path, Some(tok)).await).await
}

/// The result as a sorted list of (labels, value) texts.
fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("not a vector: {v}"))
        .iter()
        .map(|s| format!("{} {}", s["metric"], s["value"][1]))
        .collect();
    out.sort();
    out
}

async fn wait_for_log(a: &Aetos, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.logs().contains(what) {
        assert!(Instant::now() < deadline, "no {what:?} in:\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn allowed_subset_equals_prometheus_restricted_by_hand() {
    let demo = stack().project("demo");
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(&file, rules(&demo)).unwrap();
    let a = start(&file, "5");
    let reader = token("demo-reader").await;
    let t = at();
    let p = format!("project=\"{demo}\"");
    let cases = [
        ("ceilometer_cpu", format!("ceilometer_cpu{{{p}}}")),
        (
            "sum by (resource) (ceilometer_memory_usage)",
            format!("sum by (resource) (ceilometer_memory_usage{{{p}}})"),
        ),
        (
            "demo_only_metric",
            format!("demo_only_metric{{kind=\"demo\",{p}}}"),
        ),
        (
            "count(ceilometer_cpu) + count(demo_only_metric)",
            format!("count(ceilometer_cpu{{{p}}}) + count(demo_only_metric{{kind=\"demo\",{p}}})"),
        ),
    ];
    for (query, by_hand) in &cases {
        let (st, got) = through(&a, &reader, query, &t).await;
        assert_eq!(st, 200, "{query}: {got}");
        let direct = common::prom_query(by_hand, Some(&t)).await;
        assert!(
            !sorted(&direct).is_empty(),
            "the fixture data has {by_hand}"
        );
        assert_eq!(sorted(&got), sorted(&direct), "{query}");
    }
    // Denied: an empty success, though the project has the series.
    for denied in ["label_lookalike_info", "sum(cli_delete_me)", "ALERTS"] {
        let (st, got) = through(&a, &reader, denied, &t).await;
        assert_eq!(st, 200, "{denied}: {got}");
        assert_eq!(sorted(&got), Vec::<String>::new(), "{denied}");
    }
    let direct = common::prom_query(&format!("label_lookalike_info{{{p}}}"), Some(&t)).await;
    assert!(!sorted(&direct).is_empty());
    // Another project's reader: only the first rule applies.
    let other = token("other-member").await;
    let (st, got) = through(&a, &other, "demo_only_metric", &t).await;
    assert_eq!((st, sorted(&got)), (200, vec![]));
    // A nameless selector under a name rule and a label rule together
    // cannot be one selector: refused, not widened.
    let (st, got) = through(&a, &reader, "count({job=\"exporter\"})", &t).await;
    assert_eq!(st, 400, "{got}");
    assert!(
        got["error"]
            .as_str()
            .unwrap()
            .contains("metric access rules"),
        "{got}"
    );
    // Privileged callers are not affected.
    let admin = token("admin").await;
    let (st, got) = through(&a, &admin, &format!("label_lookalike_info{{{p}}}"), &t).await;
    assert_eq!(st, 200);
    assert_eq!(sorted(&got), sorted(&direct));
}

#[tokio::test]
async fn series_labels_and_label_values_never_show_a_denied_metric() {
    let demo = stack().project("demo");
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(&file, rules(&demo)).unwrap();
    let a = start(&file, "5");
    let reader = token("demo-reader").await;
    let (st, v) = json_of(a.get("/api/v1/label/__name__/values", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.contains(&"ceilometer_cpu"), "{names:?}");
    assert!(names.contains(&"demo_only_metric"), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("ceilometer_") || *n == "demo_only_metric"),
        "{names:?}"
    );
    // `looks_like` is a label of label_lookalike_info only.
    let (st, v) = json_of(a.get("/api/v1/labels", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(!v.to_string().contains("looks_like"), "{v}");
    assert!(v.to_string().contains("resource_name"), "{v}");
    let (st, v) = json_of(
        a.get("/api/v1/label/looks_like/values", Some(&reader))
            .await,
    )
    .await;
    assert_eq!((st, v["data"].clone()), (200, serde_json::json!([])), "{v}");
    // An explicit nameless match[]: the union of the rules, as two match[].
    let m = enc("{job=\"exporter\"}");
    let (st, v) = json_of(
        a.get(&format!("/api/v1/series?match[]={m}"), Some(&reader))
            .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let series = v["data"].as_array().unwrap();
    assert!(!series.is_empty());
    for s in series {
        let name = s["__name__"].as_str().unwrap();
        assert!(
            name.starts_with("ceilometer_") || (name == "demo_only_metric" && s["kind"] == "demo"),
            "{s}"
        );
    }
    // The same without rules shows what the rules hide (the test can fail).
    let plain = Aetos::start("", None);
    let (_, v) = json_of(plain.get("/api/v1/labels", Some(&reader)).await).await;
    assert!(v.to_string().contains("looks_like"), "{v}");
}

#[tokio::test]
async fn rules_reload_on_change_and_on_sighup_and_a_broken_file_keeps_the_last_good() {
    let demo = stack().project("demo");
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(&file, rules(&demo)).unwrap();
    let a = start(&file, "0.2");
    let reader = token("demo-reader").await;
    let t = at();
    let count = |v: &Value| sorted(v).len();
    let (_, v) = through(&a, &reader, "label_lookalike_info", &t).await;
    assert_eq!(count(&v), 0);
    // Changed on disk: applied without a restart.
    std::fs::write(&file, "rules:\n  - allow: [label_lookalike_info]\n").unwrap();
    wait_for_log(&a, "metric access rules reloaded").await;
    let (_, v) = through(&a, &reader, "label_lookalike_info", &t).await;
    assert_eq!(count(&v), 1, "{v}");
    let (_, v) = through(&a, &reader, "ceilometer_cpu", &t).await;
    assert_eq!(count(&v), 0, "{v}");
    // Broken: logged, the last good rules stay.
    std::fs::write(&file, "rules:\n  - allow: ['sum(up)']\n").unwrap();
    wait_for_log(&a, "metric access rules not reloaded").await;
    assert!(a.logs().contains("line 2"), "{}", a.logs());
    let (_, v) = through(&a, &reader, "label_lookalike_info", &t).await;
    assert_eq!(count(&v), 1, "{v}");

    // SIGHUP, with a watch interval too long to be the cause.
    std::fs::write(&file, "rules:\n  - allow: [label_lookalike_info]\n").unwrap();
    let b = start(&file, "3600");
    std::fs::write(&file, rules(&demo)).unwrap();
    let (_, v) = through(&b, &reader, "ceilometer_cpu", &t).await;
    assert_eq!(count(&v), 0, "{v}");
    let st = Command::new("kill")
        .arg("-HUP")
        .arg(b.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    wait_for_log(&b, "metric access rules reloaded").await;
    let (_, v) = through(&b, &reader, "ceilometer_cpu", &t).await;
    assert_eq!(count(&v), 2, "{v}");
}

#[test]
fn check_config_names_the_file_and_line_of_a_bad_rule() {
    let dir = tempdir::Dir::new("rules");
    let file = dir.path().join("metric-rules.yaml");
    std::fs::write(
        &file,
        "rules:\n  - roles: [reader]\n    allow:\n      - up\n      - 'rate(up[5m])'\n",
    )
    .unwrap();
    let conf = dir.path().join("aetos.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\nauth_mode = noauth\n[prometheus]\nmetric_rules_file = {}\n",
            file.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("[prometheus] metric_rules_file"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("line 5"), "{err}");
    // A YAML error carries the parser's line too.
    std::fs::write(&file, "rules:\n  - allow: [up\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aetos-api"))
        .arg("--config-file")
        .arg(&conf)
        .arg("check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("line"), "{err}");
}
