//! Per-client query rate limiting with a fixed memory budget.
//!
//! Each client gets a token bucket (`qps` refill, `burst` depth), kept as GCRA state: one
//! "theoretical arrival time" (TAT) per client. A client whose TAT has passed has a full
//! bucket, exactly as if it had never been seen, so forgetting it loses nothing.
//!
//! The table is allocated once: `capacity` slots arranged as 8-way sets, spread over up to
//! 64 mutex-guarded shards. A client hashes (keyed SipHash, so sets cannot be targeted) to
//! one set; a new client takes an empty slot or evicts the slot with the earliest TAT, i.e.
//! the client closest to a full bucket. A heavy hitter has a TAT in the future and so is the
//! last to be evicted, however many one-off (or spoofed) sources flow through. Each check
//! hashes once and scans 8 slots: O(1).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Slots per set: how many clients hashing to the same set can be tracked at once.
const WAYS: usize = 8;
/// Upper bound on lock shards; more only costs memory once contention is gone.
const MAX_SHARDS: usize = 64;
/// Marks an unused slot. Never a real key: IPv6 keys end in 64 zero bits, IPv4 keys
/// (`::ffff:a.b.c.d`) in `0000:ffff:....`.
const EMPTY: u128 = u128::MAX;

#[derive(Clone, Copy)]
struct Slot {
    key: u128,
    /// When the bucket will be full again plus one interval (GCRA's TAT).
    tat: Instant,
}

struct Shard {
    slots: Box<[Slot]>,
    used: usize,
}

/// A thread-safe, fixed-size table of per-client token buckets.
pub struct RateLimiter {
    shards: Box<[Mutex<Shard>]>,
    /// Slots per set (8, or fewer in a table smaller than one set).
    ways: usize,
    /// Time between two tokens; `None` when `qps` is 0 (no limit).
    interval: Option<Duration>,
    /// How far ahead of `now` a client's TAT may run: `interval * (burst - 1)`.
    tolerance: Duration,
    capacity: usize,
    qps: u32,
    burst: u32,
    hasher: RandomState,
}

impl RateLimiter {
    /// A limiter allowing each client `qps` queries per second on average and up to `burst`
    /// at once, tracking at most `capacity` clients.
    ///
    /// `qps == 0` disables limiting (every check passes). `burst` is raised to at least 1,
    /// `capacity` to at least 1. The whole table is allocated here (32 bytes per slot).
    pub fn new(qps: u32, burst: u32, capacity: usize) -> Self {
        let burst = burst.max(1);
        let interval =
            (qps > 0).then(|| (Duration::from_secs(1) / qps).max(Duration::from_nanos(1)));
        let tolerance = interval
            .and_then(|i| i.checked_mul(burst - 1))
            .unwrap_or(Duration::MAX);
        let capacity = capacity.max(1);
        let ways = WAYS.min(capacity);
        let sets = capacity / ways;
        let shard_count = sets.min(MAX_SHARDS);
        let placeholder = Slot {
            key: EMPTY,
            tat: Instant::now(),
        };
        let shards: Box<[Mutex<Shard>]> = (0..shard_count)
            .map(|i| {
                // Spread the remainder so the total is exactly `sets`.
                let shard_sets = sets / shard_count + usize::from(i < sets % shard_count);
                Mutex::new(Shard {
                    slots: vec![placeholder; shard_sets * ways].into_boxed_slice(),
                    used: 0,
                })
            })
            .collect();
        Self {
            shards,
            ways,
            interval,
            tolerance,
            capacity: sets * ways,
            qps,
            burst,
            hasher: RandomState::new(),
        }
    }

    /// Counts one query from `ip` at `now`; true if it is within the client's rate.
    ///
    /// IPv6 clients are bucketed by /64 (one subscriber owns a whole /64), IPv4 clients by
    /// address; IPv4-mapped IPv6 counts as IPv4. A refused query does not use up a token.
    pub fn check(&self, ip: IpAddr, now: Instant) -> bool {
        let Some(interval) = self.interval else {
            return true;
        };
        let key = client_key(ip);
        let hash = self.hasher.hash_one(key);
        // Low bits choose the shard, high bits the set inside it: both stay in range.
        let shard_index = (hash % self.shards.len() as u64) as usize;
        let Some(shard) = self.shards.get(shard_index) else {
            return true;
        };
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let ways = self.ways;
        let sets = shard.slots.len() / ways;
        let set_index = ((hash >> 32) % sets as u64) as usize;
        let start = set_index * ways;

        let Shard { slots, used } = &mut *shard;
        let Some(set) = slots.get_mut(start..start + ways) else {
            return true;
        };
        let slot = match set.iter().position(|s| s.key == key) {
            Some(i) => &mut set[i],
            None => {
                let victim = match set.iter().position(|s| s.key == EMPTY) {
                    Some(i) => {
                        *used += 1;
                        i
                    }
                    // Earliest TAT = fullest bucket: the cheapest client to forget.
                    None => set
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.tat)
                        .map_or(0, |(i, _)| i),
                };
                let slot = &mut set[victim];
                // A newcomer starts with a full bucket.
                *slot = Slot { key, tat: now };
                slot
            }
        };

