//! Credentials that are fetched once, cached, and fetched again shortly
//! before they expire — never per request.
//!
//! STS credentials, Azure AD tokens and IMDS tokens all come with a
//! lifetime. [`Refreshing`] holds the current value and decides when to
//! fetch a new one: when a tenth of its lifetime (at most five minutes) is
//! left. One fetch runs at a time; requests arriving meanwhile wait for it
//! instead of starting their own. When a fetch fails while the held value
//! is still valid, the held value keeps being used (and the failure is
//! logged); a failed fetch is not retried for [`RETRY_AFTER_FAILURE`], so a
//! broken identity provider is not hammered by every request.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// How long a failed fetch is remembered before the next attempt.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Longest margin before expiry at which a refresh starts.
pub const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A value and when it stops being valid (`None`: never).
#[derive(Debug, Clone)]
pub struct Expiring<T> {
    pub value: T,
    pub expires_at: Option<SystemTime>,
}

/// Where "now" comes from; replaced in tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// When a value obtained at `obtained` and expiring at `expires_at` should
/// be replaced: a tenth of its lifetime before expiry, at most
/// [`MAX_REFRESH_MARGIN`] before.
pub fn refresh_time(obtained: SystemTime, expires_at: SystemTime) -> SystemTime {
    let lifetime = expires_at
        .duration_since(obtained)
        .unwrap_or(Duration::ZERO);
    let margin = (lifetime / 10).min(MAX_REFRESH_MARGIN);
    expires_at - margin
}

struct Held<T> {
    value: T,
    expires_at: Option<SystemTime>,
    refresh_at: Option<SystemTime>,
}

/// What the cache holds, for health reports (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// Nothing fetched yet.
    Empty,
    /// A value that does not expire.
    Permanent,
    /// A value valid for this long.
    Valid { expires_in: Duration },
    /// The held value has expired and no new one could be fetched.
    Expired,
}

/// A cached, self-refreshing value (see the module documentation).
pub struct Refreshing<T> {
    held: RwLock<Option<Held<T>>>,
    gate: tokio::sync::Mutex<()>,
    failure: Mutex<Option<(SystemTime, String)>>,
    clock: Clock,
    fetches: std::sync::atomic::AtomicU64,
}

impl<T: Clone> Refreshing<T> {
    /// An empty cache on the system clock.
    pub fn new() -> Self {
        Self::with_clock(system_clock())
    }

