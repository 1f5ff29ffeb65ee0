//! The results cache (`[cache]`) against the stack's real Keystone and
//! Prometheus: through the cache — cold, warm, partially warm, across
//! interval boundaries, odd steps, `@` and `offset` — answers equal direct
//! Prometheus point for point; one project's entries never answer another,
//! privileged and scoped entries never mix; a memcached store (our own
//! memcached, started here) is shared by replicas and its loss only costs
//! misses. Identical requests sent together cost Prometheus one request
//! per piece (counted by a relay of our own in front of it), never across
//! projects or modes, and a waiter is answered when the request it waited
//! for goes away.
#![cfg(feature = "functional")]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::memcached::Memcached;
use common::{stack, token, Aetos};
use serde_json::Value;

/// The fixed data set of the differential tests (an hour, `diff` in env.json).
fn diff_range() -> (i64, i64) {
    let d = &stack().env["diff"];
    (d["start"].as_i64().unwrap(), d["end"].as_i64().unwrap())
}

/// `[cache]` on, in memory, cut every 10 minutes so the data set's hour
/// spans several intervals. The data set ends 5 minutes before the stack
/// made it, so on a fresh stack the default freshness (10 minutes) would
/// keep its last interval live: a freshness of one minute makes every
/// interval of it cacheable however old the stack is.
fn memory_cache() -> &'static str {
    "[cache]\nenabled = true\nsplit_interval = 600\nfreshness = 60\n"
}

fn range_params(query: &str, start: i64, end: i64, step: &str) -> Vec<(String, String)> {
    vec![
        ("query".to_owned(), query.to_owned()),
        ("start".to_owned(), start.to_string()),
        ("end".to_owned(), end.to_string()),
        ("step".to_owned(), step.to_owned()),
    ]
}

