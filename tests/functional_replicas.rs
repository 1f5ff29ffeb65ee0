//! Two aetos-api replicas behind a real load balancer: Debian's haproxy,
//! run with `etc/haproxy/aetos.cfg` (the configuration the admin guide
//! shows, addresses from the environment), in front of two real aetos-api
//! processes in keystone mode that share a memcached of their own (started
//! here) for tokens and results, before the stack's Keystone and
//! Prometheus. What is proven, through haproxy and by asking each replica
//! directly:
//!
//! - a token one replica validated is a hit on the other: Keystone, seen
//!   through a recording relay, is asked once;
//! - a `query_range` one replica fetched is a hit on the other, with the
//!   same values (Prometheus, through a relay, is not asked again);
//! - under continuous concurrent load through haproxy, a SIGKILL of one
//!   replica loses at most the requests in flight on it, a SIGTERM (the
//!   graceful drain) none, and the survivor then answers everything; the
//!   scoped callers' answers stay scoped throughout.
//!
//! The Prometheus relay holds every request ~100 ms (so the load always
//! has requests in flight on both replicas) and a request naming
//! `drain-probe` 3 s (so one is certainly in flight when a replica is
//! signalled).
//!
//! The haproxy tests are skipped, with a message, when haproxy is not
//! installed — outside CI only: with `CI=true` a missing haproxy fails.
//! The drain a balancer relies on (API port closed at once, requests in
//! flight finished, internal listener up meanwhile) is also tested on one
//! replica alone, without haproxy.
#![cfg(feature = "functional")]

mod common;

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::memcached::Memcached;
use common::{free_port, fresh_token, stack, token, Aetos};
use serde_json::Value;

/// The load balancer's configuration, as shipped and documented.
const HAPROXY_CFG: &str = include_str!("../etc/haproxy/aetos.cfg");
/// The haproxy server names of the two replicas (index 0 and 1).
const NAMES: [&str; 2] = ["aetos-1", "aetos-2"];
/// Requests in flight through haproxy at any time during the load.
const CONCURRENCY: usize = 8;
/// Marks a request the Prometheus relay holds for [`PROBE_HOLD`] (twice
/// that when its label is `drain-probe-long`).
const PROBE_QUERY: &str = r#"label_replace(vector(1), "probe", "drain-probe", "", "")"#;
const PROBE_HOLD: Duration = Duration::from_secs(3);
/// How long the Prometheus relay holds every other request.
const BACKEND_DELAY: Duration = Duration::from_millis(100);

/// The recording relay to a stack service, holding each request `delay`
/// (a request naming `drain-probe`: [`PROBE_HOLD`], `drain-probe-long`
/// twice that) before passing it on.
struct Relay {
    port: u16,
    wire: common::relay::Relay,
    /// Probe requests that reached the relay.
    probes: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(upstream: &str, delay: Duration) -> Relay {
        let probes = Arc::new(AtomicUsize::new(0));
        let seen = probes.clone();
        let wire = common::relay::Relay::start(upstream, move |chunk| {
            if contains(chunk, b"drain-probe") {
                seen.fetch_add(1, Ordering::SeqCst);
                let long = contains(chunk, b"drain-probe-long");
                PROBE_HOLD * if long { 2 } else { 1 }
            } else if [&b"GET "[..], b"POST ", b"HEAD "]
                .iter()
                .any(|m| chunk.starts_with(m))
            {
                delay
            } else {
                Duration::ZERO
            }
        })
        .await;
        Relay {
            port: wire.port,
            wire,
            probes,
        }
    }

