//! Response cache for forwarded answers.
//!
//! Upstream replies are cached whole (RCODE, answer, authority with its SOA, additional, AD
//! bit, upstream EDNS options) under a [`CacheKey`] of (lowercased name, type, class, DO bit,
//! CD bit), so a hit can be answered as transparently as a forwarded reply.
//!
//! - **TTLs.** A positive answer lives for the smallest TTL of its answer section, clamped to
//!   `[min_ttl, max_ttl]`; a negative one (NXDOMAIN, or NOERROR/NODATA) for
//!   `min(SOA TTL, SOA MINIMUM)` (RFC 2308 §5), clamped to `[min_ttl, negative_max_ttl]`. Each
//!   record's TTL is clamped the same way when stored and decremented by the whole seconds
//!   spent in the cache when served. An entry whose TTL would reach 0 has expired.
//! - **Size.** At most [`CacheConfig::max_entries`] entries; moka's TinyLFU admission and LRU
//!   eviction decide who stays. Expiry is decided here, on [`tokio::time::Instant`] (so tests
//!   can pause time); moka only purges dead entries eventually.
//! - **Serve-stale** (RFC 8767): with [`CacheConfig::serve_stale`], an expired entry is still
//!   returned as [`Cached::Stale`] for [`CacheConfig::stale_max`], TTLs set to 30 s, for the
//!   caller to use **only if upstream then fails**.
//! - **Prefetch.** A hit in the last 10% of an entry's TTL (TTL >= 10 s) reports
//!   `prefetch: true`, once per stored entry, so the caller refreshes it in the background.
//! - **Coalescing.** [`ResponseCache::fetch_coalesced`] sends one upstream query for any
//!   number of concurrent identical misses.
//!
//! The caller's request flow:
//!
//! ```text
//! match cache.get(&key) {
//!     Fresh { message, prefetch } => {
//!         if prefetch { spawn(cache.fetch_coalesced(&key, || forward(..))) }   // refresh
//!         answer(message)                                  // ID/metadata from the request
//!     }
//!     Stale(old) => match cache.fetch_coalesced(&key, || forward(..)).await {
//!         Ok(reply) if !servfail(reply) => answer(reply),
//!         _ => answer(old) + EDE 3 (Stale Answer),
//!     },
//!     Miss => answer(cache.fetch_coalesced(&key, || forward(..)).await?),
//! }
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use moka::Expiry;
use moka::sync::Cache;
use tokio::sync::watch;
use tokio::time::Instant;

/// TTL of every record of a stale answer (RFC 8767 §4 recommends 30 seconds).
pub const STALE_TTL: u32 = 30;

/// Entries stored with a shorter TTL are never flagged for prefetch.
pub const PREFETCH_MIN_TTL: u32 = 10;

/// Slack added to moka's own expiry so that its clock never purges an entry before ours
/// says it is dead (the two clocks are read at slightly different moments).
const PURGE_SLACK: Duration = Duration::from_secs(2);

/// Cache limits and policies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most entries kept; beyond it moka's TinyLFU policy evicts.
    pub max_entries: u64,
    /// Lowest TTL (seconds) given to a cached entry and its records.
    pub min_ttl: u32,
    /// Highest TTL (seconds) of a positive entry and of any cached record. Wins over
    /// `min_ttl` if the two cross; 0 disables caching.
    pub max_ttl: u32,
    /// Highest TTL (seconds) of a negative (NXDOMAIN / NODATA) entry.
    pub negative_max_ttl: u32,
    /// Keep expired entries for [`CacheConfig::stale_max`] and return them as
    /// [`Cached::Stale`] (RFC 8767).
    pub serve_stale: bool,
    /// How long past its expiry an entry may still be served stale.
    pub stale_max: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_entries: 100_000,
            min_ttl: 0,
            max_ttl: 86_400,
            negative_max_ttl: 3_600,
            serve_stale: false,
            stale_max: Duration::from_secs(86_400),
        }
    }
}

