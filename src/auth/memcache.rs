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

use std::time::Duration;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use async_memcached::{AsciiProtocol, Client};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

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

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn derive(secret: &str, purpose: &[u8]) -> [u8; 32] {
    hmac(secret.as_bytes(), purpose)
}

/// Seals a payload for storage.
pub fn seal(p: &Protection, payload: &[u8]) -> Vec<u8> {
    match p {
        Protection::None => payload.to_vec(),
        Protection::Mac(key) => {
            let mut out = hmac(key, payload).to_vec();
            out.extend_from_slice(payload);
            out
        }
        Protection::Encrypt { enc, .. } => {
            let cipher = Aes256Gcm::new(enc.into());
            let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
            match cipher.encrypt(&nonce, payload) {
                Ok(ct) => {
                    let mut out = nonce.to_vec();
                    out.extend_from_slice(&ct);
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
pub fn open(p: &Protection, stored: &[u8]) -> Option<Vec<u8>> {
    match p {
        Protection::None => Some(stored.to_vec()),
        Protection::Mac(key) => {
            if stored.len() < 32 {
                return None;
            }
            let (tag, payload) = stored.split_at(32);
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
            m.update(payload);
            m.verify_slice(tag).ok()?;
            Some(payload.to_vec())
        }
        Protection::Encrypt { enc, .. } => {
            if stored.len() < 12 {
                return None;
            }
            let (nonce, ct) = stored.split_at(12);
            Aes256Gcm::new(enc.into())
                .decrypt(Nonce::from_slice(nonce), ct)
                .ok()
        }
    }
}

/// Connections per server; memcached answers in well under a millisecond,
/// so a few are plenty.
const CONNECTIONS: usize = 4;

/// The shared cache.
pub struct SharedCache {
    servers: Vec<String>,
    slots: Vec<Mutex<Option<Client>>>,
    protection: Protection,
    /// Entry keys are namespaced by this (and, for MAC/ENCRYPT, keyed).
    key_salt: Vec<u8>,
}

impl SharedCache {
    /// `servers` as keystonemiddleware takes them: `host:port`, `[v6]:port`
    /// or `inet6:[v6]:port`.
    pub fn new(servers: &[String], protection: Protection) -> SharedCache {
        let servers: Vec<String> = servers
            .iter()
            .map(|s| {
                format!(
                    "tcp://{}",
                    s.trim_start_matches("inet6:").trim_start_matches("inet:")
                )
            })
            .collect();
        let slots = (0..servers.len() * CONNECTIONS)
            .map(|_| Mutex::new(None))
            .collect();
        let key_salt = match &protection {
            Protection::None => Vec::new(),
            Protection::Mac(k) => k.to_vec(),
            Protection::Encrypt { mac, .. } => mac.to_vec(),
        };
        SharedCache {
            servers,
            slots,
            protection,
            key_salt,
        }
    }

    /// The memcached key under which `token`'s entry is stored (never the
    /// token itself; for MAC/ENCRYPT it also depends on the secret).
    pub fn entry_key(&self, token: &str) -> String {
        self.key(token).0
    }

    fn key(&self, token: &str) -> (String, usize) {
        let digest: [u8; 32] = if self.key_salt.is_empty() {
            Sha256::digest(token.as_bytes()).into()
        } else {
            hmac(&self.key_salt, token.as_bytes())
        };
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let server = usize::from(digest[0]) % self.servers.len();
        let slot = server * CONNECTIONS + usize::from(digest[1]) % CONNECTIONS;
        (format!("aetos/tokens/{hex}"), slot)
    }

    async fn with_client<T>(
        &self,
        slot: usize,
        op: impl AsyncFnOnce(&mut Client) -> Result<T, async_memcached::Error>,
    ) -> Option<T> {
        let mut guard = self.slots[slot].lock().await;
        if guard.is_none() {
            let server = &self.servers[slot / CONNECTIONS];
            match tokio::time::timeout(Duration::from_secs(3), Client::new(server)).await {
                Ok(Ok(c)) => *guard = Some(c),
                Ok(Err(e)) => {
                    tracing::warn!(server = %server, "memcached unavailable: {e}");
                    return None;
                }
                Err(_) => {
                    tracing::warn!(server = %server, "memcached connect timed out");
                    return None;
                }
            }
        }
        let client = guard.as_mut()?;
        match tokio::time::timeout(Duration::from_secs(3), op(client)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!("memcached operation failed: {e}");
                *guard = None;
                None
            }
            Err(_) => {
                tracing::warn!("memcached operation timed out");
                *guard = None;
                None
            }
        }
    }

    /// The Keystone validation body cached for `token`, if any (and intact).
    pub async fn get(&self, token: &str) -> Option<serde_json::Value> {
        let (key, slot) = self.key(token);
        let value = self
            .with_client(slot, async |c| c.get(&key).await)
            .await??;
        let raw = value.data?;
        let Some(payload) = open(&self.protection, &raw) else {
            tracing::warn!("ignoring a memcached token entry that fails its integrity check");
            return None;
        };
        serde_json::from_slice(&payload).ok()
    }

    /// Stores Keystone's validation body for `token` for `ttl`.
    pub async fn set(&self, token: &str, body: &serde_json::Value, ttl: Duration) {
        let (key, slot) = self.key(token);
        let sealed = seal(&self.protection, body.to_string().as_bytes());
        if sealed.is_empty() {
            return;
        }
        let ttl = ttl.as_secs().max(1) as i64;
        let _ = self
            .with_client(slot, async |c| {
                c.set(&key, sealed.as_slice(), Some(ttl), None).await
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
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
        let (k, _) = plain.key("my-token");
        assert!(!k.contains("my-token") && k.starts_with("aetos/tokens/"));
        let mac = SharedCache::new(&["127.0.0.1:11211".into()], Protection::mac("s"));
        assert_ne!(mac.key("my-token").0, k);
    }
}
