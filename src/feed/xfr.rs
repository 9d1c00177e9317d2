//! RPZ secondary: SOA polling, AXFR/IXFR client with TSIG, and NOTIFY helpers.
//!
//! The caller keeps a [`ZoneSnapshot`] (in memory and persisted), polls
//! [`XfrSource::soa_serial`] every `refresh` (or on NOTIFY, see
//! [`is_notify_for`] / [`notify_response`]), and when the primary's serial is
//! newer ([`serial_gt`]) calls [`XfrSource::transfer`] with the serial it has.
//! A [`XfrOutcome::Full`] replaces the snapshot; a
//! [`XfrOutcome::Incremental`] is folded in with [`apply`]. Either way the
//! caller then rebuilds its rules from `snapshot.records`.
//!
//! # Records as the caller gets them
//! Every owner name is absolute (FQDN) and ends in the zone name, e.g.
//! `bad.example.rpz.example.` for zone `rpz.example.`; an RPZ trigger is the
//! owner with the zone suffix removed (`bad.example`). The apex SOA is part of
//! `records` (exactly once, first after a full transfer) and apex NS records are
//! there too: they are zone plumbing, not rules, so skip records whose owner is
//! the apex. Incremental `deleted`/`added` follow RFC 1995: `deleted` holds the
//! old SOA and `added` the new one, besides the changed rules.
//!
//! # Why the transfer is hand-written over a `TcpStream`
//! hickory-net 0.26.3 does have `ClientHandle::zone_transfer`, but it is not fit
//! for a security feed: its `DnsMultiplexer` hands each response message to the
//! caller through an 8-slot channel with `try_send` and only logs a warning when
//! that channel is full, so a large AXFR can silently lose whole messages (the
//! SOA framing does not notice a missing middle message); its `ClientStreamXfr`
//! ends the stream without an error when the first record is not an SOA, waits
//! for a second message after an up-to-date IXFR answer (a lone SOA) until the
//! timeout, and does not expose the RCODE needed to fall back from IXFR to AXFR.
//! DNS over TCP framing is a two-byte length prefix per message (RFC 1035
//! §4.2.2, RFC 7766), so owning it costs ~20 lines and gives exact control over
//! validation, TSIG chaining, limits and the deadline. Messages, records and
//! TSIG (`TSigner`/`TSigVerifier`, hickory-proto `dnssec-ring`) are
//! hickory-proto's.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::dns::exchange::{self, Resend};
use crate::dns::frame;

/// Upper bound on the records of one transfer (all messages together); a
/// primary sending more is treated as broken rather than exhausting memory.
pub const MAX_XFR_RECORDS: usize = 10_000_000;

/// TSIG fudge (allowed clock skew), seconds; RFC 8945 recommends 300.
const TSIG_FUDGE: u16 = 300;

/// Where an RPZ zone comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XfrSource {
    /// The primary's address (port 53 usually).
    pub primary: SocketAddr,
    /// The zone to transfer, e.g. `rpz.example.` (a relative name is taken as
    /// absolute).
    pub zone: Name,
    /// TSIG key to sign requests with and require on answers.
    pub tsig: Option<TsigKey>,
}

/// A TSIG key as configured (BIND/Knot style). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct TsigKey {
    /// Key name, e.g. `transfer-key.` (must match the primary's).
    pub name: String,
    /// Algorithm: `hmac-sha256` (recommended), `hmac-sha384` or `hmac-sha512`.
    pub algorithm: String,
    /// The shared secret, base64 as in `tsig-keygen` / `keymgr -t` output.
    pub secret_base64: String,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret_base64", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// Builds hickory's signer; fails on an unknown algorithm, a bad name or
    /// a secret that is not base64.
    pub fn signer(&self) -> Result<TSigner, XfrError> {
        let bad = |reason: String| XfrError::InvalidKey {
            key: self.name.clone(),
            reason,
        };
        let algorithm = match self
            .algorithm
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .as_str()
        {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(bad(format!(
                    "unsupported algorithm {other:?} (use hmac-sha256, hmac-sha384 or hmac-sha512)"
                )));
            }
        };
        let name = Name::from_ascii(self.name.trim())
            .map_err(|e| bad(format!("invalid key name: {e}")))?;
        let secret: String = self
            .secret_base64
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let key = data_encoding::BASE64
            .decode(secret.as_bytes())
            .map_err(|e| bad(format!("secret is not valid base64: {e}")))?;
        if key.is_empty() {
            return Err(bad("empty secret".to_owned()));
        }
        TSigner::new(key, algorithm, name, TSIG_FUDGE).map_err(|e| bad(e.to_string()))
    }
}

