//! Each thread's last few tokens found valid, looked up before the token
//! cache: a hit costs one keyed hash of the token's end and one comparison,
//! not the cache's lookup and its bookkeeping (about 3k instructions). An entry
//! is good until its cache time runs out, as the cache's own is (it is
//! made just before the cache's), whatever the cache does meanwhile to
//! make room; a token whose identity has expired is forgotten here and in
//! the cache.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use super::Cached;

/// How many tokens each thread remembers.
const RECENT_TOKENS: usize = 16;

/// A token this thread found valid.
struct Recent {
    /// The authenticator that found it.
    owner: u64,
    /// [`end_hash`] of the token: compared first, so that a token is compared
    /// with the whole of a remembered one only when their ends match.
    hash: u64,
    token: Box<str>,
    cached: Cached,
}

impl Recent {
    fn is(&self, owner: u64, hash: u64, token: &str) -> bool {
        self.hash == hash && self.owner == owner && same(self.token.as_bytes(), token.as_bytes())
    }
}

/// How many of a token's last bytes [`end_hash`] covers: Keystone's tokens end
/// in what makes them unguessable (a Fernet token's HMAC, a JWS token's
/// signature), which 32 bytes hold many times over.
const HASHED_END: usize = 32;

/// SipHash, under this thread's keys, of a token's length and its last
/// [`HASHED_END`] bytes: what is hashed per request does not grow with
/// the token. A caller's token meets a full comparison with a remembered
/// one only when both end alike (or their hashes collide, one chance in
/// 2^64), so only a caller who already holds the end of a remembered token
/// can make it happen, and [`same`] then takes the same time whichever
/// bytes differ.
fn end_hash(keys: &RandomState, token: &str) -> u64 {
    let b = token.as_bytes();
    let end = &b[b.len().saturating_sub(HASHED_END)..];
    // Length and end in one buffer, hashed in one write.
    let mut buf = [0u8; 8 + HASHED_END];
    buf[..8].copy_from_slice(&(b.len() as u64).to_le_bytes());
    buf[8..8 + end.len()].copy_from_slice(end);
    let mut h = keys.build_hasher();
    h.write(&buf[..8 + end.len()]);
    h.finish()
}

/// Equality in a time that depends on the length only (no early exit at
/// the first differing byte).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

thread_local! {
    /// This thread's hash keys, its remembered tokens, the slot to fill next.
    static RECENT: (RandomState, RefCell<Vec<Recent>>, Cell<usize>) = Default::default();
}

/// `token` as `owner` last found it valid on this thread, unless its cache
/// time has run out since.
pub(super) fn get(owner: u64, token: &str) -> Option<Cached> {
    RECENT.with(|(keys, recent, _)| {
        let hash = end_hash(keys, token);
        let recent = recent.borrow();
        let r = recent.iter().find(|r| r.is(owner, hash, token))?;
        (Instant::now() < r.cached.expires).then(|| r.cached.clone())
    })
}

/// Remembers `token` as valid (`c`) for `owner` on this thread, in place of
/// its earlier entry or of the oldest one.
pub(super) fn remember(owner: u64, token: &str, c: &Cached) {
    RECENT.with(|(keys, recent, next)| {
        let hash = end_hash(keys, token);
        let entry = Recent {
            owner,
            hash,
            token: token.into(),
            cached: c.clone(),
        };
        let mut recent = recent.borrow_mut();
        if let Some(r) = recent.iter_mut().find(|r| r.is(owner, hash, token)) {
            *r = entry;
        } else if recent.len() < RECENT_TOKENS {
            recent.push(entry);
        } else {
            let i = next.get() % RECENT_TOKENS;
            next.set(i + 1);
            recent[i] = entry;
        }
    })
}

