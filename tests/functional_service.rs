//! The service end to end against the real stack: real Keystone tokens,
//! real policy decisions, a real Prometheus behind. Compatibility list
//! items of shared/reference/clients.md are named in the test names.
#![cfg(feature = "functional")]

mod common;

use common::{enc, json_of, label_values, prom_query, stack, token, Aetos};
use serde_json::Value;

const USERS: &[&str] = &[
    "aetos",
    "demo-admin",
    "demo-member",
    "demo-reader",
    "noroles",
];

fn demo() -> String {
    stack().project("demo")
}
fn other() -> String {
    stack().project("other")
}

#[tokio::test]
async fn item1_catalog_url_root_and_versions_document() {
    let a = Aetos::start("", None);
    let t = token("aetos").await;
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&t)).await).await;
    assert_eq!(st, 200);
    assert_eq!(v["status"], "success");
    // Both with and without the /prometheus root.
    let r = common::client()
        .get(format!("{}/api/v1/query?query=up", a.url))
        .header("X-Auth-Token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, v) = json_of(a.get("/", None).await).await;
    assert_eq!(st, 200);
    assert_eq!(
        v["versions"]["values"][0]["links"][0]["href"],
        format!("http://127.0.0.1:{}/prometheus/api/v1", a.port)
    );
    let r = common::client()
        .get(format!("{}/", a.url))
        .send()
        .await
        .unwrap();
    let (_, v) = json_of(r).await;
    assert_eq!(
        v["versions"]["values"][0]["links"][0]["href"],
        format!("http://127.0.0.1:{}/api/v1", a.port)
    );
}

#[tokio::test]
async fn versions_document_honours_proxy_headers_only_when_enabled() {
    let get = |a: &Aetos| {
        common::client()
            .get(format!("{}/prometheus/", a.url))
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "metrics.example.org")
            .header("X-Forwarded-Prefix", "/edge")
            .send()
    };
    let plain = Aetos::start("", None);
    let (_, v) = json_of(get(&plain).await.unwrap()).await;
    assert!(v["versions"]["values"][0]["links"][0]["href"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let proxied = Aetos::start(
        "[oslo_middleware]\nenable_proxy_headers_parsing = true\n",
        None,
    );
    let (_, v) = json_of(get(&proxied).await.unwrap()).await;
    assert_eq!(
        v["versions"]["values"][0]["links"][0]["href"],
        "https://metrics.example.org/edge/prometheus/api/v1"
    );
    let r = common::client()
        .get(format!("{}/prometheus/", proxied.url))
        .header(
            "Forwarded",
            "for=1.2.3.4;proto=https;host=\"[2001:db8::1]:8443\"",
        )
        .send()
        .await
        .unwrap();
    let (_, v) = json_of(r).await;
    assert_eq!(
        v["versions"]["values"][0]["links"][0]["href"],
        "https://[2001:db8::1]:8443/prometheus/api/v1"
    );
}

#[tokio::test]
async fn item2_missing_or_invalid_token_gets_keystone_401() {
    let a = Aetos::start("", None);
    for tok in [None, Some("garbage-token"), Some("")] {
        let r = a.get("/api/v1/query?query=up", tok).await;
        assert_eq!(r.status(), 401, "token {tok:?}");
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert_eq!(www, format!("Keystone uri=\"{}\"", stack().keystone_url()));
        let (_, v) = json_of(r).await;
        assert_eq!(v["error"]["code"], 401);
        assert_eq!(v["error"]["title"], "Unauthorized");
    }
}

#[tokio::test]
async fn revoked_token_gets_401() {
    // Like keystonemiddleware, a validated token stays valid in the caches
    // (local and memcached) for up to token_cache_time after a revocation;
    // so these two replicas share no memcached.
    let no_shared = "[keystone_authtoken]\nmemcached_servers =\n";
    let a = Aetos::start(no_shared, None);
    let t = common::fresh_token("demo-reader").await;
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&t)).await.status(),
        200
    );
    common::revoke(&t).await;
    // A fresh aetos has no cached positive entry for it.
    let b = Aetos::start(no_shared, None);
    assert_eq!(
        b.get("/api/v1/query?query=up", Some(&t)).await.status(),
        401
    );
}

