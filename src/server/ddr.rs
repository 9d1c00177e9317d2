//! Discovery of Designated Resolvers (DDR, RFC 9462): `_dns.resolver.arpa` answered with
//! our own encrypted endpoints.
//!
//! A device that asks its network resolver for `_dns.resolver.arpa` SVCB learns where the
//! same resolver speaks DoT or DoH, and upgrades to it. Forwarded upstream, the question
//! would come back with the *upstream's* endpoints (`dns.google`): the device would then
//! leave us for a resolver that filters nothing. So it is never forwarded:
//!
//! - with a name for us (`server.ddr_name`, else `server.client_id_domain`) and DoT or DoH
//!   listeners, SVCB records in ServiceMode: one per DoT port (`alpn=dot`), one per DoH
//!   port (`alpn=h2`, `dohpath=/dns-query{?dns}`, RFC 9461), each with `port` and, when
//!   the listeners are bound to specific addresses, `ipv4hint`/`ipv6hint`;
//! - otherwise, and for every other type, NODATA: NOERROR, no answer, the SOA of
//!   `resolver.arpa` (RFC 9462 §6.4: the zone is locally served).

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::rdata::svcb::{Alpn, IpHint, SVCB, SvcParamKey, SvcParamValue, Unknown};
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// SvcParamKey `dohpath` (RFC 9461 §5).
const DOHPATH_KEY: u16 = 7;
/// The URI template of our DoH endpoint ([`super::DOH_PATH`]).
const DOHPATH: &str = "/dns-query{?dns}";
/// TTL of the SVCB answers and of the NODATA SOA.
const TTL: u32 = 300;

/// Our answers to `_dns.resolver.arpa`, built once the encrypted listeners are bound.
#[derive(Clone, Debug, Default)]
pub struct Ddr {
    /// The SVCB records; empty = NODATA.
    records: Vec<Record>,
}

/// What a DDR query gets.
#[derive(Debug)]
pub struct DdrAnswer {
    /// The answer section (empty: NODATA).
    pub answers: Vec<Record>,
    /// The authority section: the SOA of `resolver.arpa` for NODATA.
    pub soa: Option<Record>,
}

impl Ddr {
    /// The answers for a resolver named `name` (lowercase, no trailing dot) whose DoT and
    /// DoH listeners are bound to `dot` and `doh`. Without a name, or without listeners,
    /// every DDR query gets NODATA.
    pub fn new(name: Option<&str>, dot: &[SocketAddr], doh: &[SocketAddr]) -> Ddr {
        let Some(target) = name.and_then(|n| Name::from_ascii(format!("{n}.")).ok()) else {
            return Ddr::default();
        };
        let owner = ddr_name();
        let mut records = Vec::new();
        let mut priority = 1u16;
        for (addrs, alpn) in [(dot, "dot"), (doh, "h2")] {
            let mut ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
            ports.sort_unstable();
            ports.dedup();
            for port in ports {
                let on_port: Vec<IpAddr> = addrs
                    .iter()
                    .filter(|a| a.port() == port)
                    .map(SocketAddr::ip)
                    .collect();
                let mut params = vec![
                    (
                        SvcParamKey::Alpn,
                        SvcParamValue::Alpn(Alpn(vec![alpn.to_owned()])),
                    ),
                    (SvcParamKey::Port, SvcParamValue::Port(port)),
                ];
                // Hints only when every address on the port is specific: a wildcard
                // listener's addresses are not known here.
                if on_port.iter().all(|ip| !ip.is_unspecified()) {
                    let v4: Vec<A> = on_port
                        .iter()
                        .filter_map(|ip| match ip {
                            IpAddr::V4(v4) => Some(A(*v4)),
                            IpAddr::V6(_) => None,
                        })
                        .collect();
                    let v6: Vec<AAAA> = on_port
                        .iter()
                        .filter_map(|ip| match ip {
                            IpAddr::V6(v6) => Some(AAAA(*v6)),
                            IpAddr::V4(_) => None,
                        })
                        .collect();
                    if !v4.is_empty() {
                        params.push((SvcParamKey::Ipv4Hint, SvcParamValue::Ipv4Hint(IpHint(v4))));
                    }
                    if !v6.is_empty() {
                        params.push((SvcParamKey::Ipv6Hint, SvcParamValue::Ipv6Hint(IpHint(v6))));
                    }
                }
                if alpn == "h2" {
                    params.push((
                        SvcParamKey::Unknown(DOHPATH_KEY),
                        SvcParamValue::Unknown(Unknown(DOHPATH.as_bytes().to_vec())),
                    ));
                }
                let svcb = SVCB::new(priority, target.clone(), params);
                records.push(Record::from_rdata(owner.clone(), TTL, RData::SVCB(svcb)));
                priority = priority.saturating_add(1);
            }
        }
        Ddr { records }
    }

