//! Operating aetos: its own /metrics, SIGHUP and SIGTERM, CORS and the
//! healthcheck's file backends, with the real binary and real tokens.
#![cfg(feature = "functional")]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{json_of, token, Aetos, Recorder};

fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn signal(a: &Aetos, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(a.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test]
async fn metrics_move_with_requests_and_need_a_privileged_token() {
    let a = Aetos::start("", None);
    let admin = token("aetos").await;
    let reader = token("demo-reader").await;
    assert_eq!(a.get("/metrics", None).await.status(), 401);
    assert_eq!(a.get("/metrics", Some(&reader)).await.status(), 403);
    let before = a.get("/metrics", Some(&admin)).await.text().await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            a.get("/api/v1/query?query=up", Some(&reader))
                .await
                .status(),
            200
        );
    }
    assert_eq!(a.get("/api/v1/targets", Some(&reader)).await.status(), 403);
    let after = a.get("/metrics", Some(&admin)).await.text().await.unwrap();
    let scoped =
        "aetos_requests_total{route=\"query\",method=\"GET\",status=\"200\",access=\"scoped\"}";
    assert_eq!(
        metric_value(&after, scoped) - metric_value(&before, scoped),
        3.0,
        "{after}"
    );
    let denied =
        "aetos_requests_total{route=\"targets\",method=\"GET\",status=\"403\",access=\"denied\"}";
    assert_eq!(metric_value(&after, denied), 1.0);
    assert!(metric_value(&after, "aetos_token_cache_hits_total") >= 2.0);
    assert!(
        metric_value(
            &after,
            "aetos_backend_request_duration_seconds_count{route=\"query\"}"
        ) >= 3.0
    );
    assert!(after.contains("aetos_keystone_validation_duration_seconds_bucket"));
    assert!(
        !after.contains(&common::stack().project("demo")),
        "project ids must not be labels"
    );
}

