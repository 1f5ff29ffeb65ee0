//! Several equivalent backends (an HA pair, or the addresses a DNS name
//! resolves to) and which of them is up.
//!
//! Requests go round robin to the backends believed healthy; the others
//! are tried only as a last resort. A backend is marked down when a
//! connection to it fails during a request or when its background health
//! check (`GET <base>/-/ready`) fails, and up again only by a health check
//! that succeeds — so a restarted Prometheus rejoins once it is ready, not
//! while it is still replaying its WAL. Every change of state is logged.
//!
//! The list of targets can be swapped as a whole ([`Pool::replace`], by DNS
//! discovery): a request takes one snapshot of it ([`Pool::snapshot`], one
//! read lock) and keeps to it, so a removed target drains — the requests
//! already on it finish, no new one goes there — and an added one joins,
//! starting as up like every target. A target in both lists keeps its state.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use url::Url;

use super::url::Endpoint;

/// One backend: its base URL, prepared once, and what we know of its health.
pub struct Target {
    /// Base URL without a trailing slash (paths are appended).
    pub base: Url,
    /// `base`, prepared once for building request URLs.
    pub(super) endpoint: Endpoint,
    /// The `dns+…`/`dnssrv+…` entry it was resolved from (`None`: configured).
    pub source: Option<String>,
    state: Mutex<TargetState>,
}

/// A snapshot of the targets, as one request sees them.
pub type Targets = Arc<Vec<Arc<Target>>>;

#[derive(Debug, Clone)]
struct TargetState {
    up: bool,
    since: SystemTime,
    last_error: Option<String>,
    last_check: Option<SystemTime>,
}

/// A backend's state as reported by `/healthcheck?detailed`.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetReport {
    pub url: String,
    /// The DNS entry the address was discovered from, if any.
    pub source: Option<String>,
    pub up: bool,
    pub since: SystemTime,
    pub last_error: Option<String>,
    pub last_check: Option<SystemTime>,
}

impl Target {
    /// A target that starts as up (the first health check corrects that).
    pub(super) fn new(base: Url, endpoint: Endpoint, source: Option<String>) -> Target {
        Target {
            base,
            endpoint,
            source,
            state: Mutex::new(TargetState {
                up: true,
                since: SystemTime::now(),
                last_error: None,
                last_check: None,
            }),
        }
    }

    fn is_up(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).up
    }

    /// Records the outcome of a health check (`from_check`) or of a
    /// request: `Err` takes the target out of rotation, only a good health
    /// check brings it back; a change of state is logged.
    pub fn record(&self, outcome: Result<(), String>, from_check: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        if from_check {
            s.last_check = Some(now);
        }
        match outcome {
            Ok(()) => {
                // Only a health check brings a backend back.
                if from_check {
                    if !s.up {
                        tracing::info!(backend = %self.base, "backend is up again");
                        s.up = true;
                        s.since = now;
                    }
                    s.last_error = None;
                }
            }
            Err(why) => {
                if s.up {
                    tracing::warn!(backend = %self.base, reason = %why, "backend is down, taken out of rotation");
                    s.up = false;
                    s.since = now;
                }
                s.last_error = Some(why);
            }
        }
    }

    fn report(&self) -> TargetReport {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        TargetReport {
            url: self.base.to_string(),
            source: self.source.clone(),
            up: s.up,
            since: s.since,
            last_error: s.last_error,
            last_check: s.last_check,
        }
    }
}

/// The backends and the round-robin position.
pub struct Pool {
    targets: RwLock<Targets>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(targets: Vec<Target>) -> Pool {
        Pool {
            targets: RwLock::new(Arc::new(targets.into_iter().map(Arc::new).collect())),
            next: AtomicUsize::new(0),
        }
    }