impl CacheConfig {
    /// Clamp of a positive record TTL; `max_ttl` wins if the bounds cross.
    fn clamp_positive(&self, ttl: u32) -> u32 {
        ttl.max(self.min_ttl).min(self.max_ttl)
    }

    /// Clamp of a negative TTL; the negative maximum wins if the bounds cross.
    fn clamp_negative(&self, ttl: u32) -> u32 {
        ttl.max(self.min_ttl).min(self.negative_max_ttl)
    }

    /// Grace period moka keeps an entry after its TTL.
    fn grace(&self) -> Duration {
        let stale = if self.serve_stale {
            self.stale_max
        } else {
            Duration::ZERO
        };
        stale.saturating_add(PURGE_SLACK)
    }
}

/// What a cached answer is filed under: the question (name lowercased) and the flags that
/// change what upstream answers.
///
/// Packed in one buffer (flags, type, class, then the name's labels in lowercased wire form)
/// so that hashing it is one pass and comparing it one `memcmp`: the key is hashed and
/// compared on every lookup.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    packed: Box<[u8]>,
}

/// Bits of `packed[0]`.
const KEY_DO: u8 = 1;
const KEY_CD: u8 = 2;
/// Bytes before the name in `packed`.
const KEY_HEADER: usize = 5;

impl CacheKey {
    /// The key of `query` asked with the DNSSEC OK bit `dnssec_ok` (and CD clear; see
    /// [`CacheKey::with_checking_disabled`]). The name is lowercased; `example.com` and
    /// `example.com.` are the same key.
    pub fn new(query: &Query, dnssec_ok: bool) -> Self {
        let name = query.name();
        let mut packed = Vec::with_capacity(KEY_HEADER + name.len() + 1);
        packed.push(if dnssec_ok { KEY_DO } else { 0 });
        packed.extend_from_slice(&u16::from(query.query_type()).to_be_bytes());
        packed.extend_from_slice(&u16::from(query.query_class()).to_be_bytes());
        for label in name.iter() {
            // Labels are at most 63 bytes: the length fits.
            packed.push(label.len() as u8);
            packed.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        CacheKey {
            packed: packed.into_boxed_slice(),
        }
    }

    /// The same key for a query with the Checking Disabled bit `cd`. A validating upstream
    /// answers CD=1 queries with data it would SERVFAIL for CD=0 ones (bogus DNSSEC), so the
    /// two must not share entries: set it from the client's header.
    #[must_use]
    pub fn with_checking_disabled(mut self, cd: bool) -> Self {
        if cd {
            self.packed[0] |= KEY_CD;
        } else {
            self.packed[0] &= !KEY_CD;
        }
        self
    }

    /// The lowercased, fully qualified name (rebuilt: for logs, not for the hot path).
    pub fn name(&self) -> Name {
        Name::from_labels(self.labels()).unwrap_or_default()
    }

    /// The query type.
    pub fn query_type(&self) -> RecordType {
        RecordType::from(u16::from_be_bytes([self.packed[1], self.packed[2]]))
    }

    /// The query class.
    pub fn query_class(&self) -> DNSClass {
        DNSClass::from(u16::from_be_bytes([self.packed[3], self.packed[4]]))
    }

    /// The DNSSEC OK bit.
    pub fn dnssec_ok(&self) -> bool {
        self.packed[0] & KEY_DO != 0
    }

    /// The Checking Disabled bit.
    pub fn checking_disabled(&self) -> bool {
        self.packed[0] & KEY_CD != 0
    }

    /// The name's labels, lowercased.
    fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.packed[KEY_HEADER..];
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let (label, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            Some(label)
        })
    }

    /// Longest packed key: the header and a 255-byte wire name.
    pub const MAX_PACKED: usize = KEY_HEADER + 255;

    /// The packed form of a key, written into `buf` without allocating, for
    /// [`ResponseCache::get_encoded`]: `labels` must already be lowercased (the UDP fast
    /// path's). `None` when the name does not fit.
    pub fn pack<'b, 'l>(
        buf: &'b mut [u8; Self::MAX_PACKED],
        dnssec_ok: bool,
        checking_disabled: bool,
        query_type: u16,
        query_class: u16,
        labels: impl Iterator<Item = &'l [u8]>,
    ) -> Option<&'b [u8]> {
        buf[0] = if dnssec_ok { KEY_DO } else { 0 } | if checking_disabled { KEY_CD } else { 0 };
        buf[1..3].copy_from_slice(&query_type.to_be_bytes());
        buf[3..5].copy_from_slice(&query_class.to_be_bytes());
        let mut at = KEY_HEADER;
        for label in labels {
            let end = at + 1 + label.len();
            *buf.get_mut(at)? = u8::try_from(label.len()).ok()?;
            buf.get_mut(at + 1..end)?.copy_from_slice(label);
            at = end;
        }
        buf.get(..at)
    }

    /// Whether `query` asks this key's question.
    fn matches(&self, query: &Query) -> bool {
        CacheKey::new(query, false).packed[1..] == self.packed[1..]
    }
}