#[tokio::test]
async fn item3_targets_privileged_unchanged_reader_forbidden() {
    let a = Aetos::start("", None);
    for user in ["aetos", "demo-admin"] {
        let (st, v) = json_of(
            a.get("/api/v1/targets?state=active", Some(&token(user).await))
                .await,
        )
        .await;
        assert_eq!(st, 200, "{user}");
        assert!(!v["data"]["activeTargets"].as_array().unwrap().is_empty());
    }
    for user in ["demo-reader", "demo-member", "noroles"] {
        let (st, v) = json_of(
            a.get("/api/v1/targets?state=active", Some(&token(user).await))
                .await,
        )
        .await;
        assert_eq!(st, 403, "{user}");
        assert_eq!(v["error"], "RBAC Authorization Failed");
    }
}

fn watcher_templates() -> Vec<String> {
    let (l, u, p) = ("fqdn", "resource", 300);
    let host = stack().s("/watcher/host");
    let uuid = stack().s("/watcher/instance_uuid");
    vec![
        format!("100 - (avg by ({l})(rate(node_cpu_seconds_total{{mode='idle',{l}='{host}'}}[{p}s])) * 100)"),
        format!("(node_memory_MemTotal_bytes{{{l}='{host}'}} - max_over_time(node_memory_MemAvailable_bytes{{{l}='{host}'}}[{p}s])) / 1024"),
        format!("min_over_time(ceilometer_memory_usage{{{u}='{uuid}'}}[{p}s])"),
        format!("clamp_max((avg by ({u})(rate(ceilometer_cpu{{{u}='{uuid}'}}[{p}s]))/10e+8) *(100/2), 100)"),
    ]
}

#[tokio::test]
async fn item4_watcher_templates_privileged_are_forwarded_unmodified() {
    // rate(…) at now - 30 s needs two samples before that instant.
    common::wait_for_history(std::time::Duration::from_secs(35)).await;
    let a = Aetos::start("", None);
    let t = token("aetos").await;
    let time = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 30
    );
    for q in watcher_templates() {
        let (st, via) = json_of(
            a.get(
                &format!("/api/v1/query?query={}&time={time}", enc(&q)),
                Some(&t),
            )
            .await,
        )
        .await;
        assert_eq!(st, 200, "{q}: {via}");
        assert_eq!(via["data"]["resultType"], "vector", "{q}");
        let direct = prom_query(&q, Some(&time)).await;
        assert_eq!(
            via, direct,
            "privileged answer differs from Prometheus' for {q}"
        );
        assert!(
            !via["data"]["result"].as_array().unwrap().is_empty(),
            "no data for {q}"
        );
    }
}

