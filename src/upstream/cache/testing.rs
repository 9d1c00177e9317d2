//! Replies, keys and lookups shared by the cache's tests.

pub(super) use std::sync::Arc;
pub(super) use std::sync::atomic::Ordering;
pub(super) use std::time::Duration;

pub(super) use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
pub(super) use hickory_proto::rr::{Name, RData, Record, RecordType};

use std::net::Ipv4Addr;

use hickory_proto::rr::rdata::{A, SOA};

use super::{CacheConfig, CacheKey, Cached, ResponseCache};

pub(super) fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

pub(super) fn question(qname: &str, qtype: RecordType) -> Query {
    Query::query(name(qname), qtype)
}

pub(super) fn key(qname: &str, qtype: RecordType) -> CacheKey {
    CacheKey::new(&question(qname, qtype), false)
}

pub(super) fn reply(qname: &str, qtype: RecordType, rcode: ResponseCode) -> Message {
    let mut message = Message::response(0x1234, OpCode::Query);
    message.metadata.response_code = rcode;
    message.metadata.recursion_available = true;
    message.add_query(question(qname, qtype));
    message
}

pub(super) fn a_record(owner: &str, ttl: u32, last: u8) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
    )
}

/// NOERROR for `qname` A with one A record per TTL.
pub(super) fn positive(qname: &str, ttls: &[u32]) -> Message {
    let mut message = reply(qname, RecordType::A, ResponseCode::NoError);
    for (i, ttl) in ttls.iter().enumerate() {
        message.add_answer(a_record(qname, *ttl, i as u8 + 1));
    }
    message
}

pub(super) fn soa_record(zone: &str, ttl: u32, minimum: u32) -> Record {
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
pub(super) fn negative(qname: &str, rcode: ResponseCode, soa: Option<(u32, u32)>) -> Message {
    let mut message = reply(qname, RecordType::A, rcode);
    if let Some((ttl, minimum)) = soa {
        message.add_authority(soa_record("example.", ttl, minimum));
    }
    message
}

pub(super) fn ttls(message: &Message) -> Vec<u32> {
    message
        .answers
        .iter()
        .chain(&message.authorities)
        .chain(&message.additionals)
        .map(|r| r.ttl)
        .collect()
}

pub(super) fn fresh(cache: &ResponseCache, key: &CacheKey) -> (Message, bool) {
    match cache.get(key) {
        Cached::Fresh { message, prefetch } => (message, prefetch),
        other => panic!("expected a fresh hit, got {other:?}"),
    }
}

pub(super) fn fresh_ttls(cache: &ResponseCache, key: &CacheKey) -> Vec<u32> {
    ttls(&fresh(cache, key).0)
}

pub(super) fn is_miss(cache: &ResponseCache, key: &CacheKey) -> bool {
    matches!(cache.get(key), Cached::Miss)
}

pub(super) fn cache() -> ResponseCache {
    ResponseCache::new(CacheConfig::default())
}

pub(super) async fn advance_secs(secs: f64) {
    tokio::time::advance(Duration::from_secs_f64(secs)).await;
}
