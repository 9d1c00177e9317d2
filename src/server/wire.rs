//! Request bytes in, a reply out, for every transport of our own (UDP, TCP, DoT, DoH).
//!
//! [`answer_into`] is what the transports call: the fast path's bytes for a block or a
//! cache hit, else [`answer`], which decodes a query and runs [`Handler::answer`] on it: whatever can be answered
//! without waiting comes back at once, with the client's question section filled in. A query
//! that waits on upstream comes back as [`Reply::Upstream`], which the transport finishes
//! where it suits it (UDP spawns a task, a TCP connection awaits it). The reply goes on the
//! wire through [`crate::dns::encode`], within [`udp_limit`] on UDP.
//!
//! Before any decision: a packet shorter than a header is ignored, responses (QR=1) are
//! ignored (never answer answers), and a header followed by something undecodable gets
//! FORMERR (no question, no OPT), as Unbound and BIND do.

use hickory_proto::op::ResponseCode;
use hickory_proto::op::{Header, Message, MessageType, Metadata, Query};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use hickory_proto::rr::rdata::opt::EdnsOption;

use super::fastpath;
use super::handler::decision::{Decision, Question};
use super::handler::{Handler, Reply};
use super::identity::EdnsOpt;
use crate::dns::request::Request;
use crate::metrics::Protocol;
use crate::policy::Client;

/// Decodes `packet` from `client` and replies with what can be answered now
/// ([`Handler::answer`]), the client's question section filled in; `client` is what the
/// transport knows (address, ClientID), completed here by the query's EDNS options
/// ([`Handler::identify`]) unless a decision came with the packet; a [`Reply::Upstream`]
/// goes to [`Handler::finish`]. `decided` is the fast path's decision when it could
/// not write it on bytes (`None`: decide here). The caller holds a drain guard
/// ([`crate::shutdown::Drain::enter`]) until the reply is sent.
pub fn answer(
    handler: &Handler,
    packet: &[u8],
    client: &Client,
    protocol: Protocol,
    decided: Option<Decision>,
) -> Reply {
    let mut decoder = BinDecoder::new(packet);
    let Ok(header) = Header::read(&mut decoder) else {
        // Shorter than a header: not a DNS query, no reply.
        return Reply::Silent;
    };
    if header.metadata.message_type == MessageType::Response {
        // Never answer answers (reflection loops).
        return Reply::Silent;
    }
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(error) => {
            tracing::debug!(%error, "malformed query");
            let mut metadata = Metadata::response_from_request(&header.metadata);
            metadata.response_code = ResponseCode::FormErr;
            metadata.recursion_available = true;
            let mut reply = Message::new(metadata.id, MessageType::Response, metadata.op_code);
            reply.metadata = metadata;
            return Reply::Now(reply);
        }
    };
    let lower: Option<(&Query, Name)> = match request.queries.as_slice() {
        [q] => Some((q, q.name().to_lowercase())),
        _ => None,
    };
    let question = Question {
        metadata: &request.metadata,
        edns: request.edns.as_ref(),
        tsig: request.signature.as_deref(),
        query: lower.as_ref().map(|(q, n)| (*q, n)),
    };
    let identified;
    let client = if decided.is_none() {
        let options = request
            .edns
            .iter()
            .flat_map(|e| e.options().options.iter())
            .map(|(_, option)| match option {
                EdnsOption::Unknown(code, data) => EdnsOpt::Raw(*code, data),
                EdnsOption::Subnet(s) => EdnsOpt::Subnet(s.addr(), s.source_prefix()),
                _ => EdnsOpt::Raw(0, &[]),
            });
        identified = handler.identify(client, options);
        &identified
    } else {
        client
    };
    match handler.answer(&question, client, protocol, decided) {
        Reply::Now(mut reply) => {
            reply.queries = request.queries;
            Reply::Now(reply)
        }
        other => other,
    }
}

/// The reply to `packet` as every transport gives it: the fast path first (a block or a
/// cache hit written on bytes into `out`: `None`, send `out`), else the general path
/// ([`answer`]) with the fast path's decision, not decided again.
pub fn answer_into(
    handler: &Handler,
    packet: &[u8],
    client: &Client,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> Option<Reply> {
    let mut decided = None;
    if let Some(request) = Request::parse(packet) {
        match fastpath::answer(handler, &request, client, protocol, out) {
            None => return None,
            Some(decision) => decided = Some(decision),
        }
    }
    Some(answer(handler, packet, client, protocol, decided))
}

/// The largest reply a UDP client takes: our OPT's payload size (already clamped to
/// 512..=1232 from the client's), or 512 without EDNS (RFC 1035).
pub fn udp_limit(reply: &Message) -> u16 {
    reply
        .edns
        .as_ref()
        .map_or(crate::dns::PLAIN_UDP_PAYLOAD, |e| e.max_payload())
}
