//! Each thread's last few tokens found valid, looked up before the token
//! cache: a hit costs one keyed hash of the token and one comparison, not
//! the cache's lookup and its bookkeeping (about 3k instructions). An entry
//! is good until its cache time runs out, as the cache's own is (it is
//! made just before the cache's), whatever the cache does meanwhile to
//! make room; a token whose identity has expired is forgotten here and in
//! the cache.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Instant;

use super::Cached;

/// How many tokens each thread remembers.
const RECENT_TOKENS: usize = 16;

/// A token this thread found valid.
struct Recent {
    /// The authenticator that found it.
    owner: u64,
    /// The token's SipHash under this thread's keys: compared first, so
    /// that a token is compared byte by byte only with one of the same
    /// keyed hash (the time a comparison takes tells a caller nothing
    /// about the remembered tokens).
    hash: u64,
    token: Box<str>,
    cached: Cached,
}

impl Recent {
    fn is(&self, owner: u64, hash: u64, token: &str) -> bool {
        self.hash == hash && self.owner == owner && *self.token == *token
    }
}

thread_local! {
    /// This thread's hash keys, its remembered tokens, the slot to fill next.
    static RECENT: (RandomState, RefCell<Vec<Recent>>, Cell<usize>) = Default::default();
}

/// `token` as `owner` last found it valid on this thread, unless its cache
/// time has run out since.
pub(super) fn get(owner: u64, token: &str) -> Option<Cached> {
    RECENT.with(|(keys, recent, _)| {
        let hash = keys.hash_one(token);
        let recent = recent.borrow();
        let r = recent.iter().find(|r| r.is(owner, hash, token))?;
        (Instant::now() < r.cached.expires).then(|| r.cached.clone())
    })
}

/// Remembers `token` as valid (`c`) for `owner` on this thread, in place of
/// its earlier entry or of the oldest one.
pub(super) fn remember(owner: u64, token: &str, c: &Cached) {
    RECENT.with(|(keys, recent, next)| {
        let hash = keys.hash_one(token);
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
        let hash = keys.hash_one(token);
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
    fn other_threads_have_their_own() {
        remember(5, "here", &cached("h", Duration::from_secs(60)));
        let there = std::thread::spawn(|| get(5, "here").is_some())
            .join()
            .unwrap();
        assert!(!there);
        assert!(get(5, "here").is_some());
    }
}
