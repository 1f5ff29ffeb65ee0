//! A token cache shared across aetos replicas, in memcached
//! (`[keystone_authtoken] memcached_servers`), as keystonemiddleware keeps
//! one.
//!
//! What is stored is Keystone's own validation answer for a token, under a
//! key derived from the token's SHA-256 (the token itself is never stored
//! or sent). Anyone who can write to memcached could otherwise forge an
//! identity, so `memcache_security_strategy` protects entries as
//! keystonemiddleware's does: `MAC` signs each entry with HMAC-SHA256,
//! `ENCRYPT` encrypts and authenticates it with AES-256-GCM; keys for both
//! are derived from `memcache_secret_key`. An entry that fails its check is
//! ignored (and the token validated with Keystone). Any memcached failure
//! only costs a Keystone call: the cache is never a reason to refuse.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_memcached::{AsciiProtocol, Client};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use tokio::sync::{Notify, Semaphore};

/// How entries are protected.
#[derive(Clone)]
pub enum Protection {
    None,
    Mac([u8; 32]),
    Encrypt { enc: [u8; 32], mac: [u8; 32] },
}

impl Protection {
    /// Derives the keys from `memcache_secret_key`.
    pub fn mac(secret: &str) -> Protection {
        Protection::Mac(derive(secret, b"aetos-memcache-mac"))
    }
    pub fn encrypt(secret: &str) -> Protection {
        Protection::Encrypt {
            enc: derive(secret, b"aetos-memcache-enc"),
            mac: derive(secret, b"aetos-memcache-key"),
        }
    }
}

/// HMAC-SHA256 (ring; the stored format predates it and is pinned by the
/// known-answer test in `tests.rs`).
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The AES-256-GCM key of `ENCRYPT` (any 32 bytes are a valid key).
fn aead_key(enc: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, enc)
        .ok()
        .map(LessSafeKey::new)
}

fn derive(secret: &str, purpose: &[u8]) -> [u8; 32] {
    hmac(secret.as_bytes(), purpose)
}

/// Seals a payload for storage.
pub(crate) fn seal(p: &Protection, payload: &[u8]) -> Vec<u8> {
    match p {
        Protection::None => payload.to_vec(),
        Protection::Mac(key) => {
            let mut out = hmac(key, payload).to_vec();
            out.extend_from_slice(payload);
            out
        }
        Protection::Encrypt { enc, .. } => {
            // Stored as nonce (12 bytes) | ciphertext | tag (16 bytes), no
            // associated data. A fresh random nonce per entry.
            let mut nonce = [0u8; NONCE_LEN];
            let Some(key) = aead_key(enc) else {
                return Vec::new();
            };
            if SystemRandom::new().fill(&mut nonce).is_err() {
                // No randomness: store nothing that could be read back.
                return Vec::new();
            }
            let mut out = nonce.to_vec();
            let mut sealed = payload.to_vec();
            match key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            ) {
                Ok(()) => {
                    out.extend_from_slice(&sealed);
                    out
                }
                // Encryption of an in-memory buffer does not fail; if it
                // ever did, store nothing that could be read back.
                Err(_) => Vec::new(),
            }
        }
    }
}

/// Opens a stored entry; `None` when it was tampered with or is garbage.
pub(crate) fn open(p: &Protection, stored: &[u8]) -> Option<Vec<u8>> {
    match p {
        Protection::None => Some(stored.to_vec()),
        Protection::Mac(key) => {
            if stored.len() < 32 {
                return None;
            }
            let (tag, payload) = stored.split_at(32);
            // Constant-time comparison.
            hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), payload, tag).ok()?;
            Some(payload.to_vec())
        }
        Protection::Encrypt { enc, .. } => {
            if stored.len() < NONCE_LEN {
                return None;
            }
            let (nonce, ct) = stored.split_at(NONCE_LEN);
            let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
            let mut buf = ct.to_vec();
            let plain = aead_key(enc)?
                .open_in_place(nonce, Aad::empty(), &mut buf)
                .ok()?;
            Some(plain.to_vec())
        }
    }
}

/// How connections to the servers are pooled, as keystonemiddleware's
/// `memcache_pool_*` options describe.
#[derive(Clone, Debug)]
pub(crate) struct PoolOptions {
    /// Bound on every network operation: connect, get, set
    /// (`memcache_pool_socket_timeout`).
    pub(crate) socket_timeout: Duration,
    /// How long a server that timed out or refused is skipped
    /// (`memcache_pool_dead_retry`).
    pub(crate) dead_retry: Duration,
    /// Most connections open to one server (`memcache_pool_maxsize`).
    pub(crate) maxsize: usize,
    /// Longest wait for a free connection of the pool; past it the
    /// operation is a miss (`memcache_pool_conn_get_timeout`).
    pub(crate) conn_get_timeout: Duration,
}