/// The zone's content as the caller needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSnapshot {
    /// SOA serial.
    pub serial: u32,
    /// SOA refresh: how often to poll the primary's serial.
    pub refresh: Duration,
    /// SOA retry: how soon to poll again after a failed poll or transfer.
    pub retry: Duration,
    /// Every record of the zone, the apex SOA included once. Owner names are
    /// absolute (see the module docs).
    pub records: Vec<Record>,
}

impl ZoneSnapshot {
    /// The apex SOA record.
    pub fn soa(&self) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
    }
}

/// What [`XfrSource::transfer`] brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XfrOutcome {
    /// The primary has the serial we have: nothing to do.
    UpToDate,
    /// A whole zone (AXFR, or an IXFR answered in AXFR form): replace the
    /// snapshot with it.
    Full(ZoneSnapshot),
    /// Changes since the serial we have, merged across all the IXFR
    /// sequences: fold in with [`apply`].
    Incremental {
        /// The new serial.
        serial: u32,
        /// Records to remove (the old SOA among them). Matched ignoring TTL.
        deleted: Vec<Record>,
        /// Records to add (the new SOA among them).
        added: Vec<Record>,
    },
}

/// Why a SOA query or a transfer failed. Every variant names the primary and
/// the zone, and its message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    /// The configured TSIG key cannot be used.
    #[error("TSIG key {key:?} is unusable: {reason}")]
    InvalidKey {
        /// The key's configured name.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Connecting, sending or receiving failed.
    #[error(
        "cannot talk to primary {primary} for zone {zone}: {source} (check the primary's address and port, and that it accepts UDP and TCP from this host)"
    )]
    Io {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer before the deadline.
    #[error(
        "primary {primary} did not complete the {what} for zone {zone} within {timeout:?} (check reachability; raise the timeout for a large zone)"
    )]
    Timeout {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// "SOA query" or "zone transfer".
        what: &'static str,
        /// The deadline given.
        timeout: Duration,
    },
    /// The primary answered with an error RCODE.
    #[error(
        "primary {primary} answered {rcode} to {query} {zone}{}: {}",
        tsig_error.as_ref().map(|e| format!(" (TSIG error {e})")).unwrap_or_default(),
        rcode_hint(*rcode)
    )]
    Rcode {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The query type (SOA, AXFR, IXFR).
        query: RecordType,
        /// The RCODE received.
        rcode: ResponseCode,
        /// The TSIG error field of the (unsigned) answer, if any.
        tsig_error: Option<String>,
    },
    /// An answer failed TSIG verification, or was unsigned although a key is
    /// configured.
    #[error(
        "TSIG check of the answer from {primary} for zone {zone} failed: {reason} (both sides must use the same key name, algorithm and secret, and clocks must agree within {TSIG_FUDGE} s)"
    )]
    Tsig {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// What failed.
        reason: String,
    },
    /// The primary does not serve the zone authoritatively.
    #[error(
        "{primary} is not authoritative for zone {zone} (check the zone name and that this primary serves it)"
    )]
    NotAuthoritative {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
    },
    /// The primary's serial is older than ours (RFC 1982).
    #[error(
        "primary {primary} has serial {primary_serial} for zone {zone}, older than the {have} we hold: the zone was reset or replaced on the primary; drop the local copy and transfer without a serial (AXFR)"
    )]
    SerialBehind {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The serial we asked from.
        have: u32,
        /// The primary's serial.
        primary_serial: u32,
    },
    /// The transfer exceeds [`MAX_XFR_RECORDS`].
    #[error(
        "zone {zone} from {primary} has more than {limit} records: refusing it as a broken or hostile transfer"
    )]
    TooLarge {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The limit.
        limit: usize,
    },
    /// The answer violates the protocol (wrong question, framing, SOA
    /// sequence, out-of-zone data, ...).
    #[error("invalid answer from primary {primary} for zone {zone}: {reason}")]
    Malformed {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// What was wrong.
        reason: String,
    },
}

