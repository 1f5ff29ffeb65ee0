//! Identical concurrent lookups share one flight: when a piece is being
//! looked up and fetched for one request, an identical request that needs
//! the same piece meanwhile waits for that outcome instead of asking the
//! backend again (Go's `singleflight`, Thanos' and Grafana's request
//! coalescing). Ten browsers opening one dashboard on a cold cache cost
//! the backend one request per piece, not ten.
//!
//! Per process, in memory: a map from key to the flight in progress,
//! entered when a flight takes off and removed when it lands or is
//! abandoned, so it holds at most one entry per request in flight.
//!
//! What a waiter gets is what the flight's leader got — a backend error
//! included: a waiter gives up exactly when and how the leader's backend
//! request did. When the leader goes away before it lands (its future
//! was dropped: another piece of its request failed, its client went
//! away and the server dropped the request), its flight is abandoned: the
//! waiters wake, and the first to ask again leads a new one. No waiter
//! waits beyond the deadline it is given either; past it,
//! [`Coalescer::run`] says so (and the cache answers the backend's
//! timeout).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

/// The flights in progress, by key.
pub(crate) struct Coalescer<K, V> {
    flights: Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
}

/// How a [`Coalescer::run`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Joined<V> {
    /// This call led the flight: the value is its own fetch's.
    Led(V),
    /// Another call's flight landed with this value.
    Waited(V),
    /// The deadline passed while waiting; nothing was fetched by this call.
    TimedOut,
}

/// The leader's hold on its flight: landing publishes the value; dropped
/// before that (the leader's future was cancelled), the flight is removed
/// and its waiters are woken without a value.
struct Flight<'a, K: Hash + Eq, V> {
    flights: &'a Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
    key: &'a K,
    tx: Option<watch::Sender<Option<V>>>,
}

impl<K: Hash + Eq, V> Flight<'_, K, V> {
    fn land(mut self, value: V) {
        // Out of the map first: a request arriving from now on starts
        // afresh (and finds in the store what this flight stored).
        lock(self.flights).remove(self.key);
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(value));
        }
    }
}