    /// An empty cache on `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        Refreshing {
            held: RwLock::new(None),
            gate: tokio::sync::Mutex::new(()),
            failure: Mutex::new(None),
            clock,
            fetches: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The held value if it needs no refresh at `now`.
    fn fresh(&self, now: SystemTime) -> Option<T> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        let h = held.as_ref()?;
        match h.refresh_at {
            Some(at) if now >= at => None,
            _ => Some(h.value.clone()),
        }
    }

    /// The held value if it has not expired at `now` (it may be due for refresh).
    fn usable(&self, now: SystemTime) -> Option<T> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        let h = held.as_ref()?;
        match h.expires_at {
            Some(at) if now >= at => None,
            _ => Some(h.value.clone()),
        }
    }

    /// The current value, fetching a new one with `fetch` when none is held
    /// or the held one is due for refresh. Errors are the fetch's message.
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<T, String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Expiring<T>, String>>,
    {
        if let Some(v) = self.fresh((self.clock)()) {
            return Ok(v);
        }
        let _one_at_a_time = self.gate.lock().await;
        let now = (self.clock)();
        // Someone else may have refreshed while we waited.
        if let Some(v) = self.fresh(now) {
            return Ok(v);
        }
        let recent_failure = self
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(at, _)| {
                now.duration_since(*at).unwrap_or(Duration::ZERO) < RETRY_AFTER_FAILURE
            })
            .map(|(_, why)| why.clone());
        if let Some(why) = recent_failure {
            return self.usable(now).ok_or(why);
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match fetch().await {
            Ok(e) => {
                let obtained = (self.clock)();
                let refresh_at = e.expires_at.map(|at| refresh_time(obtained, at));
                let value = e.value.clone();
                *self.held.write().unwrap_or_else(|e| e.into_inner()) = Some(Held {
                    value: e.value,
                    expires_at: e.expires_at,
                    refresh_at,
                });
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(value)
            }
            Err(why) => {
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(((self.clock)(), why.clone()));
                match self.usable(now) {
                    Some(v) => {
                        tracing::warn!(
                            "refreshing backend credentials failed, still using the current \
                             ones until they expire: {why}"
                        );
                        Ok(v)
                    }
                    None => Err(why),
                }
            }
        }
    }

    /// What is held now, for `/healthcheck?detailed`.
    pub fn state(&self) -> CacheState {
        let now = (self.clock)();
        let held = self.held.read().unwrap_or_else(|e| e.into_inner());
        match held.as_ref() {
            None => CacheState::Empty,
            Some(Held {
                expires_at: None, ..
            }) => CacheState::Permanent,
            Some(Held {
                expires_at: Some(at),
                ..
            }) => match at.duration_since(now) {
                Ok(left) if !left.is_zero() => CacheState::Valid { expires_in: left },
                _ => CacheState::Expired,
            },
        }
    }

    /// The last fetch error, if the last fetch failed.
    pub fn last_error(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, why)| why.clone())
    }

    /// How many fetches were started (for the tests).
    #[cfg(test)]
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<T: Clone> Default for Refreshing<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock the test moves by hand, in milliseconds since the epoch.
    fn manual_clock() -> (Clock, Arc<AtomicU64>) {
        let ms = Arc::new(AtomicU64::new(1_700_000_000_000));
        let m = ms.clone();
        let clock: Clock = Arc::new(move || {
            SystemTime::UNIX_EPOCH + Duration::from_millis(m.load(Ordering::SeqCst))
        });
        (clock, ms)
    }

    fn advance(ms: &AtomicU64, by: Duration) {
        ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// A fetcher that counts calls and hands out values valid for `lifetime`.
    fn fetcher(
        clock: Clock,
        calls: Arc<AtomicU64>,
        lifetime: Duration,
    ) -> impl Fn() -> std::future::Ready<Result<Expiring<u64>, String>> {
        move || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::future::ready(Ok(Expiring {
                value: n,
                expires_at: Some(clock() + lifetime),
            }))
        }
    }

    #[test]
    fn refresh_margin_is_a_tenth_of_the_lifetime_capped_at_five_minutes() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // 10 s lifetime: refresh 1 s before expiry.
        assert_eq!(
            refresh_time(t0, t0 + Duration::from_secs(10)),
            t0 + Duration::from_secs(9)
        );
        // 15 minutes (STS minimum): 90 s before.
        assert_eq!(
            refresh_time(t0, t0 + Duration::from_secs(900)),
            t0 + Duration::from_secs(810)
        );
        // One hour and one day: capped at 5 minutes before.
        assert_eq!(
            refresh_time(t0, t0 + Duration::from_secs(3600)),
            t0 + Duration::from_secs(3300)
        );
        assert_eq!(
            refresh_time(t0, t0 + Duration::from_secs(86400)),
            t0 + Duration::from_secs(86100)
        );
        // Already expired: refresh now.
        assert_eq!(
            refresh_time(t0, t0 - Duration::from_secs(5)),
            t0 - Duration::from_secs(5)
        );
    }

    #[tokio::test]
    async fn short_lived_credentials_are_fetched_once_then_refreshed_before_expiry() {
        let (clock, ms) = manual_clock();
        let calls = Arc::new(AtomicU64::new(0));
        let cache = Refreshing::with_clock(clock.clone());
        let fetch = fetcher(clock.clone(), calls.clone(), Duration::from_secs(10));
        // Many requests within the first 9 s: one fetch.
        for _ in 0..90 {
            assert_eq!(cache.get(&fetch).await.unwrap(), 1);
            advance(&ms, Duration::from_millis(100));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // At 9 s (a tenth of the lifetime left) the next request refreshes,
        // although the first value is still valid.
        assert_eq!(cache.get(&fetch).await.unwrap(), 2);
        assert!(
            matches!(cache.state(), CacheState::Valid { expires_in } if expires_in == Duration::from_secs(10))
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.fetch_count(), 2);
    }

    #[tokio::test]
    async fn permanent_credentials_are_fetched_once() {
        let (clock, ms) = manual_clock();
        let cache = Refreshing::with_clock(clock);
        let calls = AtomicU64::new(0);
        for _ in 0..5 {
            let v = cache
                .get(|| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Ok(Expiring {
                        value: "static",
                        expires_at: None,
                    }))
                })
                .await;
            assert_eq!(v.unwrap(), "static");
            advance(&ms, Duration::from_secs(86400 * 365));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.state(), CacheState::Permanent);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_valid_value_and_fails_once_it_expired() {
        let (clock, ms) = manual_clock();
        let cache = Refreshing::with_clock(clock.clone());
        let calls = Arc::new(AtomicU64::new(0));
        let good = fetcher(clock.clone(), calls.clone(), Duration::from_secs(10));
        assert_eq!(cache.get(&good).await.unwrap(), 1);
        advance(&ms, Duration::from_millis(9500));
        let bad = || std::future::ready(Err::<Expiring<u64>, _>("STS said no".to_owned()));
        // Due for refresh, refresh fails, the old value is still valid.
        assert_eq!(cache.get(bad).await.unwrap(), 1);
        assert_eq!(cache.last_error().as_deref(), Some("STS said no"));
        // Past expiry (and past the retry pause): the error comes through.
        advance(&ms, Duration::from_millis(1500));
        assert_eq!(cache.get(bad).await.unwrap_err(), "STS said no");
        assert_eq!(cache.state(), CacheState::Expired);
        // A working provider again: recovered.
        advance(&ms, RETRY_AFTER_FAILURE);
        assert_eq!(cache.get(&good).await.unwrap(), 2);
        assert_eq!(cache.last_error(), None);
    }

    #[tokio::test]
    async fn a_failure_is_not_retried_by_every_request() {
        let (clock, ms) = manual_clock();
        let cache: Refreshing<u64> = Refreshing::with_clock(clock);
        let calls = AtomicU64::new(0);
        let bad = || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<Expiring<u64>, _>("no credentials".to_owned()))
        };
        for _ in 0..20 {
            assert!(cache.get(bad).await.is_err());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        advance(&ms, RETRY_AFTER_FAILURE);
        assert!(cache.get(bad).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch() {
        let cache = Arc::new(Refreshing::<u64>::new());
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                cache
                    .get(|| async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Expiring {
                            value: 7,
                            expires_at: Some(SystemTime::now() + Duration::from_secs(60)),
                        })
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
