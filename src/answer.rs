//! The sinkhole: what a blocked name gets back, per `blocking.mode`, and the Extended DNS
//! Error (RFC 8914) that tells a curious user or admin why.
//!
//! - `nxdomain`: NXDOMAIN for every type, with an SOA in the authority section so the
//!   negative answer is cached for `blocking.ttl` (RFC 2308);
//! - `null`: A `0.0.0.0` / AAAA `::`; other types NODATA (NOERROR, no answer, SOA);
//! - `ip`: A/AAAA of the block page; a family without a configured address, and other
//!   types, get NODATA.
//!
//! The SOA is owned by the listed name that matched, so a cache never applies it wider
//! than the rule does.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde::Deserialize;

use crate::dns::request::Request;
use crate::dns::{CLASS_IN, EDNS_PAYLOAD, HEADER_LEN, TYPE_OPT};

/// RFC 8914 INFO-CODEs we send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum EdeCode {
    /// 3: answered from an expired cache entry.
    StaleAnswer = 3,
    /// 15: blocked by the operator's blocklist.
    Blocked = 15,
    /// 17: filtered by a client-side policy (a group's own rules).
    Filtered = 17,
    /// 18: the client may not use this resolver.
    Prohibited = 18,
    /// 22: no upstream could be reached.
    NoReachableAuthority = 22,
}

/// EDNS option code of Extended DNS Errors.
pub const EDE_OPTION: u16 = 15;

/// The EDE option payload: INFO-CODE then EXTRA-TEXT (UTF-8, not NUL-terminated).
pub fn ede_payload(code: EdeCode, text: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + text.len());
    v.extend_from_slice(&(code as u16).to_be_bytes());
    v.extend_from_slice(text.as_bytes());
    v
}

/// Appends the EDE text of a block to `out` (the fast path writes it straight into the
/// reply, without allocating): `blocked: adult, gambling (profile school)` for the shared
/// list's `categories`, `blocked (kidsafe-dns)` without categories or group, and
/// `blocked: deny list (...)` for a group's own deny list ([`EdeCode::Filtered`]).
pub fn push_block_text<'a>(
    out: &mut Vec<u8>,
    code: EdeCode,
    categories: impl Iterator<Item = &'a str>,
    group: Option<&str>,
) {
    out.extend_from_slice(b"blocked");
    if code == EdeCode::Filtered {
        out.extend_from_slice(b": deny list");
    } else {
        for (i, name) in categories.enumerate() {
            out.extend_from_slice(if i == 0 { b": " } else { b", " });
            out.extend_from_slice(name.as_bytes());
        }
    }
    push_who(out, group);
}

/// Appends the EDE text for a blocked service: `blocked: service tiktok (profile kids)`, or
/// `(kidsafe-dns)` when `group` is `None`.
pub fn push_service_text(out: &mut Vec<u8>, service: &str, group: Option<&str>) {
    out.extend_from_slice(b"blocked: service ");
    out.extend_from_slice(service.as_bytes());
    push_who(out, group);
}

/// Appends the EDE text for a name a profile's guard blocked: `blocked: bypass resolver
/// dns.google (profile kids)` (`bypass`, `what` the kind), `blocked: unsafe search
/// ask.com (profile kids)`; `(kidsafe-dns)` when `group` is `None`.
pub fn push_guard_text(
    out: &mut Vec<u8>,
    bypass: bool,
    what: &str,
    domain: &str,
    group: Option<&str>,
) {
    out.extend_from_slice(b"blocked: ");
    if bypass {
        out.extend_from_slice(b"bypass ");
    }
    out.extend_from_slice(what.as_bytes());
    out.push(b' ');
    out.extend_from_slice(domain.as_bytes());
    push_who(out, group);
}

/// Appends the suffix every block text ends with: ` (profile kids)`, or ` (kidsafe-dns)`
/// when `group` is `None` (the implicit default).
fn push_who(out: &mut Vec<u8>, group: Option<&str>) {
    out.extend_from_slice(b" (");
    match group {
        Some(name) => {
            out.extend_from_slice(b"profile ");
            out.extend_from_slice(name.as_bytes());
        }
        None => out.extend_from_slice(b"kidsafe-dns"),
    }
    out.push(b')');
}

/// A sinkhole reply's content, before it is put on the wire.
#[derive(Debug)]
pub struct Sinkhole {
    /// NXDOMAIN or NOERROR.
    pub rcode: ResponseCode,
    /// The A/AAAA answer, if the mode gives one for this type.
    pub answers: Vec<Record>,
    /// The SOA for negative caching (NXDOMAIN and NODATA).
    pub soa: Option<Record>,
}

/// How blocked names are answered: the `[blocking]` table, validated by
/// [`crate::config`].
#[derive(Clone, Debug)]
pub struct BlockingConfig {
    /// nxdomain, null or ip.
    pub mode: BlockingMode,
    /// TTL of sinkhole answers and of their SOA (negative caching).
    pub ttl: u32,
    /// Block page IPv4 (mode ip).
    pub ipv4: Option<Ipv4Addr>,
    /// Block page IPv6 (mode ip).
    pub ipv6: Option<Ipv6Addr>,
}

