//! Cost of the tenancy rewrite, next to the cost of the query itself.
//!
//! Criterion measures `scope_query` (parse, enforce, print, re-parse proof)
//! for Watcher's four query templates, `up`, and a 300+ character dashboard
//! query. Then, when the local stack is running (`tools/stack.sh start`;
//! `$AETOS_STACK_DIR/env.json`, default `<repo>/.stack/env.json`), the same
//! queries are executed by the real Prometheus at `prometheus_url` and the
//! ratio rewrite/Prometheus is printed per query. The rewrite must stay under
//! 5 % of the backend's time for the Watcher templates; the bench exits with
//! status 1 when it does not. Without a stack it says so and prints only the
//! rewrite figures. Rewrite and Prometheus timings are interleaved round
//! by round (medians of 40 rounds) so that both see the same load.
//!
//! Run: `cargo bench --bench tenancy` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aetos_tenancy::scope_query;
use criterion::Criterion;
use serde_json::Value;

const LABEL: &str = "project";
const PROJECT: &str = "c4275c194aa84d22b441fe052b43f2b8";
/// Largest accepted rewrite/Prometheus ratio for the Watcher templates.
const WATCHER_LIMIT: f64 = 0.05;

/// One benchmarked query.
struct Case {
    name: &'static str,
    query: String,
    watcher: bool,
}

/// Watcher's templates (clients.md), filled the way Watcher fills them:
/// single quotes, the host's `fqdn`, an instance `resource` uuid, periods in
/// seconds.
fn cases(host: &str, uuid: &str) -> Vec<Case> {
    let dashboard = "sum by (project_name, resource_name) (rate(ceilometer_cpu{project_name=~\"demo|other\", \
         type=\"cumulative\", resource_name!=\"\"}[5m])) / 1e9 * 100 + on (project_name, resource_name) \
         group_left () (0 * sum by (project_name, resource_name) (avg_over_time(ceilometer_memory_usage{unit=\"MB\", \
         server_group=~\"sg-.*\"}[30m] offset 1m)))"
        .to_owned();
    assert!(
        dashboard.len() >= 300,
        "dashboard query is {} chars",
        dashboard.len()
    );
    vec![
        Case {
            name: "watcher_host_cpu",
            query: format!(
                "100 - (avg by (fqdn)(rate(node_cpu_seconds_total{{mode='idle',fqdn='{host}'}}[300s])) * 100)"
            ),
            watcher: true,
        },
        Case {
            name: "watcher_host_memory",
            query: format!(
                "(node_memory_MemTotal_bytes{{fqdn='{host}'}} - avg_over_time(node_memory_MemAvailable_bytes{{fqdn='{host}'}}[300s])) / 1024"
            ),
            watcher: true,
        },
        Case {
            name: "watcher_instance_memory",
            query: format!("avg_over_time(ceilometer_memory_usage{{resource='{uuid}'}}[300s])"),
            watcher: true,
        },
        Case {
            name: "watcher_instance_cpu",
            query: format!(
                "clamp_max((avg by (resource)(rate(ceilometer_cpu{{resource='{uuid}'}}[300s]))/10e+8) *(100/2), 100)"
            ),
            watcher: true,
        },
        Case {
            name: "up",
            query: "up".to_owned(),
            watcher: false,
        },
        Case {
            name: "dashboard_300_chars",
            query: dashboard,
            watcher: false,
        },
    ]
}

/// The stack's main Prometheus, if a stack is running.
fn prometheus_url() -> Result<String, String> {
    let dir = std::env::var_os("AETOS_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".stack"));
    let path = dir.join("env.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let env: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    env["prometheus_url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no prometheus_url", path.display()))
}

/// A tiny blocking facade over reqwest for the timing loop.
struct Prom {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: String,
}

impl Prom {
    fn connect(url: String) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let prom = Self {
            rt,
            client: reqwest::Client::new(),
            url,
        };
        prom.query("1+1")
            .map_err(|e| format!("{} is not answering: {e}", prom.url))?;
        Ok(prom)
    }

    /// Run an instant query; return its JSON answer.
    fn query(&self, q: &str) -> Result<Value, String> {
        self.rt.block_on(async {
            let resp = self
                .client
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", q)])
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let body: Value = resp.json().await.map_err(|e| e.to_string())?;
            if body["status"] == "success" {
                Ok(body)
            } else {
                Err(body["error"].to_string())
            }
        })
    }

    /// First value of `label` among the answer's series.
    fn first_label(&self, q: &str, label: &str) -> Option<String> {
        let body = self.query(q).ok()?;
        body["data"]["result"][0]["metric"][label]
            .as_str()
            .map(str::to_owned)
    }

    /// Mean wall time of one execution of the query over `n` runs.
    fn mean_time(&self, q: &str, n: u32) -> Result<Duration, String> {
        let t = Instant::now();
        for _ in 0..n {
            self.query(q)?;
        }
        Ok(t.elapsed() / n)
    }
}

/// Mean time of one rewrite over `n` runs.
fn rewrite_time(q: &str, n: u32) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        black_box(scope_query(black_box(q), LABEL, PROJECT).expect("scoped"));
    }
    t.elapsed() / n
}

