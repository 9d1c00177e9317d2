//! NOTIFY (RFC 1996) messages: recognising one for our zone, reading the
//! serial it announces, and building the acknowledgement.

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::soa_of;

/// Is `message` a NOTIFY (RFC 1996) for `zone`: opcode NOTIFY, a query (not
/// a response), one question of type SOA for the zone? The caller must also
/// check that it came from the configured primary before acting on it.
pub fn is_notify_for(message: &Message, zone: &Name) -> bool {
    message.op_code == OpCode::Notify
        && message.message_type == MessageType::Query
        && message.queries.len() == 1
        && message.queries[0].query_type() == RecordType::SOA
        && message.queries[0].name().eq_ignore_root(zone)
}

/// The serial a NOTIFY announces, if it carries the new SOA in its answer
/// section (optional per RFC 1996 §3.7; a hint only, the caller still queries
/// the primary).
pub fn notify_serial(message: &Message) -> Option<u32> {
    let zone = message.queries.first()?.name();
    message
        .answers
        .iter()
        .filter(|r| r.name.eq_ignore_root(zone))
        .find_map(soa_of)
        .map(|s| s.serial)
}

/// Builds the acknowledgement for a NOTIFY: same id and question, QR and AA
/// set, NOERROR. `None` when `query_bytes` is not a NOTIFY query (the caller
/// then drops it or answers as it would any query). A TSIG-signed NOTIFY gets
/// an unsigned ack; primaries accept that, they only retry on no answer.
pub fn notify_response(query_bytes: &[u8]) -> Option<Vec<u8>> {
    notify_answer(query_bytes, ResponseCode::NoError)
}

/// Builds the answer to a NOTIFY for a zone this resolver does not follow, from a primary
/// it follows other zones of: REFUSED, so the primary stops retrying (BIND answers a
/// NOTIFY for a zone it does not serve the same way). `None` as [`notify_response`].
pub fn notify_refusal(query_bytes: &[u8]) -> Option<Vec<u8>> {
    notify_answer(query_bytes, ResponseCode::Refused)
}

fn notify_answer(query_bytes: &[u8], rcode: ResponseCode) -> Option<Vec<u8>> {
    let query = Message::from_vec(query_bytes).ok()?;
    if query.op_code != OpCode::Notify
        || query.message_type != MessageType::Query
        || query.queries.len() != 1
    {
        return None;
    }
    let mut resp = Message::response(query.id, OpCode::Notify);
    resp.metadata.authoritative = rcode == ResponseCode::NoError;
    resp.metadata.response_code = rcode;
    resp.add_query(query.queries[0].clone());
    resp.to_vec().ok()
}
