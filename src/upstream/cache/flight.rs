//! Coalescing: one upstream query for any number of concurrent identical misses (behind
//! [`ResponseCache::fetch_coalesced`](super::ResponseCache::fetch_coalesced)). The first
//! caller leads (fetches and publishes over a `watch` channel), the others wait for its
//! result; a leader that is cancelled or panics hands the fetch over to a waiter.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hickory_proto::op::Message;
use tokio::sync::watch;

use super::key::CacheKey;

/// The value a fetch leader publishes: `None` until the fetch is done.
type Slot<E> = Option<Result<Message, E>>;

/// An upstream query in progress. `rx` is a `watch::Receiver<Slot<E>>`, type-erased because
/// `E` belongs to the call, not to the cache.
struct Flight {
    id: u64,
    rx: Box<dyn Any + Send + Sync>,
}

/// The upstream queries in progress, by key.
#[derive(Default)]
pub(super) struct Flights {
    table: Mutex<HashMap<CacheKey, Flight>>,
    next_id: AtomicU64,
}

impl Flights {
    /// The in-flight table; a panic elsewhere cannot leave it inconsistent (every critical
    /// section is a single map operation), so poisoning is ignored.
    fn table(&self) -> MutexGuard<'_, HashMap<CacheKey, Flight>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes flight `id` of `key` if it is still registered, and drops it outside the lock.
    fn end(&self, key: &CacheKey, id: u64) {
        let removed = {
            let mut map = self.table();
            match map.get(key) {
                Some(flight) if flight.id == id => map.remove(key),
                _ => None,
            }
        };
        drop(removed);
    }

    /// Number of flights in progress.
    pub(super) fn len(&self) -> usize {
        self.table().len()
    }

    /// Joins the flight of `key`, or registers a new one led by the caller.
    fn join<'a, E>(&'a self, key: &'a CacheKey) -> Join<'a, E>
    where
        E: Send + Sync + 'static,
    {
        let mut map = self.table();
        if let Some(flight) = map.get(key) {
            return match flight.rx.downcast_ref::<watch::Receiver<Slot<E>>>() {
                Some(rx) => Join::Wait(rx.clone()),
                None => Join::Alone,
            };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        map.insert(
            key.clone(),
            Flight {
                id,
                rx: Box::new(rx),
            },
        );
        Join::Lead(FlightGuard {
            flights: self,
            key,
            id,
            tx,
        })
    }
}

/// Role of a caller of `fetch_coalesced`.
enum Join<'a, E> {
    /// Nobody is fetching: this caller fetches and publishes.
    Lead(FlightGuard<'a, E>),
    /// Someone is: wait for their result.
    Wait(watch::Receiver<Slot<E>>),
    /// Someone is, with another error type: fetch without coalescing.
    Alone,
}

/// The leader's side of a flight. Dropping it (cancellation, panic) unregisters the flight
/// and closes the channel, which wakes the waiters to retry.
struct FlightGuard<'a, E> {
    flights: &'a Flights,
    key: &'a CacheKey,
    id: u64,
    tx: watch::Sender<Slot<E>>,
}

impl<E: Clone> FlightGuard<'_, E> {
    /// Unregisters the flight, then hands `result` to whoever joined it.
    fn publish(self, result: &Result<Message, E>) {
        self.flights.end(self.key, self.id);
        // Unregistered: no new waiter can join, so the count is exact. Skip the clone when
        // nobody waits.
        if self.tx.receiver_count() > 0 {
            self.tx.send_replace(Some(result.clone()));
        }
    }
}

impl<E> Drop for FlightGuard<'_, E> {
    fn drop(&mut self) {
        // After `publish` this finds another flight or none, and does nothing.
        self.flights.end(self.key, self.id);
    }
}

