//! Several equivalent backends (an HA pair) and which of them is up.
//!
//! Requests go round robin to the backends believed healthy; the others
//! are tried only as a last resort. A backend is marked down when a
//! connection to it fails during a request or when its background health
//! check (`GET <base>/-/ready`) fails, and up again only by a health check
//! that succeeds — so a restarted Prometheus rejoins once it is ready, not
//! while it is still replaying its WAL. Every change of state is logged.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use url::Url;

/// One backend: its base URL and what we know of its health.
pub struct Target {
    /// Base URL without a trailing slash (paths are appended).
    pub base: Url,
    state: Mutex<TargetState>,
}

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
    pub up: bool,
    pub since: SystemTime,
    pub last_error: Option<String>,
    pub last_check: Option<SystemTime>,
}

/// The backends and the round-robin position.
pub struct Pool {
    targets: Vec<Target>,
    next: AtomicUsize,
}

impl Pool {
    /// All backends start as up (the first health check corrects that).
    pub fn new(bases: Vec<Url>) -> Pool {
        let now = SystemTime::now();
        Pool {
            targets: bases
                .into_iter()
                .map(|base| Target {
                    base,
                    state: Mutex::new(TargetState {
                        up: true,
                        since: now,
                        last_error: None,
                        last_check: None,
                    }),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn target(&self, i: usize) -> &Target {
        &self.targets[i]
    }

    fn is_up(&self, i: usize) -> bool {
        self.targets[i]
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .up
    }

    /// The order in which to try the backends for one request: the healthy
    /// ones in round-robin order, then the others (all are tried rather
    /// than none when every health check failed).
    pub fn order(&self) -> Vec<usize> {
        let n = self.targets.len();
        if n <= 1 {
            return (0..n).collect();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let rotation: Vec<usize> = (0..n).map(|k| (start + k) % n).collect();
        let (mut up, down): (Vec<usize>, Vec<usize>) =
            rotation.into_iter().partition(|i| self.is_up(*i));
        up.extend(down);
        up
    }

    /// Records the outcome of a health check (`Ok`) or failure (`Err`) of
    /// backend `i`; logs a change of state.
    pub fn record(&self, i: usize, outcome: Result<(), String>, from_check: bool) {
        let t = &self.targets[i];
        let mut s = t.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        if from_check {
            s.last_check = Some(now);
        }
        match outcome {
            Ok(()) => {
                // Only a health check brings a backend back.
                if from_check {
                    if !s.up {
                        tracing::info!(backend = %t.base, "backend is up again");
                        s.up = true;
                        s.since = now;
                    }
                    s.last_error = None;
                }
            }
            Err(why) => {
                if s.up {
                    tracing::warn!(backend = %t.base, reason = %why, "backend is down, taken out of rotation");
                    s.up = false;
                    s.since = now;
                }
                s.last_error = Some(why);
            }
        }
    }

    /// Every backend's state.
    pub fn report(&self) -> Vec<TargetReport> {
        self.targets
            .iter()
            .map(|t| {
                let s = t.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
                TargetReport {
                    url: t.base.to_string(),
                    up: s.up,
                    since: s.since,
                    last_error: s.last_error,
                    last_check: s.last_check,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        Pool::new(
            (0..n)
                .map(|i| Url::parse(&format!("http://127.0.0.1:{}", 9000 + i)).unwrap())
                .collect(),
        )
    }

    #[test]
    fn healthy_backends_take_turns() {
        let p = pool(2);
        let firsts: Vec<usize> = (0..6).map(|_| p.order()[0]).collect();
        assert_eq!(firsts, [0, 1, 0, 1, 0, 1]);
        assert_eq!(p.order().len(), 2);
    }

    #[test]
    fn a_down_backend_is_tried_last_and_returns_after_a_good_check() {
        let p = pool(3);
        p.record(1, Err("connection refused".into()), false);
        for _ in 0..6 {
            let o = p.order();
            assert_eq!(o.len(), 3);
            assert_eq!(o[2], 1, "down backend last: {o:?}");
        }
        // A successful request does not bring it back; a health check does.
        p.record(1, Ok(()), false);
        assert!(!p.report()[1].up);
        p.record(1, Ok(()), true);
        let r = p.report();
        assert!(r[1].up && r[1].last_error.is_none() && r[1].last_check.is_some());
        let firsts: Vec<usize> = (0..3).map(|_| p.order()[0]).collect();
        assert!(firsts.contains(&1));
    }

    #[test]
    fn when_all_are_down_all_are_still_tried() {
        let p = pool(2);
        p.record(0, Err("x".into()), true);
        p.record(1, Err("y".into()), true);
        let mut o = p.order();
        o.sort_unstable();
        assert_eq!(o, [0, 1]);
        assert_eq!(p.report()[1].last_error.as_deref(), Some("y"));
    }

    #[test]
    fn a_single_backend_is_always_first() {
        let p = pool(1);
        for _ in 0..3 {
            assert_eq!(p.order(), [0]);
        }
    }
}
