//! The store: [`ResponseCache`] keeps replies in a bounded moka cache, decides expiry on
//! tokio's clock (so tests can pause time), serves fresh, stale and prefetch hits, and keeps
//! a hit's wire encoding for reuse while its TTLs do not change.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_proto::op::Message;
use hickory_proto::rr::RData;
use moka::Expiry;
use moka::sync::Cache;
use tokio::time::Instant;

use super::flight::Flights;
use super::key::CacheKey;
use super::ttl::{CacheConfig, Lifetime, PREFETCH_MIN_TTL, STALE_TTL, lifetime, records_mut};

/// Result of [`ResponseCache::get`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cached {
    /// A live entry, TTLs decremented by its time in the cache. The message ID is
    /// meaningless: answer with the request's ID and metadata.
    Fresh {
        /// The cached reply.
        message: Message,
        /// The entry is in the last 10% of its TTL and this is the first hit to notice:
        /// refresh it in the background (`fetch_coalesced`). Reported once per entry.
        prefetch: bool,
    },
    /// An expired entry within `stale_max` (only with `serve_stale`), every TTL set to
    /// [`STALE_TTL`]. Serve it only if upstream fails, with EDE 3 (Stale Answer).
    Stale(Message),
    /// Nothing usable.
    Miss,
}

/// One stored reply.
struct Entry {
    /// The reply with every record TTL normalised (clamped) at insertion.
    message: Message,
    /// When it was stored.
    stored_at: Instant,
    /// Its lifetime in seconds (> 0).
    ttl: u32,
    /// A hit has already reported `prefetch: true`.
    prefetch_claimed: AtomicBool,
    /// The last reply encoded from it by [`ResponseCache::get_encoded`].
    encoded: Mutex<Option<Encoded>>,
}

/// A hit already on the wire: valid while the entry's age in whole seconds (its TTLs) and
/// the caller's variant are the same.
struct Encoded {
    age: u32,
    variant: [u64; 3],
    bytes: Arc<[u8]>,
}

impl Entry {
    fn lifetime(&self) -> Duration {
        Duration::from_secs(self.ttl.into())
    }

    fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.stored_at)
    }

    /// While the entry lives at `elapsed` after it was stored: its age in whole seconds,
    /// and whether it is in the last 10% of its TTL (the prefetch window). `None` once it
    /// has expired.
    fn live_at(&self, elapsed: Duration) -> Option<(u32, bool)> {
        let lifetime = self.lifetime();
        let remaining = lifetime.checked_sub(elapsed).filter(|r| !r.is_zero())?;
        // elapsed < lifetime <= u32::MAX seconds.
        let age = u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX);
        let window = self.ttl >= PREFETCH_MIN_TTL && remaining.saturating_mul(10) <= lifetime;
        Some((age, window))
    }

    /// A copy of the stored reply with every record's TTL mapped by `ttl`.
    fn message_with_ttls(&self, ttl: impl Fn(u32) -> u32) -> Message {
        let mut message = self.message.clone();
        for record in records_mut(&mut message) {
            record.ttl = ttl(record.ttl);
        }
        message
    }

    /// True for the first caller only.
    fn claim_prefetch(&self) -> bool {
        !self.prefetch_claimed.load(Ordering::Relaxed)
            && !self.prefetch_claimed.swap(true, Ordering::Relaxed)
    }
}

/// moka's per-entry purge time: the entry's TTL plus the stale window.
struct PurgeAfter {
    grace: Duration,
}

impl PurgeAfter {
    fn of(&self, entry: &Entry) -> Duration {
        entry.lifetime().saturating_add(self.grace)
    }
}

impl Expiry<CacheKey, Arc<Entry>> for PurgeAfter {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(self.of(value))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &Arc<Entry>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.of(value))
    }
}

/// What every clone of a [`ResponseCache`] shares.
pub(super) struct Inner {
    /// TTL clamps swap live ([`ResponseCache::set_ttls`]); the rest is as built.
    config: ArcSwap<CacheConfig>,
    entries: Cache<CacheKey, Arc<Entry>>,
    /// Upstream queries in progress ([`ResponseCache::fetch_coalesced`]).
    pub(super) flights: Flights,
}

