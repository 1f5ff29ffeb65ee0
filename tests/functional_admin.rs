//! Compatibility item 8: the admin TSDB endpoints, and the promise that a
//! scoped caller allowed by policy to delete can delete only its own
//! project's series.
#![cfg(feature = "functional")]

mod common;

use common::{enc, json_of, prom_query, stack, token, Aetos};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn present_at(metric: &str, project: &str, t: u64) -> bool {
    let v = prom_query(
        &format!("{metric}{{project=\"{project}\"}}"),
        Some(&t.to_string()),
    )
    .await;
    !v["data"]["result"].as_array().unwrap().is_empty()
}

#[tokio::test]
async fn item8_admin_endpoints_status_codes_and_bodies() {
    let a = Aetos::start("", None);
    let admin = token("demo-admin").await;
    let r = a.post("/api/v1/admin/tsdb/snapshot", Some(&admin)).await;
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200);
    assert!(v["data"]["name"].as_str().unwrap().len() > 8, "{v}");
    let r = a
        .post("/api/v1/admin/tsdb/clean_tombstones", Some(&admin))
        .await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    // delete_series with query-string parameters and an empty body.
    let t0 = now() - 5;
    let demo = stack().project("demo");
    assert!(
        present_at("aetos_test_delete_admin", &demo, t0).await,
        "fixture missing"
    );
    let r = a
        .post(
            &format!(
                "/api/v1/admin/tsdb/delete_series?match[]={}&start=0&end={}",
                enc("aetos_test_delete_admin"),
                now()
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    assert!(
        !present_at("aetos_test_delete_admin", &demo, t0).await,
        "not deleted"
    );
    for user in ["demo-member", "demo-reader", "noroles"] {
        for ep in ["snapshot", "clean_tombstones", "delete_series?match[]=up"] {
            let r = a
                .post(
                    &format!("/api/v1/admin/tsdb/{ep}"),
                    Some(&token(user).await),
                )
                .await;
            assert_eq!(r.status(), 403, "{user} {ep}");
        }
    }
}

#[tokio::test]
async fn item8_scoped_delete_touches_only_own_project() {
    // The operator lets members delete: they are scoped, not privileged.
    let policy = "\"telemetry:admin_delete_metrics\": \"role:member\"\n";
    let a = Aetos::start("", Some(policy));
    let member = token("demo-member").await;
    let (demo, other) = (stack().project("demo"), stack().project("other"));
    let t0 = now() - 5;
    assert!(present_at("aetos_test_delete_scoped", &demo, t0).await);
    assert!(present_at("aetos_test_delete_scoped", &other, t0).await);
    // Even naming the other project explicitly.
    let sel = format!("{{__name__=\"aetos_test_delete_scoped\",project=~\"{other}|{demo}\"}}");
    let r = a
        .post(
            &format!(
                "/api/v1/admin/tsdb/delete_series?match[]={}&start=0&end={}",
                enc(&sel),
                now()
            ),
            Some(&member),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert!(
        !present_at("aetos_test_delete_scoped", &demo, t0).await,
        "own series not deleted"
    );
    assert!(
        present_at("aetos_test_delete_scoped", &other, t0).await,
        "other project's series deleted!"
    );
    // Without match[] a scoped delete is refused, never widened.
    let r = a
        .post("/api/v1/admin/tsdb/delete_series", Some(&member))
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn deny_all_policy_override_forbids_everything() {
    // Upstream's functional tests set every rule to "!".
    let rules = [
        "telemetry:query",
        "telemetry:query:all_projects",
        "telemetry:label",
        "telemetry:label:all_projects",
        "telemetry:labels",
        "telemetry:labels:all_projects",
        "telemetry:series",
        "telemetry:series:all_projects",
        "telemetry:targets",
        "telemetry:status",
        "telemetry:admin_delete_metrics",
        "telemetry:admin_snapshot",
        "telemetry:admin_clean_tombstones",
    ];
    let policy: String = rules.iter().map(|r| format!("\"{r}\": \"!\"\n")).collect();
    let a = Aetos::start("", Some(&policy));
    let t = token("aetos").await;
    for path in [
        "/api/v1/query?query=up",
        "/api/v1/labels",
        "/api/v1/series?match[]=up",
        "/api/v1/label/job/values",
        "/api/v1/targets?state=active",
        "/api/v1/status/runtimeinfo",
    ] {
        assert_eq!(a.get(path, Some(&t)).await.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn policy_file_change_is_picked_up_without_restart() {
    let a = Aetos::start(
        "",
        Some("\"telemetry:query\": \"role:reader and project_id:%(project_id)s\"\n"),
    );
    let t = token("demo-reader").await;
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&t)).await.status(),
        200
    );
    std::fs::write(
        a.config_dir().join("policy.yaml"),
        "\"telemetry:query\": \"!\"\n",
    )
    .unwrap();
    let mut denied = false;
    for _ in 0..30 {
        if a.get("/api/v1/query?query=up", Some(&t)).await.status() == 403 {
            denied = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(denied, "policy change not picked up");
}