/// Median of `v` (sorted in place).
fn median<T: PartialOrd + Copy>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Rewrite and Prometheus timings, interleaved round by round so that both
/// see the same load on a shared machine; returns the medians of the
/// rewrite time, of the Prometheus time and of the per-round ratio.
fn compare(p: &Prom, q: &str) -> Result<(Duration, Duration, f64), String> {
    for _ in 0..10 {
        p.query(q)?;
    }
    rewrite_time(q, 500);
    let (mut rw, mut pr, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..40 {
        let r = rewrite_time(q, 100);
        let b = p.mean_time(q, 8)?;
        rw.push(r);
        pr.push(b);
        ratio.push(r.as_secs_f64() / b.as_secs_f64());
    }
    Ok((median(&mut rw), median(&mut pr), median(&mut ratio)))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let prom = prometheus_url().and_then(Prom::connect);
    let (host, uuid) = match &prom {
        Ok(p) => (
            p.first_label("group by (fqdn) (node_cpu_seconds_total)", "fqdn")
                .unwrap_or_else(|| "compute-0.localdomain".to_owned()),
            p.first_label("group by (resource) (ceilometer_cpu)", "resource")
                .unwrap_or_else(|| "35ed5d8e-e6a7-5323-81f2-675cbef1182d".to_owned()),
        ),
        Err(_) => (
            "compute-0.localdomain".to_owned(),
            "35ed5d8e-e6a7-5323-81f2-675cbef1182d".to_owned(),
        ),
    };
    let cases = cases(&host, &uuid);

    let mut c = Criterion::default().configure_from_args();
    for case in &cases {
        c.bench_function(&format!("tenancy/scope_query/{}", case.name), |b| {
            b.iter(|| scope_query(black_box(&case.query), LABEL, PROJECT))
        });
    }
    c.final_summary();
    if !bench_mode {
        return; // `cargo test --benches`: each benchmark ran once as a test
    }

    println!();
    let prom = match prom {
        Ok(p) => Some(p),
        Err(e) => {
            println!("no local stack ({e}): rewrite figures only, no Prometheus comparison");
            None
        }
    };
    if prom.is_some() {
        println!(
            "{:<24} {:>6} {:>12} {:>15} {:>8}",
            "query", "chars", "rewrite µs", "Prometheus µs", "ratio"
        );
    } else {
        println!("{:<24} {:>6} {:>12}", "query", "chars", "rewrite µs");
    }
    let mut over = Vec::new();
    for case in &cases {
        match &prom {
            Some(p) => match compare(p, &case.query) {
                Ok((rewrite, backend, ratio)) => {
                    println!(
                        "{:<24} {:>6} {:>12.1} {:>15.1} {:>7.2}%",
                        case.name,
                        case.query.len(),
                        micros(rewrite),
                        micros(backend),
                        ratio * 100.0
                    );
                    if case.watcher && ratio >= WATCHER_LIMIT {
                        over.push(case.name);
                    }
                }
                Err(e) => println!(
                    "{:<24} {:>6}  Prometheus error: {e}",
                    case.name,
                    case.query.len()
                ),
            },
            None => {
                let mut rw: Vec<Duration> =
                    (0..25).map(|_| rewrite_time(&case.query, 200)).collect();
                println!(
                    "{:<24} {:>6} {:>12.1}",
                    case.name,
                    case.query.len(),
                    micros(median(&mut rw))
                );
            }
        }
    }
    if prom.is_some() {
        if over.is_empty() {
            println!(
                "Watcher templates: rewrite < {:.0}% of Prometheus' time",
                WATCHER_LIMIT * 100.0
            );
        } else {
            println!(
                "OVER LIMIT ({:.0}%): {}",
                WATCHER_LIMIT * 100.0,
                over.join(", ")
            );
            std::process::exit(1);
        }
    }
}