    /// Request heads sent upstream (lower-cased), with what follows them
    /// up to the next blank line (a body is glued to the next head).
    fn heads(&self) -> Vec<String> {
        self.wire
            .connections()
            .iter()
            .flat_map(|c| {
                c.to_ascii_lowercase()
                    .split("\r\n\r\n")
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Keystone validations of `token` (`GET /v3/auth/tokens` naming it).
    fn validations_of(&self, token: &str) -> usize {
        let subject = format!("x-subject-token: {}", token.to_ascii_lowercase());
        self.heads()
            .iter()
            .filter(|h| h.contains("get /v3/auth/tokens") && h.contains(&subject))
            .count()
    }

    /// `query_range` requests sent to Prometheus.
    fn range_queries(&self) -> usize {
        self.heads()
            .iter()
            .filter(|h| h.contains("get /api/v1/query_range?"))
            .count()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// haproxy with the shipped configuration, on free ports.
struct Haproxy {
    child: Child,
    url: String,
    stats: String,
    log: PathBuf,
    _dir: common::tempdir::Dir,
}

impl Haproxy {
    fn start(bin: &Path, replicas: [u16; 2]) -> Haproxy {
        let dir = common::tempdir::Dir::new("haproxy");
        let cfg = dir.path().join("aetos.cfg");
        std::fs::write(&cfg, HAPROXY_CFG).unwrap();
        let log = dir.path().join("haproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let (port, stats) = (free_port(), free_port());
        let check = Command::new(bin)
            .arg("-c")
            .arg("-f")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c refuses etc/haproxy/aetos.cfg:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        // -db: in the foreground, logging to stdout (the config's `log stdout`).
        let child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .env("AETOS_LB_BIND", format!("127.0.0.1:{port}"))
            .env("AETOS_LB_STATS", format!("127.0.0.1:{stats}"))
            .env("AETOS_REPLICA_1", format!("127.0.0.1:{}", replicas[0]))
            .env("AETOS_REPLICA_2", format!("127.0.0.1:{}", replicas[1]))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn haproxy");
        let mut h = Haproxy {
            child,
            url: format!("http://127.0.0.1:{port}"),
            stats: format!("http://127.0.0.1:{stats}/;csv"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err()
            || TcpStream::connect(("127.0.0.1", stats)).is_err()
        {
            if let Ok(Some(st)) = h.child.try_wait() {
                panic!("haproxy exited with {st}:\n{}", h.logs());
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not start:\n{}",
                h.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        h
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Requests haproxy's log says it sent again: the `retries` of the
    /// `actconn/feconn/beconn/srv_conn/retries` field that follows the
    /// termination state (`----`, `SD--`, …) in `option httplog` lines
    /// (`+N` when sent to another server).
    fn retried(&self) -> usize {
        let is_state =
            |t: &str| t.len() == 4 && t.chars().all(|c| c == '-' || c.is_ascii_uppercase());
        self.logs()
            .lines()
            .filter(|l| l.contains(" aetos aetos-api/"))
            .filter_map(|l| {
                let tokens: Vec<&str> = l.split_whitespace().collect();
                let i = tokens.iter().position(|t| is_state(t))?;
                let retries = tokens.get(i + 1)?.split('/').nth(4)?;
                retries.trim_start_matches('+').parse::<u32>().ok()
            })
            .filter(|r| *r > 0)
            .count()
    }

    /// The state haproxy gives `server` (`UP`, `DOWN`, `UP 1/2`, …), from
    /// its stats page.
    async fn state(&self, server: &str) -> String {
        let csv = common::client()
            .get(&self.stats)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (sv, status) = (col("svname"), col("status"));
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f.get(sv) == Some(&server))
            .map(|f| f[status].to_owned())
            .unwrap_or_else(|| panic!("no {server} in haproxy's stats:\n{csv}"))
    }

    /// Waits (at most 30 s) until haproxy says `server` is `want`.
    async fn wait_state(&self, server: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.state(server).await;
            if s == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy still says {server} is {s}, not {want}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- haproxy log (last 40 lines) ---");
            let logs = self.logs();
            let lines: Vec<&str> = logs.lines().collect();
            for l in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{l}");
            }
        }
    }
}

/// memcached, the relays, two replicas and haproxy in front of them.
struct Cluster {
    lb: Haproxy,
    replicas: [Option<Aetos>; 2],
    /// Each replica's API port and internal (metrics) port.
    ports: [(u16, u16); 2],
    /// Each replica's configuration, to start it again.
    confs: [String; 2],
    keystone: Relay,
    prometheus: Relay,
    memcached: Memcached,
}

/// Both replicas' memcached protection key: the same everywhere, or no
/// replica could read another's entries.
const MEMCACHE_KEY: &str = "replicas-test-shared-key";

fn replica_conf(
    port: u16,
    internal: u16,
    keystone: u16,
    prometheus: u16,
    memcached: &str,
) -> String {
    let ks = stack().keystone_url();
    let stack_memcached = format!("memcached_servers = {}\n", stack().s("/memcached"));
    let section = common::keystone_section();
    assert!(section.contains(&format!("auth_url = {ks}\n")) && section.contains(&stack_memcached));
    let section = section
        .replace(
            &format!("auth_url = {ks}\n"),
            &format!("auth_url = http://127.0.0.1:{keystone}/v3\n"),
        )
        .replace(
            &stack_memcached,
            &format!("memcached_servers = {memcached}\n"),
        );
    format!(
        "[DEFAULT]\nauth_mode = keystone\n\n\
         [api]\nhost = 127.0.0.1\nport = {port}\nworkers = 2\ninternal_listen = 127.0.0.1:{internal}\n\
         graceful_shutdown_timeout = 30\n\n\
         {section}memcache_security_strategy = ENCRYPT\nmemcache_secret_key = {MEMCACHE_KEY}\n\n\
         [prometheus]\nhost = 127.0.0.1\nport = {prometheus}\n\n\
         [cache]\nenabled = true\nbackend = memcached\nmemcached_servers = {memcached}\n\
         memcached_timeout = 1\nsplit_interval = 600\nfreshness = 60\n"
    )
}

impl Cluster {
    /// `None` (skipped) when haproxy is not installed, outside CI.
    async fn start() -> Option<Cluster> {
        let bin = common::optional_binary("haproxy", "haproxy")?;
        let memcached = Memcached::start();
        let keystone = Relay::start(&stack().keystone_url(), Duration::ZERO).await;
        let prometheus = Relay::start(&stack().prometheus_url(), BACKEND_DELAY).await;
        let ports = [(free_port(), free_port()), (free_port(), free_port())];
        let confs =
            ports.map(|(p, i)| replica_conf(p, i, keystone.port, prometheus.port, &memcached.addr));
        // Blocking waits: let the runtime's other thread serve the relays.
        let replicas = tokio::task::block_in_place(|| {
            [0, 1].map(|i| Some(Aetos::start_with_config(ports[i].0, &confs[i], None)))
        });
        let lb = tokio::task::block_in_place(|| Haproxy::start(&bin, [ports[0].0, ports[1].0]));
        let c = Cluster {
            lb,
            replicas,
            ports,
            confs,
            keystone,
            prometheus,
            memcached,
        };
        for name in NAMES {
            c.lb.wait_state(name, "UP").await;
        }
        Some(c)
    }

    fn replica(&self, i: usize) -> &Aetos {
        self.replicas[i].as_ref().expect("replica running")
    }

    /// A replica's own `/metrics` (its internal listener), summed by name.
    async fn metric(&self, i: usize, name: &str) -> f64 {
        let text = common::client()
            .get(format!("http://127.0.0.1:{}/metrics", self.ports[i].1))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sends `sig` (`-TERM`) to replica `i`.
    fn signal(&self, i: usize, sig: &str) {
        let pid = self.replica(i).child.id().to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }
}

/// GET through haproxy: status, the replica that answered, cache header, body.
async fn via(
    url: &str,
    path_and_query: &str,
    tok: &str,
) -> Result<(u16, Option<String>, Option<String>, String), String> {
    let r = common::client()
        .get(format!("{url}/prometheus{path_and_query}"))
        .header("X-Auth-Token", tok)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let (replica, cache) = (h("x-aetos-replica"), h("x-aetos-cache"));
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| format!("{e:?}"))?;
    Ok((status, replica, cache, body))
}

fn replica_index(name: Option<&str>) -> usize {
    NAMES
        .iter()
        .position(|n| Some(*n) == name)
        .unwrap_or_else(|| panic!("haproxy named no known replica: {name:?}"))
}

fn range_query(query: &str, start: i64, end: i64, step: u32) -> String {
    format!(
        "/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
        common::enc(query)
    )
}

/// The answer's series sorted by labels, each with its points.
fn series(body: &str) -> Vec<(String, Value)> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert_eq!(v["status"], "success", "{v}");
    let mut s: Vec<(String, Value)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["metric"].to_string(), s["values"].clone()))
        .collect();
    s.sort_by(|a, b| a.0.cmp(&b.0));
    s
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_or_a_result_one_replica_fetched_is_a_hit_on_the_other() {
    let Some(c) = Cluster::start().await else {
        return;
    };
    let lb = c.lb.url.clone();

    // a) A token nobody validated yet, through haproxy: one replica asks
    // Keystone, and writes the validation to memcached (in the background).
    let tok = fresh_token("demo-reader").await;
    let items = c.memcached.stat("curr_items");
    let (status, replica, _, body) = via(&lb, "/api/v1/query?query=up", &tok).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let first = replica_index(replica.as_deref());
    let other = 1 - first;
    assert_eq!(
        c.keystone.validations_of(&tok),
        1,
        "Keystone was asked once"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.memcached.stat("curr_items") <= items {
        assert!(
            Instant::now() < deadline,
            "the validation never reached memcached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The other replica, asked directly, has never seen the token.
    let r = c
        .replica(other)
        .get("/api/v1/query?query=up", Some(&tok))
        .await;
    assert_eq!(r.status(), 200);
    // And through haproxy, whichever replica answers, a few times.
    for _ in 0..4 {
        let (status, _, _, body) = via(&lb, "/api/v1/query?query=up", &tok).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        c.keystone.validations_of(&tok),
        1,
        "a replica validated with Keystone a token the other had validated"
    );
    // What each replica says, which must agree with what Keystone saw.
    let validations = "aetos_keystone_validation_duration_seconds_count";
    assert_eq!(c.metric(first, validations).await, 1.0);
    assert_eq!(c.metric(other, validations).await, 0.0);
    assert!(c.metric(other, "aetos_token_shared_cache_hits_total").await >= 1.0);

    // b) A query_range of the fixed data set, through haproxy: a miss, its
    // pieces fetched from Prometheus by one replica and stored in memcached.
    let admin = token("admin").await;
    let d = &stack().env["diff"];
    let (s, e) = (d["start"].as_i64().unwrap(), d["end"].as_i64().unwrap());
    let q = range_query("rate(diff_http_requests_total[5m])", s, e, 15);
    let want = common::client()
        .get(format!("{}{q}", stack().prometheus_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let want = series(&want);
    assert!(!want.is_empty(), "no data set in Prometheus");
    let (status, replica, cache, cold) = via(&lb, &q, &admin).await.unwrap();
    assert_eq!((status, cache.as_deref()), (200, Some("miss")), "{cold}");
    assert_eq!(series(&cold), want, "cold answer through haproxy");
    let first = replica_index(replica.as_deref());
    let other = 1 - first;
    let fetched = c.prometheus.range_queries();
    assert!(fetched > 0, "the relay saw no query_range");
    // Stored once the replica that fetched it answers it as a hit.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.replica(first).get(&q, Some(&admin)).await;
        if r.headers().get("x-aetos-cache").is_some_and(|v| v == "hit") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never a hit on the replica that fetched it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The other replica never asked for it: memcached answers.
    let r = c.replica(other).get(&q, Some(&admin)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-aetos-cache")
            .map(|v| v.to_str().unwrap()),
        Some("hit"),
        "the other replica did not find the entry"
    );
    assert_eq!(
        series(&r.text().await.unwrap()),
        want,
        "the other replica's hit"
    );
    for _ in 0..4 {
        let (status, _, cache, body) = via(&lb, &q, &admin).await.unwrap();
        assert_eq!((status, cache.as_deref()), (200, Some("hit")));
        assert_eq!(series(&body), want, "a hit through haproxy");
    }
    assert_eq!(
        c.prometheus.range_queries(),
        fetched,
        "Prometheus was asked again for pieces a replica had stored"
    );
    assert!(
        c.metric(other, "aetos_results_cache_answers_total").await >= 1.0,
        "the other replica counted no cache answer"
    );
}

/// A caller of the load and the project every answer must be of.
#[derive(Clone)]
struct Caller {
    token: String,
    project: String,
}

#[derive(Debug)]
enum Failure {
    /// No answer, or not a 200 success.
    Lost(String),
    /// An answer holding another project's series: never acceptable.
    Unscoped(String),
}

struct Outcome {
    start: Instant,
    end: Instant,
    replica: Option<String>,
    failure: Option<Failure>,
}

/// `CONCURRENCY` loops sending, through haproxy, alternately an instant
/// query (not cached: Prometheus, through the relay's delay) and a cached
/// `query_range`, as callers of two projects, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(lb: &str, callers: &[Caller], range: (i64, i64)) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        let tasks = (0..CONCURRENCY)
            .map(|i| {
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                let caller = callers[i % callers.len()].clone();
                let lb = lb.to_owned();
                tokio::spawn(async move {
                    let instant = "/api/v1/query?query=ceilometer_cpu".to_owned();
                    let ranged = range_query("ceilometer_cpu", range.0, range.1, 15);
                    let mut n = i;
                    while !stop.load(Ordering::SeqCst) {
                        n += 1;
                        let path = if n % 2 == 0 { &instant } else { &ranged };
                        let start = Instant::now();
                        let (replica, failure) = match via(&lb, path, &caller.token).await {
                            Err(e) => (None, Some(Failure::Lost(e))),
                            Ok((status, replica, _, body)) => {
                                (replica, judge(status, &body, &caller))
                            }
                        };
                        outcomes.lock().unwrap().push(Outcome {
                            start,
                            end: Instant::now(),
                            replica,
                            failure,
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            tasks,
        }
    }

    /// Requests that ended after `since` and were answered by `replica`.
    fn answered_by(&self, replica: &str, since: Instant) -> usize {
        self.outcomes
            .lock()
            .unwrap()
            .iter()
            .filter(|o| o.end > since && o.replica.as_deref() == Some(replica))
            .count()
    }

    /// Lets the load run until `replica` answered `n` more requests (at most 30 s).
    async fn until_answered(&self, replica: &str, n: usize) {
        let since = Instant::now();
        let deadline = since + Duration::from_secs(30);
        while self.answered_by(replica, since) < n {
            assert!(
                Instant::now() < deadline,
                "{replica} answered nothing through haproxy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// Whether an answer is a success holding only (and some of) the caller's series.
fn judge(status: u16, body: &str, caller: &Caller) -> Option<Failure> {
    if status != 200 {
        return Some(Failure::Lost(format!("{status}: {body}")));
    }
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Some(Failure::Lost(format!("not JSON: {body}")));
    };
    let Some(result) = v["data"]["result"]
        .as_array()
        .filter(|_| v["status"] == "success")
    else {
        return Some(Failure::Lost(format!("not a success: {body}")));
    };
    if result.is_empty() {
        return Some(Failure::Lost(format!("no series: {body}")));
    }
    let foreign: Vec<&Value> = result
        .iter()
        .filter(|s| s["metric"]["project"].as_str() != Some(&caller.project))
        .collect();
    (!foreign.is_empty()).then(|| Failure::Unscoped(format!("{foreign:?}")))
}

/// One phase of the load: the requests that ended in `[from, to)`.
struct Phase<'a> {
    name: &'static str,
    outcomes: Vec<&'a Outcome>,
}

impl<'a> Phase<'a> {
    fn of(all: &'a [Outcome], name: &'static str, from: Instant, to: Option<Instant>) -> Phase<'a> {
        Phase {
            name,
            outcomes: all
                .iter()
                .filter(|o| o.end >= from && to.is_none_or(|t| o.end < t))
                .collect(),
        }
    }

    /// Why each lost request was lost.
    fn lost(&self) -> Vec<&str> {
        self.outcomes
            .iter()
            .filter_map(|o| match &o.failure {
                Some(Failure::Lost(why)) => Some(why.as_str()),
                _ => None,
            })
            .collect()
    }

    fn by_replica(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for o in &self.outcomes {
            *m.entry(o.replica.clone().unwrap_or_else(|| "-".to_owned()))
                .or_default() += 1;
        }
        m
    }

    fn report(&self) {
        println!(
            "phase {}: {} requests, {} lost, answered by {:?}",
            self.name,
            self.outcomes.len(),
            self.lost().len(),
            self.by_replica()
        );
    }
}

/// Requests in flight (through haproxy) at `t`.
fn in_flight_at(all: &[Outcome], t: Instant) -> usize {
    all.iter().filter(|o| o.start < t && o.end > t).count()
}

/// A request held at the backend, sent directly to replica `i`; resolves
/// with its outcome. Returns once the relay holds it.
async fn probe(
    c: &Cluster,
    i: usize,
    admin: &str,
) -> tokio::task::JoinHandle<Result<String, String>> {
    let url = format!(
        "{}/prometheus/api/v1/query?query={}",
        c.replica(i).url,
        common::enc(PROBE_QUERY)
    );
    let held = c.prometheus.probes.load(Ordering::SeqCst);
    let admin = admin.to_owned();
    let task = tokio::spawn(async move {
        let r = common::client()
            .get(url)
            .header("X-Auth-Token", admin)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = r.status();
        let body = r.text().await.map_err(|e| format!("{e:?}"))?;
        if status != 200 {
            return Err(format!("{status}: {body}"));
        }
        Ok(body)
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.prometheus.probes.load(Ordering::SeqCst) == held {
        assert!(
            Instant::now() < deadline,
            "the probe never reached Prometheus"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_or_draining_a_replica_under_load_loses_only_what_was_in_flight_on_it() {
    let Some(mut c) = Cluster::start().await else {
        return;
    };
    // A range old enough to be cached (freshness 60 s), recent enough to
    // hold the live exporter's series of both projects.
    common::wait_for_history(Duration::from_secs(150)).await;
    let t0 = now();
    let range = (t0 - 150, t0 - 90);
    let callers = [
        Caller {
            token: token("demo-reader").await,
            project: stack().project("demo"),
        },
        Caller {
            token: token("other-member").await,
            project: stack().project("other"),
        },
    ];
    let admin = token("admin").await;
    let load = Load::start(&c.lb.url, &callers, range);
    let started = Instant::now();
    for name in NAMES {
        load.until_answered(name, 20).await;
    }

    // SIGKILL aetos-1 with a request in flight on it (the probe, sent to it
    // directly: nothing retries it, it is lost).
    let probe_1 = probe(&c, 0, &admin).await;
    let killed_at = Instant::now();
    c.replicas[0].as_mut().unwrap().child.kill().unwrap();
    c.replicas[0].as_mut().unwrap().child.wait().unwrap();
    let lost_probe = probe_1.await.unwrap();
    assert!(
        lost_probe.is_err(),
        "a request in flight on a killed replica was answered: {lost_probe:?}"
    );
    c.lb.wait_state(NAMES[0], "DOWN").await;
    load.until_answered(NAMES[1], 20).await;

    // haproxy logs a request when it ends: those sent again so far were in
    // flight on the killed replica (or met its closed port).
    let retried_at_kill = c.lb.retried();
    // A new aetos-1 (same port and configuration) joins again.
    let (port, conf) = (c.ports[0].0, c.confs[0].clone());
    let replaced = tokio::task::spawn_blocking(move || Aetos::start_with_config(port, &conf, None))
        .await
        .unwrap();
    c.replicas[0] = Some(replaced);
    c.lb.wait_state(NAMES[0], "UP").await;
    let rejoined_at = Instant::now();
    load.until_answered(NAMES[0], 20).await;

    // SIGTERM aetos-2 with a request in flight on it: the drain finishes it.
    let probe_2 = probe(&c, 1, &admin).await;
    let drained_at = Instant::now();
    c.signal(1, "-TERM");
    let drained = probe_2
        .await
        .unwrap()
        .expect("the request in flight on the draining replica");
    let v: Value = serde_json::from_str(&drained).unwrap();
    assert_eq!(
        v["data"]["result"][0]["metric"]["probe"], "drain-probe",
        "{v}"
    );
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
    // It exits by itself, cleanly, within the graceful shutdown timeout.
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(st) = c.replicas[1].as_mut().unwrap().child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "aetos-2 did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.success(),
        "aetos-2 exited with {status} after SIGTERM"
    );
    c.lb.wait_state(NAMES[1], "DOWN").await;
    let survivor_from = Instant::now();
    load.until_answered(NAMES[0], 50).await;
    let all = load.finish().await;

    let phases = [
        Phase::of(&all, "both replicas", started, Some(killed_at)),
        Phase::of(
            &all,
            "SIGKILL aetos-1 until it is back",
            killed_at,
            Some(rejoined_at),
        ),
        Phase::of(&all, "both again", rejoined_at, Some(drained_at)),
        Phase::of(
            &all,
            "SIGTERM aetos-2 until it is out",
            drained_at,
            Some(survivor_from),
        ),
        Phase::of(&all, "aetos-1 alone", survivor_from, None),
    ];
    for p in &phases {
        p.report();
    }
    println!(
        "in flight through haproxy: {} at the SIGKILL, {} at the SIGTERM (concurrency \
         {CONCURRENCY}); haproxy sent {retried_at_kill} requests again after the SIGKILL, {} \
         after the SIGTERM",
        in_flight_at(&all, killed_at),
        in_flight_at(&all, drained_at),
        c.lb.retried() - retried_at_kill
    );
    // Never another project's series, whatever happened.
    let unscoped: Vec<&str> = all
        .iter()
        .filter_map(|o| match &o.failure {
            Some(Failure::Unscoped(series)) => Some(series.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        unscoped.is_empty(),
        "answers with another project's series: {unscoped:?}"
    );
    let [both, killed, again, drain, alone] = &phases;
    assert!(
        both.lost().is_empty(),
        "lost with both replicas up: {:?}",
        both.lost()
    );
    assert!(
        killed.lost().len() <= CONCURRENCY,
        "SIGKILL lost more than the requests in flight: {:?}",
        killed.lost()
    );
    assert!(
        again.lost().is_empty(),
        "lost after the rejoin: {:?}",
        again.lost()
    );
    assert!(
        drain.lost().is_empty(),
        "the graceful drain lost requests: {:?}",
        drain.lost()
    );
    assert!(
        alone.lost().is_empty(),
        "lost on the survivor: {:?}",
        alone.lost()
    );
    assert_eq!(
        alone.by_replica().keys().collect::<Vec<_>>(),
        [NAMES[0]],
        "answered by another than the survivor"
    );
}

/// What a load balancer relies on, without one (so it runs where haproxy
/// is missing): on SIGTERM a replica with two workers, keep-alive
/// connections to its backend and the internal listener stops taking
/// connections on its API port at once (a health check fails), keeps the
/// internal listener up, finishes every request in flight, and exits 0.
///
/// The requests in flight are on both workers, and those of one worker
/// are held twice as long as the other's: one worker is done (and stops)
/// while the other still waits for Prometheus, on connections either
/// worker may have opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_the_api_port_and_finishes_the_requests_in_flight() {
    let prometheus = Relay::start(&stack().prometheus_url(), BACKEND_DELAY).await;
    let (port, internal) = (free_port(), free_port());
    let conf = format!(
        "[DEFAULT]\nauth_mode = keystone\n\n[api]\nhost = 127.0.0.1\nport = {port}\nworkers = 2\n\
         internal_listen = 127.0.0.1:{internal}\n\n{}\n[prometheus]\nhost = 127.0.0.1\nport = {}\n",
        common::keystone_section(),
        prometheus.port
    );
    let mut a = tokio::task::block_in_place(|| Aetos::start_with_config(port, &conf, None));
    let admin = token("admin").await;
    let ask = |query: String| {
        let url = format!(
            "{}/prometheus/api/v1/query?query={}",
            a.url,
            common::enc(&query)
        );
        let admin = admin.clone();
        // A client of its own: a connection of its own, which actix gives
        // the workers in turn.
        tokio::spawn(async move {
            let r = common::client()
                .get(url)
                .header("X-Auth-Token", admin)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = r.status().as_u16();
            Ok::<_, String>((status, r.text().await.map_err(|e| format!("{e:?}"))?))
        })
    };
    // Both workers open (and keep) backend connections.
    let warm: Vec<_> = (0..16).map(|_| ask("up".to_owned())).collect();
    for w in warm {
        assert_eq!(w.await.unwrap().unwrap().0, 200);
    }
    // Six requests held at the backend, short and long in turn.
    let mut in_flight = Vec::new();
    for i in 0..6 {
        let label = if i % 2 == 0 {
            "drain-probe"
        } else {
            "drain-probe-long"
        };
        let probed = prometheus.probes.load(Ordering::SeqCst);
        in_flight.push((
            label,
            ask(PROBE_QUERY.replace("\"drain-probe\"", &format!("\"{label}\""))),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while prometheus.probes.load(Ordering::SeqCst) == probed {
            assert!(
                Instant::now() < deadline,
                "a request never reached Prometheus"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let ok = Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // The API port refuses new connections (the requests are still held).
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the API port still accepts after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The internal listener is still up while the API drains.
    let r = common::client()
        .get(format!("http://127.0.0.1:{internal}/-/healthy"))
        .send()
        .await
        .expect("the internal listener answers during the drain");
    assert_eq!(r.status(), 200);
    assert!(
        in_flight.iter().all(|(_, t)| !t.is_finished()),
        "the drain was over before it could be observed"
    );
    for (label, t) in in_flight {
        let (status, body) = t.await.unwrap().expect("a request in flight at SIGTERM");
        assert_eq!(status, 200, "{label}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["result"][0]["metric"]["probe"], label, "{v}");
    }
    let deadline = Instant::now() + Duration::from_secs(45);
    let exit = loop {
        if let Some(st) = a.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "aetos did not exit after SIGTERM:\n{}",
            a.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "exit {exit} after SIGTERM:\n{}", a.logs());
    assert!(
        TcpStream::connect(("127.0.0.1", internal)).is_err(),
        "the internal listener outlived the process"
    );
}
