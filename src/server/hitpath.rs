//! Cache hits answered from a reply already on the wire.
//!
//! The general path answers a hit by cloning the cached `Message`, decrementing its TTLs,
//! building the reply and encoding it (allocations and name compression on every query).
//! Here the fast path asks the cache for the encoded reply instead
//! ([`ResponseCache::get_encoded`](crate::upstream::cache::ResponseCache::get_encoded)),
//! which keeps it with the entry while the TTLs (whole seconds) and the kind of request stay
//! the same, and patches only what belongs to this client: the ID, the RD, CD and AD bits, and
//! the letter case of the question. The bytes are the general path's own encoding
//! ([`Handler::encode_hit`]), so the two agree by construction; tests compare them.

use hickory_proto::op::Query;
use hickory_proto::rr::{Name, RecordType};

use super::handler::Handler;
use crate::dns::request::Request;
use crate::dns::{CLASS_IN, EDNS_PAYLOAD, HEADER_LEN as HEADER};
use crate::lists::Blocklist;
use crate::policy::decide::Policy;
use crate::upstream::cache::CacheKey;

/// Answers `request` from a client of `group` (of `policy`) into `out` from a fresh cache entry (the
/// caller counts it, [`Handler::count_hit`]); false (nothing written that counts) when
/// there is none, it is due for prefetch, its CNAME chain is blocked, or the
/// reply is larger than `limit` (what the client's transport takes): the general path
/// handles those.
pub(super) fn answer(
    handler: &Handler,
    request: &Request<'_>,
    (policy, group): (&Policy, usize),
    list: &std::sync::Arc<Blocklist>,
    limit: usize,
    out: &mut Vec<u8>,
) -> bool {
    let Some(cache) = handler.cache() else {
        return false;
    };
    let dnssec_ok = request.edns.is_some_and(|(_, d)| d);
    let mut buf = [0u8; CacheKey::MAX_PACKED];
    let Some(key) = CacheKey::pack(
        &mut buf,
        dnssec_ok,
        request.cd,
        request.qtype,
        CLASS_IN,
        request.labels(),
    ) else {
        return false;
    };
    let the_group = &policy.groups()[group];
    let mask = policy.mask(the_group, list.manifest());
    let services_key = policy.services_key(the_group);
    let edns = request
        .edns
        .map(|(payload, d)| (payload.clamp(512, EDNS_PAYLOAD), d));
    // What the encoded bytes depend on besides the entry: the list and categories that
    // cleared its CNAME chain, and our OPT record (its payload size; DO is in the key).
    let variant = [
        std::sync::Arc::as_ptr(list) as u64 ^ list.manifest().serial.rotate_left(32),
        // The group's services (their domains' fingerprint) cleared the chain too.
        u64::from(mask) ^ services_key,
        edns.map_or(0, |(payload, _)| 0x1_0000 | u64::from(payload)),
    ];
    let encode = |message| {
        let mut name = Name::from_labels(request.labels()).ok()?;
        name.set_fqdn(true);
        let query = Query::query(name, RecordType::from(request.qtype));
        let services = (services_key != 0).then_some((policy, the_group));
        Handler::encode_hit(query, request.cd, edns, (list, mask), services, message)
    };
    let Some(bytes) = cache.get_encoded(key, variant, encode) else {
        return false;
    };
    let question = HEADER..request.question_end;
    // The stored question must be this one up to case (it was built from the same key).
    let same = bytes
        .get(question.clone())
        .zip(request.packet.get(question.clone()));
    if bytes.len() > limit || !same.is_some_and(|(a, b)| a.eq_ignore_ascii_case(b)) {
        return false;
    }
    out.clear();
    out.extend_from_slice(&bytes);
    out[..2].copy_from_slice(&request.id.to_be_bytes());
    out[2] = (out[2] & !0x01) | u8::from(request.rd);
    out[3] = (out[3] & !0x10) | if request.cd { 0x10 } else { 0 };
    if !(request.ad || dnssec_ok) {
        // RFC 6840 §5.7: AD only to a client that set AD or DO (the bytes carry the
        // upstream's AD, encoded as if it had).
        out[3] &= !0x20;
    }
    out[question.clone()].copy_from_slice(&request.packet[question]);
    true
}