/// How blocked names are answered (`blocking.mode`, and a group's `mode` override).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlockingMode {
    /// NXDOMAIN with an SOA.
    #[default]
    Nxdomain,
    /// A 0.0.0.0 / AAAA ::.
    Null,
    /// A/AAAA of a block page.
    Ip,
}

/// Builds sinkhole replies from `[blocking]`.
#[derive(Clone, Debug)]
pub struct SinkholeBuilder {
    mode: BlockingMode,
    ttl: u32,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    /// SOA MNAME and RNAME, parsed once.
    mname: Name,
    rname: Name,
}

impl SinkholeBuilder {
    /// From the `[blocking]` section.
    pub fn new(config: &BlockingConfig) -> Self {
        SinkholeBuilder {
            mode: config.mode,
            ttl: config.ttl,
            ipv4: config.ipv4,
            ipv6: config.ipv6,
            // Constant, valid names: parsing cannot fail; root is a harmless fallback.
            mname: Name::from_ascii("ns.kidsafe-dns.invalid.").unwrap_or_else(|_| Name::root()),
            rname: Name::from_ascii("hostmaster.kidsafe-dns.invalid.")
                .unwrap_or_else(|_| Name::root()),
        }
    }

    /// The reply for `qname`/`qtype`, blocked by the rule on `listed` (a suffix of `qname`);
    /// `serial` goes into the SOA.
    pub fn build(&self, qname: &Name, qtype: RecordType, listed: &str, serial: u32) -> Sinkhole {
        let address = self.address(qtype).map(|ip| match ip {
            IpAddr::V4(a) => RData::A(A(a)),
            IpAddr::V6(a) => RData::AAAA(AAAA(a)),
        });
        if let Some(rdata) = address {
            return Sinkhole {
                rcode: ResponseCode::NoError,
                answers: vec![Record::from_rdata(qname.clone(), self.ttl, rdata)],
                soa: None,
            };
        }
        Sinkhole {
            rcode: self.negative_rcode(),
            answers: Vec::new(),
            soa: Some(self.soa(qname, listed, serial)),
        }
    }

    /// The address a blocked `qtype` query is answered with (modes `null` and `ip`, A and
    /// AAAA only); `None`: NXDOMAIN or NODATA with the SOA.
    pub fn address(&self, qtype: RecordType) -> Option<IpAddr> {
        match (self.mode, qtype) {
            (BlockingMode::Nxdomain, _) => None,
            (BlockingMode::Null, RecordType::A) => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            (BlockingMode::Null, RecordType::AAAA) => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            (BlockingMode::Ip, RecordType::A) => self.ipv4.map(IpAddr::V4),
            (BlockingMode::Ip, RecordType::AAAA) => self.ipv6.map(IpAddr::V6),
            _ => None,
        }
    }