/// Forgets `token` of `owner` on this thread.
pub(super) fn forget(owner: u64, token: &str) {
    RECENT.with(|(keys, recent, _)| {
        let hash = end_hash(keys, token);
        recent.borrow_mut().retain(|r| !r.is(owner, hash, token));
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use std::time::Duration;

    fn cached(user: &str, ttl: Duration) -> Cached {
        Cached::new(
            Identity {
                user_id: Some(user.into()),
                ..Identity::default()
            },
            ttl,
        )
    }

    fn user(c: Option<Cached>) -> Option<String> {
        c.and_then(|c| c.identity.user_id.clone())
    }

    #[test]
    fn a_remembered_token_is_found_for_its_owner_only() {
        remember(1, "tok-a", &cached("a", Duration::from_secs(60)));
        assert_eq!(user(get(1, "tok-a")).as_deref(), Some("a"));
        assert!(get(2, "tok-a").is_none());
        assert!(get(1, "tok-b").is_none());
        assert!(get(1, "tok-").is_none());
        assert!(get(1, "tok-aa").is_none());
        remember(1, "tok-a", &cached("a2", Duration::from_secs(60)));
        assert_eq!(user(get(1, "tok-a")).as_deref(), Some("a2"));
        forget(1, "tok-a");
        assert!(get(1, "tok-a").is_none());
    }

    #[test]
    fn an_entry_is_good_only_until_its_cache_time_runs_out() {
        remember(3, "short", &cached("s", Duration::from_millis(50)));
        assert!(get(3, "short").is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(get(3, "short").is_none());
        remember(3, "none", &cached("n", Duration::ZERO));
        assert!(get(3, "none").is_none());
    }

    #[test]
    fn at_most_a_few_tokens_are_remembered_the_newest_kept() {
        for i in 0..100 {
            remember(
                4,
                &format!("t{i}"),
                &cached(&format!("u{i}"), Duration::from_secs(60)),
            );
            assert_eq!(user(get(4, &format!("t{i}"))), Some(format!("u{i}")));
        }
        RECENT.with(|(_, recent, _)| assert_eq!(recent.borrow().len(), RECENT_TOKENS));
        let kept = (0..100)
            .filter(|i| get(4, &format!("t{i}")).is_some())
            .count();
        assert_eq!(kept, RECENT_TOKENS);
    }

    #[test]
    fn tokens_alike_but_for_their_start_or_length_are_told_apart() {
        let end = "e".repeat(HASHED_END);
        let (a, b) = (format!("aaaa{end}"), format!("abaa{end}"));
        remember(6, &a, &cached("a", Duration::from_secs(60)));
        assert_eq!(user(get(6, &a)).as_deref(), Some("a"));
        assert!(get(6, &b).is_none(), "same end, another start");
        assert!(get(6, &format!("aaa{end}")).is_none(), "same end, shorter");
        assert!(get(6, &format!("xaaaa{end}")).is_none(), "same end, longer");
        assert!(get(6, &end).is_none());
        remember(6, &b, &cached("b", Duration::from_secs(60)));
        assert_eq!(user(get(6, &a)).as_deref(), Some("a"));
        assert_eq!(user(get(6, &b)).as_deref(), Some("b"));
        forget(6, &a);
        assert!(get(6, &a).is_none());
        assert_eq!(user(get(6, &b)).as_deref(), Some("b"));
        // Short tokens are hashed whole.
        remember(6, "x", &cached("x", Duration::from_secs(60)));
        assert!(get(6, "y").is_none());
        assert_eq!(user(get(6, "x")).as_deref(), Some("x"));
    }

    #[test]
    fn same_is_byte_equality() {
        for (a, b) in [
            ("", ""),
            ("a", "a"),
            ("ab", "ab"),
            ("ab", "ba"),
            ("a", "ab"),
            ("", "a"),
        ] {
            assert_eq!(same(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn other_threads_have_their_own() {
        remember(5, "here", &cached("h", Duration::from_secs(60)));
        let there = std::thread::spawn(|| get(5, "here").is_some())
            .join()
            .unwrap();
        assert!(!there);
        assert!(get(5, "here").is_some());
    }
}