impl<K: Hash + Eq, V> Drop for Flight<'_, K, V> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            // Abandoned: only this flight's own entry is under its key (no
            // other flight of that key takes off while it is there).
            lock(self.flights).remove(self.key);
            // `tx` is dropped with `self`: the waiters see the channel closed.
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while the lock is held; a poisoned map is still sound.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Hash + Eq + Clone, V: Clone> Coalescer<K, V> {
    pub(crate) fn new() -> Coalescer<K, V> {
        Coalescer {
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// `fetch()`'s value, from this call's own flight or from an identical
    /// one already in progress. A call waits at most `deadline` in all
    /// (across abandoned flights); a call that leads is bounded by `fetch`.
    pub(crate) async fn run<F, Fut>(&self, key: K, deadline: Duration, fetch: F) -> Joined<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V>,
    {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let waiting = {
                let mut flights = lock(&self.flights);
                match flights.get(&key) {
                    // (A flight whose leader is gone is not waited for:
                    // its entry is gone too, but were it not, it is replaced.)
                    Some(rx) if rx.has_changed().is_ok() => Ok(rx.clone()),
                    _ => {
                        let (tx, rx) = watch::channel(None);
                        flights.insert(key.clone(), rx);
                        Err(tx)
                    }
                }
            };
            let mut rx = match waiting {
                Ok(rx) => rx,
                Err(tx) => {
                    let flight = Flight {
                        flights: &self.flights,
                        key: &key,
                        tx: Some(tx),
                    };
                    let value = fetch().await;
                    flight.land(value.clone());
                    return Joined::Led(value);
                }
            };
            let landed = match tokio::time::timeout_at(until, rx.wait_for(Option::is_some)).await {
                Ok(Ok(landed)) => landed.clone(),
                // Abandoned by its leader: ask again (and maybe lead).
                Ok(Err(_closed)) => None,
                Err(_elapsed) => return Joined::TimedOut,
            };
            if let Some(v) = landed {
                return Joined::Waited(v);
            }
        }
    }

    /// Flights in progress (tests: nothing is left behind).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.flights).len()
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;

    type Value = Result<u32, String>;
    type Fetch = Pin<Box<dyn Future<Output = Value> + Send>>;

    const LONG: Duration = Duration::from_secs(30);

    /// A fetch that counts its calls and answers `value` once `gate` lets it.
    fn gated(calls: &Arc<AtomicUsize>, gate: &Arc<Notify>, value: Value) -> impl FnOnce() -> Fetch {
        let (calls, gate) = (calls.clone(), gate.clone());
        move || {
            Box::pin(async move {
                calls.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                value
            })
        }
    }

    /// Lets every spawned task run until it waits (the test runtime has
    /// one thread: the tasks run while this one yields).
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    fn spawn(
        c: &Arc<Coalescer<u8, Value>>,
        key: u8,
        deadline: Duration,
        fetch: impl FnOnce() -> Fetch + Send + 'static,
    ) -> tokio::task::JoinHandle<Joined<Value>> {
        let c = c.clone();
        tokio::spawn(async move { c.run(key, deadline, fetch).await })
    }

    /// Every task's outcome; a test that hangs fails instead.
    async fn outcomes(tasks: Vec<tokio::task::JoinHandle<Joined<Value>>>) -> Vec<Joined<Value>> {
        let mut out = Vec::new();
        for t in tasks {
            out.push(bounded(t).await.unwrap());
        }
        out
    }

    async fn bounded<F: Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("a call that should have ended hangs")
    }

    #[tokio::test]
    async fn many_waiters_share_the_leaders_value() {
        let c = Arc::new(Coalescer::new());
        let (calls, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let tasks: Vec<_> = (0..50)
            .map(|_| spawn(&c, 1, LONG, gated(&calls, &gate, Ok(7))))
            .collect();
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one fetch for 50 calls");
        assert_eq!(c.in_flight(), 1);
        gate.notify_one();
        let out = outcomes(tasks).await;
        assert_eq!(out.iter().filter(|o| **o == Joined::Led(Ok(7))).count(), 1);
        assert_eq!(
            out.iter().filter(|o| **o == Joined::Waited(Ok(7))).count(),
            49
        );
        assert_eq!(c.in_flight(), 0, "the flight is gone once landed");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_leaders_error_is_the_waiters_error() {
        let c = Arc::new(Coalescer::new());
        let (calls, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let boom = || Err("backend did not answer within 30s".to_owned());
        let tasks: Vec<_> = (0..5)
            .map(|_| spawn(&c, 1, LONG, gated(&calls, &gate, boom())))
            .collect();
        settle().await;
        gate.notify_one();
        let out = outcomes(tasks).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the error was not asked again"
        );
        assert_eq!(out.iter().filter(|o| **o == Joined::Led(boom())).count(), 1);
        assert_eq!(
            out.iter().filter(|o| **o == Joined::Waited(boom())).count(),
            4
        );
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_dropped_leader_is_replaced_by_one_of_its_waiters() {
        let c = Arc::new(Coalescer::new());
        let calls = Arc::new(AtomicUsize::new(0));
        // The leader's fetch never ends; it is cancelled (its client left).
        let never = Arc::new(Notify::new());
        let leader = spawn(&c, 1, LONG, gated(&calls, &never, Ok(1)));
        settle().await;
        let gate = Arc::new(Notify::new());
        let waiters: Vec<_> = (0..10)
            .map(|_| spawn(&c, 1, LONG, gated(&calls, &gate, Ok(2))))
            .collect();
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        leader.abort();
        assert!(bounded(leader).await.unwrap_err().is_cancelled());
        settle().await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "exactly one waiter asks again, the others wait for it"
        );
        assert_eq!(c.in_flight(), 1);
        gate.notify_one();
        let out = outcomes(waiters).await;
        assert_eq!(out.iter().filter(|o| **o == Joined::Led(Ok(2))).count(), 1);
        assert_eq!(
            out.iter().filter(|o| **o == Joined::Waited(Ok(2))).count(),
            9
        );
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gives_up_at_its_deadline_and_the_flight_stays_the_leaders() {
        let c = Arc::new(Coalescer::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let never = Arc::new(Notify::new());
        let leader = spawn(&c, 1, LONG, gated(&calls, &never, Ok(1)));
        settle().await;
        let started = tokio::time::Instant::now();
        let waiter = spawn(
            &c,
            1,
            Duration::from_millis(250),
            gated(&calls, &never, Ok(2)),
        );
        assert_eq!(bounded(waiter).await.unwrap(), Joined::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "the waiter fetched nothing"
        );
        assert_eq!(c.in_flight(), 1);
        leader.abort();
        let _ = bounded(leader).await;
        assert_eq!(
            c.in_flight(),
            0,
            "an abandoned flight leaves nothing behind"
        );
    }

    #[tokio::test]
    async fn only_identical_keys_share_and_only_while_in_flight() {
        let c = Arc::new(Coalescer::new());
        let (calls, gate) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let a = spawn(&c, 1, LONG, gated(&calls, &gate, Ok(1)));
        let b = spawn(&c, 2, LONG, gated(&calls, &gate, Ok(2)));
        settle().await;
        assert_eq!(calls.load(Ordering::SeqCst), 2, "two keys, two fetches");
        gate.notify_one();
        gate.notify_one();
        let out = outcomes(vec![a, b]).await;
        assert_eq!(out, [Joined::Led(Ok(1)), Joined::Led(Ok(2))]);
        // Landed flights are not a cache: the same key again is fetched again.
        let again = bounded(c.run(1, LONG, || async { Ok(3) })).await;
        assert_eq!(again, Joined::Led(Ok(3)));
        assert_eq!(c.in_flight(), 0);
    }
}