impl Default for PoolOptions {
    /// keystonemiddleware's defaults.
    fn default() -> Self {
        PoolOptions {
            socket_timeout: Duration::from_secs(3),
            dead_retry: Duration::from_secs(300),
            maxsize: 10,
            conn_get_timeout: Duration::from_secs(10),
        }
    }
}

/// One memcached server and its pool.
struct Server {
    /// As given in `memcached_servers` (for logs).
    name: String,
    /// What the client connects to (`tcp://host:port`).
    dsn: String,
    /// Open connections nobody is using. The lock is only held to push or
    /// pop, never across a network wait.
    idle: std::sync::Mutex<Vec<Client>>,
    /// One permit per connection that may be open (`maxsize`).
    permits: Semaphore,
    /// Until when the server is skipped.
    dead_until: std::sync::Mutex<Option<Instant>>,
    /// Wakes operations in flight or waiting for a connection when the
    /// server is found dead, so they give up at once.
    died: Notify,
}

/// What is done on a server.
enum Op {
    Get(String),
    Set {
        key: String,
        value: Vec<u8>,
        ttl: i64,
    },
}

impl Op {
    /// The stored bytes for a get (`None`: no entry); `None` for a set.
    async fn on(&self, c: &mut Client) -> Result<Option<Vec<u8>>, async_memcached::Error> {
        match self {
            Op::Get(key) => Ok(c.get(key).await?.and_then(|v| v.data)),
            Op::Set { key, value, ttl } => {
                c.set(key, value.as_slice(), Some(*ttl), None).await?;
                Ok(None)
            }
        }
    }
}

/// Why an operation on a server did not give an answer.
enum Failure {
    /// No answer within `socket_timeout`: the server is marked dead.
    Timeout(String),
    /// The server refused or broke the connection: marked dead too (unless
    /// a fresh connection works).
    Broken(String),
    /// Anything else (a protocol error, no free connection): a miss, the
    /// server stays live.
    Other(String),
}

impl Server {
    fn is_dead(&self, now: Instant) -> bool {
        let mut dead = lock(&self.dead_until);
        match *dead {
            Some(until) if now < until => true,
            Some(_) => {
                *dead = None;
                tracing::info!(server = %self.name, "retrying memcached server after memcache_pool_dead_retry");
                false
            }
            None => false,
        }
    }

    fn mark_dead(&self, dead_retry: Duration, why: &str) {
        let now = Instant::now();
        // A retry beyond what `Instant` holds is a retry in a century.
        let until = now
            .checked_add(dead_retry)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        let newly = lock(&self.dead_until).replace(until).is_none();
        // Those who found it dead at the same time need not say it again.
        if newly {
            tracing::warn!(server = %self.name, retry_in_s = dead_retry.as_secs(),
                "memcached server marked dead ({why}); its entries are misses until then");
        }
        // Drop the idle connections: they lead to the same dead server.
        lock(&self.idle).clear();
        self.died.notify_waiters();
    }

    /// Runs `op` on a connection of the pool (a new one if none is idle),
    /// within `socket_timeout`; the connection goes back to the pool after
    /// a complete operation.
    async fn run(&self, pool: &PoolOptions, op: &Op) -> Result<Option<Vec<u8>>, Failure> {
        let died = self.died.notified();
        tokio::pin!(died);
        let _permit = tokio::select! {
            p = tokio::time::timeout(pool.conn_get_timeout, self.permits.acquire()) => match p {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(Failure::Other("pool closed".into())),
                Err(_) => return Err(Failure::Other(
                    "no free connection within memcache_pool_conn_get_timeout".into())),
            },
            _ = &mut died => return Err(Failure::Other("server found dead".into())),
        };
        // It may have died while this one waited for a connection.
        if self.is_dead(Instant::now()) {
            return Err(Failure::Other("server found dead".into()));
        }
        let pooled = lock(&self.idle).pop();
        let reused = pooled.is_some();
        let outcome = tokio::select! {
            r = self.attempt(pool, pooled, op) => r,
            _ = &mut died => return Err(Failure::Other("server found dead".into())),
        };
        match outcome {
            // A pooled connection the server closed since (memcached
            // restarted, an idle timeout) fails at once: that says nothing
            // about the server, so try once more on a new connection.
            Err(Failure::Broken(_)) if reused => tokio::select! {
                r = self.attempt(pool, None, op) => r,
                _ = &mut died => Err(Failure::Other("server found dead".into())),
            },
            r => r,
        }
    }