    /// The current targets (one read lock; cheap to hold for a request).
    pub fn snapshot(&self) -> Targets {
        self.targets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the targets by `new`, keeping the state of those already
    /// there (same base URL); logs who joined and who left. Returns whether
    /// anything changed.
    pub fn replace(&self, new: Vec<Target>) -> bool {
        let mut guard = self.targets.write().unwrap_or_else(|e| e.into_inner());
        let old = guard.clone();
        let mut changed = new.len() != old.len();
        let mut list = Vec::with_capacity(new.len());
        for t in new {
            match old.iter().find(|o| o.base == t.base) {
                Some(o) => list.push(o.clone()),
                None => {
                    tracing::info!(backend = %t.base, from = t.source.as_deref().unwrap_or("-"), "backend joined the pool");
                    changed = true;
                    list.push(Arc::new(t));
                }
            }
        }
        for o in old.iter() {
            if !list.iter().any(|t| t.base == o.base) {
                tracing::info!(backend = %o.base, from = o.source.as_deref().unwrap_or("-"),
                    "backend left the pool; requests on it finish, no new ones go there");
                changed = true;
            }
        }
        if changed {
            *guard = Arc::new(list);
        }
        changed
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    /// The order in which to try `targets` (a snapshot) for one request:
    /// the healthy ones in round-robin order, then the others (all are
    /// tried rather than none when every health check failed).
    pub fn order(&self, targets: &[Arc<Target>]) -> Vec<usize> {
        let n = targets.len();
        if n <= 1 {
            return (0..n).collect();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let rotation: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
        let (mut up, down): (Vec<usize>, Vec<usize>) =
            rotation.into_iter().partition(|i| targets[*i].is_up());
        up.extend(down);
        up
    }

    /// Every backend's state.
    pub fn report(&self) -> Vec<TargetReport> {
        self.snapshot().iter().map(|t| t.report()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(port: u16, source: Option<&str>) -> Target {
        let u = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = Endpoint::new(&u).unwrap();
        Target::new(u, e, source.map(str::to_owned))
    }

    fn pool(n: usize) -> Pool {
        Pool::new((0..n).map(|i| target(9000 + i as u16, None)).collect())
    }

    fn order(p: &Pool) -> Vec<usize> {
        p.order(&p.snapshot())
    }

    #[test]
    fn healthy_backends_take_turns() {
        let p = pool(2);
        let firsts: Vec<usize> = (0..6).map(|_| order(&p)[0]).collect();
        assert_eq!(firsts, [0, 1, 0, 1, 0, 1]);
        assert_eq!(order(&p).len(), 2);
    }

    #[test]
    fn a_down_backend_is_tried_last_and_returns_after_a_good_check() {
        let p = pool(3);
        let t = p.snapshot();
        t[1].record(Err("connection refused".into()), false);
        for _ in 0..6 {
            let o = order(&p);
            assert_eq!(o.len(), 3);
            assert_eq!(o[2], 1, "down backend last: {o:?}");
        }
        // A successful request does not bring it back; a health check does.
        t[1].record(Ok(()), false);
        assert!(!p.report()[1].up);
        t[1].record(Ok(()), true);
        let r = p.report();
        assert!(r[1].up && r[1].last_error.is_none() && r[1].last_check.is_some());
        let firsts: Vec<usize> = (0..3).map(|_| order(&p)[0]).collect();
        assert!(firsts.contains(&1));
    }

    #[test]
    fn when_all_are_down_all_are_still_tried() {
        let p = pool(2);
        let t = p.snapshot();
        t[0].record(Err("x".into()), true);
        t[1].record(Err("y".into()), true);
        let mut o = order(&p);
        o.sort_unstable();
        assert_eq!(o, [0, 1]);
        assert_eq!(p.report()[1].last_error.as_deref(), Some("y"));
    }

    #[test]
    fn a_single_backend_is_always_first() {
        let p = pool(1);
        for _ in 0..3 {
            assert_eq!(order(&p), [0]);
        }
    }

    #[test]
    fn replacing_keeps_known_states_drains_the_removed_and_adds_the_new() {
        let p = pool(2);
        let before = p.snapshot();
        before[1].record(Err("refused".into()), true);
        // 9001 stays (still down), 9000 goes, 9005 joins as up.
        let changed = p.replace(vec![
            target(9001, Some("dns+x")),
            target(9005, Some("dns+x")),
        ]);
        assert!(changed);
        let r = p.report();
        let urls: Vec<&str> = r.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(urls, ["http://127.0.0.1:9001/", "http://127.0.0.1:9005/"]);
        assert!(!r[0].up, "the kept target keeps its state");
        assert!(r[1].up, "a new target starts as up");
        assert_eq!(r[1].source.as_deref(), Some("dns+x"));
        // A request that took its snapshot before still has the removed one.
        assert_eq!(before.len(), 2);
        assert_eq!(before[0].base.port(), Some(9000));
        // New requests never see it.
        for _ in 0..4 {
            let s = p.snapshot();
            assert!(order(&p).iter().all(|i| s[*i].base.port() != Some(9000)));
        }
        // The same list again changes nothing.
        assert!(!p.replace(vec![target(9001, None), target(9005, None)]));
        // An empty list empties the pool.
        assert!(p.replace(Vec::new()));
        assert!(p.is_empty());
    }
}
