//! Faults with real components: Keystone and Prometheus stopped mid-run and
//! brought back. Runs as its own test binary, and its tests take turns, so
//! stopping a component never disturbs another test.
#![cfg(feature = "functional")]

mod common;

use common::{json_of, stack, Aetos};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn keystone_down_cached_tokens_work_new_tokens_get_503() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let a = Aetos::start("", None);
    let cached = common::fresh_token("demo-reader").await;
    let unseen = common::fresh_token("demo-member").await;
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&cached))
            .await
            .status(),
        200
    );
    stack().ctl(&["stop-component", "keystone"]);
    let still = a
        .get("/api/v1/query?query=up", Some(&cached))
        .await
        .status();
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&unseen)).await).await;
    stack().ctl(&["start-component", "keystone"]);
    assert_eq!(still, 200, "cached token refused while Keystone is down");
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "unavailable");
    // Keystone is back: the same new token is now accepted (503 was not cached).
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&unseen))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn prometheus_down_gives_502_json_and_recovers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let a = Aetos::start("", None);
    let t = common::token("aetos").await;
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&t)).await.status(),
        200
    );
    stack().ctl(&["stop-component", "prometheus"]);
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&t)).await).await;
    let health = common::client()
        .get(format!("{}/healthcheck?detailed", a.url))
        .send()
        .await
        .unwrap()
        .status();
    stack().ctl(&["start-component", "prometheus"]);
    assert!(st == 502 || st == 503, "{st}: {v}");
    assert_eq!(v["status"], "error");
    assert_eq!(health, 503);
    // Back in service without restarting aetos.
    let mut recovered = false;
    for _ in 0..50 {
        if a.get("/api/v1/query?query=up", Some(&t)).await.status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "aetos did not recover after Prometheus came back"
    );
}