    /// The RCODE when no address is given: NXDOMAIN in that mode, NODATA otherwise.
    pub fn negative_rcode(&self) -> ResponseCode {
        if self.mode == BlockingMode::Nxdomain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        }
    }

    /// TTL of sinkhole records (and the SOA's negative TTL).
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The SOA's RDATA on the wire for `serial`: what [`SinkholeBuilder::build`] puts in
    /// its SOA record, uncompressed.
    pub fn soa_rdata(&self, serial: u32, out: &mut Vec<u8>) {
        for name in [&self.mname, &self.rname] {
            for label in name.iter() {
                out.push(label.len() as u8);
                out.extend_from_slice(label);
            }
            out.push(0);
        }
        for n in [serial, 3600, 600, 86_400, self.ttl] {
            out.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// The sinkhole reply to `request` written straight on the wire into `out`: what
    /// [`SinkholeBuilder::build`] gives the general path, byte for byte as hickory encodes
    /// it (the fast path's tests compare the two). The header, the client's question copied
    /// as sent, the address or the SOA (owned by the name at `soa_owner` in the packet, a
    /// compression pointer), and, when the client sent an OPT, ours with the EDE `code`
    /// and the text `text` writes.
    pub fn write_reply(
        &self,
        request: &Request<'_>,
        soa_owner: usize,
        serial: u32,
        code: EdeCode,
        text: impl FnOnce(&mut Vec<u8>),
        out: &mut Vec<u8>,
    ) {
        let address = self.address(RecordType::from(request.qtype));
        let rcode = if address.is_some() {
            0
        } else {
            u16::from(self.negative_rcode()) as u8
        };
        out.clear();
        out.extend_from_slice(&request.id.to_be_bytes());
        // QR, opcode QUERY, AA, RD as asked; RA, CD as asked, the RCODE.
        out.push(0x80 | 0x04 | u8::from(request.rd));
        let cd = if request.cd { 0x10 } else { 0 };
        out.push(0x80 | cd | (rcode & 0x0F));
        let (answers, authorities) = if address.is_some() {
            (1u16, 0u16)
        } else {
            (0, 1)
        };
        for count in [1, answers, authorities, u16::from(request.edns.is_some())] {
            out.extend_from_slice(&count.to_be_bytes());
        }
        out.extend_from_slice(&request.packet[HEADER_LEN..request.question_end]);
        let ttl = self.ttl.to_be_bytes();
        match address {
            Some(ip) => {
                out.extend_from_slice(&[0xC0, HEADER_LEN as u8]);
                let rtype: u16 = if ip.is_ipv4() { 1 } else { 28 };
                out.extend_from_slice(&rtype.to_be_bytes());
                out.extend_from_slice(&CLASS_IN.to_be_bytes());
                out.extend_from_slice(&ttl);
                match ip {
                    IpAddr::V4(a) => {
                        out.extend_from_slice(&4u16.to_be_bytes());
                        out.extend_from_slice(&a.octets());
                    }
                    IpAddr::V6(a) => {
                        out.extend_from_slice(&16u16.to_be_bytes());
                        out.extend_from_slice(&a.octets());
                    }
                }
            }
            None => {
                out.extend_from_slice(&(0xC000 | soa_owner as u16).to_be_bytes());
                out.extend_from_slice(&6u16.to_be_bytes());
                out.extend_from_slice(&CLASS_IN.to_be_bytes());
                out.extend_from_slice(&ttl);
                let len_at = out.len();
                out.extend_from_slice(&[0, 0]);
                self.soa_rdata(serial, out);
                let rdlen = (out.len() - len_at - 2) as u16;
                out[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
            }
        }
        if let Some((payload, dnssec_ok)) = request.edns {
            out.push(0);
            out.extend_from_slice(&TYPE_OPT.to_be_bytes());
            out.extend_from_slice(&payload.clamp(512, EDNS_PAYLOAD).to_be_bytes());
            out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
            // RDLENGTH and OPTION-LENGTH are filled in once the text is written.
            let rdlen_at = out.len();
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&EDE_OPTION.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(code as u16).to_be_bytes());
            text(out);
            let option_len = (out.len() - rdlen_at - 6) as u16;
            out[rdlen_at..rdlen_at + 2].copy_from_slice(&(option_len + 4).to_be_bytes());
            out[rdlen_at + 4..rdlen_at + 6].copy_from_slice(&option_len.to_be_bytes());
        }
    }

    fn soa(&self, qname: &Name, listed: &str, serial: u32) -> Record {
        // The owner is the listed name when it is the query name or an ancestor of it (a
        // resolver caching the SOA applies it no wider than the rule). A CNAME-cloaking block
        // lists a name elsewhere in the chain, which is no ancestor of the question: an SOA
        // owned by it would be out of zone for this answer, so the query name owns it.
        let owner = Name::from_ascii(listed)
            .ok()
            .map(|mut n| {
                n.set_fqdn(true);
                n
            })
            .filter(|n| n.zone_of(qname))
            .unwrap_or_else(|| qname.clone());
        let (mname, rname) = (self.mname.clone(), self.rname.clone());
        let soa = SOA::new(mname, rname, serial, 3600, 600, 86_400, self.ttl);
        Record::from_rdata(owner, self.ttl, RData::SOA(soa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(mode: BlockingMode) -> SinkholeBuilder {
        SinkholeBuilder::new(&BlockingConfig {
            mode,
            ttl: 120,
            ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ipv6: None,
        })
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn nxdomain_mode_answers_nxdomain_with_soa_for_every_type() {
        for t in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::TXT,
        ] {
            let s = builder(BlockingMode::Nxdomain).build(&name("www.bad.test."), t, "bad.test", 7);
            assert_eq!(s.rcode, ResponseCode::NXDomain);
            assert!(s.answers.is_empty());
            let soa = s.soa.unwrap();
            assert_eq!(soa.name, name("bad.test."));
            assert_eq!(soa.ttl, 120);
        }
    }

    #[test]
    fn null_and_ip_modes_answer_addresses_and_nodata_otherwise() {
        let s =
            builder(BlockingMode::Null).build(&name("bad.test."), RecordType::AAAA, "bad.test", 1);
        assert_eq!(s.answers[0].data, RData::AAAA(AAAA(Ipv6Addr::UNSPECIFIED)));
        let s = builder(BlockingMode::Ip).build(&name("bad.test."), RecordType::A, "bad.test", 1);
        assert_eq!(s.answers[0].data, RData::A(A(Ipv4Addr::new(192, 0, 2, 1))));
        // No IPv6 block page configured: NODATA, not a made-up address.
        let s =
            builder(BlockingMode::Ip).build(&name("bad.test."), RecordType::AAAA, "bad.test", 1);
        assert_eq!(
            (s.rcode, s.answers.len(), s.soa.is_some()),
            (ResponseCode::NoError, 0, true)
        );
        let s =
            builder(BlockingMode::Null).build(&name("bad.test."), RecordType::MX, "bad.test", 1);
        assert_eq!(
            (s.rcode, s.answers.len(), s.soa.is_some()),
            (ResponseCode::NoError, 0, true)
        );
    }

    #[test]
    fn ede_payload_is_code_then_text() {
        assert_eq!(ede_payload(EdeCode::Blocked, "x"), vec![0, 15, b'x']);
    }
}
