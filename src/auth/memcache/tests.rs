use super::*;

#[test]
fn mac_entries_round_trip_and_reject_tampering() {
    let p = Protection::mac("secret");
    let mut sealed = seal(&p, b"{\"token\":{}}");
    assert_eq!(open(&p, &sealed).unwrap(), b"{\"token\":{}}");
    let last = sealed.len() - 2;
    sealed[last] ^= 1;
    assert_eq!(open(&p, &sealed), None);
    assert_eq!(open(&Protection::mac("other"), &seal(&p, b"x")), None);
    assert_eq!(open(&p, b"short"), None);
}

#[test]
fn encrypted_entries_hide_the_payload_and_reject_tampering() {
    let p = Protection::encrypt("secret");
    let sealed = seal(&p, b"roles: admin");
    assert!(!sealed.windows(5).any(|w| w == b"admin"));
    assert_eq!(open(&p, &sealed).unwrap(), b"roles: admin");
    let mut bad = sealed.clone();
    bad[20] ^= 1;
    assert_eq!(open(&p, &bad), None);
    assert_eq!(open(&Protection::encrypt("other"), &sealed), None);
}

#[test]
fn keys_never_contain_the_token_and_depend_on_the_secret() {
    let plain = SharedCache::new(&["127.0.0.1:11211".into()], Protection::None);
    let k = plain.entry_key("my-token");
    assert!(!k.contains("my-token") && k.starts_with("aetos/tokens/"));
    let mac = SharedCache::new(&["127.0.0.1:11211".into()], Protection::mac("s"));
    assert_ne!(mac.entry_key("my-token"), k);
}

// ─── The pool and dead servers, against local TCP listeners ─────────
//
// A listener that accepts and never answers is memcached hung (or
// black-holed after the handshake); a port nobody listens on is
// memcached down. The real memcached is exercised in
// tests/functional_memcached.rs.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Accepts connections, keeps them open, never answers; counts them.
async fn hung_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (addr, accepted)
}

fn pool(socket_ms: u64, dead_retry_ms: u64, maxsize: usize, conn_get_ms: u64) -> PoolOptions {
    PoolOptions {
        socket_timeout: Duration::from_millis(socket_ms),
        dead_retry: Duration::from_millis(dead_retry_ms),
        maxsize,
        conn_get_timeout: Duration::from_millis(conn_get_ms),
    }
}

#[tokio::test]
async fn a_hung_server_costs_one_socket_timeout_then_is_skipped_until_dead_retry() {
    let (addr, accepted) = hung_server().await;
    let cache = SharedCache::with_pool(&[addr], Protection::None, pool(400, 60_000, 10, 10_000));
    let started = Instant::now();
    assert!(cache.get("t1").await.is_none());
    let first = started.elapsed();
    assert!(
        first >= Duration::from_millis(400),
        "gave up before the socket timeout: {first:?}"
    );
    assert!(first < Duration::from_secs(3), "first miss took {first:?}");
    assert!(cache.is_dead(0));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // Now every read and write is a miss without touching the network.
    for i in 0..20 {
        assert!(cache.get(&format!("t{i}")).await.is_none());
        cache.set(
            &format!("t{i}"),
            &serde_json::json!({}),
            Duration::from_secs(60),
        );
    }
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "a dead server was contacted"
    );
}

#[tokio::test]
async fn a_dead_server_is_tried_again_once_dead_retry_has_passed() {
    let (addr, accepted) = hung_server().await;
    let cache = SharedCache::with_pool(&[addr], Protection::None, pool(200, 300, 10, 10_000));
    assert!(cache.get("t").await.is_none());
    assert!(cache.is_dead(0));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // Elapsed time is the point here: dead_retry must pass.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!cache.is_dead(0), "still dead after dead_retry");
    assert!(cache.get("t").await.is_none());
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "not retried after dead_retry"
    );
    assert!(cache.is_dead(0), "still hung: dead again");
}

#[tokio::test]
async fn a_refused_connection_marks_the_server_dead_at_once() {
    // A port that was just free: connecting is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = SharedCache::with_pool(
        &[format!("127.0.0.1:{port}")],
        Protection::None,
        pool(5_000, 60_000, 10, 10_000),
    );
    let started = Instant::now();
    assert!(cache.get("t").await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited for a refused server"
    );
    assert!(cache.is_dead(0));
}

#[tokio::test]
async fn concurrent_misses_on_a_hung_server_each_have_a_connection_and_wait_one_timeout() {
    let (addr, accepted) = hung_server().await;
    let cache = SharedCache::with_pool(&[addr], Protection::None, pool(800, 60_000, 10, 10_000));
    let started = Instant::now();
    let gets: Vec<_> = (0..6)
        .map(|i| {
            let c = cache.clone();
            tokio::spawn(async move { c.get(&format!("t{i}")).await })
        })
        .collect();
    for g in gets {
        assert!(g.await.unwrap().is_none());
    }
    let all = started.elapsed();
    // Not one after the other on one connection: six connections, and
    // together about one socket timeout (six would be 4.8 s).
    assert_eq!(accepted.load(Ordering::SeqCst), 6);
    assert!(
        all < Duration::from_millis(2_400),
        "six concurrent misses took {all:?}"
    );
    assert!(cache.is_dead(0));
}