        let allowed = match now.checked_add(self.tolerance) {
            Some(limit) => slot.tat <= limit,
            None => true,
        };
        if allowed {
            let from = slot.tat.max(now);
            slot.tat = from.checked_add(interval).unwrap_or(from);
        }
        allowed
    }

    /// Number of clients currently tracked; never more than [`capacity`](Self::capacity).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).used)
            .sum()
    }

    /// True when no client has been seen yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of slots: the requested capacity rounded down to whole 8-slot sets.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("qps", &self.qps)
            .field("burst", &self.burst)
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// The bucket a client is counted in: IPv4 /32 as `::ffff:a.b.c.d`, IPv6 as its /64.
fn client_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MS: Duration = Duration::from_millis(1);

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allowed_now(rl: &RateLimiter, ip: IpAddr, now: Instant, n: usize) -> usize {
        (0..n).filter(|_| rl.check(ip, now)).count()
    }

    #[test]
    fn burst_then_refill_at_configured_rate() {
        let rl = RateLimiter::new(10, 20, 1024);
        let t0 = Instant::now();
        let c = ip("192.0.2.1");
        for i in 0..20 {
            assert!(rl.check(c, t0), "query {i} of the burst");
        }
        assert!(!rl.check(c, t0), "21st query refused");
        assert!(!rl.check(c, t0 + 99 * MS), "no token before 100 ms");
        assert!(rl.check(c, t0 + 100 * MS), "one token after 100 ms");
        assert!(!rl.check(c, t0 + 100 * MS));
        // Idle long enough to refill completely: a full burst again, and no more.
        assert_eq!(allowed_now(&rl, c, t0 + Duration::from_secs(10), 50), 20);
    }

    #[test]
    fn sustained_rate_matches_qps() {
        let rl = RateLimiter::new(10, 20, 64);
        let t0 = Instant::now();
        let c = ip("192.0.2.1");
        // One query per millisecond for 10 s: burst + 10 s * 10 qps.
        let allowed = (0..10_000u32).filter(|&i| rl.check(c, t0 + i * MS)).count();
        assert!((119..=121).contains(&allowed), "allowed {allowed}");
    }

    #[test]
    fn refused_queries_do_not_consume_tokens() {
        let rl = RateLimiter::new(1, 1, 64);
        let t0 = Instant::now();
        let c = ip("192.0.2.1");
        assert!(rl.check(c, t0));
        assert_eq!(allowed_now(&rl, c, t0 + 500 * MS, 100), 0);
        assert!(rl.check(c, t0 + 1000 * MS));
    }

    #[test]
    fn clients_are_independent() {
        let rl = RateLimiter::new(1, 2, 1024);
        let t0 = Instant::now();
        assert_eq!(allowed_now(&rl, ip("10.0.0.1"), t0, 5), 2);
        assert_eq!(allowed_now(&rl, ip("10.0.0.2"), t0, 5), 2);
        assert_eq!(rl.len(), 2);
    }

    #[test]
    fn ipv6_bucketed_by_slash_64() {
        let rl = RateLimiter::new(1, 3, 1024);
        let t0 = Instant::now();
        assert!(rl.check(ip("2001:db8:1:2::1"), t0));
        assert!(rl.check(ip("2001:db8:1:2:ffff::5"), t0));
        assert!(rl.check(ip("2001:db8:1:2:dead:beef:0:1"), t0));
        assert!(
            !rl.check(ip("2001:db8:1:2::99"), t0),
            "same /64 shares the bucket"
        );
        assert!(
            rl.check(ip("2001:db8:1:3::1"), t0),
            "next /64 is another client"
        );
        assert_eq!(rl.len(), 2);
    }

    #[test]
    fn ipv4_mapped_shares_the_ipv4_bucket() {
        let rl = RateLimiter::new(1, 1, 1024);
        let t0 = Instant::now();
        assert!(rl.check(ip("198.51.100.7"), t0));
        assert!(!rl.check(ip("::ffff:198.51.100.7"), t0));
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn ipv4_and_ipv6_keys_never_collide() {
        // 0.0.0.0 and the ::/64 and ::ffff:0:0/96 neighbourhoods are all distinct buckets.
        let keys = [
            client_key(ip("0.0.0.0")),
            client_key(ip("::")),
            client_key(ip("::ffff:0:0")),
            client_key(ip("::1")),
        ];
        assert_eq!(keys[0], keys[2]);
        assert_eq!(keys[1], keys[3]);
        assert_ne!(keys[0], keys[1]);
        assert!(!keys.contains(&EMPTY));
    }

    #[test]
    fn zero_qps_means_unlimited_and_zero_burst_means_one() {
        let t0 = Instant::now();
        let off = RateLimiter::new(0, 0, 16);
        assert_eq!(allowed_now(&off, ip("10.0.0.1"), t0, 1000), 1000);
        let one = RateLimiter::new(5, 0, 16);
        assert_eq!(allowed_now(&one, ip("10.0.0.1"), t0, 10), 1);
    }

    #[test]
    fn slot_is_small() {
        assert!(std::mem::size_of::<Slot>() <= 32);
    }

    #[test]
    fn capacity_rounding() {
        assert_eq!(RateLimiter::new(1, 1, 10_000).capacity(), 10_000);
        assert_eq!(RateLimiter::new(1, 1, 1_000_003).capacity(), 1_000_000);
        assert_eq!(RateLimiter::new(1, 1, 5).capacity(), 5);
        assert_eq!(RateLimiter::new(1, 1, 0).capacity(), 1);
        let tiny = RateLimiter::new(1, 1, 0);
        let t0 = Instant::now();
        assert!(tiny.check(ip("10.0.0.1"), t0));
        assert!(tiny.check(ip("10.0.0.2"), t0));
        assert_eq!(tiny.len(), 1);
    }

    #[test]
    fn memory_stays_bounded_under_100k_sources() {
        let rl = RateLimiter::new(10, 20, 10_000);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            assert!(
                rl.check(src, t0 + i * Duration::from_micros(10)),
                "first query of a new client"
            );
            if i % 1000 == 0 {
                assert!(rl.len() <= rl.capacity());
            }
        }
        assert!(rl.len() <= 10_000);
        assert!(rl.len() > 9_000, "table is in use: {}", rl.len());
    }

    fn heavy_hitter_stays_limited(capacity: usize) {
        let rl = RateLimiter::new(10, 20, capacity);
        let t0 = Instant::now();
        let heavy = ip("2001:db8:bad::1");
        let mut heavy_allowed = 0;
        // 100k one-off sources over 1 s; the heavy hitter sends one query alongside each.
        for i in 0..100_000u32 {
            let now = t0 + i * Duration::from_micros(10);
            let other = IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db8_0001u128 << 80) | (u128::from(i) << 64),
            ));
            assert!(rl.check(other, now));
            if rl.check(heavy, now) {
                heavy_allowed += 1;
            }
        }
        // Burst of 20 plus 10 qps over one second.
        assert!(
            (20..=31).contains(&heavy_allowed),
            "heavy hitter got {heavy_allowed}"
        );
        assert!(rl.len() <= rl.capacity());
    }

    #[test]
    fn heavy_hitter_limited_among_100k_others() {
        heavy_hitter_stays_limited(10_000);
    }

    #[test]
    fn heavy_hitter_limited_even_in_a_tiny_table() {
        heavy_hitter_stays_limited(64);
        heavy_hitter_stays_limited(8);
    }

    #[test]
    fn concurrent_checks_never_exceed_the_burst() {
        let rl = RateLimiter::new(1, 100, 1024);
        let t0 = Instant::now();
        let c = ip("192.0.2.9");
        let total: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| allowed_now(&rl, c, t0, 1000)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(total, 100);
    }

    /// Reference token bucket in integer nanoseconds: `burst * interval` deep, one query
    /// costs `interval`, refills one unit per nanosecond.
    struct Naive {
        interval: u128,
        depth: u128,
        tokens: Vec<(u128, u128)>, // (tokens, last_ns) per client
    }

    impl Naive {
        fn check(&mut self, client: usize, now_ns: u128) -> bool {
            let (tokens, last) = &mut self.tokens[client];
            *tokens = (*tokens + (now_ns - *last)).min(self.depth);
            *last = now_ns;
            if *tokens >= self.interval {
                *tokens -= self.interval;
                true
            } else {
                false
            }
        }
    }

    proptest! {
        #[test]
        fn matches_reference_token_bucket(
            qps in 1u32..200,
            burst in 1u32..40,
            events in prop::collection::vec((0usize..8, 0u64..200_000_000), 1..400),
        ) {
            // 8 clients in an 8-slot table: nothing is ever evicted.
            let rl = RateLimiter::new(qps, burst, 8);
            let interval = (Duration::from_secs(1) / qps).as_nanos();
            let mut naive = Naive {
                interval,
                depth: interval * u128::from(burst),
                tokens: vec![(interval * u128::from(burst), 0); 8],
            };
            let t0 = Instant::now();
            let mut now_ns = 0u64;
            for (client, advance) in events {
                now_ns += advance;
                let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, client as u8));
                let got = rl.check(addr, t0 + Duration::from_nanos(now_ns));
                prop_assert_eq!(got, naive.check(client, u128::from(now_ns)));
            }
        }
    }
}
