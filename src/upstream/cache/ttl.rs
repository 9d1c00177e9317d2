//! TTL policy: how long a reply may be cached ([`CacheConfig`]'s bounds, RFC 2308 negative
//! TTLs, CNAME chains ending in a negative answer), which replies are never cached, and the
//! fixed TTLs of stale answers and the prefetch threshold.

use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use super::key::CacheKey;

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
    /// [`Cached::Stale`](super::Cached::Stale) (RFC 8767).
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
    pub(super) fn clamp_positive(&self, ttl: u32) -> u32 {
        ttl.max(self.min_ttl).min(self.max_ttl)
    }

    /// Clamp of a negative TTL; the negative maximum wins if the bounds cross.
    pub(super) fn clamp_negative(&self, ttl: u32) -> u32 {
        ttl.max(self.min_ttl).min(self.negative_max_ttl)
    }

    /// Grace period moka keeps an entry after its TTL.
    pub(super) fn grace(&self) -> Duration {
        let stale = if self.serve_stale {
            self.stale_max
        } else {
            Duration::ZERO
        };
        stale.saturating_add(PURGE_SLACK)
    }
}

/// How long a reply may be cached, and how to normalise its records.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Lifetime {
    /// The entry's TTL in seconds (> 0).
    pub(super) ttl: u32,
    /// The negative TTL when the reply is (or ends in) a negative answer: it caps the
    /// authority section (SOA and NSEC records, RFC 2308 §5 and RFC 9077).
    pub(super) negative: Option<u32>,
}

/// Decides whether `message` may be cached under `key`, and for how long.
pub(super) fn lifetime(
    config: &CacheConfig,
    key: &CacheKey,
    message: &Message,
) -> Option<Lifetime> {
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
pub(super) fn records_mut(message: &mut Message) -> impl Iterator<Item = &mut Record> {
    message
        .answers
        .iter_mut()
        .chain(message.authorities.iter_mut())
        .chain(message.additionals.iter_mut())
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, MessageType};
    use hickory_proto::rr::rdata::CNAME;

    use super::super::testing::*;
    use super::super::*;

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