/// A `query_range` straight to the stack's Prometheus.
async fn direct(params: &[(String, String)]) -> Value {
    let r = common::client()
        .get(format!("{}/api/v1/query_range", stack().prometheus_url()))
        .query(params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// A `query_range` through aetos: status, `X-Aetos-Cache`, body.
async fn through(
    a: &Aetos,
    tok: &str,
    params: &[(String, String)],
    extra_header: Option<(&str, &str)>,
) -> (u16, Option<String>, Value) {
    let mut r = common::client()
        .get(format!("{}/prometheus/api/v1/query_range", a.url))
        .query(params)
        .header("X-Auth-Token", tok);
    if let Some((k, v)) = extra_header {
        r = r.header(k, v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-aetos-cache")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, cache, body)
}

/// The answer's series sorted by labels, each with its `[t, "v"]` points.
fn series(answer: &Value) -> Vec<(Value, Value)> {
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(answer["data"]["resultType"], "matrix", "{answer}");
    let mut s: Vec<(Value, Value)> = answer["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["metric"].clone(), s["values"].clone()))
        .collect();
    s.sort_by_key(|(m, _)| m.to_string());
    s
}

fn assert_same(ours: &Value, theirs: &Value, what: &str) {
    let (o, t) = (series(ours), series(theirs));
    assert!(
        !t.is_empty(),
        "{what}: the baseline has no series; is the data set loaded?"
    );
    assert_eq!(o.len(), t.len(), "{what}: series count");
    for ((om, ov), (tm, tv)) in o.iter().zip(&t) {
        assert_eq!(om, tm, "{what}: labels");
        assert_eq!(ov, tv, "{what}: points of {om}");
    }
}

#[tokio::test]
async fn cached_answers_equal_direct_prometheus() {
    let a = Aetos::start(memory_cache(), None);
    let admin = token("admin").await;
    let (s, e) = diff_range();
    // `@` a moment inside the data set, whenever the stack made it.
    let at = format!("diff_cpu_usage_ratio @ {}", (s + e) / 2);
    let queries = [
        "diff_cpu_usage_ratio",
        "rate(diff_http_requests_total[5m])",
        "sum by (project) (diff_memory_used_bytes)",
        "diff_queue_length offset 10m",
        at.as_str(),
        "max_over_time(diff_queue_length[10m:1m])",
        "histogram_quantile(0.9, sum by (le) (rate(diff_request_duration_seconds_bucket[5m])))",
    ];
    for q in queries {
        for step in ["15", "7", "61s"] {
            // Cold, then warm: the same answer, the second from the cache.
            let p = range_params(q, s + 3, e, step);
            let want = direct(&p).await;
            let (status, cache, cold) = through(&a, &admin, &p, None).await;
            assert_eq!(
                (status, cache.as_deref()),
                (200, Some("miss")),
                "{q} step {step}"
            );
            assert_same(&cold, &want, &format!("cold {q} step {step}"));
            let (status, cache, warm) = through(&a, &admin, &p, None).await;
            assert_eq!(
                (status, cache.as_deref()),
                (200, Some("hit")),
                "{q} step {step}"
            );
            assert_same(&warm, &want, &format!("warm {q} step {step}"));
        }
    }
    // Partially warm: a shorter range first, then one that holds it.
    let q = "rate(diff_http_requests_total[5m])";
    let inner = range_params(q, s + 1200, s + 2400, "15");
    let (_, cache, short) = through(&a, &admin, &inner, None).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_same(&short, &direct(&inner).await, "shorter range");
    let outer = range_params(q, s, e, "15");
    let (_, cache, long) = through(&a, &admin, &outer, None).await;
    assert_eq!(cache.as_deref(), Some("partial"));
    assert_same(&long, &direct(&outer).await, "longer range, partially warm");

    // The same through a form POST, answered from the entries of the GETs.
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(outer.iter())
        .finish();
    let r = a
        .post_form("/api/v1/query_range", &form, Some(&admin))
        .await;
    assert_eq!(r.headers().get("x-aetos-cache").unwrap(), "hit");
    let posted: Value = r.json().await.unwrap();
    assert_same(&posted, &direct(&outer).await, "POST form");

    // `@ start()` changes meaning when a range is split: not cached, and right.
    let p = range_params("diff_cpu_usage_ratio @ start()", s, e, "60");
    let (status, cache, body) = through(&a, &admin, &p, None).await;
    assert_eq!((status, cache), (200, None));
    assert_same(&body, &direct(&p).await, "@ start()");

    // A parameter the cache does not know: forwarded, not cached.
    let mut p = range_params("diff_cpu_usage_ratio", s, e, "60");
    p.push(("lookback_delta".to_owned(), "1m".to_owned()));
    let (status, cache, _) = through(&a, &admin, &p, None).await;
    assert_eq!((status, cache), (200, None));
}

#[tokio::test]
async fn cache_control_from_the_client_bypasses_the_cache() {
    let a = Aetos::start(memory_cache(), None);
    let admin = token("admin").await;
    let (s, e) = diff_range();
    let p = range_params("diff_queue_length", s, e, "30");
    // no-store: neither read nor written.
    let (_, cache, _) = through(&a, &admin, &p, Some(("Cache-Control", "no-store"))).await;
    assert_eq!(cache, None);
    let (_, cache, _) = through(&a, &admin, &p, None).await;
    assert_eq!(cache.as_deref(), Some("miss"), "no-store wrote nothing");
    // no-cache: not read (a miss although warm), but written.
    let (_, cache, body) = through(&a, &admin, &p, Some(("Cache-Control", "no-cache"))).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_same(&body, &direct(&p).await, "no-cache");
    let (_, cache, _) = through(&a, &admin, &p, None).await;
    assert_eq!(cache.as_deref(), Some("hit"));
}

/// Every `project` label value of an answer.
fn projects(answer: &Value) -> Vec<String> {
    let mut p: Vec<String> = series(answer)
        .iter()
        .map(|(m, _)| m["project"].as_str().unwrap_or("").to_owned())
        .collect();
    p.sort();
    p.dedup();
    p
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn one_projects_entries_never_answer_another() {
    // freshness 0: the recent past of the live exporters is cached too.
    let a = Aetos::start(
        "[cache]\nenabled = true\nsplit_interval = 600\nfreshness = 0\n",
        None,
    );
    common::wait_for_history(Duration::from_secs(120)).await;
    let demo = stack().project("demo");
    let other = stack().project("other");
    let reader_a = token("demo-reader").await;
    let member_b = token("other-member").await;
    let admin = token("admin").await;
    let end = now() - 30;
    let p = range_params("ceilometer_cpu", end - 90, end, "15");

    let (_, cache, a_cold) = through(&a, &reader_a, &p, None).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_eq!(projects(&a_cold), std::slice::from_ref(&demo));
    let (_, cache, a_warm) = through(&a, &reader_a, &p, None).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(projects(&a_warm), std::slice::from_ref(&demo));

    // B asks the same text: not A's entry, B's own data.
    let (_, cache, b) = through(&a, &member_b, &p, None).await;
    assert_eq!(
        cache.as_deref(),
        Some("miss"),
        "B was answered from A's entry"
    );
    assert_eq!(projects(&b), std::slice::from_ref(&other));
    let (_, cache, b) = through(&a, &member_b, &p, None).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(projects(&b), std::slice::from_ref(&other));

    // Privileged: neither scoped entry, every project.
    let (_, cache, all) = through(&a, &admin, &p, None).await;
    assert_eq!(
        cache.as_deref(),
        Some("miss"),
        "privileged answered from a scoped entry"
    );
    let all = projects(&all);
    assert!(all.contains(&demo) && all.contains(&other), "{all:?}");
    // And a scoped caller after the privileged entry exists: still its own.
    let (_, _, a_again) = through(&a, &reader_a, &p, None).await;
    assert_eq!(projects(&a_again), [demo]);
}

/// Asks until the answer is a hit (memcached writes are sent in the
/// background); panics after 50 tries.
async fn until_hit(a: &Aetos, tok: &str, p: &[(String, String)]) -> Value {
    for _ in 0..50 {
        let (status, cache, body) = through(a, tok, p, None).await;
        assert_eq!(status, 200);
        if cache.as_deref() == Some("hit") {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never a hit");
}

#[tokio::test]
async fn memcached_store_is_shared_and_its_loss_only_costs_misses() {
    let m = Memcached::start();
    let conf = format!(
        "{}backend = memcached\nmemcached_servers = {}\nmemcached_timeout = 0.3\n",
        memory_cache(),
        m.addr
    );
    let one = Aetos::start(&conf, None);
    let two = Aetos::start(&conf, None);
    let admin = token("admin").await;
    let (s, e) = diff_range();
    let p = range_params("rate(diff_http_requests_total[5m])", s, e, "15");
    let want = direct(&p).await;

    let (_, cache, cold) = through(&one, &admin, &p, None).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_same(&cold, &want, "cold, memcached");
    assert_same(&until_hit(&one, &admin, &p).await, &want, "warm, memcached");
    // The other replica has never seen the query: memcached answers it.
    let (_, cache, shared) = through(&two, &admin, &p, None).await;
    assert_eq!(cache.as_deref(), Some("hit"), "replicas share entries");
    assert_same(&shared, &want, "from the other replica");

    // memcached hangs (stopped): answered from Prometheus, correctly.
    m.signal("-STOP");
    let (status, cache, hung) = through(&two, &admin, &p, None).await;
    assert_eq!((status, cache.as_deref()), (200, Some("miss")));
    assert_same(&hung, &want, "memcached hung");
    // memcached gone: the same.
    m.signal("-CONT");
    drop(m);
    let (status, cache, gone) = through(&one, &admin, &p, None).await;
    assert_eq!((status, cache.as_deref()), (200, Some("miss")));
    assert_same(&gone, &want, "memcached gone");
}

#[tokio::test]
async fn instant_queries_with_a_time_are_cached_for_instant_ttl() {
    let a = Aetos::start(&format!("{}instant_ttl = 300\n", memory_cache()), None);
    let admin = token("admin").await;
    let at = stack().env["diff"]["eval_time"]
        .as_i64()
        .unwrap()
        .to_string();
    let ask = |time: Option<String>| {
        let mut params = vec![(
            "query",
            "sum by (project) (diff_memory_used_bytes)".to_owned(),
        )];
        if let Some(t) = time {
            params.push(("time", t));
        }
        let url = format!("{}/prometheus/api/v1/query", a.url);
        let admin = admin.clone();
        async move {
            let r = common::client()
                .get(url)
                .query(&params)
                .header("X-Auth-Token", admin)
                .send()
                .await
                .unwrap();
            let cache = r
                .headers()
                .get("x-aetos-cache")
                .map(|v| v.to_str().unwrap().to_owned());
            (cache, r.json::<Value>().await.unwrap())
        }
    };
    let want = common::prom_query("sum by (project) (diff_memory_used_bytes)", Some(&at)).await;
    assert_eq!(want["status"], "success");
    assert!(!want["data"]["result"].as_array().unwrap().is_empty());
    let (cache, cold) = ask(Some(at.clone())).await;
    assert_eq!(cache.as_deref(), Some("miss"));
    assert_eq!(cold["data"], want["data"]);
    let (cache, warm) = ask(Some(at.clone())).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(warm["data"], want["data"]);
    // Without `time` the answer is of "now": never cached.
    let (cache, _) = ask(None).await;
    assert_eq!(cache, None);
    let (cache, _) = ask(None).await;
    assert_eq!(cache, None);
}

/// The recording relay in front of the stack's Prometheus: every chunk
/// aetos sends is held `delay` before it is passed on, so that requests
/// sent together are in flight together, and kept, to count what
/// Prometheus was asked.
struct Relay {
    port: u16,
    wire: common::relay::Relay,
}

impl Relay {
    async fn start(delay: Duration) -> Relay {
        let wire = common::relay::Relay::start(&stack().prometheus_url(), move |_| delay).await;
        Relay {
            port: wire.port,
            wire,
        }
    }

    /// How many times Prometheus was sent each `GET` of `path`, by target
    /// (`path?query`).
    fn asked(&self, path: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for conn in self.wire.connections() {
            for line in conn.split("\r\n") {
                let Some(target) = line
                    .strip_prefix("GET ")
                    .and_then(|l| l.strip_suffix(" HTTP/1.1"))
                else {
                    continue;
                };
                if target.split('?').next() == Some(path) {
                    *out.entry(target.to_owned()).or_insert(0) += 1;
                }
            }
        }
        out
    }

    /// aetos' `[prometheus]` through this relay.
    fn section(&self) -> String {
        format!("[prometheus]\nhost = 127.0.0.1\nport = {}\n", self.port)
    }
}

/// Every target asked once: the `N` identical requests were one to Prometheus.
fn assert_each_asked_once(asked: &BTreeMap<String, usize>, what: &str) {
    for (target, n) in asked {
        assert_eq!(*n, 1, "{what}: Prometheus was asked {n} times for {target}");
    }
}

const N: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_cold_requests_cost_one_backend_request_per_piece() {
    // Every request held 1.5 s on its way: the N requests are all in flight at once.
    let relay = Relay::start(Duration::from_millis(1500)).await;
    let a = Aetos::start(
        &format!("{}instant_ttl = 300\n{}", memory_cache(), relay.section()),
        None,
    );
    let admin = token("admin").await;
    // The token validated before the burst (not through the relay's path).
    assert_eq!(a.get("/api/v1/labels", Some(&admin)).await.status(), 200);
    let (s, e) = diff_range();
    let p = range_params("rate(diff_http_requests_total[5m])", s, e, "15");
    let want = direct(&p).await;
    let answers =
        futures_util::future::join_all((0..N).map(|_| through(&a, &admin, &p, None))).await;
    for (i, (status, cache, body)) in answers.iter().enumerate() {
        assert_eq!((*status, cache.as_deref()), (200, Some("miss")), "#{i}");
        assert_same(body, &want, &format!("concurrent request #{i}"));
    }
    let asked = relay.asked("/api/v1/query_range");
    // The hour is cut every 10 minutes.
    assert!(asked.len() >= 6, "one request per piece: {asked:#?}");
    assert_each_asked_once(&asked, "query_range");
    // Stored by the one fetch: the next is a hit, with no new request.
    let (_, cache, warm) = through(&a, &admin, &p, None).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_same(&warm, &want, "warm");
    assert_eq!(relay.asked("/api/v1/query_range"), asked);

    // Instant queries with a time (instant_ttl): the same.
    let at = stack().env["diff"]["eval_time"]
        .as_i64()
        .unwrap()
        .to_string();
    let q = "sum by (project) (diff_memory_used_bytes)";
    let want = common::prom_query(q, Some(&at)).await;
    let url = format!("{}/prometheus/api/v1/query", a.url);
    let ask = || {
        let r = common::client()
            .get(&url)
            .query(&[("query", q), ("time", &at)])
            .header("X-Auth-Token", &admin)
            .send();
        async move {
            let r = r.await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    for got in futures_util::future::join_all((0..N).map(|_| ask())).await {
        assert_eq!(got["data"], want["data"]);
    }
    let asked = relay.asked("/api/v1/query");
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert_each_asked_once(&asked, "instant query");
    let metrics = a.get("/metrics", Some(&admin)).await.text().await.unwrap();
    let coalesced: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("aetos_results_cache_coalesced_total "))
        .unwrap_or_else(|| panic!("no coalesced counter:\n{metrics}"))
        .parse()
        .unwrap();
    assert!(coalesced > 0, "{coalesced}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_other_projects_and_modes_are_never_coalesced() {
    let relay = Relay::start(Duration::from_millis(1500)).await;
    let a = Aetos::start(
        &format!(
            "[cache]\nenabled = true\nsplit_interval = 600\nfreshness = 0\n{}",
            relay.section()
        ),
        None,
    );
    common::wait_for_history(Duration::from_secs(60)).await;
    let callers = [
        ("admin", None),
        ("demo-reader", Some(stack().project("demo"))),
        ("other-member", Some(stack().project("other"))),
    ];
    let mut tokens = Vec::new();
    for (user, _) in &callers {
        let t = token(user).await;
        assert_eq!(a.get("/api/v1/labels", Some(&t)).await.status(), 200);
        tokens.push(t);
    }
    let end = now() - 30;
    let p = range_params("ceilometer_cpu", end - 300, end, "15");
    // N of each caller, all at once, the same text.
    let (a, p) = (&a, &p);
    let burst = (0..N).flat_map(|_| {
        tokens
            .iter()
            .enumerate()
            .map(move |(i, t)| async move { (i, through(a, t, p, None).await) })
    });
    let answers = futures_util::future::join_all(burst).await;
    for (i, (user, project)) in callers.iter().enumerate() {
        // What the caller may see, straight from Prometheus.
        let q = match project {
            None => "ceilometer_cpu".to_owned(),
            Some(id) => format!("ceilometer_cpu{{project=\"{id}\"}}"),
        };
        let want = direct(&range_params(&q, end - 300, end, "15")).await;
        for (_, (status, _, body)) in answers.iter().filter(|(j, _)| *j == i) {
            assert_eq!(*status, 200, "{user}");
            assert_same(body, &want, user);
            if let Some(id) = project {
                assert_eq!(&projects(body), std::slice::from_ref(id), "{user}");
            }
        }
    }
    let asked = relay.asked("/api/v1/query_range");
    assert_each_asked_once(&asked, "three callers");
    // Each caller's own requests: privileged as sent, scoped with its matcher.
    for (user, project) in &callers {
        let theirs = asked
            .keys()
            .filter(|t| match project {
                None => !t.contains("project"),
                Some(id) => t.contains(id.as_str()),
            })
            .count();
        assert!(theirs >= 1, "{user} asked nothing of its own: {asked:#?}");
        assert_eq!(theirs * callers.len(), asked.len(), "{user}: {asked:#?}");
    }
}

/// The first caller leaves while Prometheus is still computing its piece,
/// which a second caller waits for. Whether the server then drops the
/// first request (and the second asks again) or lets it finish is the
/// HTTP layer's business (the coalescer's unit tests cover the drop):
/// either way the second is answered, correctly, and is not left hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_answered_when_the_request_it_waits_for_goes_away() {
    let relay = Relay::start(Duration::from_millis(1500)).await;
    let a = Aetos::start(&format!("{}{}", memory_cache(), relay.section()), None);
    let admin = token("admin").await;
    assert_eq!(a.get("/api/v1/labels", Some(&admin)).await.status(), 200);
    let (s, _) = diff_range();
    // One piece: inside one of the 10-minute intervals of the data set.
    let from = (s / 600 + 1) * 600 + 30;
    let p = range_params("diff_queue_length", from, from + 480, "30");
    let want = direct(&p).await;
    // The first caller gives up after 300 ms (its connection is closed)…
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let first = impatient
        .get(format!("{}/prometheus/api/v1/query_range", a.url))
        .query(&p)
        .header("X-Auth-Token", &admin)
        .send();
    // …the second asked the same meanwhile.
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        through(&a, &admin, &p, None).await
    };
    let (first, (status, cache, body)) = tokio::join!(first, second);
    assert!(first.is_err(), "the first caller was meant to give up");
    assert_eq!((status, cache.as_deref()), (200, Some("miss")));
    assert_same(&body, &want, "the waiter's answer");
    let asked = relay.asked("/api/v1/query_range");
    assert_eq!(asked.len(), 1, "{asked:#?}");
    // Once (the first request went on) or twice (it was cancelled and the
    // waiter asked again): never a hang, never more.
    let n = *asked.values().next().unwrap();
    assert!((1..=2).contains(&n), "{n}");
    eprintln!("the abandoned request's piece was asked {n} time(s)");
    let (_, cache, _) = through(&a, &admin, &p, None).await;
    assert_eq!(cache.as_deref(), Some("hit"));
}
