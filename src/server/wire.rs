//! Request bytes in, reply bytes out, for every transport of our own (UDP, TCP, DoT).
//!
//! [`step`] decodes a query and runs [`Handler::step`] on it: whatever can be answered
//! without waiting comes back at once, with the client's question section filled in. A query
//! that waits on upstream comes back as [`Packet::Upstream`], which the transport finishes
//! where it suits it (UDP spawns a task, a TCP connection awaits it). [`encode`] writes a
//! reply within a size limit, truncating with TC=1.
//!
//! What hickory-server did before the handler ran is kept: a packet shorter than a header is
//! ignored, a header followed by something undecodable gets FORMERR (no question, no OPT),
//! and responses (QR=1) are ignored.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::op::{Header, Message, MessageType, Metadata, Query};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::handler::{Handler, Pending, Question, Step};
use crate::metrics::Protocol;
use crate::policy::decide::Admission;

/// What became of a packet.
pub enum Packet {
    /// Send nothing: not a query, a refused client with `refuse_action = "drop"`, or the
    /// server is shutting down.
    Ignore,
    /// Send this reply.
    Reply(Message),
    /// Await [`finish`] on it, then send the reply.
    Upstream(Upstream),
}

/// A query waiting on upstream, with the client's question section.
pub struct Upstream {
    pending: Box<Pending>,
    queries: Vec<Query>,
}

/// Decodes `packet` from `client` and answers what can be answered now. The caller holds a
/// drain guard ([`crate::shutdown::Drain::enter`]) until the reply is sent.
pub fn step(handler: &Handler, packet: &[u8], client: IpAddr, protocol: Protocol) -> Packet {
    step_with(handler, packet, client, protocol, None)
}

/// [`step`] for a query the fast path ([`super::fastpath`]) already counted and admitted
/// (`Some`), or not (`None`).
pub fn step_with(
    handler: &Handler,
    packet: &[u8],
    client: IpAddr,
    protocol: Protocol,
    admission: Option<Admission>,
) -> Packet {
    let mut decoder = BinDecoder::new(packet);
    let Ok(header) = Header::read(&mut decoder) else {
        // Shorter than a header: not a DNS query, no reply.
        return Packet::Ignore;
    };
    if header.metadata.message_type == MessageType::Response {
        // Never answer answers (reflection loops).
        return Packet::Ignore;
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
            return Packet::Reply(reply);
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
        client,
        protocol,
    };
    let step = match admission {
        Some(a) => handler.step_admitted(&question, a),
        None => handler.step(&question),
    };
    match step {
        Step::Reply(mut reply) => {
            reply.queries = request.queries;
            Packet::Reply(reply)
        }
        Step::Drop => Packet::Ignore,
        Step::Upstream(pending) => Packet::Upstream(Upstream {
            pending,
            queries: request.queries,
        }),
    }
}

/// The reply to a query that waited on upstream.
pub async fn finish(handler: &Handler, upstream: Upstream) -> Message {
    let mut reply = handler.finish(upstream.pending).await;
    reply.queries = upstream.queries;
    reply
}

/// The largest reply a UDP client takes: our OPT's payload size (already clamped to
/// 512..=1232 from the client's), or 512 without EDNS (RFC 1035).
pub fn udp_limit(reply: &Message) -> u16 {
    reply
        .edns
        .as_ref()
        .map_or(crate::dns::PLAIN_UDP_PAYLOAD, |e| e.max_payload())
}

/// `reply` on the wire in at most `max` bytes, truncated as a strict client accepts
/// ([`crate::dns::encode`]).
pub fn encode(out: &mut Vec<u8>, reply: &Message, max: u16) {
    crate::dns::encode::encode(out, reply, max);
}