    /// True for `_dns.resolver.arpa` (labels leftmost first, any case).
    pub fn asks<'a>(mut labels: impl Iterator<Item = &'a [u8]>) -> bool {
        let mut want = [b"_dns".as_slice(), b"resolver", b"arpa"].into_iter();
        loop {
            match (labels.next(), want.next()) {
                (None, None) => return true,
                (Some(got), Some(w)) if got.eq_ignore_ascii_case(w) => {}
                _ => return false,
            }
        }
    }

    /// True when there are SVCB records to give (a name and an encrypted listener).
    pub fn advertises(&self) -> bool {
        !self.records.is_empty()
    }

    /// The reply to a DDR query of type `qtype` asked as `qname` (the client's spelling,
    /// kept as the owner).
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> DdrAnswer {
        if matches!(qtype, RecordType::SVCB | RecordType::ANY) && !self.records.is_empty() {
            let answers = self
                .records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.name = qname.clone();
                    r
                })
                .collect();
            return DdrAnswer { answers, soa: None };
        }
        DdrAnswer {
            answers: Vec::new(),
            soa: Some(soa()),
        }
    }
}

/// `_dns.resolver.arpa.`
fn ddr_name() -> Name {
    Name::from_labels([b"_dns".as_slice(), b"resolver", b"arpa"]).unwrap_or_default()
}

/// The SOA of the locally served `resolver.arpa` zone.
fn soa() -> Record {
    let zone = Name::from_labels([b"resolver".as_slice(), b"arpa"]).unwrap_or_default();
    let rname = Name::from_labels([b"nobody".as_slice(), b"invalid"]).unwrap_or_default();
    let soa = SOA::new(zone.clone(), rname, 1, 3600, 600, 86400, TTL);
    Record::from_rdata(zone, TTL, RData::SOA(soa))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svcb(r: &Record) -> &SVCB {
        match &r.data {
            RData::SVCB(s) => s,
            other => panic!("not SVCB: {other:?}"),
        }
    }

    #[test]
    fn only_the_ddr_name_is_asked() {
        let l = |n: &'static str| n.split('.').map(str::as_bytes);
        assert!(Ddr::asks(l("_dns.resolver.arpa")));
        assert!(Ddr::asks(l("_DNS.Resolver.ARPA")));
        assert!(!Ddr::asks(l("resolver.arpa")));
        assert!(!Ddr::asks(l("x._dns.resolver.arpa")));
        assert!(!Ddr::asks(l("_dns.resolver.arpa.example")));
    }

    #[test]
    fn svcb_records_name_our_endpoints() {
        let dot: SocketAddr = "192.0.2.1:853".parse().unwrap();
        let doh: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
        let ddr = Ddr::new(Some("dns.example.vn"), &[dot], &[doh]);
        let q = ddr_name();
        let a = ddr.answer(&q, RecordType::SVCB);
        assert!(a.soa.is_none());
        assert_eq!(a.answers.len(), 2);
        let (s1, s2) = (svcb(&a.answers[0]), svcb(&a.answers[1]));
        assert_eq!(s1.svc_priority, 1);
        assert_eq!(s1.target_name.to_ascii(), "dns.example.vn.");
        let text = format!("{s1} | {s2}");
        assert!(text.contains("alpn=dot"), "{text}");
        assert!(text.contains("port=853"), "{text}");
        assert!(text.contains("ipv4hint=192.0.2.1"), "{text}");
        assert!(text.contains("alpn=h2"), "{text}");
        assert!(text.contains("ipv6hint=2001:db8::1"), "{text}");
        assert!(text.contains("/dns-query{?dns}"), "{text}");
        // Round trip through the wire.
        use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};
        let bytes = a.answers[1].to_bytes().unwrap();
        let back = Record::from_bytes(&bytes).unwrap();
        assert_eq!(back, a.answers[1]);
    }

    #[test]
    fn wildcard_listeners_get_no_hints() {
        let dot: SocketAddr = "0.0.0.0:853".parse().unwrap();
        let ddr = Ddr::new(Some("dns.example.vn"), &[dot], &[]);
        let a = ddr.answer(&ddr_name(), RecordType::SVCB);
        assert_eq!(a.answers.len(), 1);
        assert!(!format!("{}", svcb(&a.answers[0])).contains("hint"));
    }

    #[test]
    fn nodata_without_a_name_or_a_listener_and_for_other_types() {
        let dot: SocketAddr = "192.0.2.1:853".parse().unwrap();
        for ddr in [
            Ddr::new(None, &[dot], &[]),
            Ddr::new(Some("dns.example.vn"), &[], &[]),
        ] {
            assert!(!ddr.advertises());
            let a = ddr.answer(&ddr_name(), RecordType::SVCB);
            assert!(a.answers.is_empty());
            assert!(a.soa.is_some());
        }
        let ddr = Ddr::new(Some("dns.example.vn"), &[dot], &[]);
        let a = ddr.answer(&ddr_name(), RecordType::A);
        assert!(a.answers.is_empty());
        assert_eq!(
            a.soa.map(|s| s.name.to_ascii()),
            Some("resolver.arpa.".into())
        );
    }
}
