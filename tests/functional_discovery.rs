//! Backends discovered by DNS (`[prometheus] urls = dns+… / dnssrv+…`),
//! against a real DNS server: Debian's dnsmasq, started here on 127.0.0.1
//! on a free port with only the records of a hosts file this test rewrites
//! (dnsmasq reads it again on SIGHUP) and SRV records of its command line.
//!
//! The A/AAAA case needs several addresses serving one port: the test
//! starts two small real Prometheus servers of its own on 127.0.0.2 and
//! 127.0.0.3 (same port), each with an external label naming it, and uses
//! 127.0.0.4 (nothing listens there) as a dead address. The SRV case points
//! at the stack's two HA Prometheus instances (different ports).
//!
//! Which backend answered is read from `/api/v1/status/config` (its
//! external labels), through aetos with a privileged token.
#![cfg(feature = "functional")]

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{json_of, stack, token, Aetos};
use serde_json::Value;

/// A dnsmasq answering only for `*.disco.test`, from `hosts` and `srv`.
struct Dnsmasq {
    child: Child,
    port: u16,
    hosts: PathBuf,
    log: PathBuf,
    _dir: common::tempdir::Dir,
}

impl Dnsmasq {
    fn start(hosts: &str, srv: &[&str]) -> Dnsmasq {
        let dir = common::tempdir::Dir::new("dnsmasq");
        let hosts_path = dir.path().join("hosts");
        std::fs::write(&hosts_path, hosts).unwrap();
        let log = dir.path().join("dnsmasq.log");
        let port = free_udp_and_tcp_port();
        let mut cmd = Command::new(dnsmasq_binary());
        cmd.arg("--keep-in-foreground")
            .arg("--conf-file=/dev/null")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg("--no-poll")
            .arg("--bind-interfaces")
            // Authoritative for the test's domain: unknown names are NXDOMAIN.
            .arg("--local=/disco.test/")
            .arg("--listen-address=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", hosts_path.display()))
            .arg("--pid-file=")
            .arg("--local-ttl=0")
            .arg("--log-queries")
            .arg(format!("--log-facility={}", log.display()));
        // Keep root's rights to read the test's files again on SIGHUP.
        if is_root() {
            cmd.arg("--user=root").arg("--group=root");
        }
        for s in srv {
            cmd.arg(format!("--srv-host={s}"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dnsmasq (tools/stack.sh installs dnsmasq-base)");
        let d = Dnsmasq {
            child,
            port,
            hosts: hosts_path,
            log,
            _dir: dir,
        };
        // Listening once the log says so.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&d.log)
            .unwrap_or_default()
            .contains("started")
        {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// Replaces the hosts file and makes dnsmasq read it again.
    fn set_hosts(&self, hosts: &str) {
        std::fs::write(&self.hosts, hosts).unwrap();
        let st = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dnsmasq_binary() -> &'static str {
    if Path::new("/usr/sbin/dnsmasq").exists() {
        "/usr/sbin/dnsmasq"
    } else {
        "dnsmasq"
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A port free on 127.0.0.1 for both TCP and UDP.
fn free_udp_and_tcp_port() -> u16 {
    loop {
        let p = common::free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A port free on every one of `ips`.
fn port_free_on(ips: &[&str]) -> u16 {
    loop {
        let p = common::free_port();
        if ips.iter().all(|ip| TcpListener::bind((*ip, p)).is_ok()) {
            return p;
        }
    }
}

/// A real Prometheus of the test's own, on `ip:port`, labelled `disco=name`.
struct OwnPrometheus {
    child: Child,
    _dir: common::tempdir::Dir,
}

impl OwnPrometheus {
    fn start(name: &str, ip: &str, port: u16) -> OwnPrometheus {
        let dir = common::tempdir::Dir::new(&format!("prom-{name}"));
        let conf = dir.path().join("prometheus.yml");
        std::fs::write(
            &conf,
            format!("global:\n  external_labels:\n    disco: {name}\nscrape_configs: []\n"),
        )
        .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={ip}:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn prometheus");
        let p = OwnPrometheus { child, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("http://{ip}:{port}/-/ready");
        loop {
            if probe::ready(&url) {
                break;
            }
            assert!(Instant::now() < deadline, "prometheus {name} not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }
}

impl Drop for OwnPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking readiness probe without reqwest's blocking feature: one
/// HTTP/1.0 GET over a plain socket.
mod probe {
    pub fn ready(url: &str) -> bool {
        use std::io::{Read, Write};
        let u = url::Url::parse(url).unwrap();
        let addr = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        if write!(s, "GET {} HTTP/1.0\r\nHost: {addr}\r\n\r\n", u.path()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
    }
}

/// The `disco` or `replica` external label of the backend that answered.
async fn who_answered(a: &Aetos, t: &str) -> String {
    let (st, v) = json_of(a.get("/api/v1/status/config", Some(t)).await).await;
    assert_eq!(st, 200, "{v}\n{}", a.logs());
    let yaml = v["data"]["yaml"].as_str().unwrap();
    let line = yaml
        .lines()
        .find(|l| {
            let l = l.trim_start();
            l.starts_with("disco:") || l.starts_with("replica:")
        })
        .unwrap_or_else(|| panic!("no external label in {yaml}"));
    line.split(':')
        .nth(1)
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_owned()
}

/// The backends `/healthcheck?detailed` reports (URL → discovered from).
async fn reported(a: &Aetos) -> (BTreeSet<String>, Value) {
    let (_, v) = json_of(
        common::client()
            .get(format!("{}/healthcheck?detailed", a.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let urls = v["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["class"] == "BackendReadiness")
        .map(|r| r["details"]["backend"].as_str().unwrap_or("").to_owned())
        .collect();
    (urls, v)
}

/// Waits until the health report lists exactly `want`.
async fn wait_for_backends(a: &Aetos, want: &[String]) -> Value {
    let want: BTreeSet<String> = want.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, v) = reported(a).await;
        if got == want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "backends {got:?}, expected {want:?}\n{v}\n{}",
            a.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn aetos_with(urls: &str, dns_port: u16) -> Aetos {
    Aetos::start(
        &format!(
            "[healthcheck]\ndetailed = true\n\n[prometheus]\nurls = {urls}\n\
             dns_server = 127.0.0.1:{dns_port}\ndns_refresh_interval = 0.3\n\
             health_check_interval = 0.5\n"
        ),
        None,
    )
}

#[tokio::test]
async fn a_records_join_drain_and_survive_an_empty_answer() {
    let port = port_free_on(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    let _a = OwnPrometheus::start("a", "127.0.0.2", port);
    let _b = OwnPrometheus::start("b", "127.0.0.3", port);
    let dns = Dnsmasq::start("127.0.0.2 prom.disco.test\n", &[]);
    let a = aetos_with(&format!("dns+http://prom.disco.test:{port}"), dns.port);
    let admin = token("aetos").await;
    let url = |ip: &str| format!("http://{ip}:{port}/");

    // One address: every request goes to it.
    let v = wait_for_backends(&a, &[url("127.0.0.2")]).await;
    assert!(
        v.to_string()
            .contains(&format!("dns+http://prom.disco.test:{port}")),
        "the report names the entry: {v}"
    );
    for _ in 0..3 {
        assert_eq!(who_answered(&a, &admin).await, "a");
    }

    // An added address joins: both answer, round robin.
    dns.set_hosts("127.0.0.2 prom.disco.test\n127.0.0.3 prom.disco.test\n");
    wait_for_backends(&a, &[url("127.0.0.2"), url("127.0.0.3")]).await;
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        seen.insert(who_answered(&a, &admin).await);
    }
    assert_eq!(seen, BTreeSet::from(["a".to_owned(), "b".to_owned()]));

    // A removed address drains (no new request reaches it); a dead one
    // joins, fails, and is retried on the live one: no request fails.
    dns.set_hosts("127.0.0.3 prom.disco.test\n127.0.0.4 prom.disco.test\n");
    wait_for_backends(&a, &[url("127.0.0.3"), url("127.0.0.4")]).await;
    for _ in 0..6 {
        assert_eq!(who_answered(&a, &admin).await, "b");
    }
    let (_, v) = reported(&a).await;
    let dead = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["details"]["backend"] == url("127.0.0.4"))
        .unwrap()
        .clone();
    assert_eq!(dead["details"]["ready"], false, "{v}");

    // An empty answer (NXDOMAIN) keeps the last known addresses, logged.
    dns.set_hosts("");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.logs().contains("keeping the last known ones") {
        assert!(Instant::now() < deadline, "no warning:\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (got, _) = reported(&a).await;
    assert_eq!(got, BTreeSet::from([url("127.0.0.3"), url("127.0.0.4")]));
    assert_eq!(who_answered(&a, &admin).await, "b");

    // The DNS server gone: resolution fails, the addresses stay, logged.
    drop(dns);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !a
        .logs()
        .contains("DNS discovery failed; keeping the last known addresses")
    {
        assert!(Instant::now() < deadline, "no warning:\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (got, _) = reported(&a).await;
    assert_eq!(got, BTreeSet::from([url("127.0.0.3"), url("127.0.0.4")]));
    assert_eq!(who_answered(&a, &admin).await, "b");
    // Scoped callers are served too (tenancy is unchanged by discovery).
    let reader = token("demo-reader").await;
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&reader)).await).await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test]
async fn srv_records_give_hosts_and_ports() {
    let ha: Vec<url::Url> = stack().env["prometheus_ha_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| url::Url::parse(u.as_str().unwrap()).unwrap())
        .collect();
    let (p1, p2) = (ha[0].port().unwrap(), ha[1].port().unwrap());
    let srv1 = format!("_prometheus._tcp.disco.test,ha1.disco.test,{p1}");
    let srv2 = format!("_prometheus._tcp.disco.test,ha2.disco.test,{p2}");
    // ha2 has no address yet: only ha1's record resolves.
    let dns = Dnsmasq::start("127.0.0.1 ha1.disco.test\n", &[&srv1, &srv2]);
    let a = aetos_with("dnssrv+_prometheus._tcp.disco.test", dns.port);
    let admin = token("aetos").await;
    let url = |p: u16| format!("http://127.0.0.1:{p}/");

    wait_for_backends(&a, &[url(p1)]).await;
    for _ in 0..3 {
        assert_eq!(who_answered(&a, &admin).await, "1");
    }
    dns.set_hosts("127.0.0.1 ha1.disco.test\n127.0.0.1 ha2.disco.test\n");
    wait_for_backends(&a, &[url(p1), url(p2)]).await;
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        seen.insert(who_answered(&a, &admin).await);
    }
    assert_eq!(seen, BTreeSet::from(["1".to_owned(), "2".to_owned()]));
    // ha1's address goes: its record no longer resolves, ha2's does.
    dns.set_hosts("127.0.0.1 ha2.disco.test\n");
    wait_for_backends(&a, &[url(p2)]).await;
    for _ in 0..3 {
        assert_eq!(who_answered(&a, &admin).await, "2");
    }
}

#[tokio::test]
async fn before_any_address_requests_get_a_clear_error_not_a_hang() {
    let dns = Dnsmasq::start("", &[]);
    let a = aetos_with("dns+http://nothing.disco.test:9", dns.port);
    let admin = token("aetos").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.logs().contains("no address (yet)") {
        assert!(Instant::now() < deadline, "no warning:\n{}", a.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, v) = json_of(a.get("/api/v1/query?query=up", Some(&admin)).await).await;
    assert!(st == 502 || st == 503, "{st} {v}");
    assert_eq!(v["status"], "error", "{v}");
    let (got, _) = reported(&a).await;
    assert!(got.is_empty(), "{got:?}");
}
