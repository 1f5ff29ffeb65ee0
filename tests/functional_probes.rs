//! The platform's view of aetos: a stock Prometheus (the stack's
//! `prometheus` binary, started here with its own configuration and data
//! directory) scrapes aetos' internal listener (`[api] internal_listen`)
//! without a token, and aetos' own HA pool sits in front of two other
//! aetos processes with its default health check (`/-/ready`).
#![cfg(feature = "functional")]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, free_port, json_of, prometheus_section, tempdir, token, Aetos};
use serde_json::Value;

/// A Prometheus server of our own, killed on drop.
struct Scraper {
    url: String,
    child: Child,
    _dir: tempdir::Dir,
}

impl Scraper {
    fn start(scrape_config: &str) -> Scraper {
        let dir = tempdir::Dir::new("scraper");
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(
            &conf,
            format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{scrape_config}"),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the stack's prometheus binary starts");
        Scraper {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        }
    }

    /// The result vector of an instant query, [] until Prometheus answers.
    async fn query(&self, q: &str) -> Vec<Value> {
        let Ok(r) = client()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", q)])
            .send()
            .await
        else {
            return Vec::new();
        };
        let (_, body) = json_of(r).await;
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `probe` until it yields something, for at most a minute.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_stock_prometheus_scrapes_the_internal_listener_without_a_token() {
    let internal = free_port();
    let aetos = Aetos::start(
        &format!("[api]\ninternal_listen = 127.0.0.1:{internal}\n"),
        None,
    );
    // The API port's /metrics still wants a token.
    assert_eq!(aetos.get("/metrics", None).await.status(), 401);
    // A request to count: a scoped query with a real token.
    let r = aetos
        .get("/api/v1/query?query=up", Some(&token("demo-reader").await))
        .await;
    assert_eq!(r.status(), 200);
    let prom = Scraper::start(&format!(
        "  - job_name: aetos\n    static_configs:\n      - targets: ['127.0.0.1:{internal}']\n"
    ));
    let up = eventually("Prometheus scraped aetos", || async {
        let v = prom.query(r#"up{job="aetos"}"#).await;
        (v.first()?["value"][1] == "1").then_some(v)
    })
    .await;
    assert_eq!(up.len(), 1, "{up:?}");
    let counted = eventually("aetos_requests_total is stored", || async {
        let v = prom
            .query(
                r#"aetos_requests_total{job="aetos",route="query",access="scoped",status="200"}"#,
            )
            .await;
        (!v.is_empty()).then_some(v)
    })
    .await;
    assert_eq!(counted[0]["value"][1], "1", "{counted:?}");
    // The probes on both listeners, without a token.
    for url in [
        format!("http://127.0.0.1:{internal}/-/healthy"),
        format!("http://127.0.0.1:{internal}/-/ready"),
        format!("{}/-/ready", aetos.url),
        format!("{}/prometheus/-/healthy", aetos.url),
    ] {
        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
    }
    // The internal listener serves nothing else.
    let r = client()
        .get(format!("http://127.0.0.1:{internal}/api/v1/query?query=up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// An aetos in signing-proxy mode (what a front door forwards to) on
/// `[prometheus]`.
fn back_aetos(prometheus: &str) -> Aetos {
    let port = free_port();
    let conf = format!(
        "[DEFAULT]\nauth_mode = noauth\ndebug = true\n[api]\nhost = 127.0.0.1\nport = {port}\n\
         workers = 1\nunauthenticated_passthrough = true\n{prometheus}\n"
    );
    Aetos::start_with_config(port, &conf, None)
}

#[tokio::test]
async fn aetos_behind_aetos_takes_out_the_one_whose_prometheus_is_down() {
    let good = back_aetos(&prometheus_section());
    // Up and answering, but its own backend is not: /-/ready is 503.
    let dead = free_port();
    let stranded = back_aetos(&format!("[prometheus]\nhost = 127.0.0.1\nport = {dead}\n"));
    let r = client()
        .get(format!("{}/prometheus/-/ready", stranded.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.text().await.unwrap(), "NOT READY: no backend is ready");
    // The front door: Keystone in front, both back ends in its pool with
    // the default health check path.
    let front = Aetos::start(
        &format!(
            "[prometheus]\nurls = {}/prometheus, {}/prometheus\nhealth_check_interval = 0.5\n",
            good.url, stranded.url
        ),
        None,
    );
    let states = eventually("the front's health checks ran", || async {
        let (_, v) = json_of(front.get("/healthcheck?detailed", None).await).await;
        let ready: Vec<Value> = v["reasons"]
            .as_array()?
            .iter()
            .map(|r| r["details"].clone())
            .collect();
        (ready.len() == 2 && ready.iter().all(|d| !d["last_check"].is_null())).then_some(ready)
    })
    .await;
    assert_eq!(states[0]["ready"], true, "{states:?}");
    assert_eq!(states[1]["ready"], false, "{states:?}");
    // Every query goes to the ready one and succeeds.
    let t = token("demo-reader").await;
    for _ in 0..6 {
        let (status, body) = json_of(front.get("/api/v1/query?query=up", Some(&t)).await).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "success");
    }
    // Both back ends were asked /-/ready on their API port, without a token.
    for (back, status) in [(&good, 200), (&stranded, 503)] {
        let logs = back.logs();
        assert!(
            logs.lines().any(|l| l.contains("path=/prometheus/-/ready")
                && l.contains(&format!("status={status}"))),
            "{logs}"
        );
    }
    // The stranded one received no query.
    assert!(!stranded.logs().contains("path=/prometheus/api/v1/query"));
}