impl Flights {
    /// Runs `fetch` for `key` unless a flight of `key` is already up, in which case its
    /// result is awaited instead; the leader hands an `Ok` reply to `store` before its
    /// waiters get it (see [`ResponseCache::fetch_coalesced`](super::ResponseCache::fetch_coalesced)).
    ///
    /// # Errors
    /// The error returned by the `fetch` of whichever caller did fetch.
    pub(super) async fn coalesce<F, Fut, E>(
        &self,
        key: &CacheKey,
        fetch: F,
        store: impl FnOnce(&Message),
    ) -> Result<Message, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Message, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let leader = loop {
            match self.join::<E>(key) {
                Join::Lead(guard) => break Some(guard),
                Join::Alone => break None,
                Join::Wait(mut rx) => {
                    if let Ok(slot) = rx.wait_for(Option::is_some).await
                        && let Some(result) = slot.as_ref()
                    {
                        return result.clone();
                    }
                    // The leader was cancelled before publishing: try again.
                }
            }
        };
        let result = fetch().await;
        if let Ok(message) = &result {
            store(message);
        }
        if let Some(guard) = leader {
            guard.publish(&result);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::super::testing::*;

    type Calls = Arc<AtomicUsize>;

    /// An upstream that counts its calls, waits `delay`, and answers `message`.
    async fn upstream(calls: Calls, delay: Duration, message: Message) -> Result<Message, String> {
        calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(delay).await;
        Ok(message)
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_misses_send_one_query() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let calls = Calls::default();
        let answer = positive("www.example.", &[300]);
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, k, calls, answer) =
                    (cache.clone(), k.clone(), calls.clone(), answer.clone());
                tokio::spawn(async move {
                    cache
                        .fetch_coalesced(&k, || upstream(calls, Duration::from_millis(50), answer))
                        .await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(results.len(), 100);
        assert!(results.iter().all(|m| *m == answer));
        assert_eq!(cache.in_flight(), 0);
        assert_eq!(fresh(&cache, &k).0, answer);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_send_one_query_across_threads() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let calls = Calls::default();
        let answer = positive("www.example.", &[300]);
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (cache, k, calls, answer, barrier) = (
                    cache.clone(),
                    k.clone(),
                    calls.clone(),
                    answer.clone(),
                    barrier.clone(),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    cache
                        .fetch_coalesced(&k, || upstream(calls, Duration::from_millis(50), answer))
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), answer);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_shared_and_not_cached() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let calls = Calls::default();
        let failing = |calls: Calls| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<Message, _>(Arc::new("upstream timed out".to_string()))
        };
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (cache, k, calls) = (cache.clone(), k.clone(), calls.clone());
                tokio::spawn(async move { cache.fetch_coalesced(&k, || failing(calls)).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(*task.await.unwrap().unwrap_err(), "upstream timed out");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(is_miss(&cache, &k));
        assert_eq!(cache.in_flight(), 0);
        // The next miss asks again.
        let _ = cache.fetch_coalesced(&k, || failing(calls.clone())).await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn uncacheable_replies_are_shared_but_not_cached() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let calls = Calls::default();
        let servfail = reply("www.example.", RecordType::A, ResponseCode::ServFail);
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (cache, k, calls, servfail) =
                    (cache.clone(), k.clone(), calls.clone(), servfail.clone());
                tokio::spawn(async move {
                    cache
                        .fetch_coalesced(&k, || {
                            upstream(calls, Duration::from_millis(50), servfail)
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap(), servfail);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn fetch_refreshes_a_live_entry() {
        // Prefetch calls fetch_coalesced on a hit: it must query, not return the cache.
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[100])));
        advance_secs(95.0).await;
        let calls = Calls::default();
        let newer = positive("www.example.", &[200]);
        let got = cache
            .fetch_coalesced(&k, || {
                upstream(calls.clone(), Duration::ZERO, newer.clone())
            })
            .await
            .unwrap();
        assert_eq!(got, newer);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(fresh_ttls(&cache, &k), [200]);
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_are_not_coalesced() {
        let cache = cache();
        let calls = Calls::default();
        let a = key("a.example.", RecordType::A);
        let b = key("b.example.", RecordType::A);
        let (ra, rb) = tokio::join!(
            cache.fetch_coalesced(&a, || upstream(
                calls.clone(),
                Duration::from_millis(50),
                positive("a.example.", &[300])
            )),
            cache.fetch_coalesced(&b, || upstream(
                calls.clone(),
                Duration::from_millis(50),
                positive("b.example.", &[300])
            )),
        );
        assert_eq!(ra.unwrap(), positive("a.example.", &[300]));
        assert_eq!(rb.unwrap(), positive("b.example.", &[300]));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_leader_hands_over_to_a_waiter() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let calls = Calls::default();
        let answer = positive("www.example.", &[300]);

        let leader = {
            let (cache, k, calls, answer) =
                (cache.clone(), k.clone(), calls.clone(), answer.clone());
            tokio::spawn(async move {
                cache
                    .fetch_coalesced(&k, || upstream(calls, Duration::from_secs(3600), answer))
                    .await
            })
        };
        tokio::task::yield_now().await; // the leader registers and starts its fetch
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.in_flight(), 1);

        let waiters: Vec<_> = (0..10)
            .map(|_| {
                let (cache, k, calls, answer) =
                    (cache.clone(), k.clone(), calls.clone(), answer.clone());
                tokio::spawn(async move {
                    cache
                        .fetch_coalesced(&k, || upstream(calls, Duration::from_millis(50), answer))
                        .await
                })
            })
            .collect();
        tokio::task::yield_now().await; // the waiters join the flight
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap().unwrap(), answer);
        }
        // One waiter took over; the others waited for it.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.in_flight(), 0);
        assert_eq!(fresh(&cache, &k).0, answer);
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_lone_fetch_leaves_nothing_behind() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let calls = Calls::default();
        let answer = positive("www.example.", &[300]);
        let slow = cache.fetch_coalesced(&k, || {
            upstream(calls.clone(), Duration::from_secs(3600), answer.clone())
        });
        // Dropped mid-fetch by a timeout.
        assert!(
            tokio::time::timeout(Duration::from_millis(10), slow)
                .await
                .is_err()
        );
        assert_eq!(cache.in_flight(), 0);
        let got = cache
            .fetch_coalesced(&k, || {
                upstream(calls.clone(), Duration::ZERO, answer.clone())
            })
            .await
            .unwrap();
        assert_eq!(got, answer);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn panicking_leader_hands_over_to_a_waiter() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let answer = positive("www.example.", &[300]);
        let leader = {
            let (cache, k) = (cache.clone(), k.clone());
            tokio::spawn(async move {
                cache
                    .fetch_coalesced(&k, || async {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        panic!("fetch blew up");
                        #[allow(unreachable_code)]
                        Ok::<Message, String>(Message::query())
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let waiter = {
            let (cache, k, answer) = (cache.clone(), k.clone(), answer.clone());
            tokio::spawn(async move {
                cache
                    .fetch_coalesced(&k, || async { Ok::<_, String>(answer) })
                    .await
            })
        };
        assert!(leader.await.unwrap_err().is_panic());
        assert_eq!(waiter.await.unwrap().unwrap(), answer);
        assert_eq!(cache.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn callers_with_another_error_type_fetch_on_their_own() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let calls = Calls::default();
        let answer = positive("www.example.", &[300]);
        let (a, b) = tokio::join!(
            cache.fetch_coalesced(&k, || upstream(
                calls.clone(),
                Duration::from_millis(50),
                answer.clone()
            )),
            cache.fetch_coalesced(&k, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, u8>(answer.clone())
            }),
        );
        assert_eq!(a.unwrap(), answer);
        assert_eq!(b.unwrap(), answer);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(cache.in_flight(), 0);
    }
}
