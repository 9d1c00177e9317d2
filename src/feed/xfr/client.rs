//! The network side: SOA query (UDP, then TCP) and the AXFR/IXFR exchange
//! over TCP, with request signing and the checks every answer message passes.

use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigVerifier, TSigner};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::parser::{ParseError, XfrParser};
use super::{MAX_XFR_RECORDS, TsigKey, XfrError, XfrOutcome, XfrSource, soa_of};
use crate::clock::now_unix;
use crate::dns::exchange::{self, Resend};
use crate::dns::frame;

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