fn rcode_hint(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::Refused => {
            "check that the primary allows transfers/queries from this host (ACL) and the TSIG key"
        }
        ResponseCode::NotAuth => {
            "the primary rejected the TSIG key: check key name, algorithm and secret, and the clocks"
        }
        ResponseCode::NotImp | ResponseCode::FormErr => "the primary does not support this request",
        ResponseCode::ServFail => {
            "the primary cannot serve the zone right now (not loaded or expired)"
        }
        ResponseCode::NXDomain => "check the zone name",
        _ => "check the primary's logs",
    }
}

/// RFC 1982 serial arithmetic: is `a` newer than `b`? (False when equal or
/// when the two are exactly 2^31 apart, where the order is undefined.)
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// RFC 1982 serial arithmetic: is `a` older than `b`?
pub fn serial_lt(a: u32, b: u32) -> bool {
    serial_gt(b, a)
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn secs(v: i32) -> Duration {
    Duration::from_secs(u64::try_from(v).unwrap_or(0))
}

fn soa_of(r: &Record) -> Option<&SOA> {
    match &r.data {
        RData::SOA(soa) => Some(soa),
        _ => None,
    }
}

impl XfrSource {
    fn zone(&self) -> Name {
        let mut z = self.zone.clone();
        z.set_fqdn(true);
        z
    }

    fn zone_str(&self) -> String {
        self.zone().to_string()
    }

    fn signer(&self) -> Result<Option<TSigner>, XfrError> {
        self.tsig.as_ref().map(TsigKey::signer).transpose()
    }

    fn io(&self, source: std::io::Error) -> XfrError {
        XfrError::Io {
            primary: self.primary,
            zone: self.zone_str(),
            source,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> XfrError {
        XfrError::Malformed {
            primary: self.primary,
            zone: self.zone_str(),
            reason: reason.into(),
        }
    }

    fn timeout(&self, what: &'static str, timeout: Duration) -> XfrError {
        XfrError::Timeout {
            primary: self.primary,
            zone: self.zone_str(),
            what,
            timeout,
        }
    }

    /// Query the primary's SOA serial (UDP, then TCP if the UDP answer is
    /// truncated or none came within half the timeout). With a TSIG key the
    /// query is signed and the answer must verify. The answer must be
    /// authoritative (AA) and carry the zone's SOA.
    pub async fn soa_serial(&self, timeout: Duration) -> Result<u32, XfrError> {
        let start = Instant::now();
        let deadline = start + timeout;
        let signer = self.signer()?;
        let udp_deadline = start + timeout / 2;
        match self.soa_udp(udp_deadline, signer.as_ref()).await {
            Ok(Some(serial)) => return Ok(serial),
            // Truncated, or UDP lost/filtered: try TCP with the time left.
            Ok(None) | Err(XfrError::Timeout { .. }) | Err(XfrError::Io { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut conn = timeout_at(deadline, TcpStream::connect(self.primary))
            .await
            .map_err(|_| self.timeout("SOA query", timeout))?
            .map_err(|e| self.io(e))?;
        let (id, bytes, mut verifier) = self.build_query(RecordType::SOA, None, signer.as_ref())?;
        let answer = timeout_at(deadline, async {
            frame::write(&mut conn, &bytes).await?;
            frame::read(&mut conn).await
        })
        .await
        .map_err(|_| self.timeout("SOA query", timeout))?
        .map_err(|e| self.io(e))?
        .ok_or_else(|| self.malformed("connection closed without an answer"))?;
        let msg = self.check_response(&answer, id, RecordType::SOA, true, &mut verifier)?;
        self.serial_from_answer(&msg)
    }

    /// `Ok(None)`: truncated, retry over TCP.
    async fn soa_udp(
        &self,
        deadline: Instant,
        signer: Option<&TSigner>,
    ) -> Result<Option<u32>, XfrError> {
        let (id, bytes, mut verifier) = self.build_query(RecordType::SOA, None, signer)?;
        // Sent once: the TCP fallback is the retry. Anything that is not a response with
        // our id (late answers to earlier queries, junk) is ignored; the one that is gets
        // the full checks below, which fail the poll rather than wait on.
        let taken = exchange::udp(self.primary, &bytes, 65535, Resend::Never, |datagram| {
            let msg = Message::from_vec(datagram).ok()?;
            (msg.id == id && msg.message_type == MessageType::Response)
                .then(|| (msg.truncation, datagram.to_vec()))
        });
        let (truncated, datagram) = match timeout_at(deadline, taken).await {
            Err(_) => return Err(self.timeout("SOA query", Duration::ZERO)),
            Ok(Err(e)) => return Err(self.io(e)),
            Ok(Ok(taken)) => taken,
        };
        if truncated {
            return Ok(None);
        }
        let msg = self.check_response(&datagram, id, RecordType::SOA, true, &mut verifier)?;
        self.serial_from_answer(&msg).map(Some)
    }

    fn serial_from_answer(&self, msg: &Message) -> Result<u32, XfrError> {
        let zone = self.zone();
        let soa = msg
            .answers
            .iter()
            .filter(|r| r.name == zone)
            .find_map(soa_of);
        match soa {
            Some(soa) if msg.authoritative => Ok(soa.serial),
            _ => Err(XfrError::NotAuthoritative {
                primary: self.primary,
                zone: zone.to_string(),
            }),
        }
    }

    /// Builds a query, TSIG-signed when a signer is given. Returns the id,
    /// the wire bytes and the verifier for the answer(s).
    fn build_query(
        &self,
        qtype: RecordType,
        have: Option<u32>,
        signer: Option<&TSigner>,
    ) -> Result<(u16, Vec<u8>, Option<TSigVerifier>), XfrError> {
        let zone = self.zone();
        let mut msg = Message::query();
        msg.metadata.recursion_desired = false;
        let mut q = Query::query(zone.clone(), qtype);
        q.set_query_class(DNSClass::IN);
        msg.add_query(q);
        if let Some(serial) = have {
            // RFC 1995 §3: the client's current SOA goes in the authority
            // section; only its serial matters.
            let soa = SOA::new(zone.clone(), zone.clone(), serial, 0, 0, 0, 0);
            msg.add_authority(Record::from_rdata(zone, 0, RData::SOA(soa)));
        }
        let verifier = match signer {
            Some(signer) => msg
                .finalize(signer, now_unix())
                .map_err(|e| self.tsig_err(format!("cannot sign the request: {e}")))?,
            None => None,
        };
        let bytes = msg
            .to_vec()
            .map_err(|e| self.malformed(format!("cannot encode the request: {e}")))?;
        Ok((msg.id, bytes, verifier))
    }

    fn tsig_err(&self, reason: String) -> XfrError {
        XfrError::Tsig {
            primary: self.primary,
            zone: self.zone_str(),
            reason,
        }
    }

    /// Parses and checks one answer message: id, QR, opcode, RCODE, TSIG,
    /// question. `first`: the first message of the answer, which must carry
    /// the question (RFC 5936 §2.2.1; later ones may omit it).
    fn check_response(
        &self,
        bytes: &[u8],
        id: u16,
        qtype: RecordType,
        first: bool,
        verifier: &mut Option<TSigVerifier>,
    ) -> Result<Message, XfrError> {
        let msg = Message::from_vec(bytes)
            .map_err(|e| self.malformed(format!("undecodable message: {e}")))?;
        if msg.id != id {
            return Err(self.malformed(format!("answer id {} for query id {id}", msg.id)));
        }
        if msg.message_type != MessageType::Response || msg.op_code != OpCode::Query {
            return Err(self.malformed("not a QUERY response"));
        }
        if msg.response_code != ResponseCode::NoError {
            // Error answers to signed requests are often unsigned (BADKEY,
            // BADSIG); nothing from them is used, so they are reported as-is.
            return Err(XfrError::Rcode {
                primary: self.primary,
                zone: self.zone_str(),
                query: qtype,
                rcode: msg.response_code,
                tsig_error: msg
                    .signature()
                    .and_then(|s| s.data.error.as_ref())
                    .map(|e| format!("{e:?}")),
            });
        }
        if let Some(v) = verifier.as_mut() {
            v.verify(bytes).map_err(|e| self.tsig_err(e.to_string()))?;
        }
        let zone = self.zone();
        if first && msg.queries.len() != 1 {
            return Err(self.malformed(format!(
                "first answer message has {} questions, expected 1",
                msg.queries.len()
            )));
        }
        if msg.queries.len() > 1 {
            return Err(self.malformed("answer message has several questions"));
        }
        if let Some(q) = msg.queries.first().filter(|q| {
            q.name() != &zone || q.query_type() != qtype || q.query_class() != DNSClass::IN
        }) {
            return Err(self.malformed(format!(
                "answer is for {} {} {}, asked {zone} IN {qtype}",
                q.name(),
                q.query_class(),
                q.query_type()
            )));
        }
        Ok(msg)
    }

    /// Transfers the zone.
    ///
    /// `have == None`: AXFR over TCP. `Some(serial)`: IXFR from `serial`
    /// (RFC 1995); the primary may answer with a lone SOA (up to date), with
    /// incremental sequences, or with the whole zone in AXFR form, and all
    /// three are handled. If the primary refuses IXFR (NOTIMP, FORMERR or
    /// REFUSED) an AXFR is tried. With a TSIG key every request is signed and
    /// every answer message must verify (hmac-sha256/384/512).
    ///
    /// Checks: the answer's question matches, the transfer starts and ends
    /// with the zone's SOA, IXFR sequences chain from `have` to the new serial,
    /// serials compare per RFC 1982, every record is inside the zone, nothing
    /// trails the final SOA. `timeout` is the deadline for the whole exchange
    /// (connect, request, every message).
    pub async fn transfer(
        &self,
        have: Option<u32>,
        timeout: Duration,
    ) -> Result<XfrOutcome, XfrError> {
        let deadline = Instant::now() + timeout;
        let signer = self.signer()?;
        let Some(have) = have else {
            return self.xfr(None, deadline, timeout, signer.as_ref()).await;
        };
        match self
            .xfr(Some(have), deadline, timeout, signer.as_ref())
            .await
        {
            Err(XfrError::Rcode {
                rcode: ResponseCode::NotImp | ResponseCode::FormErr | ResponseCode::Refused,
                query: RecordType::IXFR,
                ..
            }) => self.xfr(None, deadline, timeout, signer.as_ref()).await,
            other => other,
        }
    }

    async fn xfr(
        &self,
        have: Option<u32>,
        deadline: Instant,
        timeout: Duration,
        signer: Option<&TSigner>,
    ) -> Result<XfrOutcome, XfrError> {
        let qtype = if have.is_some() {
            RecordType::IXFR
        } else {
            RecordType::AXFR
        };
        let run = async {
            let mut conn = TcpStream::connect(self.primary)
                .await
                .map_err(|e| self.io(e))?;
            let (id, bytes, mut verifier) = self.build_query(qtype, have, signer)?;
            frame::write(&mut conn, &bytes)
                .await
                .map_err(|e| self.io(e))?;
            let mut parser = XfrParser::new(self.zone(), have);
            let mut first = true;
            loop {
                let Some(frame) = frame::read(&mut conn).await.map_err(|e| self.io(e))? else {
                    return Err(self.malformed("connection closed before the transfer ended"));
                };
                let msg = self.check_response(&frame, id, qtype, first, &mut verifier)?;
                if msg.truncation {
                    return Err(self.malformed("TC bit set on a TCP answer"));
                }
                first = false;
                for rec in msg.answers {
                    parser.push(rec).map_err(|e| self.parse_err(e))?;
                }
                if let Some(outcome) = parser.end_of_message().map_err(|e| self.parse_err(e))? {
                    return Ok(outcome);
                }
            }
        };
        timeout_at(deadline, run)
            .await
            .map_err(|_| self.timeout("zone transfer", timeout))?
    }

    fn parse_err(&self, e: ParseError) -> XfrError {
        match e {
            ParseError::Malformed(reason) => self.malformed(reason),
            ParseError::SerialBehind {
                have,
                primary_serial,
            } => XfrError::SerialBehind {
                primary: self.primary,
                zone: self.zone_str(),
                have,
                primary_serial,
            },
            ParseError::TooLarge => XfrError::TooLarge {
                primary: self.primary,
                zone: self.zone_str(),
                limit: MAX_XFR_RECORDS,
            },
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ParseError {
    Malformed(String),
    SerialBehind { have: u32, primary_serial: u32 },
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expect the opening SOA.
    Start,
    /// Opening SOA seen: the next record decides AXFR vs IXFR.
    Second,
    /// AXFR body until the closing SOA.
    Axfr,
    /// IXFR: deletions of the current sequence, until its new SOA.
    Deleting,
    /// IXFR: additions, until the next sequence's old SOA or the final SOA.
    Adding,
    /// The closing SOA has been seen.
    Done,
}

/// Turns the answer records of a transfer (across messages) into an outcome,
/// validating the SOA framing. Independent of the network for testing.
struct XfrParser {
    zone: Name,
    have: Option<u32>,
    state: State,
    count: usize,
    first_soa: Option<Record>,
    serial: u32,
    /// AXFR body (without the SOAs).
    body: Vec<Record>,
    /// IXFR: serial the current sequence moves to (then from).
    cur: u32,
    net: NetDiff,
    result_full: bool,
}

impl XfrParser {
    fn new(zone: Name, have: Option<u32>) -> Self {
        Self {
            zone,
            have,
            state: State::Start,
            count: 0,
            first_soa: None,
            serial: 0,
            body: Vec::new(),
            cur: 0,
            net: NetDiff::default(),
            result_full: false,
        }
    }

    fn apex_soa(&self, rec: &Record) -> Result<Option<u32>, ParseError> {
        match soa_of(rec) {
            Some(soa) if rec.name == self.zone => Ok(Some(soa.serial)),
            Some(_) => Err(ParseError::Malformed(format!(
                "SOA record at {} is not at the zone apex",
                rec.name
            ))),
            None => Ok(None),
        }
    }

    fn push(&mut self, rec: Record) -> Result<(), ParseError> {
        self.count += 1;
        if self.count > MAX_XFR_RECORDS {
            return Err(ParseError::TooLarge);
        }
        if !self.zone.zone_of(&rec.name) {
            return Err(ParseError::Malformed(format!(
                "record {} {} is outside the zone",
                rec.name,
                rec.record_type()
            )));
        }
        let soa_serial = self.apex_soa(&rec)?;
        match (self.state, soa_serial) {
            (State::Start, Some(serial)) => {
                self.serial = serial;
                self.first_soa = Some(rec);
                self.state = State::Second;
            }
            (State::Start, None) => {
                return Err(ParseError::Malformed(format!(
                    "transfer starts with {} {} instead of the zone's SOA",
                    rec.name,
                    rec.record_type()
                )));
            }
            (State::Second, Some(serial)) if serial == self.serial => {
                // SOA, SOA: an AXFR of a zone that is just its SOA.
                self.result_full = true;
                self.state = State::Done;
            }
            (State::Second, Some(serial)) => match self.have {
                Some(have) if serial == have => {
                    self.cur = have;
                    self.net.delete(rec);
                    self.state = State::Deleting;
                }
                Some(have) => {
                    return Err(ParseError::Malformed(format!(
                        "IXFR from {have} starts its first sequence at serial {serial}"
                    )));
                }
                None => {
                    return Err(ParseError::Malformed(format!(
                        "AXFR has a second SOA (serial {serial}) right after the first ({})",
                        self.serial
                    )));
                }
            },
            (State::Second, None) => {
                self.result_full = true;
                self.body.push(rec);
                self.state = State::Axfr;
            }
            (State::Axfr, None) => self.body.push(rec),
            (State::Axfr, Some(serial)) => {
                if serial != self.serial {
                    return Err(ParseError::Malformed(format!(
                        "AXFR closes with serial {serial}, opened with {}",
                        self.serial
                    )));
                }
                self.state = State::Done;
            }
            (State::Deleting, None) => self.net.delete(rec),
            (State::Deleting, Some(serial)) => {
                if !serial_gt(serial, self.cur) {
                    return Err(ParseError::Malformed(format!(
                        "IXFR sequence goes from {} to {serial}, which is not newer",
                        self.cur
                    )));
                }
                self.cur = serial;
                self.net.add(rec);
                self.state = State::Adding;
            }
            (State::Adding, None) => self.net.add(rec),
            (State::Adding, Some(serial)) => {
                if serial == self.serial && self.cur == self.serial {
                    self.state = State::Done;
                } else if serial == self.cur {
                    self.net.delete(rec);
                    self.state = State::Deleting;
                } else {
                    return Err(ParseError::Malformed(format!(
                        "IXFR sequence starts at serial {serial} but the previous one ended at {}",
                        self.cur
                    )));
                }
            }
            (State::Done, _) => {
                return Err(ParseError::Malformed(format!(
                    "record {} {} after the closing SOA",
                    rec.name,
                    rec.record_type()
                )));
            }
        }
        Ok(())
    }

    /// Called after each message; `Some` once the transfer is complete.
    fn end_of_message(&mut self) -> Result<Option<XfrOutcome>, ParseError> {
        match self.state {
            State::Start => Err(ParseError::Malformed(
                "answer without records (the primary may not have the zone)".to_owned(),
            )),
            // A lone SOA in reply to IXFR: up to date (RFC 1995 §2), unless
            // the serial is newer, in which case more must follow.
            State::Second => match self.have {
                Some(have) if self.serial == have => Ok(Some(XfrOutcome::UpToDate)),
                Some(have) if serial_lt(self.serial, have) => Err(ParseError::SerialBehind {
                    have,
                    primary_serial: self.serial,
                }),
                _ => Ok(None),
            },
            State::Done => Ok(Some(self.finish())),
            _ => Ok(None),
        }
    }

    fn finish(&mut self) -> XfrOutcome {
        let soa = self.first_soa.take().expect("Done implies an opening SOA");
        if self.result_full {
            let (refresh, retry) = soa_of(&soa)
                .map(|s| (secs(s.refresh), secs(s.retry)))
                .unwrap_or_default();
            let mut records = Vec::with_capacity(self.body.len() + 1);
            records.push(soa);
            records.append(&mut self.body);
            XfrOutcome::Full(ZoneSnapshot {
                serial: self.serial,
                refresh,
                retry,
                records,
            })
        } else {
            let (deleted, added) = std::mem::take(&mut self.net).into_parts();
            XfrOutcome::Incremental {
                serial: self.serial,
                deleted,
                added,
            }
        }
    }
}

/// Identity of a record for set operations: owner (case-insensitive),
/// class, rdata. TTL excluded, as in RFC 2136 §1.1.1.
type Key = (Name, DNSClass, RData);

fn key(r: &Record) -> Key {
    (r.name.clone(), r.dns_class, r.data.clone())
}

/// Net effect of several IXFR sequences, in arrival order.
#[derive(Default)]
struct NetDiff {
    deleted: Vec<Option<Record>>,
    added: Vec<Option<Record>>,
    del_idx: HashMap<Key, usize>,
    add_idx: HashMap<Key, usize>,
}

impl NetDiff {
    fn delete(&mut self, rec: Record) {
        let k = key(&rec);
        if let Some(i) = self.add_idx.remove(&k) {
            // Added by an earlier sequence, deleted now: never existed for us.
            self.added[i] = None;
            return;
        }
        if !self.del_idx.contains_key(&k) {
            self.del_idx.insert(k, self.deleted.len());
            self.deleted.push(Some(rec));
        }
    }

    fn add(&mut self, rec: Record) {
        let k = key(&rec);
        let restored = self
            .del_idx
            .get(&k)
            .is_some_and(|&i| self.deleted[i].as_ref().is_some_and(|d| d.ttl == rec.ttl));
        if restored {
            let i = self.del_idx[&k];
            // Deleted by an earlier sequence and restored unchanged.
            self.deleted[i] = None;
            self.del_idx.remove(&k);
            return;
        }
        // (A restore with another TTL keeps the deletion: apply() deletes,
        // then adds, so the new TTL wins.)
        match self.add_idx.get(&k) {
            Some(&i) => self.added[i] = Some(rec),
            None => {
                self.add_idx.insert(k, self.added.len());
                self.added.push(Some(rec));
            }
        }
    }

    fn into_parts(self) -> (Vec<Record>, Vec<Record>) {
        (
            self.deleted.into_iter().flatten().collect(),
            self.added.into_iter().flatten().collect(),
        )
    }
}

type KeyRef<'a> = (&'a Name, DNSClass, &'a RData);

fn key_ref(r: &Record) -> KeyRef<'_> {
    (&r.name, r.dns_class, &r.data)
}

/// Applies an incremental transfer to a snapshot: removes `deleted`
/// (matched on owner, class and rdata; TTL ignored), then adds `added`
/// (replacing an equal record, so TTL changes take effect).
///
/// If `added` carries the apex SOA (as [`XfrOutcome::Incremental`] does) it
/// replaces the snapshot's SOA and `refresh`/`retry` follow it; otherwise
/// only the SOA's serial is set to `serial`. The SOA is kept first in
/// `records`. Deleting a record that is not there is not an error (the caller
/// that wants to detect divergence compares its record count or re-fetches
/// with AXFR periodically).
pub fn apply(snapshot: &mut ZoneSnapshot, serial: u32, deleted: &[Record], added: &[Record]) {
    let added_soa = added.iter().rposition(|r| soa_of(r).is_some());
    let gone: HashSet<KeyRef<'_>> = deleted.iter().chain(added.iter()).map(key_ref).collect();
    snapshot.records.retain(|r| {
        let is_soa = r.record_type() == RecordType::SOA;
        !(gone.contains(&key_ref(r)) || (is_soa && added_soa.is_some()))
    });
    let mut seen: HashSet<KeyRef<'_>> = HashSet::with_capacity(added.len());
    // Last one wins for duplicates within `added`.
    let mut fresh: Vec<&Record> = Vec::with_capacity(added.len());
    for r in added.iter().rev() {
        if soa_of(r).is_none() && seen.insert(key_ref(r)) {
            fresh.push(r);
        }
    }
    snapshot.records.extend(fresh.into_iter().rev().cloned());

    // The SOA: from `added`, or the existing one with the new serial; first.
    let mut soa = match added_soa {
        Some(i) => Some(added[i].clone()),
        None => snapshot
            .records
            .iter()
            .position(|r| r.record_type() == RecordType::SOA)
            .map(|i| snapshot.records.remove(i)),
    };
    if let Some(RData::SOA(s)) = soa.as_mut().map(|rec| &mut rec.data) {
        s.serial = serial;
        snapshot.refresh = secs(s.refresh);
        snapshot.retry = secs(s.retry);
    }
    if let Some(rec) = soa {
        snapshot.records.insert(0, rec);
    }
    snapshot.serial = serial;
}

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
    let query = Message::from_vec(query_bytes).ok()?;
    if query.op_code != OpCode::Notify
        || query.message_type != MessageType::Query
        || query.queries.len() != 1
    {
        return None;
    }
    let mut resp = Message::response(query.id, OpCode::Notify);
    resp.metadata.authoritative = true;
    resp.add_query(query.queries[0].clone());
    resp.to_vec().ok()
}

#[cfg(test)]
mod tests;
