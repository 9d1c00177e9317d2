//! Queries the protocol answers for us, before any list or upstream is consulted.
//!
//! A resolver that forwards everything it does not understand leaks and stalls: class
//! NONE cost a client the whole upstream timeout, `version.bind` in class CH returned the
//! upstream's software version, and a TSIG-signed query got an unsigned answer. Each rule
//! here names the RFC (and, where an RFC leaves a choice, what Unbound does, so clients
//! see the same thing from both):
//!
//! | query | reply |
//! |---|---|
//! | signed with TSIG (we hold no key) | NOTAUTH, TSIG error BADKEY, unsigned (RFC 8945 §5.2.1, §5.3.2) |
//! | EDNS version > 0 | BADVERS with an OPT of version 0 (RFC 6891 §6.1.3) |
//! | QTYPE OPT, TKEY, TSIG, MAILA, MAILB, and the rest of 128–254 | FORMERR (meta-types are not questions, RFC 6895 §3.1; Unbound) |
//! | QTYPE AXFR, IXFR | REFUSED: a resolver has no zone to transfer (Unbound) |
//! | QCLASS NONE | FORMERR: NONE exists only in UPDATE prerequisites (RFC 2136 §2.4) |
//! | QCLASS ANY | NOTIMP: a forwarder cannot collect every class |
//! | class CH `version.bind`, `version.server` | TXT `server.chaos_version`, else REFUSED |
//! | class CH `hostname.bind`, `id.server` | TXT `server.chaos_identity`, else REFUSED |
//! | any other class but IN | REFUSED (never forwarded, never checked against the IN list) |
//! | `_dns.resolver.arpa` (class IN) | our own DoT/DoH endpoints as SVCB, else NODATA (RFC 9462; [`super::ddr`], decided after these rules) |

use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigError};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// What CHAOS-class identity queries are told (`server.chaos_version`,
/// `server.chaos_identity`); `None` refuses them, which reveals nothing.
#[derive(Clone, Debug, Default)]
pub struct ChaosAnswers {
    /// Answer to `version.bind` / `version.server`.
    pub version: Option<String>,
    /// Answer to `hostname.bind` / `id.server`.
    pub identity: Option<String>,
}

/// What the protocol rules make of a request.
pub enum Local {
    /// Not ours to answer here: on to the lists and upstream.
    Pass,
    /// Reply with this RCODE (and nothing else).
    Code(ResponseCode),
    /// Reply BADVERS (needs an OPT of version 0, which the handler always builds).
    BadVers,
    /// Reply NOTAUTH with this unsigned TSIG record.
    BadKey(Box<Record<TSIG>>),
    /// Answer with this CHAOS TXT record.
    Chaos(Box<Record>),
    /// Answer a DDR query (`_dns.resolver.arpa`) with our own encrypted endpoints, or
    /// NODATA ([`super::ddr`]).
    Ddr(Box<super::ddr::DdrAnswer>),
}

/// The rules of the module doc, in the order the RFCs imply: authentication first (a
/// signed message is judged before it is read further), then the EDNS version, then the
/// question.
pub fn check(
    edns: Option<&Edns>,
    tsig: Option<&Record<TSIG>>,
    query: Option<(RecordType, DNSClass, &Name)>,
    chaos: &ChaosAnswers,
) -> Local {
    if let Some(signed) = tsig {
        return Local::BadKey(Box::new(bad_key(signed)));
    }
    if edns.is_some_and(|e| e.version() > 0) {
        return Local::BadVers;
    }
    let Some((qtype, qclass, name)) = query else {
        return Local::Pass;
    };
    if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
        return Local::Code(ResponseCode::Refused);
    }
    // The other meta-types (AXFR/IXFR are answered above).
    if crate::dns::is_meta_qtype(u16::from(qtype)) {
        return Local::Code(ResponseCode::FormErr);
    }
    match qclass {
        DNSClass::IN => Local::Pass,
        DNSClass::NONE => Local::Code(ResponseCode::FormErr),
        DNSClass::ANY => Local::Code(ResponseCode::NotImp),
        DNSClass::CH => chaos_answer(qtype, name, chaos),
        _ => Local::Code(ResponseCode::Refused),
    }
}

fn chaos_answer(qtype: RecordType, name: &Name, chaos: &ChaosAnswers) -> Local {
    let asked = name.to_lowercase().to_ascii();
    let text = match asked.trim_end_matches('.') {
        "version.bind" | "version.server" => chaos.version.as_deref(),
        "hostname.bind" | "id.server" => chaos.identity.as_deref(),
        _ => None,
    };
    match text {
        Some(text) if matches!(qtype, RecordType::TXT | RecordType::ANY) => {
            let mut record =
                Record::from_rdata(name.clone(), 0, RData::TXT(TXT::new(vec![text.to_owned()])));
            record.dns_class = DNSClass::CH;
            Local::Chaos(Box::new(record))
        }
        _ => Local::Code(ResponseCode::Refused),
    }
}

/// The unsigned TSIG of a BADKEY error: the client's key name, algorithm, time and fudge,
/// an empty MAC, the original ID and error BADKEY (RFC 8945 §5.3.2).
fn bad_key(signed: &Record<TSIG>) -> Record<TSIG> {
    let theirs = &signed.data;
    let tsig = TSIG::new(
        theirs.algorithm.clone(),
        theirs.time,
        theirs.fudge,
        Vec::new(),
        theirs.oid,
        Some(TsigError::BadKey),
        Vec::new(),
    );
    let mut record = Record::from_rdata(signed.name.clone(), 0, tsig);
    record.dns_class = DNSClass::ANY;
    record
}
