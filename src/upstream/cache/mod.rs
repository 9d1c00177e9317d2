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
//! What to do with each kind of hit (answer, refresh, fall back to a stale entry) is the
//! resolver's decision, in [`crate::upstream::resolve`].
//!
//! The files: `key.rs` (packing the question), `ttl.rs` (what may be cached, for how long),
//! `store.rs` (entries, expiry, hits, encoded replies), `flight.rs` (coalescing misses).

mod flight;
mod key;
mod store;
mod ttl;

#[cfg(test)]
mod testing;

pub use key::CacheKey;
pub use store::{Cached, ResponseCache};
pub use ttl::{CacheConfig, PREFETCH_MIN_TTL, STALE_TTL};