#[tokio::test]
async fn item5_runtimeinfo_privileged_only() {
    let a = Aetos::start("", None);
    let (st, v) = json_of(
        a.get("/api/v1/status/runtimeinfo", Some(&token("aetos").await))
            .await,
    )
    .await;
    assert_eq!(st, 200);
    assert!(v["data"]["startTime"].is_string());
    let r = a
        .get(
            "/api/v1/status/runtimeinfo",
            Some(&token("demo-reader").await),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = a
        .get("/api/v1/status/nonsense", Some(&token("aetos").await))
        .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn item6_metric_names_all_for_privileged_own_project_for_reader() {
    let a = Aetos::start("", None);
    let (st, all) = json_of(
        a.get("/api/v1/label/__name__/values", Some(&token("aetos").await))
            .await,
    )
    .await;
    assert_eq!(st, 200);
    let all: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for n in [
        "up",
        "demo_only_metric",
        "other_only_metric",
        "unlabelled_metric",
    ] {
        assert!(all.contains(&n), "privileged list lacks {n}");
    }
    let (st, mine) = json_of(
        a.get(
            "/api/v1/label/__name__/values",
            Some(&token("demo-reader").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    let mine: Vec<&str> = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(mine.contains(&"demo_only_metric"));
    assert!(mine.contains(&"ceilometer_cpu"));
    for n in ["up", "other_only_metric", "unlabelled_metric"] {
        assert!(!mine.contains(&n), "reader sees {n}");
    }
}

#[tokio::test]
async fn item7_parameters_forwarded_at_modifier_iso_time_timeout() {
    // prometheus_ready @ now - 20 s must exist.
    common::wait_for_history(std::time::Duration::from_secs(25)).await;
    let a = Aetos::start("", None);
    for user in ["aetos", "demo-reader"] {
        let t = token(user).await;
        let (st, v) = json_of(
            a.get(
                &format!("/api/v1/query?query={}", enc("last_over_time(up[5m])")),
                Some(&t),
            )
            .await,
        )
        .await;
        assert_eq!(st, 200, "{user}: {v}");
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 20;
        let (st, v) = json_of(
            a.get(
                &format!(
                    "/api/v1/query?query={}",
                    enc(&format!("prometheus_ready@{ts}"))
                ),
                Some(&t),
            )
            .await,
        )
        .await;
        assert_eq!(st, 200, "{user}: {v}");
        if user == "aetos" {
            assert_eq!(v["data"]["result"][0]["value"][1], "1");
        } else {
            // prometheus_ready has no project label: a reader sees nothing.
            assert_eq!(v["data"]["result"], Value::Array(vec![]));
        }
        let iso = humantime::format_rfc3339_seconds(
            std::time::SystemTime::now() - std::time::Duration::from_secs(10),
        )
        .to_string()
        .replace('Z', "+00:00");
        let (st, v) = json_of(
            a.get(
                &format!(
                    "/api/v1/query?query={}&time={}&timeout=30s",
                    enc("sum(ceilometer_cpu)"),
                    enc(&iso)
                ),
                Some(&t),
            )
            .await,
        )
        .await;
        assert_eq!(st, 200, "{user}: {v}");
        assert_eq!(v["data"]["resultType"], "vector");
    }
}

#[tokio::test]
async fn item9_reader_sees_only_own_project_in_any_query_form() {
    let a = Aetos::start("", None);
    let t = token("demo-reader").await;
    let demo = demo();
    let queries = [
        "ceilometer_cpu",
        "{__name__=~\"ceilometer_.*\"}",
        "{__name__=~\".+\"}",
        "{project=~\".+\"}",
        &format!("ceilometer_cpu{{project=\"{}\"}}", other()),
        "sum by (project) (rate(ceilometer_cpu[1m]))",
        "topk(100, ceilometer_memory_usage)",
        "ceilometer_cpu or ceilometer_memory_usage",
        "label_replace(ceilometer_cpu, \"x\", \"$1\", \"project\", \"(.*)\")",
        "max_over_time(ceilometer_cpu[1m:10s])",
        "count by (project) ({__name__!=\"\"})",
        "-ceilometer_cpu",
        "(ceilometer_cpu)",
        "ceilometer_cpu offset 10s",
        "ceilometer_cpu and on() vector(1)",
        "topk(scalar(count(demo_only_metric)) + 5, ceilometer_cpu)",
    ];
    for q in queries {
        let (st, v) = json_of(
            a.get(&format!("/api/v1/query?query={}", enc(q)), Some(&t))
                .await,
        )
        .await;
        assert_eq!(st, 200, "{q}: {v}");
        for p in label_values(&v, "project") {
            assert!(p == demo || p.is_empty(), "{q} leaked project {p:?}: {v}");
        }
        // A result series without a project label may only come from an
        // aggregation, never from a raw series of another project.
        if !q.starts_with("sum") && !q.starts_with("count") && !q.starts_with("topk(scalar") {
            for s in v["data"]["result"].as_array().unwrap() {
                if s["metric"].get("__name__").is_some() {
                    assert_eq!(
                        s["metric"]["project"],
                        Value::String(demo.clone()),
                        "{q}: {s}"
                    );
                }
            }
        }
    }
    // An aggregation *parameter* is scoped too: count(other_only_metric) is
    // empty for a demo reader, so topk's k is NaN and Prometheus refuses
    // the query, while a privileged caller gets an answer.
    let q = enc("topk(scalar(count(other_only_metric)), ceilometer_cpu)");
    let (st, v) = json_of(a.get(&format!("/api/v1/query?query={q}"), Some(&t)).await).await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (422, Some("execution")),
        "{v}"
    );
    let (st, _) = json_of(
        a.get(
            &format!("/api/v1/query?query={q}"),
            Some(&token("aetos").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    // Another project's filter answers nothing at all.
    let q = format!("ceilometer_cpu{{project=\"{}\"}}", other());
    let (_, v) = json_of(
        a.get(&format!("/api/v1/query?query={}", enc(&q)), Some(&t))
            .await,
    )
    .await;
    assert_eq!(v["data"]["result"], Value::Array(vec![]));
}

#[tokio::test]
async fn item9_queries_without_selectors_and_unknown_names_work_for_readers() {
    let a = Aetos::start("", None);
    let t = token("demo-reader").await;
    for (q, kind) in [
        ("1+1", "scalar"),
        ("vector(1)", "vector"),
        ("time()", "scalar"),
        ("\"hello\"", "string"),
    ] {
        let (st, v) = json_of(
            a.get(&format!("/api/v1/query?query={}", enc(q)), Some(&t))
                .await,
        )
        .await;
        assert_eq!(st, 200, "{q}: {v}");
        assert_eq!(v["data"]["resultType"], kind, "{q}");
    }
    let (st, v) = json_of(
        a.get("/api/v1/query?query=no_such_metric_anywhere", Some(&t))
            .await,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["data"]["result"], Value::Array(vec![]));
    // Label values that look like metric names are not touched.
    let q = "count(ceilometer_cpu{type=\"ceilometer_cpu\"}) or vector(0)";
    let (st, v) = json_of(
        a.get(&format!("/api/v1/query?query={}", enc(q)), Some(&t))
            .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test]
async fn scoped_bad_promql_is_a_prometheus_shaped_400() {
    let a = Aetos::start("", None);
    let (st, v) = json_of(
        a.get(
            "/api/v1/query?query=sum(",
            Some(&token("demo-reader").await),
        )
        .await,
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "bad_data");
}

#[tokio::test]
async fn item10_series_labels_label_values_scoped_with_params_preserved() {
    let a = Aetos::start("", None);
    let t = token("demo-reader").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (st, v) = json_of(
        a.get(
            &format!(
                "/api/v1/series?match[]={}&start={}&end={now}&limit=2",
                enc("{__name__=~\"ceilometer_.*\"}"),
                now - 600
            ),
            Some(&t),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let series = v["data"].as_array().unwrap();
    // Prometheus 2.42 ignores `limit`; that it is forwarded untouched is
    // checked against the recording endpoint in functional_grafana.rs.
    assert!(!series.is_empty());
    assert!(series.iter().all(|s| s["project"] == Value::String(demo())));
    // No match[] at all: the reader's own series only.
    let (st, v) = json_of(a.get("/api/v1/series", Some(&t)).await).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["project"] == Value::String(demo())));
    let (st, v) = json_of(a.get("/api/v1/label/project/values", Some(&t)).await).await;
    assert_eq!(st, 200);
    assert_eq!(v["data"], serde_json::json!([demo()]));
    let (st, v) = json_of(a.get("/api/v1/labels", Some(&t)).await).await;
    assert_eq!(st, 200);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .contains(&Value::from("project")));
    // Percent-encoded and repeated match[].
    let (st, v) = json_of(
        a.get(
            &format!(
                "/api/v1/label/project/values?match%5B%5D=up&match[]={}",
                enc("other_only_metric")
            ),
            Some(&t),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["data"], serde_json::json!([]));
}

#[tokio::test]
async fn item12_prometheus_errors_keep_status_and_body() {
    let a = Aetos::start("", None);
    let t = token("aetos").await;
    for q in ["sum(", "ceilometer_cpu + on() ceilometer_cpu"] {
        let url = format!("{}/api/v1/query?query={}", stack().prometheus_url(), enc(q));
        let direct = common::client().get(url).send().await.unwrap();
        let (dst, dbody) = (direct.status().as_u16(), direct.text().await.unwrap());
        let via = a
            .get(&format!("/api/v1/query?query={}", enc(q)), Some(&t))
            .await;
        assert_eq!(via.status().as_u16(), dst, "{q}");
        assert!(dst == 400 || dst == 422, "{q}: {dst}");
        assert_eq!(via.text().await.unwrap(), dbody, "{q}");
    }
}

#[tokio::test]
async fn spoofed_identity_headers_gain_nothing() {
    let a = Aetos::start("", None);
    let t = token("demo-reader").await;
    let spoof = |path: &str| {
        common::client()
            .get(format!("{}/prometheus{path}", a.url))
            .header("X-Auth-Token", &t)
            .header("X-Roles", "admin,service")
            .header("X-Project-Id", other())
            .header("X-Identity-Status", "Confirmed")
            .header("OpenStack-System-Scope", "all")
            .header("X-Service-Roles", "service")
            .header("X-Is-Admin-Project", "True")
            .send()
    };
    assert_eq!(
        spoof("/api/v1/targets?state=active")
            .await
            .unwrap()
            .status(),
        403
    );
    let (st, v) = json_of(spoof("/api/v1/query?query=ceilometer_cpu").await.unwrap()).await;
    assert_eq!(st, 200);
    assert!(label_values(&v, "project").iter().all(|p| *p == demo()));
    // No token at all, but every identity header: still 401.
    let r = common::client()
        .get(format!("{}/prometheus/api/v1/query?query=up", a.url))
        .header("X-Roles", "admin")
        .header("X-Project-Id", demo())
        .header("X-Identity-Status", "Confirmed")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// `X-Service-Token` as keystonemiddleware handles it: validated, its roles
/// checked against `service_token_roles`, and passed to the policy as
/// `service_roles` — never as the caller's own roles or project.
#[tokio::test]
async fn service_tokens_are_validated_and_reach_the_policy_only_as_service_roles() {
    // An operator rule that trusts readers when a service vouches for them.
    let policy = "\"telemetry:query:all_projects\": \"role:admin or service_roles:service\"\n";
    let a = Aetos::start("", Some(policy));
    let reader = token("demo-reader").await;
    let service = token("aetos").await;
    let member = token("demo-member").await;
    let query = |base: &str, service_token: Option<&str>, user: Option<&str>| {
        let mut rb = common::client().get(format!(
            "{base}/prometheus/api/v1/query?query=ceilometer_cpu"
        ));
        if let Some(t) = user {
            rb = rb.header("X-Auth-Token", t);
        }
        if let Some(t) = service_token {
            rb = rb.header("X-Service-Token", t);
        }
        rb.send()
    };
    let projects = |v: &Value| -> std::collections::HashSet<String> {
        label_values(v, "project").into_iter().collect()
    };
    // The reader alone: its own project.
    let (st, v) = json_of(query(&a.url, None, Some(&reader)).await.unwrap()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(projects(&v), [demo()].into());
    // With the service's token: the rule's service_roles:service holds.
    let (st, v) = json_of(query(&a.url, Some(&service), Some(&reader)).await.unwrap()).await;
    assert_eq!(st, 200, "{v}");
    assert!(projects(&v).contains(&other()), "{v}");
    // An invalid service token, or one without the service role while
    // service_token_roles_required = True: 401, Keystone-style.
    for bad in ["not-a-token", member.as_str()] {
        let r = query(&a.url, Some(bad), Some(&reader)).await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("www-authenticate"));
    }
    // A service token alone authenticates nobody.
    assert_eq!(
        query(&a.url, Some(&service), None).await.unwrap().status(),
        401
    );
    assert!(a.logs().contains("X-Service-Token refused"));
    assert!(!a.logs().contains(&service) && !a.logs().contains(&member));

    // Not required: the member's token is accepted with a warning, and its
    // roles reach the policy as service_roles only — no wider view.
    let lax = Aetos::start(
        "[keystone_authtoken]\nservice_token_roles_required = false\n",
        Some(policy),
    );
    let r = query(&lax.url, Some(&member), Some(&reader)).await.unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(projects(&v), [demo()].into());
    assert!(lax.logs().contains("without any of service_token_roles"));
}

#[tokio::test]
async fn every_route_for_every_kind_of_caller() {
    let a = Aetos::start("", None);
    // (path, method, expected status per USERS order: aetos, demo-admin, demo-member, demo-reader, noroles)
    let table: &[(&str, &str, [u16; 5])] = &[
        ("/api/v1/query?query=up", "GET", [200, 200, 200, 200, 403]),
        (
            "/api/v1/query_range?query=up&start=1&end=2&step=1",
            "GET",
            [200, 200, 200, 200, 403],
        ),
        (
            "/api/v1/series?match[]=up",
            "GET",
            [200, 200, 200, 200, 403],
        ),
        ("/api/v1/labels", "GET", [200, 200, 200, 200, 403]),
        ("/api/v1/label/job/values", "GET", [200, 200, 200, 200, 403]),
        (
            "/api/v1/targets?state=active",
            "GET",
            [200, 200, 403, 403, 403],
        ),
        (
            "/api/v1/status/runtimeinfo",
            "GET",
            [200, 200, 403, 403, 403],
        ),
        ("/api/v1/status/buildinfo", "GET", [200, 200, 200, 200, 200]),
        ("/api/v1/status/flags", "GET", [200, 200, 403, 403, 403]),
        ("/api/v1/query", "DELETE", [405, 405, 405, 405, 405]),
        (
            "/api/v1/admin/tsdb/snapshot",
            "GET",
            [405, 405, 405, 405, 405],
        ),
        (
            "/api/v1/admin/tsdb/clean_tombstones",
            "POST",
            [204, 204, 403, 403, 403],
        ),
    ];
    for (path, method, expected) in table {
        for (user, want) in USERS.iter().zip(expected) {
            let t = token(user).await;
            let r = common::client()
                .request(
                    method.parse().unwrap(),
                    format!("{}/prometheus{path}", a.url),
                )
                .header("X-Auth-Token", &t)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), *want, "{method} {path} as {user}");
            assert!(r.headers()["x-openstack-request-id"]
                .to_str()
                .unwrap()
                .starts_with("req-"));
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            if *want >= 400 {
                let (_, v) = json_of(r).await;
                assert_eq!(v["status"], "error", "{method} {path} as {user}");
            } else if *want == 200 {
                assert!(ct.unwrap_or_default().starts_with("application/json"));
            }
        }
        // Without a token and with a garbage token every API route is 401.
        for tok in [None, Some("garbage")] {
            let mut r = common::client().request(
                method.parse().unwrap(),
                format!("{}/prometheus{path}", a.url),
            );
            if let Some(t) = tok {
                r = r.header("X-Auth-Token", t);
            }
            let st = r.send().await.unwrap().status().as_u16();
            assert!(st == 401 || st == 405, "{method} {path} with {tok:?}: {st}");
        }
    }
}

#[tokio::test]
async fn healthcheck_is_unauthenticated_and_oslo_shaped() {
    let a = Aetos::start("", None);
    let r = common::client()
        .get(format!("{}/healthcheck", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "OK");
    let r = common::client()
        .head(format!("{}/prometheus/healthcheck", a.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, v) = json_of(
        common::client()
            .get(format!("{}/healthcheck?detailed", a.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["reasons"][0]["details"]["ready"], true);
    // Without `[healthcheck] detailed` the backend is not named.
    assert_eq!(v["reasons"][0]["details"]["backend"], "backend-1");
    assert!(!v.to_string().contains("127.0.0.1:9090"), "{v}");
    let b = Aetos::start("[healthcheck]\ndetailed = true\n", None);
    let (_, v) = json_of(
        common::client()
            .get(format!("{}/healthcheck", b.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(v["reasons"][0]["details"]["backend"]
        .as_str()
        .unwrap()
        .contains("127.0.0.1:9090"));
}

#[tokio::test]
async fn tokens_never_reach_logs_or_backend() {
    let a = Aetos::start("", None);
    let t = common::fresh_token("demo-reader").await;
    let _ = a.get("/api/v1/query?query=up", Some(&t)).await;
    let _ = a
        .get("/api/v1/query?query=up", Some("garbage-secret-token-value"))
        .await;
    let logs = a.logs();
    assert!(!logs.contains(&t), "user token in logs");
    assert!(
        !logs.contains("garbage-secret-token-value"),
        "bad token in logs"
    );
    assert!(
        !logs.contains(&stack().password("aetos")),
        "service password in logs"
    );
    assert!(
        logs.contains("req-"),
        "request ids missing from logs:\n{logs}"
    );
}

#[tokio::test]
async fn tokens_and_client_credentials_never_reach_the_backend() {
    let rec = common::Recorder::start();
    let a = Aetos::start(
        &format!("[prometheus]\nhost = 127.0.0.1\nport = {}\n", rec.port),
        None,
    );
    let service = token("aetos").await;
    for user in ["aetos", "demo-reader"] {
        let t = token(user).await;
        let r = common::client()
            .get(format!("{}/prometheus/api/v1/query?query=up&time=5", a.url))
            .header("X-Auth-Token", &t)
            .header("X-Service-Token", &service)
            .header("Authorization", "Bearer client-secret")
            .header("Cookie", "session=client-secret")
            .header("X-Roles", "admin")
            .header("X-Project-Id", "someone-else")
            .header("OpenStack-System-Scope", "all")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{user}");
        let reqs = rec.take();
        assert_eq!(reqs.len(), 1);
        let out = &reqs[0];
        for (k, v) in &out.headers {
            assert!(
                !v.contains(&t) && !v.contains(&service) && !v.contains("client-secret"),
                "{k}: {v} forwarded"
            );
            assert!(!common_identity_header(k), "identity header {k} forwarded");
        }
        if user == "aetos" {
            // Privileged: the query string byte for byte.
            assert_eq!(out.target(), "/api/v1/query?query=up&time=5");
        } else {
            assert_eq!(
                out.target(),
                format!(
                    "/api/v1/query?query={}&time=5",
                    enc(&format!("up{{project=\"{}\"}}", demo()))
                )
            );
        }
    }
}

fn common_identity_header(name: &str) -> bool {
    name.starts_with("x-") && name != "x-openstack-request-id"
        || name == "openstack-system-scope"
        || name == "cookie"
        || name == "authorization"
}

/// A forwarded answer keeps the backend's `Content-Length` (written as
/// such, not re-chunked), for a privileged and a scoped caller alike.
#[tokio::test]
async fn forwarded_answers_keep_the_backends_content_length() {
    let a = Aetos::start("", None);
    let direct = common::client()
        .get(format!(
            "{}/api/v1/status/buildinfo",
            stack().prometheus_url()
        ))
        .send()
        .await
        .unwrap();
    let want = direct
        .headers()
        .get("content-length")
        .expect("Prometheus sends a Content-Length for a small answer")
        .to_str()
        .unwrap()
        .to_owned();
    let r = a
        .get("/api/v1/status/buildinfo", Some(&token("aetos").await))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap()),
        Some(want.as_str())
    );
    assert!(r.headers().get("transfer-encoding").is_none());
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len().to_string(), want);
    let r = a
        .get("/api/v1/query?query=up", Some(&token("demo-reader").await))
        .await;
    assert_eq!(r.status(), 200);
    let n: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().len(), n);
}