// Lookups by packed bytes ([`CacheKey::pack`]) hash the same as the key: the derived
// `Hash` of a struct with one `Box<[u8]>` field is the slice's hash.
impl std::borrow::Borrow<[u8]> for CacheKey {
    fn borrow(&self) -> &[u8] {
        &self.packed
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheKey")
            .field("name", &self.name())
            .field("query_type", &self.query_type())
            .field("query_class", &self.query_class())
            .field("dnssec_ok", &self.dnssec_ok())
            .field("checking_disabled", &self.checking_disabled())
            .finish()
    }
}

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

/// The value a fetch leader publishes: `None` until the fetch is done.
type Slot<E> = Option<Result<Message, E>>;

/// An upstream query in progress. `rx` is a `watch::Receiver<Slot<E>>`, type-erased because
/// `E` belongs to the call, not to the cache.
struct Flight {
    id: u64,
    rx: Box<dyn Any + Send + Sync>,
}

struct Inner {
    config: CacheConfig,
    entries: Cache<CacheKey, Arc<Entry>>,
    inflight: Mutex<HashMap<CacheKey, Flight>>,
    next_flight: AtomicU64,
}

impl Inner {
    /// The in-flight table; a panic elsewhere cannot leave it inconsistent (every critical
    /// section is a single map operation), so poisoning is ignored.
    fn inflight(&self) -> MutexGuard<'_, HashMap<CacheKey, Flight>> {
        self.inflight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes flight `id` of `key` if it is still registered, and drops it outside the lock.
    fn end_flight(&self, key: &CacheKey, id: u64) {
        let removed = {
            let mut map = self.inflight();
            match map.get(key) {
                Some(flight) if flight.id == id => map.remove(key),
                _ => None,
            }
        };
        drop(removed);
    }
}

/// The response cache. Cloning is cheap and clones share the same cache; every method takes
/// `&self`; it is `Send + Sync`.
#[derive(Clone)]
pub struct ResponseCache {
    inner: Arc<Inner>,
}

impl fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCache")
            .field("config", &self.inner.config)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// How long a reply may be cached, and how to normalise its records.
#[derive(Debug, PartialEq, Eq)]
struct Lifetime {
    /// The entry's TTL in seconds (> 0).
    ttl: u32,
    /// The negative TTL when the reply is (or ends in) a negative answer: it caps the
    /// authority section (SOA and NSEC records, RFC 2308 §5 and RFC 9077).
    negative: Option<u32>,
}

