//! `metadata` and `targets/metadata` against the stack's real Prometheus:
//! privileged callers get Prometheus' answer, readers only the metadata of
//! the targets holding their project's series (issue 9 item 3, issue 10
//! item 2).
//!
//! The stack's main Prometheus scrapes the shared exporter (every project's
//! series, `honor_labels`) and, as job `exporter-other`, the other
//! project's own exporter, which gives `ceilometer_cpu` a HELP text of its
//! own (tools/stack/exporter.py `OTHER_TARGET_CPU_HELP`).
#![cfg(feature = "functional")]

mod common;

use std::time::Duration;

use common::{client, enc, json_of, stack, token, Aetos};
use serde_json::Value;

/// `OTHER_TARGET_CPU_HELP` of tools/stack/exporter.py.
const OTHER_HELP: &str = "CPU time as only the other project's own exporter describes it";
const SHARED_HELP: &str = "CPU time used by the instance (ns)";

async fn prometheus(path: &str) -> Value {
    let r = client()
        .get(format!("{}{path}", stack().prometheus_url()))
        .send()
        .await
        .unwrap();
    json_of(r).await.1
}

/// Waits until Prometheus has scraped metadata of both exporters (right
/// after a restart of the stack it may take a scrape interval), and fails
/// with the way out when the stack predates the `exporter-other` target.
async fn wait_for_metadata() {
    for _ in 0..60 {
        let v = prometheus("/api/v1/targets/metadata?metric=ceilometer_cpu").await;
        let helps: Vec<&str> = v["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["help"].as_str()).collect())
            .unwrap_or_default();
        if helps.contains(&OTHER_HELP) && helps.contains(&SHARED_HELP) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let targets = prometheus("/api/v1/targets?state=active").await;
    panic!(
        "the stack's Prometheus has no metadata from both the shared exporter and the \
         `exporter-other` target; a stack started before that target was added needs \
         `tools/stack.sh restart`. Active targets: {}",
        targets["data"]["activeTargets"]
    );
}

fn entries_sorted(v: &Value) -> Vec<String> {
    let mut e: Vec<String> = v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data list: {v}"))
        .iter()
        .map(Value::to_string)
        .collect();
    e.sort();
    e
}

#[tokio::test]
async fn readers_never_see_metadata_text_only_another_projects_target_exports() {
    wait_for_metadata().await;
    let a = Aetos::start("", None);
    let reader = token("demo-reader").await;
    let (st, v) = json_of(a.get("/api/v1/metadata", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    let data = v["data"].as_object().unwrap();
    assert!(
        !v.to_string().contains(OTHER_HELP),
        "demo reader sees the other project's target text: {v}"
    );
    assert_eq!(
        data["ceilometer_cpu"],
        serde_json::json!([{"type":"counter","help":SHARED_HELP,"unit":""}])
    );
    for own in [
        "demo_only_metric",
        "ceilometer_memory_usage",
        "label_lookalike_info",
    ] {
        assert!(data.contains_key(own), "{own} missing: {v}");
    }
    for foreign in [
        "other_only_metric",
        "other_target_info",
        "prometheus_ready",
        "up",
    ] {
        assert!(!data.contains_key(foreign), "{foreign} shown: {v}");
    }
    // The same with metric=.
    let (st, v) = json_of(
        a.get("/api/v1/metadata?metric=ceilometer_cpu", Some(&reader))
            .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["data"],
        serde_json::json!({"ceilometer_cpu":[{"type":"counter","help":SHARED_HELP,"unit":""}]})
    );
    // The other project sees its own target's family, but not the HELP
    // text its target gives a family it has no series of there.
    let other = token("other-member").await;
    let (st, v) = json_of(a.get("/api/v1/metadata", Some(&other)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["data"]
        .as_object()
        .unwrap()
        .contains_key("other_target_info"));
    assert!(!v["data"]
        .as_object()
        .unwrap()
        .contains_key("demo_only_metric"));
    assert!(!v.to_string().contains(OTHER_HELP), "{v}");
    // A privileged caller gets Prometheus' answer: both texts.
    let (st, v) = json_of(
        a.get(
            "/api/v1/metadata?metric=ceilometer_cpu",
            Some(&token("aetos").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        v["data"]["ceilometer_cpu"].as_array().unwrap().len(),
        2,
        "{v}"
    );
}

#[tokio::test]
async fn reader_limits_count_only_its_own_metrics() {
    wait_for_metadata().await;
    let a = Aetos::start("", None);
    let reader = token("demo-reader").await;
    let (_, all) = json_of(a.get("/api/v1/metadata", Some(&reader)).await).await;
    let all = all["data"].as_object().unwrap().clone();
    assert!(all.len() >= 3, "{all:?}");
    for n in [1usize, 2] {
        let (st, v) = json_of(
            a.get(&format!("/api/v1/metadata?limit={n}"), Some(&reader))
                .await,
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let got = v["data"].as_object().unwrap();
        assert_eq!(got.len(), n, "limit={n}: {v}");
        for (k, e) in got {
            assert_eq!(
                all.get(k),
                Some(e),
                "{k} is not one of the reader's metrics"
            );
        }
    }
    let (st, v) = json_of(a.get("/api/v1/metadata?limit=0", Some(&reader)).await).await;
    assert_eq!((st, v["data"].clone()), (200, serde_json::json!({})));
    let (st, v) = json_of(
        a.get("/api/v1/metadata?limit_per_metric=1", Some(&reader))
            .await,
    )
    .await;
    assert_eq!(st, 200);
    assert!(v["data"]
        .as_object()
        .unwrap()
        .values()
        .all(|e| e.as_array().unwrap().len() == 1));
    let (st, v) = json_of(a.get("/api/v1/metadata?limit=x", Some(&reader)).await).await;
    assert_eq!(st, 400);
    assert_eq!(v["error"], "limit must be a number");
}

#[tokio::test]
async fn targets_metadata_whole_for_admin_own_entries_for_reader() {
    wait_for_metadata().await;
    let a = Aetos::start("", None);
    let admin = token("aetos").await;
    // Privileged: Prometheus' answer (target order is Prometheus' map
    // order, so compared as sets).
    let path = "/api/v1/targets/metadata?metric=ceilometer_cpu";
    let (st, mine) = json_of(a.get(path, Some(&admin)).await).await;
    assert_eq!(st, 200, "{mine}");
    assert_eq!(
        entries_sorted(&mine),
        entries_sorted(&prometheus(path).await)
    );
    assert_eq!(mine["data"].as_array().unwrap().len(), 2);

    let reader = token("demo-reader").await;
    let (st, v) = json_of(a.get("/api/v1/targets/metadata", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
    let entries = v["data"].as_array().unwrap();
    assert!(!entries.is_empty());
    let direct = entries_sorted(&prometheus("/api/v1/targets/metadata").await);
    for e in entries {
        assert_eq!(e["target"]["job"], "exporter", "{e}");
        assert_ne!(e["metric"], "other_only_metric");
        assert!(
            direct.contains(&e.to_string()),
            "not Prometheus' entry: {e}"
        );
    }
    assert!(entries.iter().any(|e| e["metric"] == "demo_only_metric"));
    assert!(!v.to_string().contains(OTHER_HELP));
    // metric= and match_target are forwarded and only narrow.
    let (st, v) = json_of(a.get(path, Some(&reader)).await).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"][0]["help"], SHARED_HELP);
    let (st, v) = json_of(
        a.get(
            &format!(
                "/api/v1/targets/metadata?match_target={}",
                enc("{job=\"exporter-other\"}")
            ),
            Some(&reader),
        )
        .await,
    )
    .await;
    assert_eq!((st, v["data"].clone()), (200, serde_json::json!([])));
    let (st, v) = json_of(
        a.get("/api/v1/targets/metadata?limit=0", Some(&reader))
            .await,
    )
    .await;
    assert_eq!((st, v["data"].clone()), (200, serde_json::json!([])));
    // A bad match_target is Prometheus' own error, passed through.
    let (st, v) = json_of(
        a.get(
            &format!("/api/v1/targets/metadata?match_target={}", enc("{job=")),
            Some(&reader),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["errorType"], "bad_data");
    // A caller without a role on any project is refused.
    let (st, _) = json_of(
        a.get("/api/v1/targets/metadata", Some(&token("noroles").await))
            .await,
    )
    .await;
    assert_eq!(st, 403);
}
