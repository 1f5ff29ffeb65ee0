//! The token cache shared across replicas in the stack's real memcached.
#![cfg(feature = "functional")]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aetos::auth::memcache::{Protection, SharedCache};
use common::{json_of, stack, Aetos};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn without_memcached() -> String {
    "[keystone_authtoken]\nmemcached_servers =\n".to_owned()
}

/// Writes raw bytes under `key` with memcached's text protocol.
fn raw_set(key: &str, value: &[u8]) {
    let mut s = std::net::TcpStream::connect(stack().s("/memcached")).unwrap();
    write!(s, "set {key} 0 300 {}\r\n", value.len()).unwrap();
    s.write_all(value).unwrap();
    s.write_all(b"\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"STORED"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn replicas_share_validated_tokens_through_memcached() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let first = Aetos::start("", None);
    let token = common::fresh_token("demo-reader").await;
    assert_eq!(
        first
            .get("/api/v1/query?query=up", Some(&token))
            .await
            .status(),
        200
    );
    stack().ctl(&["stop-component", "keystone"]);
    // A second replica has never seen the token: memcached answers for Keystone.
    let second = Aetos::start("", None);
    let shared = second
        .get("/api/v1/query?query=up", Some(&token))
        .await
        .status();
    let alone = Aetos::start(&without_memcached(), None);
    let (alone_status, _) = json_of(alone.get("/api/v1/query?query=up", Some(&token)).await).await;
    stack().ctl(&["start-component", "keystone"]);
    assert_eq!(shared, 200, "second replica did not use the shared cache");
    assert_eq!(alone_status, 503, "without memcached Keystone is needed");
}

#[tokio::test]
async fn mac_protected_entries_cannot_be_forged() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let conf = "[keystone_authtoken]\nmemcache_security_strategy = MAC\nmemcache_secret_key = s3cret-key\n";
    let a = Aetos::start(conf, None);
    let forged_token = format!("forged-{}", common::free_port());
    let body = serde_json::json!({"token": {
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "user": {"id": "mallory"}, "project": {"id": stack().project("other")},
        "roles": [{"name": "admin"}, {"name": "reader"}]}});
    // Even knowing the key name, an unsigned entry is refused.
    let key = SharedCache::new(&[stack().s("/memcached")], Protection::mac("s3cret-key"))
        .entry_key(&forged_token);
    raw_set(&key, body.to_string().as_bytes());
    let st = a
        .get("/api/v1/targets?state=active", Some(&forged_token))
        .await
        .status();
    assert_eq!(st, 401, "forged memcached entry was trusted");
    // A real token's entry is sealed, not stored in clear.
    let token = common::fresh_token("demo-reader").await;
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&token)).await.status(),
        200
    );
    let cache = SharedCache::new(&[stack().s("/memcached")], Protection::mac("s3cret-key"));
    // aetos writes the entry in the background, after answering.
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        if let Some(e) = cache.get(&token).await {
            break e;
        }
        assert!(Instant::now() < deadline, "aetos never wrote the entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["token"]["project"]["id"], stack().project("demo"));
    let wrong = SharedCache::new(&[stack().s("/memcached")], Protection::mac("another-key"));
    assert!(wrong.get(&token).await.is_none());
}

/// The raw bytes stored under `key`, with memcached's text protocol.
fn raw_get(key: &str) -> Option<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(stack().s("/memcached")).unwrap();
    write!(s, "get {key}\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    if head.starts_with("END") {
        return None;
    }
    // VALUE <key> <flags> <bytes>
    let len: usize = head
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected memcached answer {head:?}"));
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).unwrap();
    Some(data)
}

#[tokio::test]
async fn encrypted_entries_hide_the_identity_and_cannot_be_forged() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let conf = "[keystone_authtoken]\nmemcache_security_strategy = ENCRYPT\nmemcache_secret_key = s3cret-key\n";
    let a = Aetos::start(conf, None);
    let cache = SharedCache::new(
        &[stack().s("/memcached")],
        Protection::encrypt("s3cret-key"),
    );
    // A clear-text entry under the right key name is refused.
    let forged_token = format!("forged-enc-{}", common::free_port());
    let body = serde_json::json!({"token": {
        "expires_at": "2099-01-01T00:00:00.000000Z",
        "user": {"id": "mallory"}, "project": {"id": stack().project("other")},
        "roles": [{"name": "admin"}, {"name": "reader"}]}});
    raw_set(&cache.entry_key(&forged_token), body.to_string().as_bytes());
    let st = a
        .get("/api/v1/targets?state=active", Some(&forged_token))
        .await
        .status();
    assert_eq!(st, 401, "forged memcached entry was trusted");
    // A real token's entry opens with the key, and its bytes do not show
    // the identity.
    let token = common::fresh_token("demo-reader").await;
    assert_eq!(
        a.get("/api/v1/query?query=up", Some(&token)).await.status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let entry = loop {
        if let Some(e) = cache.get(&token).await {
            break e;
        }
        assert!(Instant::now() < deadline, "aetos never wrote the entry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(entry["token"]["project"]["id"], stack().project("demo"));
    let raw = raw_get(&cache.entry_key(&token)).expect("the entry is in memcached");
    let project = stack().project("demo");
    assert!(
        !raw.windows(project.len()).any(|w| w == project.as_bytes()),
        "the project id is readable in memcached"
    );
    let wrong = SharedCache::new(
        &[stack().s("/memcached")],
        Protection::encrypt("another-key"),
    );
    assert!(wrong.get(&token).await.is_none());
}

/// A memcached of this test's own (the binary the stack installed, on a free
/// port), so that it can be paused with SIGSTOP without disturbing the
/// stack's memcached or other tests.
struct OwnMemcached {
    child: Child,
    addr: String,
}

impl OwnMemcached {
    fn start() -> OwnMemcached {
        let port = common::free_port();
        let mut cmd = Command::new("memcached");
        cmd.args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-m",
            "16",
        ]);
        // memcached refuses to run as root without -u.
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn memcached (installed by tools/stack.sh)");
        let m = OwnMemcached {
            child,
            addr: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&m.addr).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig}");
    }

    /// memcached's `stats` counters.
    fn stats(&self) -> HashMap<String, u64> {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"stats\r\n").unwrap();
        let mut out = HashMap::new();
        for line in BufReader::new(s).lines() {
            let line = line.unwrap();
            if line == "END" {
                break;
            }
            let mut f = line.split(' ');
            if let (Some("STAT"), Some(k), Some(v)) = (f.next(), f.next(), f.next()) {
                if let Ok(v) = v.parse() {
                    out.insert(k.to_owned(), v);
                }
            }
        }
        out
    }

    fn stat(&self, name: &str) -> u64 {
        self.stats()[name]
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
    })
}