    async fn attempt(
        &self,
        pool: &PoolOptions,
        pooled: Option<Client>,
        op: &Op,
    ) -> Result<Option<Vec<u8>>, Failure> {
        let started = Instant::now();
        let mut client = match pooled {
            Some(c) => c,
            None => match tokio::time::timeout(pool.socket_timeout, Client::new(&self.dsn)).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(Failure::Broken(format!("connect: {e}"))),
                Err(_) => return Err(Failure::Timeout("connect timed out".into())),
            },
        };
        let left = pool.socket_timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), op.on(&mut client)).await {
            Ok(Ok(v)) => {
                if !client.is_closed() {
                    lock(&self.idle).push(client);
                }
                Ok(v)
            }
            Ok(Err(
                e @ (async_memcached::Error::Io(_)
                | async_memcached::Error::Connect(_)
                | async_memcached::Error::ConnectionClosed),
            )) => Err(Failure::Broken(e.to_string())),
            Ok(Err(e)) => Err(Failure::Other(e.to_string())),
            Err(_) => Err(Failure::Timeout(format!(
                "no answer within memcache_pool_socket_timeout ({}s)",
                pool.socket_timeout.as_secs_f64()
            ))),
        }
    }
}

/// The pool's locks guard plain data that a panic cannot leave half-written.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Inner {
    servers: Vec<Server>,
    pool: PoolOptions,
    protection: Protection,
    /// Entry keys are namespaced by this (and, for MAC/ENCRYPT, keyed).
    key_salt: Vec<u8>,
}

/// The shared cache. Cloning it is cheap (the pools are shared).
///
/// Like keystonemiddleware's pool: each server has up to `maxsize`
/// connections, so concurrent requests do not wait for each other; every
/// network operation is bounded by `socket_timeout`; a server that times
/// out or refuses is skipped for `dead_retry` (its keys go to the next live
/// server, or are misses when none is left), so a hung memcached costs one
/// request one `socket_timeout`, then nothing until it is retried. Writes
/// are sent in the background: no caller waits for them.
#[derive(Clone)]
pub struct SharedCache {
    inner: Arc<Inner>,
}

impl SharedCache {
    /// `servers` as keystonemiddleware takes them: `host:port`, `[v6]:port`
    /// or `inet6:[v6]:port`; keystonemiddleware's pool defaults.
    pub fn new(servers: &[String], protection: Protection) -> SharedCache {
        SharedCache::with_pool(servers, protection, PoolOptions::default())
    }

    pub(crate) fn with_pool(
        servers: &[String],
        protection: Protection,
        pool: PoolOptions,
    ) -> SharedCache {
        let pool = PoolOptions {
            maxsize: pool.maxsize.clamp(1, Semaphore::MAX_PERMITS),
            ..pool
        };
        let servers = servers
            .iter()
            .map(|s| Server {
                name: s.clone(),
                dsn: format!(
                    "tcp://{}",
                    s.trim_start_matches("inet6:").trim_start_matches("inet:")
                ),
                idle: std::sync::Mutex::new(Vec::new()),
                permits: Semaphore::new(pool.maxsize),
                dead_until: std::sync::Mutex::new(None),
                died: Notify::new(),
            })
            .collect();
        let key_salt = match &protection {
            Protection::None => Vec::new(),
            Protection::Mac(k) => k.to_vec(),
            Protection::Encrypt { mac, .. } => mac.to_vec(),
        };
        SharedCache {
            inner: Arc::new(Inner {
                servers,
                pool,
                protection,
                key_salt,
            }),
        }
    }

    /// The memcached key under which `token`'s entry is stored (never the
    /// token itself; for MAC/ENCRYPT it also depends on the secret).
    pub fn entry_key(&self, token: &str) -> String {
        self.inner.key(token).0
    }

