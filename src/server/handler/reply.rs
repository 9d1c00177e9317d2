//! The general path's replies, as hickory-proto [`Message`]s without a question section
//! (the transport adds the client's): errors and refusals, the protocol's local answers,
//! the sinkhole, and an upstream reply relayed. The fast path writes the two commonest
//! of these (the sinkhole, a cache hit) on bytes; its tests compare it with these.

use hickory_proto::op::{Edns, Message, Metadata, Query, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

use super::super::local::Local;
use super::decision::Block;
use crate::answer::{EDE_OPTION, EdeCode, ede_payload};
use crate::dns::EDNS_PAYLOAD;
use crate::policy::decide::Group;
use crate::upstream::resolve::Resolved;

/// The OPT record of our reply: present when the client sent one (RFC 6891), advertising
/// at most 1232 bytes, which also caps what a UDP reply may take (beyond it the reply is
/// truncated with TC=1).
pub(super) fn reply_edns(theirs: Option<&Edns>) -> Option<Edns> {
    let theirs = theirs?;
    let mut edns = Edns::new();
    edns.set_max_payload(theirs.max_payload().clamp(512, EDNS_PAYLOAD));
    edns.set_dnssec_ok(theirs.flags().dnssec_ok);
    Some(edns)
}

pub(super) fn with_ede(mut edns: Option<Edns>, code: EdeCode, text: &str) -> Option<Edns> {
    if let Some(e) = edns.as_mut() {
        e.options_mut()
            .insert(EdnsOption::Unknown(EDE_OPTION, ede_payload(code, text)));
    }
    edns
}

pub(super) fn reply_metadata(request: &Metadata, code: ResponseCode) -> Metadata {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = code;
    metadata.recursion_available = true;
    metadata
}

/// A reply without a question section: the transport adds the client's.
pub(super) fn message(metadata: Metadata, edns: Option<Edns>) -> Message {
    let mut m = Message::new(metadata.id, metadata.message_type, metadata.op_code);
    m.metadata = metadata;
    m.edns = edns;
    m
}

pub(super) fn error(
    request: &Metadata,
    edns: Option<&Edns>,
    code: ResponseCode,
    ede: Option<(EdeCode, &str)>,
) -> Message {
    let mut edns = reply_edns(edns);
    if let Some((c, text)) = ede {
        edns = with_ede(edns, c, text);
    }
    message(reply_metadata(request, code), edns)
}

/// The reply to a query the protocol rules answer ([`super::super::local::check`]).
pub(super) fn local(request: &Metadata, edns: Option<&Edns>, local: Local) -> Message {
    let code = match &local {
        Local::Code(code) => *code,
        Local::BadVers => ResponseCode::BADVERS,
        Local::BadKey(_) => ResponseCode::NotAuth,
        Local::Chaos(_) | Local::Ddr(_) | Local::Pass => ResponseCode::NoError,
    };
    // BADVERS needs an OPT for its extended RCODE: there is one, as only a query with an
    // OPT can ask for another EDNS version, and `error` answers it with ours.
    let mut reply = error(request, edns, code, None);
    match local {
        Local::BadKey(tsig) => reply.signature = Some(tsig),
        Local::Chaos(record) => {
            reply.metadata.authoritative = true;
            reply.answers.push(*record);
        }
        Local::Ddr(ddr) => {
            reply.metadata.authoritative = true;
            let ddr = *ddr;
            reply.answers = ddr.answers;
            reply.authorities = ddr.soa.into_iter().collect();
        }
        Local::Pass | Local::Code(_) | Local::BadVers => {}
    }
    reply
}

/// The sinkhole reply to `query` for `block`, in its group's mode ([`Block::hole`]), with
/// the block's EDE.
pub(super) fn block(
    request: &Metadata,
    edns: Option<Edns>,
    query: &Query,
    group: &Group,
    block: &Block,
) -> Message {
    let listed = block.verdict.rule.as_ref().map_or("", |r| r.name.as_str());
    let serial = block.list.manifest().serial as u32;
    let hole = block
        .hole(group)
        .build(query.name(), query.query_type(), listed, serial);
    let mut metadata = reply_metadata(request, hole.rcode);
    metadata.authoritative = true;
    let mut text = Vec::with_capacity(64);
    block.push_text(group, &mut text);
    let text = String::from_utf8_lossy(&text);
    let mut m = message(metadata, with_ede(edns, block.code, &text));
    m.answers = hole.answers;
    m.authorities = hole.soa.into_iter().collect();
    m
}

/// Upstream failed: SERVFAIL with EDE 22, never silence.
pub(super) fn unreachable(request: &Metadata, edns: Option<Edns>) -> Message {
    let text = "no upstream answered (kidsafe-dns)";
    let edns = with_ede(edns, EdeCode::NoReachableAuthority, text);
    message(reply_metadata(request, ResponseCode::ServFail), edns)
}

/// Relays an upstream reply: RCODE, sections, AD bit and TTLs as the upstream sent them.
pub(super) fn forwarded(
    request: &Metadata,
    mut edns: Option<Edns>,
    resolved: Resolved,
    prefix: Option<Record>,
) -> Message {
    let reply = resolved.message;
    let mut metadata = reply_metadata(request, reply.metadata.response_code);
    // AD only to a client that asked for it, with AD or DO (RFC 6840 §5.7); upstream is
    // always asked with AD set, so its reply says what it validated.
    let dnssec_ok = edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    metadata.authentic_data =
        reply.metadata.authentic_data && (request.authentic_data || dnssec_ok);
    // Pass the upstream's own Extended DNS Errors on (e.g. a DNSSEC failure reason).
    if let (Some(ours), Some(theirs)) = (edns.as_mut(), reply.edns.as_ref())
        && let Some(ede) = theirs.option(EdnsCode::Unknown(EDE_OPTION))
    {
        ours.options_mut().insert(ede.clone());
    }
    if resolved.stale {
        edns = with_ede(
            edns,
            EdeCode::StaleAnswer,
            "upstream unreachable, answer from cache (kidsafe-dns)",
        );
    }
    let mut m = message(metadata, edns);
    m.answers = match prefix {
        Some(cname) => std::iter::once(cname).chain(reply.answers).collect(),
        None => reply.answers,
    };
    m.authorities = reply.authorities;
    m.additionals = reply.additionals;
    m
}