/// Decides whether `message` may be cached under `key`, and for how long.
fn lifetime(config: &CacheConfig, key: &CacheKey, message: &Message) -> Option<Lifetime> {
    let md = &message.metadata;
    if md.truncation || md.message_type != MessageType::Response || md.op_code != OpCode::Query {
        return None;
    }
    // A reply filed under the wrong question would poison the cache.
    match message.queries.as_slice() {
        [query] if key.matches(query) => {}
        _ => return None,
    }
    let negative = message
        .authorities
        .iter()
        .find_map(|record| match &record.data {
            RData::SOA(soa) => Some(config.clamp_negative(record.ttl.min(soa.minimum))),
            _ => None,
        });
    let positive = message
        .answers
        .iter()
        .map(|record| record.ttl)
        .min()
        .map(|ttl| config.clamp_positive(ttl));

    let (ttl, negative) = match (md.response_code, positive) {
        (ResponseCode::NoError, Some(positive)) => {
            let answered = matches!(key.query_type(), RecordType::CNAME | RecordType::ANY)
                || message
                    .answers
                    .iter()
                    .any(|record| record.record_type() == key.query_type());
            if answered {
                (positive, None)
            } else {
                // A CNAME chain ending in NODATA: a negative answer for its target.
                let negative = negative?;
                (positive.min(negative), Some(negative))
            }
        }
        (ResponseCode::NoError | ResponseCode::NXDomain, _) => {
            let negative = negative?;
            (
                positive.map_or(negative, |p| p.min(negative)),
                Some(negative),
            )
        }
        _ => return None,
    };
    (ttl > 0).then_some(Lifetime { ttl, negative })
}

/// Every record of the three sections.
fn records_mut(message: &mut Message) -> impl Iterator<Item = &mut Record> {
    message
        .answers
        .iter_mut()
        .chain(message.authorities.iter_mut())
        .chain(message.additionals.iter_mut())
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
    inner: &'a Inner,
    key: &'a CacheKey,
    id: u64,
    tx: watch::Sender<Slot<E>>,
}