#[tokio::test]
async fn past_maxsize_a_request_waits_at_most_conn_get_timeout() {
    let (addr, accepted) = hung_server().await;
    // Two connections; a third request waits 200 ms for one, then misses.
    let cache = SharedCache::with_pool(&[addr], Protection::None, pool(3_000, 60_000, 2, 200));
    let busy: Vec<_> = (0..2)
        .map(|i| {
            let c = cache.clone();
            tokio::spawn(async move { c.get(&format!("busy{i}")).await })
        })
        .collect();
    // Until both hold their connection (a condition, polled).
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the two requests never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    assert!(cache.get("third").await.is_none());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200),
        "did not wait for a connection: {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(2_500),
        "waited {waited:?}, beyond conn_get_timeout"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "more than maxsize connections"
    );
    assert!(!cache.is_dead(0), "no free connection is not a dead server");
    for b in busy {
        assert!(b.await.unwrap().is_none());
    }
    assert!(cache.is_dead(0));
}

#[tokio::test]
async fn a_dead_servers_keys_go_to_the_next_live_server() {
    let (hung, hung_accepted) = hung_server().await;
    let (other, other_accepted) = hung_server().await;
    let cache = SharedCache::with_pool(
        &[hung, other],
        Protection::None,
        pool(300, 60_000, 10, 10_000),
    );
    // A token whose server is the first.
    let token = (0..)
        .map(|i| format!("t{i}"))
        .find(|t| cache.inner.key(t).1 == 0)
        .unwrap();
    assert!(cache.get(&token).await.is_none());
    assert_eq!(hung_accepted.load(Ordering::SeqCst), 1);
    assert_eq!(other_accepted.load(Ordering::SeqCst), 0);
    assert!(cache.is_dead(0) && !cache.is_dead(1));
    // The same key now goes to the second (hung too: it dies in turn),
    // then there is no live server left and nothing is contacted.
    assert!(cache.get(&token).await.is_none());
    assert_eq!(other_accepted.load(Ordering::SeqCst), 1);
    assert!(cache.is_dead(1));
    assert!(cache.get(&token).await.is_none());
    assert_eq!(
        hung_accepted.load(Ordering::SeqCst) + other_accepted.load(Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn writes_never_make_the_caller_wait() {
    let (addr, accepted) = hung_server().await;
    let cache = SharedCache::with_pool(&[addr], Protection::None, pool(60_000, 60_000, 10, 10_000));
    // `set` is not async: it cannot wait; the write happens in a task.
    cache.set(
        "t",
        &serde_json::json!({"token": {}}),
        Duration::from_secs(60),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while accepted.load(Ordering::SeqCst) < 1 {
        assert!(
            Instant::now() < deadline,
            "the background write never connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The stored format is pinned: entries written by an older aetos (and by
/// the other replicas of a rolling upgrade) must still open, and this
/// one's must open there. The vectors were made by the implementation on
/// the `hmac`/`aes-gcm` crates and checked with Python's `hmac` and
/// `cryptography` (AESGCM): MAC key = HMAC-SHA256(secret,
/// "aetos-memcache-mac"), entry = tag | payload; ENCRYPT key =
/// HMAC-SHA256(secret, "aetos-memcache-enc"), entry = nonce | ciphertext |
/// tag; entry keys = SHA-256 of the token, or HMAC-SHA256 under the MAC
/// key when protected.
#[test]
fn the_stored_format_is_unchanged() {
    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
    let payload = b"{\"token\":{\"roles\":[{\"name\":\"reader\"}]}}";
    let mac = Protection::mac("s3cret-key");
    let enc = Protection::encrypt("s3cret-key");
    let mac_sealed = unhex(
        "f01513ca00ee8f57a3821dcb94b27c80dbff0700c04fb7f40272d06d7a2fd4b2\
         7b22746f6b656e223a7b22726f6c6573223a5b7b226e616d65223a2272656164\
         6572227d5d7d7d",
    );
    assert_eq!(seal(&mac, payload), mac_sealed);
    assert_eq!(open(&mac, &mac_sealed).unwrap(), payload);
    let enc_sealed = unhex(
        "00866a60385130eb2e311cc5b79f9f24ffdbd0e9d2312c5888eb5ea0cb8a6797\
         ad789b0e4c6a2371e09f7a120610d20dad8e2be36502f7719e84082c98a51af8\
         06784c",
    );
    assert_eq!(open(&enc, &enc_sealed).unwrap(), payload);
    // A new entry: a fresh nonce, the same layout, and it opens.
    let fresh = seal(&enc, payload);
    assert_eq!(fresh.len(), enc_sealed.len());
    assert_ne!(fresh[..12], enc_sealed[..12]);
    assert_eq!(open(&enc, &fresh).unwrap(), payload);
    let servers = ["127.0.0.1:11211".to_string(), "127.0.0.1:11212".to_string()];
    for (p, key, server) in [
        (
            Protection::None,
            "ab198924a5c265e90913b20a822652ebb328901b5318d6ccf6ad057e079ecacd",
            1,
        ),
        (
            mac,
            "781e544609fa0fa28176d0deced7273879edba807c8e0f38e02f98dd1c6f3616",
            0,
        ),
        (
            enc,
            "c0ed8b2a08753da88f34bc9604e8935d897625a0753706ffa2855304e7020fd8",
            0,
        ),
    ] {
        let c = SharedCache::new(&servers, p);
        assert_eq!(
            c.inner.key("gAAAAABtoken"),
            (format!("aetos/tokens/{key}"), server)
        );
    }
}