#[tokio::test]
async fn sighup_reloads_policy_and_log_level_without_dropping_requests() {
    let a = Aetos::start(
        "",
        Some("\"telemetry:query\": \"role:reader and project_id:%(project_id)s\"\n"),
    );
    let t = common::fresh_token("demo-reader").await;
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&t)).await.status(),
        200
    );
    std::fs::write(
        a.config_dir().join("policy.yaml"),
        "\"telemetry:query\": \"!\"\n",
    )
    .unwrap();
    let conf = a.config_dir().join("aetos.conf");
    let text = std::fs::read_to_string(&conf)
        .unwrap()
        .replace("debug = true", "debug = false");
    std::fs::write(&conf, text).unwrap();
    // Requests keep flowing while the signal arrives.
    let url = format!("{}/prometheus/api/v1/query?query=up", a.url);
    let load = tokio::spawn({
        let t = t.clone();
        async move {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                let r = common::client()
                    .get(&url)
                    .header("X-Auth-Token", &t)
                    .send()
                    .await;
                statuses.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
            }
            statuses
        }
    });
    signal(&a, "HUP");
    let statuses = load.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 403),
        "{statuses:?}"
    );
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&t)).await.status(),
        403
    );
    let mut logs = String::new();
    for _ in 0..50 {
        logs = a.logs();
        if logs.contains("SIGHUP: log level reloaded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logs.contains("SIGHUP: policy reloaded"), "{logs}");
    // debug is off now: a new token's validation leaves no debug line.
    let before = logs.matches("token validated").count();
    assert!(before >= 1, "debug lines expected before the reload");
    let fresh = common::fresh_token("demo-member").await;
    let _ = a.get("/api/v1/query?query=up", Some(&fresh)).await;
    assert_eq!(a.logs().matches("token validated").count(), before);
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let slow = Recorder::start_with_delay(Duration::from_secs(2));
    let mut a = Aetos::start(
        &format!("[prometheus]\nhost = 127.0.0.1\nport = {}\n", slow.port),
        None,
    );
    let t = token("aetos").await;
    let url = format!("{}/prometheus/api/v1/query?query=up", a.url);
    let mut in_flight = Vec::new();
    for _ in 0..4 {
        let (url, t) = (url.clone(), t.clone());
        in_flight.push(tokio::spawn(async move {
            common::client()
                .get(&url)
                .header("X-Auth-Token", &t)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    // SIGTERM only once the slow backend holds all four (they are in flight).
    let deadline = Instant::now() + Duration::from_secs(30);
    while slow.requests.lock().unwrap().len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the four requests never reached the backend:\n{}",
            a.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&a, "TERM");
    let started = Instant::now();
    for r in in_flight {
        assert_eq!(
            r.await.unwrap().unwrap(),
            200,
            "an in-flight request was cut"
        );
    }
    let status = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert_eq!(slow.take().len(), 4);
}

#[tokio::test]
async fn cors_preflight_and_actual_request() {
    let a = Aetos::start(
        "[cors]\nallowed_origin = https://horizon.example.com\n",
        None,
    );
    let r = common::client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/prometheus/api/v1/query", a.url),
        )
        .header("Origin", "https://horizon.example.com")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "X-Auth-Token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://horizon.example.com"
    );
    let r = common::client()
        .get(format!("{}/prometheus/api/v1/query?query=up", a.url))
        .header("Origin", "https://horizon.example.com")
        .header("X-Auth-Token", token("demo-reader").await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://horizon.example.com"
    );
    assert!(r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("X-Openstack-Request-Id"));
    // A preflight grants nothing by itself: the actual request still needs a token.
    let r = common::client()
        .get(format!("{}/prometheus/api/v1/query?query=up", a.url))
        .header("Origin", "https://horizon.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn healthcheck_disable_by_file_backend() {
    let dir = common::tempdir::Dir::new("health");
    let flag = dir.path().join("disabled");
    let a = Aetos::start(
        &format!(
            "[healthcheck]\nbackends = disable_by_file\ndisable_by_file_path = {}\n",
            flag.display()
        ),
        None,
    );
    let get = || {
        common::client()
            .get(format!("{}/healthcheck", a.url))
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    std::fs::write(&flag, "").unwrap();
    let r = get().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "DISABLED BY FILE");
    let (st, _) = json_of(
        a.get("/api/v1/query?query=up", Some(&token("aetos").await))
            .await,
    )
    .await;
    assert_eq!(
        st, 200,
        "the API keeps serving while the health check says disabled"
    );
}

/// `n` GETs of `url` with `token` at once, each on a connection of its
/// own; every one must get 200.
async fn all_ok_at_once(url: &str, token: &str, n: usize) {
    let all: Vec<_> = (0..n)
        .map(|_| {
            let (url, t) = (url.to_owned(), token.to_owned());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(&url)
                    .header("X-Auth-Token", &t)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for r in all {
        assert_eq!(r.await.unwrap(), 200);
    }
}

#[tokio::test]
async fn concurrent_requests_with_a_new_token_cost_one_keystone_call() {
    // No memcached: every validation is this process' own.
    let a = Aetos::start("[keystone_authtoken]\nmemcached_servers =\n", None);
    let admin = token("aetos").await;
    let _ = a.get("/api/v1/query?query=up", Some(&admin)).await;
    let fresh = common::fresh_token("demo-member").await;
    let url = format!("{}/prometheus/api/v1/query?query=up", a.url);
    all_ok_at_once(&url, &fresh, 20).await;
    // And a flood of one bad token: Keystone is asked once, then the negative cache answers.
    for _ in 0..10 {
        assert_eq!(
            a.get("/api/v1/query?query=up", Some("not-a-real-token"))
                .await
                .status(),
            401
        );
    }
    let m = a.get("/metrics", Some(&admin)).await.text().await.unwrap();
    // One validation for the admin token, one for the fresh one, one for the bad one.
    assert_eq!(
        metric_value(&m, "aetos_keystone_validation_duration_seconds_count"),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric_value(&m, "aetos_token_negative_cache_hits_total"),
        9.0
    );
    assert_eq!(
        metric_value(&m, "aetos_keystone_errors_total{kind=\"invalid\"}"),
        1.0
    );
}

#[tokio::test]
async fn a_cached_token_is_validated_again_once_token_cache_time_has_passed() {
    // Two workers, no memcached: each worker thread remembers tokens in
    // front of the process' token cache; none may outlive token_cache_time.
    let a = Aetos::start(
        "[api]\nworkers = 2\n\n[keystone_authtoken]\nmemcached_servers =\ntoken_cache_time = 5\n",
        None,
    );
    let admin = token("aetos").await;
    let reader = common::fresh_token("demo-reader").await;
    let url = format!("{}/prometheus/api/v1/query?query=up", a.url);
    // Many connections at once, so that both workers see the token.
    let burst = || all_ok_at_once(&url, &reader, 16);
    let validations = || async {
        let m = a.get("/metrics", Some(&admin)).await.text().await.unwrap();
        metric_value(&m, "aetos_keystone_validation_duration_seconds_count")
    };
    let started = Instant::now();
    burst().await;
    burst().await;
    let first = validations().await;
    // The reader's and the admin's (metrics read within the cache time).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "too slow to tell"
    );
    assert_eq!(first, 2.0);
    tokio::time::sleep(Duration::from_millis(5500)).await;
    burst().await;
    let later = validations().await;
    // Both tokens again, once each, whichever worker asked first.
    assert_eq!(later, 4.0);
}