/// The response cache. Cloning is cheap and clones share the same cache; every method takes
/// `&self`; it is `Send + Sync`.
#[derive(Clone)]
pub struct ResponseCache {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("config", &self.inner.config)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl ResponseCache {
    /// An empty cache.
    pub fn new(config: CacheConfig) -> Self {
        let entries = Cache::builder()
            .max_capacity(config.max_entries)
            .expire_after(PurgeAfter {
                grace: config.grace(),
            })
            .build();
        ResponseCache {
            inner: Arc::new(Inner {
                config: ArcSwap::from_pointee(config),
                entries,
                flights: Flights::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> Arc<CacheConfig> {
        self.inner.config.load_full()
    }

    /// Takes the TTL clamps (`min_ttl`, `max_ttl`, `negative_max_ttl`) of `new` for entries
    /// stored from now on; the size and serve-stale settings shape the store and stay as
    /// built (a restart changes them). Whether any of those differ: they were not applied.
    pub fn set_ttls(&self, new: &CacheConfig) -> bool {
        let old = self.inner.config.load_full();
        self.inner.config.store(Arc::new(CacheConfig {
            min_ttl: new.min_ttl,
            max_ttl: new.max_ttl,
            negative_max_ttl: new.negative_max_ttl,
            ..(*old).clone()
        }));
        old.max_entries != new.max_entries
            || old.serve_stale != new.serve_stale
            || old.stale_max != new.stale_max
    }

    /// Looks `key` up.
    ///
    /// [`Cached::Fresh`]: every record TTL decremented by the whole seconds the entry has
    /// spent in the cache (an entry is dead once its TTL would reach 0). [`Cached::Stale`]:
    /// only with `serve_stale`, for an entry expired less than `stale_max` ago, every TTL
    /// [`STALE_TTL`]. Cost of a hit: a moka lookup, an `Arc` clone, a `Message` clone and one
    /// pass over its records.
    pub fn get(&self, key: &CacheKey) -> Cached {
        let Some(entry) = self.inner.entries.get(key) else {
            return Cached::Miss;
        };
        let elapsed = entry.elapsed();
        if let Some((age, window)) = entry.live_at(elapsed) {
            let prefetch = window && entry.claim_prefetch();
            let message = entry.message_with_ttls(|ttl| ttl.saturating_sub(age));
            return Cached::Fresh { message, prefetch };
        }
        let config = self.inner.config.load();
        if config.serve_stale && elapsed < entry.lifetime().saturating_add(config.stale_max) {
            return Cached::Stale(entry.message_with_ttls(|_| STALE_TTL));
        }
        Cached::Miss
    }

    /// A fresh hit as the caller's wire reply, without cloning the message: `encode` turns
    /// the cached reply (TTLs decremented) into bytes for requests of kind `variant`, or
    /// declines (`None`). The bytes are kept with the entry and reused while its age in whole
    /// seconds and `variant` stay the same, so a busy name is encoded about once a second.
    ///
    /// `None` for a miss, an expired entry, a declined encoding, and an entry due for
    /// prefetch (left for [`ResponseCache::get`], which reports it).
    pub fn get_encoded(
        &self,
        key: &[u8],
        variant: [u64; 3],
        encode: impl FnOnce(Message) -> Option<Vec<u8>>,
    ) -> Option<Arc<[u8]>> {
        let entry = self.inner.entries.get(key)?;
        let (age, window) = entry.live_at(entry.elapsed())?;
        if window && !entry.prefetch_claimed.load(Ordering::Relaxed) {
            return None;
        }
        let memo = || entry.encoded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = memo().as_ref()
            && e.age == age
            && e.variant == variant
        {
            return Some(e.bytes.clone());
        }
        let message = entry.message_with_ttls(|ttl| ttl.saturating_sub(age));
        let bytes: Arc<[u8]> = encode(message)?.into();
        *memo() = Some(Encoded {
            age,
            variant,
            bytes: bytes.clone(),
        });
        Some(bytes)
    }

    /// Stores an upstream reply if it is cacheable; returns whether it was stored (replacing
    /// any entry of `key`).
    ///
    /// Cacheable: not truncated, a response to a standard query whose single question is
    /// `key`'s, and either
    /// - NOERROR with answers: TTL = smallest answer TTL, clamped to `[min_ttl, max_ttl]`;
    ///   if no answer has the query type (a CNAME chain ending in NODATA) it also needs an
    ///   SOA and takes the smaller of that and the negative TTL;
    /// - NXDOMAIN or NOERROR/NODATA with an SOA in the authority section: TTL =
    ///   `min(SOA TTL, SOA MINIMUM)` clamped to `[min_ttl, negative_max_ttl]` (and no more
    ///   than the answers' TTL if a CNAME chain leads to it).
    ///
    /// Never SERVFAIL, REFUSED, FORMERR or other RCODEs, never a negative reply without an
    /// SOA, never a TTL of 0 after clamping. Record TTLs are clamped as stored (authority
    /// records of a negative reply to the negative TTL); a TSIG signature is dropped; the
    /// upstream OPT record (e.g. its EDE options) is kept.
    pub fn insert(&self, key: CacheKey, message: &Message) -> bool {
        let config = self.inner.config.load();
        let Some(Lifetime { ttl, negative }) = lifetime(&config, &key, message) else {
            return false;
        };
        let mut message = message.clone();
        message.signature = None;
        for record in records_mut(&mut message) {
            record.ttl = config.clamp_positive(record.ttl);
        }
        if let Some(negative) = negative {
            for record in &mut message.authorities {
                record.ttl = if matches!(record.data, RData::SOA(_)) {
                    negative
                } else {
                    record.ttl.min(negative)
                };
            }
        }
        let entry = Entry {
            message,
            stored_at: Instant::now(),
            ttl,
            prefetch_claimed: AtomicBool::new(false),
            encoded: Mutex::new(None),
        };
        self.inner.entries.insert(key, Arc::new(entry));
        true
    }

    /// Fetches `key` from upstream with at most one query in flight per key.
    ///
    /// If another task is already fetching `key`, waits for its result instead of calling
    /// `fetch`. Otherwise calls `fetch`, [`insert`](Self::insert)s an `Ok` reply if
    /// cacheable, and hands the result to every waiter. The cache is not consulted first, so
    /// this also serves to refresh an entry (prefetch) or to retry a stale one.
    ///
    /// Every caller gets the reply exactly as upstream sent it (TTLs undecremented) or a
    /// clone of the leader's error `E`: use a cheaply cloned error such as
    /// `Arc<UpstreamError>`. An `Ok` reply may still be a SERVFAIL, which is shared but not
    /// cached.
    ///
    /// No lock is held across an `.await`. If the fetching task is cancelled (dropped) or
    /// panics, its flight is unregistered and the waiters retry: one of them fetches anew.
    /// Callers using another `E` for the same key at the same time are not coalesced with
    /// it (they fetch on their own).
    ///
    /// # Errors
    /// The error returned by the `fetch` of whichever caller did fetch.
    pub async fn fetch_coalesced<F, Fut, E>(&self, key: &CacheKey, fetch: F) -> Result<Message, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Message, E>>,
        E: Clone + Send + Sync + 'static,
    {
        let store = |message: &Message| {
            self.insert(key.clone(), message);
        };
        self.inner.flights.coalesce(key, fetch, store).await
    }

    /// Approximate number of entries (moka applies writes lazily; it may also count
    /// entries that are expired but not yet purged).
    pub fn len(&self) -> u64 {
        self.inner.entries.entry_count()
    }

    /// Whether [`len`](Self::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of upstream fetches in progress (diagnostics and tests).
    pub fn in_flight(&self) -> usize {
        self.inner.flights.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[tokio::test(start_paused = true)]
    async fn entry_count_stays_within_max_entries() {
        let max = 100;
        let cache = ResponseCache::new(CacheConfig {
            max_entries: max,
            ..CacheConfig::default()
        });
        for i in 0..max * 10 {
            let qname = format!("host{i}.example.");
            assert!(cache.insert(key(&qname, RecordType::A), &positive(&qname, &[300])));
            if i % 50 == 0 {
                cache.inner.entries.run_pending_tasks();
                assert!(
                    cache.len() <= max,
                    "{} entries after {i} inserts",
                    cache.len()
                );
            }
        }
        cache.inner.entries.run_pending_tasks();
        assert!(cache.len() <= max, "{} entries", cache.len());
        assert!(!cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn frequently_read_entries_survive_a_scan() {
        let max = 100;
        let cache = ResponseCache::new(CacheConfig {
            max_entries: max,
            ..CacheConfig::default()
        });
        let hot = key("hot.example.", RecordType::A);
        assert!(cache.insert(hot.clone(), &positive("hot.example.", &[3600])));
        for i in 0..max * 10 {
            let _ = cache.get(&hot);
            let qname = format!("scan{i}.example.");
            cache.insert(key(&qname, RecordType::A), &positive(&qname, &[300]));
        }
        cache.inner.entries.run_pending_tasks();
        assert!(matches!(cache.get(&hot), Cached::Fresh { .. }));
    }

    // ---- serve-stale ----

    fn stale_cache(serve_stale: bool) -> ResponseCache {
        ResponseCache::new(CacheConfig {
            serve_stale,
            stale_max: Duration::from_secs(3600),
            ..CacheConfig::default()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn stale_entry_is_served_with_ttl_30_within_stale_max() {
        let cache = stale_cache(true);
        let k = key("www.example.", RecordType::A);
        let mut upstream = positive("www.example.", &[60, 600]);
        upstream.add_additional(a_record("ns.example.", 900, 9));
        assert!(cache.insert(k.clone(), &upstream));
        advance_secs(59.0).await;
        assert_eq!(fresh_ttls(&cache, &k), [1, 541, 841]);
        advance_secs(1.0).await;
        match cache.get(&k) {
            Cached::Stale(message) => {
                assert_eq!(ttls(&message), [STALE_TTL; 3]);
                assert_eq!(message.answers.len(), 2);
            }
            other => panic!("expected stale, got {other:?}"),
        }
        advance_secs(3599.0).await; // 1 s before stale_max runs out
        assert!(matches!(cache.get(&k), Cached::Stale(_)));
        advance_secs(1.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn stale_negative_entry_keeps_its_rcode() {
        let cache = stale_cache(true);
        let k = key("nope.example.", RecordType::A);
        let upstream = negative("nope.example.", ResponseCode::NXDomain, Some((300, 300)));
        assert!(cache.insert(k.clone(), &upstream));
        advance_secs(301.0).await;
        match cache.get(&k) {
            Cached::Stale(message) => {
                assert_eq!(message.metadata.response_code, ResponseCode::NXDomain);
                assert_eq!(ttls(&message), [STALE_TTL]);
            }
            other => panic!("expected stale, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_stale_answers_unless_enabled() {
        let cache = stale_cache(false);
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[60])));
        advance_secs(61.0).await;
        assert!(is_miss(&cache, &k));
    }

    // ---- prefetch ----

    #[tokio::test(start_paused = true)]
    async fn prefetch_is_reported_once_in_the_last_tenth_of_the_ttl() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[100])));
        assert!(!fresh(&cache, &k).1);
        advance_secs(89.5).await;
        assert!(!fresh(&cache, &k).1);
        advance_secs(0.5).await; // 10 s left
        let (message, prefetch) = fresh(&cache, &k);
        assert!(prefetch);
        assert_eq!(ttls(&message), [10]);
        assert!(!fresh(&cache, &k).1);
        advance_secs(5.0).await;
        assert!(!fresh(&cache, &k).1);
        // The refreshed entry can be prefetched again.
        assert!(cache.insert(k.clone(), &positive("www.example.", &[100])));
        advance_secs(95.0).await;
        assert!(fresh(&cache, &k).1);
        assert!(!fresh(&cache, &k).1);
    }

    #[tokio::test(start_paused = true)]
    async fn prefetch_is_never_reported_for_short_ttls() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[9])));
        for _ in 0..8 {
            advance_secs(1.0).await;
            assert!(!fresh(&cache, &k).1);
        }
        assert!(cache.insert(k.clone(), &positive("www.example.", &[10])));
        advance_secs(9.0).await;
        assert!(fresh(&cache, &k).1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_hits_claim_prefetch_once() {
        let cache = stale_cache(true);
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[100])));
        advance_secs(95.0).await;
        let runtime = tokio::runtime::Handle::current();
        let claims: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let _clock = runtime.enter(); // the paused clock
                        (0..100)
                            .filter(|_| {
                                matches!(cache.get(&k), Cached::Fresh { prefetch: true, .. })
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(claims, 1);
    }

    #[test]
    fn shareable_across_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<ResponseCache>();
        send_sync::<CacheKey>();
        send_sync::<Cached>();
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let fut = cache.fetch_coalesced(&k, || async { Ok::<_, Arc<String>>(Message::query()) });
        send(&fut);
        let text = format!("{cache:?}");
        assert!(text.contains("ResponseCache"), "{text}");
    }
}
