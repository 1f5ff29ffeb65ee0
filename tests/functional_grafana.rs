//! Beyond upstream: the read API Grafana and Prometheus tooling need, with
//! Grafana's exact request shapes, as privileged and scoped callers.
#![cfg(feature = "functional")]

mod common;

use common::{enc, json_of, label_values, stack, token, Aetos};
use serde_json::{json, Value};

fn demo() -> String {
    stack().project("demo")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Creates an application credential for `user` in the real Keystone.
async fn app_credential(user: &str) -> (String, String) {
    let s = stack();
    let t = common::fresh_token(user).await;
    let uid = s.s(&format!("/users/{user}/id"));
    let r = common::client()
        .post(format!("{}/users/{uid}/application_credentials", s.keystone_url().trim_end_matches('/')))
        .header("X-Auth-Token", &t)
        .json(&json!({"application_credential": {"name": format!("grafana-{}", common::free_port())}}))
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 201, "{v}");
    (
        v["application_credential"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        v["application_credential"]["secret"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test]
async fn grafana_health_check_and_buildinfo_for_reader_and_admin() {
    let a = Aetos::start("", None);
    for user in ["aetos", "demo-reader"] {
        let t = token(user).await;
        let (st, v) = json_of(
            a.post_form("/api/v1/query", "query=1%2B1&time=4", Some(&t))
                .await,
        )
        .await;
        assert_eq!(st, 200, "{user}: {v}");
        assert_eq!(
            v["data"],
            json!({"resultType": "scalar", "result": [4, "2"]})
        );
        let (st, v) = json_of(a.get("/api/v1/status/buildinfo", Some(&t)).await).await;
        assert_eq!(st, 200, "{user}");
        assert!(v["data"]["version"].is_string());
    }
}

#[tokio::test]
async fn query_range_panels_as_form_post_and_get() {
    let a = Aetos::start("", None);
    let (end, start) = (now() - 5, now() - 120);
    let q = "sum by (project) (rate(ceilometer_cpu[1m]))";
    let form = format!(
        "query={}&start={start}&end={end}&step=15&timeout=30s",
        enc(q)
    );
    for user in ["aetos", "demo-reader"] {
        let t = token(user).await;
        let (st, post) = json_of(a.post_form("/api/v1/query_range", &form, Some(&t)).await).await;
        assert_eq!(st, 200, "{user}: {post}");
        assert_eq!(post["data"]["resultType"], "matrix");
        let (_, get) = json_of(
            a.get(&format!("/api/v1/query_range?{form}"), Some(&t))
                .await,
        )
        .await;
        assert_eq!(post, get, "GET and POST differ for {user}");
        let projects = label_values(&post, "project");
        if user == "demo-reader" {
            assert_eq!(projects, vec![demo()]);
        } else {
            assert!(projects.len() >= 2, "{projects:?}");
        }
    }
}

#[tokio::test]
async fn editor_calls_labels_values_series_metadata_scoped() {
    let a = Aetos::start("", None);
    let t = token("demo-reader").await;
    let (start, end) = (now() - 3600, now());
    let (st, v) = json_of(
        a.get(
            &format!(
                "/api/v1/label/project/values?start={start}&end={end}&match[]={}",
                enc("{__name__=~\".+\"}")
            ),
            Some(&t),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["data"], json!([demo()]));
    let (st, v) = json_of(
        a.post_form(
            "/api/v1/labels",
            &format!("start={start}&end={end}"),
            Some(&t),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = json_of(
        a.post_form(
            "/api/v1/series",
            &format!(
                "match[]={}&start={start}&end={end}&limit=40000",
                enc("ceilometer_cpu")
            ),
            Some(&t),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["project"] == Value::String(demo())));
    // Prometheus learns metadata from scrapes: right after a restart of the
    // stack's Prometheus (functional_faults) it may take a scrape interval.
    let admin = token("aetos").await;
    for _ in 0..60 {
        let (_, all) = json_of(a.get("/api/v1/metadata", Some(&admin)).await).await;
        let all = all["data"].as_object().cloned().unwrap_or_default();
        if all.contains_key("prometheus_ready") && all.contains_key("ceilometer_cpu") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let (st, v) = json_of(a.get("/api/v1/metadata", Some(&t)).await).await;
    assert_eq!(st, 200);
    let names: Vec<&String> = v["data"].as_object().unwrap().keys().collect();
    assert!(names.iter().any(|n| *n == "ceilometer_cpu"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| *n == "other_only_metric" || *n == "prometheus_ready"),
        "{names:?}"
    );
    let (st, all) = json_of(a.get("/api/v1/metadata", Some(&token("aetos").await)).await).await;
    assert_eq!(st, 200);
    assert!(all["data"]
        .as_object()
        .unwrap()
        .contains_key("prometheus_ready"));
}

#[tokio::test]
async fn parameters_in_url_and_body_are_both_scoped_and_never_moved() {
    let rec = common::Recorder::start();
    let a = Aetos::start(
        &format!("[prometheus]\nhost = 127.0.0.1\nport = {}\n", rec.port),
        None,
    );
    let t = token("demo-reader").await;
    let r = common::client()
        .post(format!(
            "{}/prometheus/api/v1/query?query={}&time=4",
            a.url,
            enc("a")
        ))
        .header("X-Auth-Token", &t)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("query={}&timeout=5s", enc("b")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = &rec.take()[0];
    let scoped = |m: &str| enc(&format!("{m}{{project=\"{}\"}}", demo()));
    assert_eq!(
        out.target(),
        format!("/api/v1/query?query={}&time=4", scoped("a"))
    );
    assert_eq!(out.body, format!("query={}&timeout=5s", scoped("b")));
    // Duplicated match[] in both places.
    let r = common::client()
        .post(format!(
            "{}/prometheus/api/v1/series?match[]=x&match%5B%5D=y",
            a.url
        ))
        .header("X-Auth-Token", &t)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body("match[]=z&start=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = &rec.take()[0];
    assert_eq!(
        out.target(),
        format!(
            "/api/v1/series?match%5B%5D={}&match%5B%5D={}",
            scoped("x"),
            scoped("y")
        )
    );
    assert_eq!(out.body, format!("match%5B%5D={}&start=1", scoped("z")));
    // Editor parameters (start, end, limit) reach the backend untouched.
    let r = a
        .get(
            "/api/v1/series?match[]=up&start=10&end=20&limit=2",
            Some(&t),
        )
        .await;
    assert_eq!(r.status(), 200);
    let out = &rec.take()[0];
    assert_eq!(
        out.target(),
        format!(
            "/api/v1/series?match%5B%5D={}&start=10&end=20&limit=2",
            scoped("up")
        )
    );
}

#[tokio::test]
async fn bad_bodies_get_json_errors() {
    let a = Aetos::start("[api]\nmax_request_body_size = 1024\n", None);
    let t = token("demo-reader").await;
    let big = format!("query={}", "x".repeat(4096));
    let (st, v) = json_of(a.post_form("/api/v1/query", &big, Some(&t)).await).await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(v["status"], "error");
    let r = common::client()
        .post(format!("{}/prometheus/api/v1/query", a.url))
        .header("X-Auth-Token", &t)
        .header("Content-Type", "application/json")
        .body("{\"query\":\"up\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // An empty form body is fine: the parameters are in the URL.
    let (st, _) = json_of(
        a.post_form("/api/v1/query?query=vector(1)", "", Some(&t))
            .await,
    )
    .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn privileged_only_status_endpoints_and_filtered_rules_alerts() {
    let a = Aetos::start("", None);
    let admin = token("aetos").await;
    let reader = token("demo-reader").await;
    for ep in ["status/flags", "status/config", "status/tsdb"] {
        assert_eq!(
            a.get(&format!("/api/v1/{ep}"), Some(&admin)).await.status(),
            200,
            "{ep}"
        );
        assert_eq!(
            a.get(&format!("/api/v1/{ep}"), Some(&reader))
                .await
                .status(),
            403,
            "{ep}"
        );
    }
    for ep in ["rules", "alerts"] {
        let (st, v) = json_of(a.get(&format!("/api/v1/{ep}"), Some(&reader)).await).await;
        assert_eq!(st, 200, "{ep}: {v}");
        assert_eq!(v["status"], "success");
    }
    let (st, v) = json_of(
        a.get(
            &format!(
                "/api/v1/query_exemplars?query={}&start=1&end={}",
                enc("ceilometer_cpu"),
                now()
            ),
            Some(&reader),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let r = common::client()
        .get(format!(
            "{}/prometheus/federate?match[]={}",
            a.url,
            enc("{__name__=~\"ceilometer_.*\"}")
        ))
        .header("X-Auth-Token", &reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let other = stack().project("other");
    assert!(
        text.contains(&demo()) && !text.contains(&other),
        "federate leaked:\n{text}"
    );
}

#[tokio::test]
async fn basic_auth_with_application_credential() {
    let a = Aetos::start("", None);
    let (id, secret) = app_credential("demo-reader").await;
    let r = common::client()
        .get(format!(
            "{}/prometheus/api/v1/query?query=ceilometer_cpu",
            a.url
        ))
        .basic_auth(&id, Some(&secret))
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{v}");
    assert!(label_values(&v, "project").iter().all(|p| *p == demo()));
    // Twice more: served from the exchanged-token cache.
    for _ in 0..2 {
        let r = common::client()
            .post(format!("{}/prometheus/api/v1/query", a.url))
            .basic_auth(&id, Some(&secret))
            .form(&[("query", "1+1"), ("time", "4")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = common::client()
        .get(format!("{}/prometheus/api/v1/query?query=up", a.url))
        .basic_auth(&id, Some("wrong-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert!(!a.logs().contains(&secret), "secret in logs");
}
