//! Packs an answer's records into as few messages as fit, signs each, and hands each to a
//! sink as soon as it is full: a million-name zone is never held as records or as wire
//! bytes all at once, only one message at a time.

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record};

use super::tsig::{ResponseSigner, SignError};
use super::zone::wire_bound;
use crate::clock::now_unix;

/// The largest DNS message over TCP (two-octet length prefix).
pub const TCP_MESSAGE_MAX: usize = 65_535;

/// The receiving end went away (connection closed): stop producing.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The sink refused the message (the peer is gone).
    #[error("the peer went away")]
    Gone,
    /// A message could not be encoded or signed.
    #[error("cannot encode the answer: {0}")]
    Encode(String),
}

impl From<SignError> for WriteError {
    fn from(e: SignError) -> Self {
        WriteError::Encode(e.to_string())
    }
}

/// A sink's answer when the peer it writes to has gone away.
#[derive(Debug)]
pub struct Gone;

/// Where finished messages go, in order.
pub type Sink<'s> = dyn FnMut(Vec<u8>) -> Result<(), Gone> + 's;

/// Builds the messages of one answer.
pub struct AnswerWriter<'s> {
    id: u16,
    query: Query,
    /// The zone: owner names under it compress to a pointer into the question.
    zone: Name,
    signer: Option<ResponseSigner>,
    /// Our OPT record, in every message when the request had one (RFC 6891 §6.1.1).
    edns: Option<Edns>,
    limit: usize,
    records: Vec<Record>,
    /// Upper bound of the encoded size of `records`, compressed against the question.
    estimate: usize,
    sink: &'s mut Sink<'s>,
    /// Messages handed to the sink so far.
    pub messages: u64,
    /// Octets handed to the sink so far (messages, without TCP length prefixes).
    pub bytes: u64,
}

impl<'s> AnswerWriter<'s> {
    /// A writer of answers to `request` about `zone`, each message at most `limit`
    /// octets, signed by `signer` when the request was signed.
    pub fn new(
        request: &Message,
        zone: Name,
        signer: Option<ResponseSigner>,
        limit: usize,
        sink: &'s mut Sink<'s>,
    ) -> AnswerWriter<'s> {
        AnswerWriter {
            id: request.id,
            query: request.queries.first().cloned().unwrap_or_default(),
            zone,
            signer,
            edns: request.edns.as_ref().map(|_| our_edns()),
            limit: limit.min(TCP_MESSAGE_MAX),
            records: Vec::new(),
            estimate: 0,
            sink,
            messages: 0,
            bytes: 0,
        }
    }

    /// Octets of a message besides its answers: header, question, OPT, TSIG.
    fn header_size(&self) -> usize {
        12 + self.query.name().len()
            + 1
            + 4
            + self.tsig_room()
            + if self.edns.is_some() { 11 } else { 0 }
    }

    fn tsig_room(&self) -> usize {
        self.signer.as_ref().map_or(0, ResponseSigner::room)
    }

    fn estimate_of(&self, record: &Record) -> usize {
        let bound = wire_bound(record);
        if self.zone.zone_of(&record.name) {
            // The zone's labels become a two-octet pointer to the question's name.
            bound.saturating_sub(self.zone.len() + 1) + 2
        } else {
            bound
        }
    }

    /// Adds a record, sending the message first if it would not fit.
    pub fn push(&mut self, record: Record) -> Result<(), WriteError> {
        let size = self.estimate_of(&record);
        if !self.records.is_empty() && self.header_size() + self.estimate + size > self.limit {
            self.flush()?;
        }
        self.estimate += size;
        self.records.push(record);
        Ok(())
    }

    /// Sends what is left (at least one message, even an empty one).
    pub fn finish(mut self) -> Result<(u64, u64), WriteError> {
        if !self.records.is_empty() || self.messages == 0 {
            self.flush()?;
        }
        Ok((self.messages, self.bytes))
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        let records = std::mem::take(&mut self.records);
        self.estimate = 0;
        self.send(records)
    }

    /// Encodes `records` as one message, or as two halves when the estimate was wrong and
    /// it came out too large.
    fn send(&mut self, records: Vec<Record>) -> Result<(), WriteError> {
        let mut msg = Message::response(self.id, OpCode::Query);
        msg.metadata.authoritative = true;
        msg.add_query(self.query.clone());
        msg.edns = self.edns.clone();
        let count = records.len();
        msg.answers = records;
        let mut bytes = msg
            .to_vec()
            .map_err(|e| WriteError::Encode(e.to_string()))?;
        // hickory's encoder stops at 65535 octets and sets TC rather than failing: a
        // truncated encoding must be split too, or records would be lost.
        let truncated = bytes.get(2).is_some_and(|flags| flags & 0x02 != 0);
        if (truncated || bytes.len() + self.tsig_room() > self.limit) && count > 1 {
            let mut first = std::mem::take(&mut msg.answers);
            let second = first.split_off(count / 2);
            self.send(first)?;
            return self.send(second);
        }
        if let Some(signer) = self.signer.as_mut() {
            signer.sign(&mut bytes, now_unix(), None)?;
        }
        self.messages += 1;
        self.bytes += bytes.len() as u64;
        (self.sink)(bytes).map_err(|Gone| WriteError::Gone)
    }
}

/// One whole answer with no records: an error, or a refusal. Signed when `signer` is.
pub fn error_answer(
    request: &Message,
    rcode: ResponseCode,
    signer: Option<&mut ResponseSigner>,
) -> Result<Vec<u8>, WriteError> {
    let mut msg = Message::response(request.id, request.op_code);
    msg.add_queries(request.queries.iter().cloned());
    msg.metadata.response_code = rcode;
    msg.metadata.recursion_desired = request.recursion_desired;
    msg.edns = request.edns.as_ref().map(|_| our_edns());
    let mut bytes = msg
        .to_vec()
        .map_err(|e| WriteError::Encode(e.to_string()))?;
    if let Some(signer) = signer {
        signer.sign(&mut bytes, now_unix(), None)?;
    }
    Ok(bytes)
}

fn our_edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(crate::dns::EDNS_PAYLOAD);
    edns
}