impl Drop for OwnMemcached {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 50 ms until it holds, for at most `within`.
async fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request with a token aetos has not seen; its status and duration.
async fn timed_miss(a: &Aetos, token: &str) -> (u16, Duration) {
    let started = Instant::now();
    let st = a.get("/api/v1/query?query=up", Some(token)).await.status();
    (st.as_u16(), started.elapsed())
}

/// issue 9: a hung memcached costs at most one socket timeout to the first
/// requests that meet it, then nothing until dead_retry passes; then the
/// cache is used again.
#[tokio::test]
async fn a_hung_memcached_costs_one_socket_timeout_then_is_skipped_until_dead_retry() {
    // Not while another test here has stopped Keystone.
    let _turn = ONE_AT_A_TIME.lock().await;
    let mc = OwnMemcached::start();
    let a = Aetos::start(
        &format!(
            "[keystone_authtoken]\nmemcached_servers = {}\nmemcache_pool_socket_timeout = 1\n\
             memcache_pool_dead_retry = 5\n",
            mc.addr
        ),
        None,
    );
    // Tokens are fetched up front: their Keystone logins are not timed.
    let mut tokens = Vec::new();
    for _ in 0..9 {
        tokens.push(common::fresh_token("demo-reader").await);
    }
    // Healthy: a miss reads memcached, then writes the entry (in the background).
    let (st, _) = timed_miss(&a, &tokens[0]).await;
    assert_eq!(st, 200);
    wait_until(Duration::from_secs(10), "aetos stored the entry", || {
        mc.stat("cmd_set") >= 1
    })
    .await;
    let before = mc.stats();
    assert!(before["cmd_get"] >= 1);

    mc.signal("STOP");
    // Four concurrent misses meet the hung server: each waits at most one
    // socket timeout (1 s), plus Keystone.
    let started = Instant::now();
    let concurrent: Vec<_> = tokens[1..5]
        .iter()
        .map(|t| {
            let (url, t) = (a.url.clone(), t.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let st = common::client()
                    .get(format!("{url}/prometheus/api/v1/query?query=up"))
                    .header("X-Auth-Token", &t)
                    .send()
                    .await
                    .unwrap()
                    .status();
                (st.as_u16(), started.elapsed())
            })
        })
        .collect();
    for c in concurrent {
        let (st, took) = c.await.unwrap();
        assert_eq!(st, 200);
        assert!(
            took < Duration::from_secs(3),
            "a miss during the stall took {took:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the misses waited one after the other"
    );
    // The server is dead now: later misses do not wait for it at all.
    for t in &tokens[5..8] {
        let (st, took) = timed_miss(&a, t).await;
        assert_eq!(st, 200);
        assert!(
            took < Duration::from_secs(1),
            "a miss after the server died took {took:?}"
        );
    }
    let logs = a.logs();
    assert_eq!(
        logs.matches("memcached server marked dead").count(),
        1,
        "{logs}"
    );

    mc.signal("CONT");
    // Nothing was sent to the dead server: at most the four gets of the
    // concurrent misses (already on the wire when it stalled), no write.
    let during = mc.stats();
    assert!(
        during["cmd_get"] <= before["cmd_get"] + 4,
        "the dead server was asked: {} gets before, {} after",
        before["cmd_get"],
        during["cmd_get"]
    );
    assert_eq!(
        during["cmd_set"], before["cmd_set"],
        "a write went to the dead server"
    );

    // Elapsed time is the point: once dead_retry (5 s) has passed, the
    // cache is used again: a miss reads it, its entry is written, and a
    // second replica is answered from it (a get hit).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (st, took) = timed_miss(&a, &tokens[8]).await;
    assert_eq!(st, 200);
    assert!(took < Duration::from_secs(3), "{took:?}");
    wait_until(
        Duration::from_secs(10),
        "the entry was written again",
        || mc.stat("cmd_set") > during["cmd_set"],
    )
    .await;
    assert!(
        mc.stat("cmd_get") > during["cmd_get"],
        "memcached not read after dead_retry"
    );
    let b = Aetos::start(
        &format!("[keystone_authtoken]\nmemcached_servers = {}\n", mc.addr),
        None,
    );
    let hits = mc.stat("get_hits");
    assert_eq!(
        b.get("/api/v1/query?query=up", Some(&tokens[8]))
            .await
            .status(),
        200
    );
    assert_eq!(
        mc.stat("get_hits"),
        hits + 1,
        "the second replica did not read the entry"
    );
    assert!(
        a.logs().contains("retrying memcached server"),
        "{}",
        a.logs()
    );
}
