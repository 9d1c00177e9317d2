//! One request, start to end: who may ask, which zone, which kind of answer. Runs on a
//! blocking thread (the store's calls may block) and hands each finished message to a
//! sink, so a transfer streams while it is rendered.
//!
//! | request | answer |
//! | --- | --- |
//! | not from `xfr_allow` | REFUSED |
//! | TSIG with an unknown key, bad MAC, or late | NOTAUTH + TSIG error (BADKEY, BADSIG, BADTIME) |
//! | AXFR/IXFR unsigned while a key is set | REFUSED |
//! | a zone we do not serve | NOTAUTH (AXFR/IXFR), REFUSED (other) |
//! | SOA | the SOA |
//! | AXFR (TCP) | SOA, NS, two records per name, SOA |
//! | IXFR, serial current or newer | the current SOA alone |
//! | IXFR, journal reaches back | one difference sequence per change (RFC 1995) |
//! | IXFR, journal does not reach back | the whole zone, AXFR-style |
//! | IXFR over UDP that does not fit one datagram | the current SOA alone (RFC 1995 §2) |

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType, TSigner};

use super::stats::{Refusal, RpzStats, bump};
use super::tsig::{RequestAuth, ResponseSigner, append_tsig, check_request, unsigned_error};
use super::writer::{AnswerWriter, Gone, Sink, WriteError, error_answer};
use super::zone::{Zones, name_records};
use crate::clock::now_unix;
use crate::dns::{EDNS_PAYLOAD, PLAIN_UDP_PAYLOAD};
use crate::feed::xfr::serial_gt;
use crate::publish::lists::{Change, PublishedLists};

/// An IXFR over UDP is only tried for this many changes or fewer; more cannot fit a
/// datagram anyway, and the answer is then the SOA alone (the secondary retries over TCP).
const UDP_IXFR_MAX_CHANGES: usize = 8;

/// What every request is answered from.
pub struct Primary {
    /// The published lists.
    pub lists: Arc<dyn PublishedLists>,
    /// Zone naming.
    pub zones: Zones,
    /// The TSIG key, when transfers must be signed.
    pub key: Option<TSigner>,
    /// Who may ask at all (empty: anyone).
    pub allow: Vec<ipnet::IpNet>,
    /// Counters.
    pub stats: Arc<RpzStats>,
}

/// How the request came, which bounds the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A datagram: one message, at most the payload the request offers.
    Udp,
    /// A stream: as many messages as needed, each up to 64 KiB.
    Tcp,
}

/// The request, its signer (if signed), and where the answer goes.
struct Ask<'a, 's> {
    msg: &'a Message,
    signer: Option<ResponseSigner>,
    transport: Transport,
    sink: &'s mut Sink<'s>,
}

impl Ask<'_, '_> {
    fn limit(&self) -> usize {
        match self.transport {
            Transport::Tcp => super::writer::TCP_MESSAGE_MAX,
            Transport::Udp => usize::from(self.msg.edns.as_ref().map_or(PLAIN_UDP_PAYLOAD, |e| {
                e.max_payload().clamp(PLAIN_UDP_PAYLOAD, EDNS_PAYLOAD)
            })),
        }
    }

    fn error(self, rcode: ResponseCode) -> Result<(), WriteError> {
        let mut signer = self.signer;
        let bytes = error_answer(self.msg, rcode, signer.as_mut())?;
        (self.sink)(bytes).map_err(|Gone| WriteError::Gone)
    }
}