impl<E: Clone> FlightGuard<'_, E> {
    /// Unregisters the flight, then hands `result` to whoever joined it.
    fn publish(self, result: &Result<Message, E>) {
        self.inner.end_flight(self.key, self.id);
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
        self.inner.end_flight(self.key, self.id);
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
                config,
                entries,
                inflight: Mutex::new(HashMap::new()),
                next_flight: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
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
        let config = &self.inner.config;
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
        let config = &self.inner.config;
        let Some(Lifetime { ttl, negative }) = lifetime(config, &key, message) else {
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
            self.insert(key.clone(), message);
        }
        if let Some(guard) = leader {
            guard.publish(&result);
        }
        result
    }

    /// Joins the flight of `key`, or registers a new one led by the caller.
    fn join<'a, E>(&'a self, key: &'a CacheKey) -> Join<'a, E>
    where
        E: Send + Sync + 'static,
    {
        let mut map = self.inner.inflight();
        if let Some(flight) = map.get(key) {
            return match flight.rx.downcast_ref::<watch::Receiver<Slot<E>>>() {
                Some(rx) => Join::Wait(rx.clone()),
                None => Join::Alone,
            };
        }
        let id = self.inner.next_flight.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        map.insert(
            key.clone(),
            Flight {
                id,
                rx: Box::new(rx),
            },
        );
        Join::Lead(FlightGuard {
            inner: &self.inner,
            key,
            id,
            tx,
        })
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
        self.inner.inflight().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;
    use std::sync::atomic::AtomicUsize;

    use hickory_proto::op::Edns;
    use hickory_proto::rr::rdata::{A, CNAME, SOA};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn question(qname: &str, qtype: RecordType) -> Query {
        Query::query(name(qname), qtype)
    }

    fn key(qname: &str, qtype: RecordType) -> CacheKey {
        CacheKey::new(&question(qname, qtype), false)
    }

    fn reply(qname: &str, qtype: RecordType, rcode: ResponseCode) -> Message {
        let mut message = Message::response(0x1234, OpCode::Query);
        message.metadata.response_code = rcode;
        message.metadata.recursion_available = true;
        message.add_query(question(qname, qtype));
        message
    }

    fn a_record(owner: &str, ttl: u32, last: u8) -> Record {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        )
    }

    /// NOERROR for `qname` A with one A record per TTL.
    fn positive(qname: &str, ttls: &[u32]) -> Message {
        let mut message = reply(qname, RecordType::A, ResponseCode::NoError);
        for (i, ttl) in ttls.iter().enumerate() {
            message.add_answer(a_record(qname, *ttl, i as u8 + 1));
        }
        message
    }

    fn soa_record(zone: &str, ttl: u32, minimum: u32) -> Record {
        let soa = SOA::new(
            name("ns1.example."),
            name("hostmaster.example."),
            2026010101,
            7200,
            3600,
            1_209_600,
            minimum,
        );
        Record::from_rdata(name(zone), ttl, RData::SOA(soa))
    }

    /// A negative reply for `qname` A with an SOA (ttl, minimum) if given.
    fn negative(qname: &str, rcode: ResponseCode, soa: Option<(u32, u32)>) -> Message {
        let mut message = reply(qname, RecordType::A, rcode);
        if let Some((ttl, minimum)) = soa {
            message.add_authority(soa_record("example.", ttl, minimum));
        }
        message
    }

    fn ttls(message: &Message) -> Vec<u32> {
        message
            .answers
            .iter()
            .chain(&message.authorities)
            .chain(&message.additionals)
            .map(|r| r.ttl)
            .collect()
    }

    fn fresh(cache: &ResponseCache, key: &CacheKey) -> (Message, bool) {
        match cache.get(key) {
            Cached::Fresh { message, prefetch } => (message, prefetch),
            other => panic!("expected a fresh hit, got {other:?}"),
        }
    }

    fn fresh_ttls(cache: &ResponseCache, key: &CacheKey) -> Vec<u32> {
        ttls(&fresh(cache, key).0)
    }

    fn is_miss(cache: &ResponseCache, key: &CacheKey) -> bool {
        matches!(cache.get(key), Cached::Miss)
    }

    fn cache() -> ResponseCache {
        ResponseCache::new(CacheConfig::default())
    }

    async fn advance_secs(secs: f64) {
        tokio::time::advance(Duration::from_secs_f64(secs)).await;
    }

    // ---- TTLs ----

    #[tokio::test(start_paused = true)]
    async fn ttl_is_decremented_by_whole_seconds_in_cache() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[300])));
        assert_eq!(fresh_ttls(&cache, &k), [300]);
        advance_secs(0.5).await;
        assert_eq!(fresh_ttls(&cache, &k), [300]);
        advance_secs(99.6).await;
        assert_eq!(fresh_ttls(&cache, &k), [200]);
    }

    #[tokio::test(start_paused = true)]
    async fn hit_keeps_the_rest_of_the_reply() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let mut upstream = positive("www.example.", &[300]);
        upstream.metadata.authentic_data = true;
        upstream.add_additional(a_record("ns.example.", 300, 9));
        upstream.set_edns(Edns::new());
        assert!(cache.insert(k.clone(), &upstream));
        let (message, prefetch) = fresh(&cache, &k);
        assert!(!prefetch);
        assert_eq!(message, upstream);
    }

    #[tokio::test(start_paused = true)]
    async fn entry_expires_when_its_ttl_would_reach_zero() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[60])));
        advance_secs(59.999).await;
        assert_eq!(fresh_ttls(&cache, &k), [1]);
        advance_secs(0.001).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn lifetime_is_the_smallest_answer_ttl_and_each_record_keeps_its_own() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[300, 100, 200])));
        advance_secs(40.0).await;
        assert_eq!(fresh_ttls(&cache, &k), [260, 60, 160]);
        advance_secs(60.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn min_ttl_raises_short_ttls() {
        let cache = ResponseCache::new(CacheConfig {
            min_ttl: 60,
            ..CacheConfig::default()
        });
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[5])));
        assert_eq!(fresh_ttls(&cache, &k), [60]);
        advance_secs(30.0).await;
        assert_eq!(fresh_ttls(&cache, &k), [30]);
        advance_secs(30.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn min_ttl_makes_ttl_zero_cacheable() {
        let cache = ResponseCache::new(CacheConfig {
            min_ttl: 10,
            ..CacheConfig::default()
        });
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[0])));
        assert_eq!(fresh_ttls(&cache, &k), [10]);
    }

    #[tokio::test(start_paused = true)]
    async fn max_ttl_caps_long_ttls() {
        let cache = ResponseCache::new(CacheConfig {
            max_ttl: 100,
            ..CacheConfig::default()
        });
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[604_800, 1_000])));
        assert_eq!(fresh_ttls(&cache, &k), [100, 100]);
        advance_secs(99.0).await;
        assert_eq!(fresh_ttls(&cache, &k), [1, 1]);
        advance_secs(1.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn max_ttl_wins_when_bounds_cross_and_zero_disables() {
        let crossed = ResponseCache::new(CacheConfig {
            min_ttl: 600,
            max_ttl: 300,
            ..CacheConfig::default()
        });
        let k = key("www.example.", RecordType::A);
        assert!(crossed.insert(k.clone(), &positive("www.example.", &[5])));
        assert_eq!(fresh_ttls(&crossed, &k), [300]);

        let off = ResponseCache::new(CacheConfig {
            max_ttl: 0,
            ..CacheConfig::default()
        });
        assert!(!off.insert(k.clone(), &positive("www.example.", &[300])));
        assert!(is_miss(&off, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn ttl_zero_is_not_cached() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(!cache.insert(k.clone(), &positive("www.example.", &[0])));
        assert!(!cache.insert(k.clone(), &positive("www.example.", &[300, 0])));
        assert!(!cache.insert(
            k.clone(),
            &negative("www.example.", ResponseCode::NXDomain, Some((0, 300)))
        ));
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn reinsert_replaces_the_entry_and_restarts_its_clock() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(cache.insert(k.clone(), &positive("www.example.", &[100])));
        advance_secs(50.0).await;
        assert!(cache.insert(k.clone(), &positive("www.example.", &[30])));
        assert_eq!(fresh_ttls(&cache, &k), [30]);
        advance_secs(30.0).await;
        assert!(is_miss(&cache, &k));
    }

    // ---- negative caching ----

    #[tokio::test(start_paused = true)]
    async fn nxdomain_is_cached_for_the_soa_minimum_when_smaller() {
        let cache = cache();
        let k = key("nope.example.", RecordType::A);
        let upstream = negative("nope.example.", ResponseCode::NXDomain, Some((3600, 300)));
        assert!(cache.insert(k.clone(), &upstream));
        let (message, _) = fresh(&cache, &k);
        assert_eq!(message.metadata.response_code, ResponseCode::NXDomain);
        assert!(message.answers.is_empty());
        assert_eq!(ttls(&message), [300]); // the SOA now carries the negative TTL
        advance_secs(299.0).await;
        assert_eq!(fresh_ttls(&cache, &k), [1]);
        advance_secs(1.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn nxdomain_is_cached_for_the_soa_ttl_when_smaller() {
        let cache = cache();
        let k = key("nope.example.", RecordType::A);
        let upstream = negative("nope.example.", ResponseCode::NXDomain, Some((60, 300)));
        assert!(cache.insert(k.clone(), &upstream));
        assert_eq!(fresh_ttls(&cache, &k), [60]);
        advance_secs(60.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn nodata_is_cached_from_its_soa() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let upstream = negative("www.example.", ResponseCode::NoError, Some((900, 120)));
        assert!(cache.insert(k.clone(), &upstream));
        let (message, _) = fresh(&cache, &k);
        assert_eq!(message.metadata.response_code, ResponseCode::NoError);
        assert!(message.answers.is_empty());
        assert_eq!(ttls(&message), [120]);
        advance_secs(120.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn negative_ttl_is_clamped_to_negative_max_ttl() {
        let k = key("nope.example.", RecordType::A);
        let upstream = negative(
            "nope.example.",
            ResponseCode::NXDomain,
            Some((86_400, 86_400)),
        );
        let default = cache();
        assert!(default.insert(k.clone(), &upstream));
        assert_eq!(fresh_ttls(&default, &k), [3600]);

        let short = ResponseCache::new(CacheConfig {
            negative_max_ttl: 30,
            min_ttl: 60, // the negative maximum wins
            ..CacheConfig::default()
        });
        assert!(short.insert(k.clone(), &upstream));
        assert_eq!(fresh_ttls(&short, &k), [30]);
        advance_secs(30.0).await;
        assert!(is_miss(&short, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn negative_ttl_is_raised_to_min_ttl() {
        let cache = ResponseCache::new(CacheConfig {
            min_ttl: 60,
            ..CacheConfig::default()
        });
        let k = key("nope.example.", RecordType::A);
        let upstream = negative("nope.example.", ResponseCode::NXDomain, Some((300, 5)));
        assert!(cache.insert(k.clone(), &upstream));
        assert_eq!(fresh_ttls(&cache, &k), [60]);
    }

    #[tokio::test(start_paused = true)]
    async fn negative_without_soa_is_not_cached() {
        let cache = cache();
        let k = key("nope.example.", RecordType::A);
        for rcode in [ResponseCode::NXDomain, ResponseCode::NoError] {
            assert!(!cache.insert(k.clone(), &negative("nope.example.", rcode, None)));
        }
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn cname_to_nxdomain_lives_no_longer_than_either_part() {
        let cache = cache();
        let k = key("alias.example.", RecordType::A);
        let mut upstream = negative("alias.example.", ResponseCode::NXDomain, Some((3600, 900)));
        upstream.add_answer(Record::from_rdata(
            name("alias.example."),
            120,
            RData::CNAME(CNAME(name("gone.example."))),
        ));
        assert!(cache.insert(k.clone(), &upstream));
        assert_eq!(fresh_ttls(&cache, &k), [120, 900]);
        advance_secs(120.0).await;
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn cname_to_nodata_is_negative() {
        let cache = cache();
        let k = key("alias.example.", RecordType::A);
        let cname = Record::from_rdata(
            name("alias.example."),
            3600,
            RData::CNAME(CNAME(name("target.example."))),
        );
        let mut upstream = reply("alias.example.", RecordType::A, ResponseCode::NoError);
        upstream.add_answer(cname);
        // Without an SOA a chain with no answer of the asked type is not cached.
        assert!(!cache.insert(k.clone(), &upstream));
        upstream.add_authority(soa_record("example.", 600, 60));
        assert!(cache.insert(k.clone(), &upstream));
        assert_eq!(fresh_ttls(&cache, &k), [3600, 60]);
        advance_secs(60.0).await;
        assert!(is_miss(&cache, &k));
        // Asking for the CNAME itself, the chain is the answer.
        let k = key("alias.example.", RecordType::CNAME);
        upstream.queries[0].set_query_type(RecordType::CNAME);
        assert!(cache.insert(k.clone(), &upstream));
        advance_secs(600.0).await;
        assert!(matches!(cache.get(&k), Cached::Fresh { .. }));
    }

    // ---- what is never cached ----

    #[tokio::test(start_paused = true)]
    async fn errors_are_not_cached() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        for rcode in [
            ResponseCode::ServFail,
            ResponseCode::Refused,
            ResponseCode::FormErr,
            ResponseCode::NotImp,
        ] {
            // Even with answers and an SOA.
            let mut upstream = positive("www.example.", &[300]);
            upstream.metadata.response_code = rcode;
            upstream.add_authority(soa_record("example.", 300, 300));
            assert!(!cache.insert(k.clone(), &upstream), "{rcode:?} was cached");
        }
        assert!(is_miss(&cache, &k));
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn truncated_replies_are_not_cached() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        let mut upstream = positive("www.example.", &[300]);
        upstream.metadata.truncation = true;
        assert!(!cache.insert(k.clone(), &upstream));
        let mut upstream = negative("www.example.", ResponseCode::NXDomain, Some((300, 300)));
        upstream.metadata.truncation = true;
        assert!(!cache.insert(k.clone(), &upstream));
        assert!(is_miss(&cache, &k));
    }

    #[tokio::test(start_paused = true)]
    async fn replies_to_another_question_are_not_cached() {
        let cache = cache();
        let k = key("www.example.", RecordType::A);
        assert!(!cache.insert(k.clone(), &positive("other.example.", &[300])));
        let mut no_question = positive("www.example.", &[300]);
        no_question.queries.clear();
        assert!(!cache.insert(k.clone(), &no_question));
        let mut query = positive("www.example.", &[300]);
        query.metadata.message_type = MessageType::Query;
        assert!(!cache.insert(k.clone(), &query));
        assert!(!cache.insert(
            key("www.example.", RecordType::AAAA),
            &positive("www.example.", &[300])
        ));
        // The question's case does not matter.
        assert!(cache.insert(k.clone(), &positive("WWW.Example.", &[300])));
    }

    // ---- keys ----

    #[tokio::test(start_paused = true)]
    async fn key_is_case_insensitive_on_the_name() {
        let lower = key("www.example.", RecordType::A);
        let mixed = key("WwW.ExAmPlE.", RecordType::A);
        assert_eq!(lower, mixed);
        assert_eq!(mixed.name().to_ascii(), "www.example.");
        assert_eq!(mixed.query_type(), RecordType::A);
        assert_eq!(mixed.query_class(), DNSClass::IN);
        assert!(format!("{mixed:?}").contains("www.example."));
        assert_eq!(
            CacheKey::new(&question(".", RecordType::NS), false).name(),
            Name::root()
        );
        let relative = CacheKey::new(&question("www.example", RecordType::A), false);
        assert_eq!(lower, relative);

        let cache = cache();
        assert!(cache.insert(mixed, &positive("www.example.", &[300])));
        assert_eq!(fresh_ttls(&cache, &lower), [300]);
    }

    #[tokio::test(start_paused = true)]
    async fn key_distinguishes_type_class_do_and_cd() {
        let q = question("www.example.", RecordType::A);
        let plain = CacheKey::new(&q, false);
        let with_do = CacheKey::new(&q, true);
        let with_cd = CacheKey::new(&q, false).with_checking_disabled(true);
        let aaaa = key("www.example.", RecordType::AAAA);
        let mut chaos = q.clone();
        chaos.set_query_class(DNSClass::CH);
        let chaos = CacheKey::new(&chaos, false);
        let all = [&plain, &with_do, &with_cd, &aaaa, &chaos];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(key("ab.c.", RecordType::A), key("a.bc.", RecordType::A));
        assert_eq!(with_cd.clone().with_checking_disabled(false), plain);
        assert!(with_do.dnssec_ok() && !plain.dnssec_ok());
        assert!(with_cd.checking_disabled() && !plain.checking_disabled());

        let cache = cache();
        assert!(cache.insert(with_do.clone(), &positive("www.example.", &[300])));
        assert!(matches!(cache.get(&with_do), Cached::Fresh { .. }));
        for other in [&plain, &with_cd, &aaaa, &chaos] {
            assert!(is_miss(&cache, other));
        }
    }

    // ---- size bound ----

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

    // ---- coalescing ----

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

    // ---- types ----

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

    #[test]
    fn default_config_matches_the_issue() {
        let config = CacheConfig::default();
        assert_eq!(config.max_entries, 100_000);
        assert_eq!(config.min_ttl, 0);
        assert_eq!(config.max_ttl, 86_400);
        assert_eq!(config.negative_max_ttl, 3_600);
        assert!(!config.serve_stale);
        assert_eq!(config.stale_max, Duration::from_secs(86_400));
    }
}