    /// The Keystone validation body cached for `token`, if any (and intact).
    /// A miss, without waiting, while the token's server is dead.
    pub async fn get(&self, token: &str) -> Option<serde_json::Value> {
        let inner = &self.inner;
        let (key, primary) = inner.key(token);
        let raw = inner.on_live_server(primary, Op::Get(key)).await??;
        let Some(payload) = open(&inner.protection, &raw) else {
            tracing::warn!("ignoring a memcached token entry that fails its integrity check");
            return None;
        };
        serde_json::from_slice(&payload).ok()
    }

    /// Stores Keystone's validation body for `token` for `ttl`, in the
    /// background (the caller does not wait for memcached). Needs a Tokio
    /// runtime.
    pub(crate) fn set(&self, token: &str, body: &serde_json::Value, ttl: Duration) {
        let (key, primary) = self.inner.key(token);
        let sealed = seal(&self.inner.protection, body.to_string().as_bytes());
        if sealed.is_empty() {
            return;
        }
        let ttl = ttl.as_secs().max(1) as i64;
        let inner = self.inner.clone();
        let op = Op::Set {
            key,
            value: sealed,
            ttl,
        };
        tokio::spawn(async move {
            inner.on_live_server(primary, op).await;
        });
    }

    /// The raw entry stored under `namespace` for `material` (hashed like a
    /// token, never sent as is), if any and intact; for the results cache.
    pub(crate) async fn get_entry(&self, namespace: &str, material: &[u8]) -> Option<Vec<u8>> {
        let inner = &self.inner;
        let (key, primary) = inner.key_in(namespace, material);
        let raw = inner.on_live_server(primary, Op::Get(key)).await??;
        let payload = open(&inner.protection, &raw);
        if payload.is_none() {
            tracing::warn!("ignoring a memcached {namespace} entry that fails its integrity check");
        }
        payload
    }

    /// Stores `value` under `namespace` for `material` for `ttl`, in the
    /// background; `false` (nothing sent) when the sealed entry would be
    /// larger than `max_bytes`.
    pub(crate) fn set_entry(
        &self,
        namespace: &str,
        material: &[u8],
        value: &[u8],
        ttl: Duration,
        max_bytes: usize,
    ) -> bool {
        let (key, primary) = self.inner.key_in(namespace, material);
        let sealed = seal(&self.inner.protection, value);
        if sealed.is_empty() || sealed.len() > max_bytes {
            return false;
        }
        let inner = self.inner.clone();
        let op = Op::Set {
            key,
            value: sealed,
            ttl: ttl.as_secs().max(1) as i64,
        };
        tokio::spawn(async move {
            inner.on_live_server(primary, op).await;
        });
        true
    }

    /// Whether `memcached_servers[index]` is currently skipped as dead (for
    /// the tests below).
    #[cfg(test)]
    fn is_dead(&self, index: usize) -> bool {
        self.inner
            .servers
            .get(index)
            .is_some_and(|s| s.is_dead(Instant::now()))
    }
}

impl Inner {
    /// The entry key of `token`, and the index of its server while every
    /// server is live.
    fn key(&self, token: &str) -> (String, usize) {
        self.key_in("tokens", token.as_bytes())
    }

    /// The entry key of `material` below `aetos/<namespace>/`, and its
    /// server's index.
    fn key_in(&self, namespace: &str, material: &[u8]) -> (String, usize) {
        let digest: [u8; 32] = if self.key_salt.is_empty() {
            let mut d = [0u8; 32];
            d.copy_from_slice(digest::digest(&digest::SHA256, material).as_ref());
            d
        } else {
            hmac(&self.key_salt, material)
        };
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let server = usize::from(digest[0]) % self.servers.len();
        (format!("aetos/{namespace}/{hex}"), server)
    }

    /// The first live server from `primary` on (so a dead server's keys
    /// go to the next live one, the same for every replica).
    fn live_server(&self, primary: usize) -> Option<&Server> {
        let now = Instant::now();
        let n = self.servers.len();
        (0..n)
            .map(|i| &self.servers[(primary + i) % n])
            .find(|s| !s.is_dead(now))
    }

    /// Runs `op` on the key's live server; `None` (a miss) when there is
    /// none or the operation fails.
    async fn on_live_server(&self, primary: usize, op: Op) -> Option<Option<Vec<u8>>> {
        let server = self.live_server(primary)?;
        match server.run(&self.pool, &op).await {
            Ok(v) => Some(v),
            Err(Failure::Timeout(why) | Failure::Broken(why)) => {
                server.mark_dead(self.pool.dead_retry, &why);
                None
            }
            Err(Failure::Other(why)) => {
                tracing::debug!(server = %server.name, "memcached operation skipped: {why}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
