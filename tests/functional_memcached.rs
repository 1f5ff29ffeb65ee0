//! The token cache shared across replicas in the stack's real memcached.
#![cfg(feature = "functional")]

mod common;

use std::io::{Read, Write};

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
    let entry = cache.get(&token).await.expect("entry written by aetos");
    assert_eq!(entry["token"]["project"]["id"], stack().project("demo"));
    let wrong = SharedCache::new(&[stack().s("/memcached")], Protection::mac("another-key"));
    assert!(wrong.get(&token).await.is_none());
}