impl Primary {
    /// Answers `bytes` from `peer`: every message of the answer goes to `sink`, in order.
    /// Nothing is sent for a message that is not a query (a stray response) or cannot be
    /// read at all.
    pub fn answer<'s>(
        &self,
        bytes: &[u8],
        peer: IpAddr,
        transport: Transport,
        sink: &'s mut Sink<'s>,
    ) -> Result<(), WriteError> {
        let msg = match Message::from_vec(bytes) {
            Ok(msg) => msg,
            Err(_) => return formerr(bytes, sink),
        };
        if msg.message_type != MessageType::Query {
            return Ok(());
        }
        let mut ask = Ask {
            msg: &msg,
            signer: None,
            transport,
            sink,
        };
        if !self.allow.is_empty() && !self.allow.iter().any(|net| net.contains(&peer)) {
            self.stats.refused(Refusal::Address);
            return ask.error(ResponseCode::Refused);
        }
        match check_request(bytes, &msg, self.key.as_ref(), now_unix()) {
            RequestAuth::Unsigned => {}
            RequestAuth::Signed(signer) => ask.signer = Some(signer),
            RequestAuth::Bad {
                error,
                signer,
                key_name,
            } => {
                self.stats.refused(Refusal::BadTsig);
                tracing::info!(%peer, ?error, "rpz: TSIG check failed");
                let mut reply = error_answer(&msg, ResponseCode::NotAuth, None)?;
                match signer {
                    Some(mut signer) => signer.sign(&mut reply, now_unix(), Some(error))?,
                    None => append_tsig(
                        &mut reply,
                        &unsigned_error(&key_name, &msg, error, now_unix()),
                    )
                    .map_err(WriteError::Encode)?,
                }
                return (ask.sink)(reply).map_err(|Gone| WriteError::Gone);
            }
        }
        if msg.op_code != OpCode::Query {
            self.stats.refused(Refusal::Unsupported);
            return ask.error(ResponseCode::NotImp);
        }
        let [query] = msg.queries.as_slice() else {
            self.stats.refused(Refusal::Unsupported);
            return ask.error(ResponseCode::FormErr);
        };
        let qtype = query.query_type();
        let transfer = matches!(qtype, RecordType::AXFR | RecordType::IXFR);
        if transfer && self.key.is_some() && ask.signer.is_none() {
            self.stats.refused(Refusal::Unsigned);
            tracing::info!(%peer, "rpz: unsigned transfer request refused (a TSIG key is set)");
            return ask.error(ResponseCode::Refused);
        }
        let lists = match self.lists.lists() {
            Ok(lists) => lists,
            Err(e) => {
                tracing::warn!(error = %e, "rpz: cannot read the published lists");
                return ask.error(ResponseCode::ServFail);
            }
        };
        let found = (query.query_class() == DNSClass::IN)
            .then(|| self.zones.list_for(query.name(), &lists))
            .flatten();
        let Some((list, serial)) = found else {
            self.stats.refused(Refusal::UnknownZone);
            return ask.error(if transfer {
                ResponseCode::NotAuth
            } else {
                ResponseCode::Refused
            });
        };
        let Some(zone) = self.zones.zone_of(list) else {
            return ask.error(ResponseCode::ServFail);
        };
        let result = match qtype {
            RecordType::SOA => {
                bump(&self.stats.soa);
                self.soa_only(ask, &zone, *serial)
            }
            RecordType::AXFR if transport == Transport::Udp => {
                self.stats.refused(Refusal::Unsupported);
                ask.error(ResponseCode::NotImp)
            }
            RecordType::AXFR => {
                bump(&self.stats.axfr);
                self.full(ask, &zone, list)
            }
            RecordType::IXFR => self.ixfr(ask, &zone, list, *serial),
            _ => {
                self.stats.refused(Refusal::Unsupported);
                ask.error(ResponseCode::Refused)
            }
        };
        if let Err(WriteError::Encode(e)) = &result {
            tracing::warn!(zone = %zone, error = %e, "rpz: answer failed");
        }
        result
    }

    fn soa_only(&self, ask: Ask<'_, '_>, zone: &Name, serial: u32) -> Result<(), WriteError> {
        let limit = ask.limit();
        let mut w = AnswerWriter::new(ask.msg, zone.clone(), ask.signer, limit, ask.sink);
        w.push(self.zones.soa(zone, serial))?;
        w.finish().map(drop)
    }

    /// The whole zone: SOA, NS, the names, SOA (AXFR, and IXFR in AXFR form).
    fn full(&self, ask: Ask<'_, '_>, zone: &Name, list: &str) -> Result<(), WriteError> {
        let (serial, names) = match self.lists.snapshot(list) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(list, error = %e, "rpz: cannot read the list");
                return ask.error(ResponseCode::ServFail);
            }
        };
        let limit = ask.limit();
        let mut w = AnswerWriter::new(ask.msg, zone.clone(), ask.signer, limit, ask.sink);
        w.push(self.zones.soa(zone, serial))?;
        w.push(self.zones.ns(zone))?;
        let mut skipped = 0usize;
        for name in &names {
            match name_records(zone, list, name) {
                Some([exact, below]) => {
                    w.push(exact)?;
                    w.push(below)?;
                }
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                list,
                skipped,
                "rpz: names too long for the zone were left out"
            );
        }
        w.push(self.zones.soa(zone, serial))?;
        w.finish().map(drop)
    }

    fn ixfr(
        &self,
        ask: Ask<'_, '_>,
        zone: &Name,
        list: &str,
        current: u32,
    ) -> Result<(), WriteError> {
        let have = ask.msg.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) if r.name.eq_ignore_root(zone) => Some(soa.serial),
            _ => None,
        });
        let Some(have) = have else {
            // RFC 1995 §3: the client's SOA is required.
            self.stats.refused(Refusal::Unsupported);
            return ask.error(ResponseCode::FormErr);
        };
        if have == current || serial_gt(have, current) {
            bump(&self.stats.ixfr_soa_only);
            return self.soa_only(ask, zone, current);
        }
        let changes = match self.lists.changes_since(list, have) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(list, error = %e, "rpz: cannot read the journal");
                return ask.error(ResponseCode::ServFail);
            }
        };
        match (changes, ask.transport) {
            (Some(changes), Transport::Tcp) if !changes.is_empty() => {
                bump(&self.stats.ixfr_incremental);
                self.incremental(ask, zone, list, have, &changes)
            }
            (Some(changes), Transport::Udp)
                if !changes.is_empty() && changes.len() <= UDP_IXFR_MAX_CHANGES =>
            {
                self.udp_incremental(ask, zone, list, have, &changes)
            }
            (_, Transport::Udp) => {
                bump(&self.stats.ixfr_soa_only);
                self.soa_only(ask, zone, current)
            }
            (_, Transport::Tcp) => {
                bump(&self.stats.ixfr_full);
                self.full(ask, zone, list)
            }
        }
    }

    /// Difference sequences over UDP, when they fit one datagram; else the SOA alone.
    fn udp_incremental(
        &self,
        ask: Ask<'_, '_>,
        zone: &Name,
        list: &str,
        have: u32,
        changes: &[Change],
    ) -> Result<(), WriteError> {
        let mut out = Vec::new();
        let limit = ask.limit();
        let fits = {
            let mut collect = |m: Vec<u8>| {
                out.push(m);
                Ok(())
            };
            let trial = Ask {
                msg: ask.msg,
                signer: ask.signer.clone(),
                transport: Transport::Udp,
                sink: &mut collect,
            };
            self.incremental(trial, zone, list, have, changes).is_ok() && out.len() == 1
        };
        match out.pop() {
            Some(datagram) if fits && datagram.len() <= limit => {
                bump(&self.stats.ixfr_incremental);
                (ask.sink)(datagram).map_err(|Gone| WriteError::Gone)
            }
            _ => {
                bump(&self.stats.ixfr_soa_only);
                let current = changes.last().map_or(have, |c| c.serial);
                self.soa_only(ask, zone, current)
            }
        }
    }

    /// RFC 1995 §4: the new SOA, then per change the SOA before it, what it deleted, the
    /// SOA after it, what it added; then the new SOA again.
    fn incremental(
        &self,
        ask: Ask<'_, '_>,
        zone: &Name,
        list: &str,
        have: u32,
        changes: &[Change],
    ) -> Result<(), WriteError> {
        let current = changes.last().map_or(have, |c| c.serial);
        let limit = ask.limit();
        let mut w = AnswerWriter::new(ask.msg, zone.clone(), ask.signer, limit, ask.sink);
        w.push(self.zones.soa(zone, current))?;
        let mut before = have;
        for change in changes {
            let records = name_records(zone, list, &change.name);
            w.push(self.zones.soa(zone, before))?;
            if !change.added {
                for r in records.iter().flatten() {
                    w.push(r.clone())?;
                }
            }
            w.push(self.zones.soa(zone, change.serial))?;
            if change.added {
                for r in records.into_iter().flatten() {
                    w.push(r)?;
                }
            }
            before = change.serial;
        }
        w.push(self.zones.soa(zone, current))?;
        w.finish().map(drop)
    }
}

/// FORMERR for a message that does not parse, when at least its header does (so the
/// answer can carry its id); nothing otherwise.
fn formerr(bytes: &[u8], sink: &mut Sink<'_>) -> Result<(), WriteError> {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return Ok(());
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let msg = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
    let out = msg
        .to_vec()
        .map_err(|e| WriteError::Encode(e.to_string()))?;
    sink(out).map_err(|Gone| WriteError::Gone)
}
