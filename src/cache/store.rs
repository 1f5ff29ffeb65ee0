//! Where cached answers are kept: this process (moka, bounded in bytes) or
//! memcached (shared by the replicas). Both only ever miss: a store that
//! fails, times out or holds garbage costs a backend request, never an
//! error or a wait beyond its timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::auth::memcache::SharedCache;

/// The memcached namespace of results (`aetos/results/<hash>`).
const NAMESPACE: &str = "results";

/// One stored answer and how long it may be kept.
#[derive(Clone)]
pub(crate) struct Entry {
    body: Bytes,
    ttl: Duration,
}

struct EntryTtl;

impl moka::Expiry<[u8; 32], Entry> for EntryTtl {
    fn expire_after_create(&self, _k: &[u8; 32], v: &Entry, _at: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// A store of answers by key (a SHA-256, see `super::key`).
#[derive(Clone)]
pub(crate) enum Store {
    Memory(moka::future::Cache<[u8; 32], Entry>),
    Memcached {
        shared: SharedCache,
        max_item_bytes: usize,
    },
}

/// Bytes counted per entry beyond its body (key, bookkeeping).
const ENTRY_OVERHEAD: usize = 96;

impl Store {
    /// In process, at most `max_bytes` of entries.
    pub(crate) fn memory(max_bytes: u64) -> Store {
        Store::Memory(
            moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_k: &[u8; 32], v: &Entry| {
                    u32::try_from(v.body.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                })
                .expire_after(EntryTtl)
                .build(),
        )
    }

    /// In memcached; entries larger than `max_item_bytes` are not stored.
    pub(crate) fn memcached(shared: SharedCache, max_item_bytes: usize) -> Store {
        Store::Memcached {
            shared,
            max_item_bytes,
        }
    }

    pub(crate) async fn get(&self, key: &[u8; 32]) -> Option<Bytes> {
        match self {
            Store::Memory(m) => m.get(key).await.map(|e| e.body),
            Store::Memcached { shared, .. } => {
                shared.get_entry(NAMESPACE, key).await.map(Bytes::from)
            }
        }
    }

    /// Stores `body` for `ttl` (memcached: in the background); `false` when
    /// it is too large to be stored.
    pub(crate) async fn set(&self, key: [u8; 32], body: Bytes, ttl: Duration) -> bool {
        match self {
            Store::Memory(m) => {
                m.insert(key, Entry { body, ttl }).await;
                true
            }
            Store::Memcached {
                shared,
                max_item_bytes,
            } => shared.set_entry(NAMESPACE, &key, &body, ttl, *max_item_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[tokio::test]
    async fn memory_store_keeps_entries_within_its_byte_bound() {
        let store = Store::memory(64 * 1024);
        let big = Bytes::from(vec![b'x'; 16 * 1024]);
        for n in 0..32 {
            assert!(
                store
                    .set(key(n), big.clone(), Duration::from_secs(60))
                    .await
            );
        }
        let Store::Memory(m) = &store else {
            unreachable!()
        };
        m.run_pending_tasks().await;
        assert!(m.weighted_size() <= 64 * 1024, "{}", m.weighted_size());
        let kept = {
            let mut kept = 0;
            for n in 0..32 {
                kept += usize::from(store.get(&key(n)).await.is_some());
            }
            kept
        };
        assert!(
            (1..=4).contains(&kept),
            "{kept} entries of 16 KiB kept in 64 KiB"
        );
    }

    #[tokio::test]
    async fn memory_store_answers_what_was_stored() {
        let store = Store::memory(1 << 20);
        assert_eq!(store.get(&key(1)).await, None);
        store
            .set(key(1), Bytes::from_static(b"{}"), Duration::from_secs(60))
            .await;
        assert_eq!(store.get(&key(1)).await, Some(Bytes::from_static(b"{}")));
        assert_eq!(store.get(&key(2)).await, None);
    }

    #[tokio::test]
    async fn unreachable_memcached_is_a_miss_within_its_timeout() {
        // A port nothing listens on: connection refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let shared = SharedCache::with_pool(
            &[addr.to_string()],
            crate::auth::memcache::Protection::None,
            crate::auth::memcache::PoolOptions {
                socket_timeout: Duration::from_millis(200),
                ..Default::default()
            },
        );
        let store = Store::memcached(shared, 1 << 20);
        assert_eq!(store.get(&key(1)).await, None);
        assert!(
            !store
                .set(
                    key(1),
                    Bytes::from(vec![0u8; 2 << 20]),
                    Duration::from_secs(5)
                )
                .await,
            "an entry above the item limit is not sent"
        );
    }
}
