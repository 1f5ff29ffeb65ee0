//! aetos in front of a second real engine: the stack's VictoriaMetrics
//! single node (Debian's `victoria-metrics`, `tools/stack.sh`), which
//! scrapes the same exporter as the stack's Prometheus. The key scoped and
//! privileged cases of the tenancy and API tests, run against it, and the
//! MetricsQL extensions a scoped caller cannot use: our PromQL parser
//! cannot scope them, so they are refused with a 400, never forwarded
//! unscoped. A privileged caller's request is forwarded unchanged, so it
//! may use them. What differs is documented in
//! doc/source/configuration/backends.rst ("VictoriaMetrics").
#![cfg(feature = "functional")]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{enc, json_of, label_values, stack, token, Aetos};
use serde_json::Value;

fn vm_url() -> String {
    stack().s("/victoriametrics_url")
}

fn aetos() -> Aetos {
    Aetos::start(&format!("[prometheus]\nurl = {}\n", vm_url()), None)
}

/// Waits until VictoriaMetrics holds the exporter's series of both
/// projects (it scrapes every 5 s).
async fn wait_for_data() {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!(
        "{}/api/v1/query?query={}",
        vm_url(),
        enc("count by (project) (ceilometer_cpu)")
    );
    loop {
        if let Ok(r) = common::client().get(&url).send().await {
            if let Ok(v) = r.json::<Value>().await {
                let projects: BTreeSet<String> = label_values(&v, "project").into_iter().collect();
                if projects.contains(&stack().project("demo"))
                    && projects.contains(&stack().project("other"))
                {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "VictoriaMetrics at {} has no exporter data (tools/stack.sh start-component victoriametrics)",
            vm_url()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn projects_of(v: &Value) -> BTreeSet<String> {
    label_values(v, "project").into_iter().collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn scoped_and_privileged_reads_work_and_a_reader_sees_only_its_project() {
    wait_for_data().await;
    let a = aetos();
    let admin = token("aetos").await;
    let reader = token("demo-reader").await;
    let demo = stack().project("demo");
    let other = stack().project("other");

    // Instant query: privileged sees both projects, the reader only demo.
    let q = format!("/api/v1/query?query={}", enc("ceilometer_cpu"));
    let (st, v) = json_of(a.get(&q, Some(&admin)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(projects_of(&v).contains(&other), "{v}");
    let (st, v) = json_of(a.get(&q, Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(projects_of(&v), BTreeSet::from([demo.clone()]), "{v}");

    // An aggregation across projects is confined too.
    let q = format!(
        "/api/v1/query?query={}",
        enc("count by (project) (ceilometer_cpu)")
    );
    let (st, v) = json_of(a.get(&q, Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(projects_of(&v), BTreeSet::from([demo.clone()]), "{v}");
    // An explicit other project gives nothing, not its data.
    let q = format!(
        "/api/v1/query?query={}",
        enc(&format!("ceilometer_cpu{{project=\"{other}\"}}"))
    );
    let (st, v) = json_of(a.get(&q, Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(projects_of(&v).is_empty(), "{v}");

    // Range query (form POST, as Grafana sends it).
    let end = now();
    let body = format!(
        "query={}&start={}&end={end}&step=15",
        enc("rate(ceilometer_cpu[1m])"),
        end - 300
    );
    let (st, v) = json_of(
        a.post_form("/api/v1/query_range", &body, Some(&reader))
            .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    assert_eq!(projects_of(&v), BTreeSet::from([demo.clone()]), "{v}");

    // Series.
    let s = format!("/api/v1/series?match[]={}", enc("ceilometer_cpu"));
    let (st, v) = json_of(a.get(&s, Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    let series: BTreeSet<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["project"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(series, BTreeSet::from([demo.clone()]), "{v}");
    let (st, v) = json_of(a.get(&s, Some(&admin)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(v.to_string().contains(&other), "{v}");

    // Label names and values.
    let (st, v) = json_of(a.get("/api/v1/labels", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        names.contains(&"project") && names.contains(&"__name__"),
        "{v}"
    );
    let (st, v) = json_of(a.get("/api/v1/label/project/values", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"], serde_json::json!([demo]), "{v}");
    let (st, v) = json_of(a.get("/api/v1/label/project/values", Some(&admin)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["data"].as_array().unwrap().len() >= 2, "{v}");

    // No token: Keystone-style 401, nothing asked of the backend.
    let r = a.get("/api/v1/query?query=up", None).await;
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn metricsql_extensions_are_refused_for_scoped_callers_and_forwarded_for_privileged() {
    wait_for_data().await;
    let a = aetos();
    let admin = token("aetos").await;
    let reader = token("demo-reader").await;
    let other = stack().project("other");
    for q in [
        // WITH templates.
        "WITH (cpu = ceilometer_cpu) cpu".to_owned(),
        // keep_metric_names modifier.
        "rate(ceilometer_cpu[1m]) keep_metric_names".to_owned(),
        // or-filters inside one selector: the second branch would escape
        // a project matcher added to the first.
        format!("ceilometer_cpu{{project=\"x\" or project=\"{other}\"}}"),
        // MetricsQL-only functions and syntax.
        "range_median(ceilometer_cpu)".to_owned(),
        "ceilometer_cpu[5i]".to_owned(),
    ] {
        let path = format!("/api/v1/query?query={}", enc(&q));
        let (st, v) = json_of(a.get(&path, Some(&reader)).await).await;
        assert_eq!(st, 400, "{q}: {v}");
        assert_eq!(v["status"], "error", "{q}: {v}");
        assert_eq!(v["errorType"], "bad_data", "{q}: {v}");
        assert!(!v.to_string().contains(&other), "{q}: {v}");
    }
    // The reader cannot get the other project through an or-filter in any
    // read API either.
    let s = format!(
        "/api/v1/series?match[]={}",
        enc(&format!(
            "{{__name__=\"ceilometer_cpu\" or project=\"{other}\"}}"
        ))
    );
    let (st, v) = json_of(a.get(&s, Some(&reader)).await).await;
    assert_eq!(st, 400, "{v}");
    assert!(!v.to_string().contains(&other), "{v}");

    // Privileged requests are forwarded unchanged: VictoriaMetrics answers
    // its own language.
    let path = format!(
        "/api/v1/query?query={}",
        enc("WITH (cpu = ceilometer_cpu) count by (project) (cpu)")
    );
    let (st, v) = json_of(a.get(&path, Some(&admin)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(projects_of(&v).contains(&other), "{v}");
}
