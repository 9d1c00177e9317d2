//! Blocked names (and, through [`super::hitpath`], cache hits) answered straight from the
//! request bytes.
//!
//! Decoding a request into a hickory `Message` and encoding a `Message` reply cost more than
//! the blocklist lookup itself (names allocated, a compression map built). The common query
//! (one question, class IN, at most an OPT record, nothing else) is read here in place: its
//! labels are lowercased into a stack buffer for the policy, and when the verdict is a block
//! the reply is written directly: the header, the client's question copied byte for byte,
//! the sinkhole address or SOA (its owner a compression pointer into the question), and our
//! OPT with the Extended DNS Error. A name that is not blocked may be a cache hit, answered
//! from its stored wire reply by [`super::hitpath`]. Anything else goes on to the general
//! path ([`super::wire`]) with the admission already decided. The tests check that both
//! paths give the same reply.
//!
//! The request is read by [`crate::dns::request::Request`], hand-written because
//! hickory-proto has no borrowed view of a message.

use std::net::IpAddr;

use hickory_proto::rr::RecordType;

use super::handler::{Handler, push_block_ede_text};
use super::hitpath;
use crate::answer::{EDE_OPTION, EdeCode};
pub use crate::dns::request::Request;
use crate::dns::{CLASS_IN, EDNS_PAYLOAD, HEADER_LEN as HEADER};
use crate::metrics::{self, Protocol};
use crate::policy::decide::{Admission, Outcome};

const TYPE_OPT: u16 = 41;

/// What the fast path did.
pub enum Fast {
    /// A reply is in `out`: send it.
    Replied,
    /// Not answered here: take the general path with this admission.
    General(Admission),
}

/// Answers `request` into `out` if the client is admitted and the name is blocked. The
/// query is counted in the metrics either way.
pub fn answer(
    handler: &Handler,
    request: &Request<'_>,
    client: IpAddr,
    protocol: Protocol,
    out: &mut Vec<u8>,
) -> Fast {
    let metrics = handler.metrics();
    metrics.query(protocol, Some(RecordType::from(request.qtype)));
    let policy = handler.policy();
    let admission = policy.admit(client);
    if !matches!(admission, Admission::Admit) {
        return Fast::General(admission);
    }
    let index = policy.group_index(client);
    let group = &policy.groups()[index];
    let list = handler.lists().current();
    let (verdict, code, how) = match policy.decide(group, &list, || request.labels()) {
        Outcome::Blocked(v) => (v, EdeCode::Blocked, metrics::Verdict::Blocked),
        Outcome::Filtered(v) => (v, EdeCode::Filtered, metrics::Verdict::Filtered),
        Outcome::Forward if hitpath::answer(handler, request, index, group, &list, out) => {
            return Fast::Replied;
        }
        _ => return Fast::General(admission),
    };
    let listed_labels = verdict
        .rule
        .as_ref()
        .map_or(0, |r| r.name.split('.').count());
    let Some(soa_owner) = request.suffix_offset(listed_labels) else {
        return Fast::General(admission);
    };
    let serial = list.manifest().serial as u32;
    let text = |out: &mut Vec<u8>| push_block_ede_text(out, &list, group, &verdict, code);
    write_block(request, group, soa_owner, serial, code, text, out);
    let limit = request
        .edns
        .map_or(512, |(p, _)| p.clamp(512, EDNS_PAYLOAD));
    if out.len() > usize::from(limit) {
        // Too big for the client's buffer: the general path truncates it properly.
        return Fast::General(admission);
    }
    let name = || (request.name_text(), RecordType::from(request.qtype));
    handler.count_block(index, &list, &verdict, how, &name, client);
    Fast::Replied
}

fn write_block(
    request: &Request<'_>,
    group: &crate::policy::decide::Group,
    soa_owner: usize,
    serial: u32,
    code: EdeCode,
    text: impl FnOnce(&mut Vec<u8>),
    out: &mut Vec<u8>,
) {
    let hole = &group.sinkhole;
    let address = hole.address(RecordType::from(request.qtype));
    let rcode = if address.is_some() {
        0
    } else {
        u16::from(hole.negative_rcode()) as u8
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
    out.extend_from_slice(&request.packet[HEADER..request.question_end]);
    let ttl = hole.ttl().to_be_bytes();
    match address {
        Some(ip) => {
            out.extend_from_slice(&[0xC0, HEADER as u8]);
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
            hole.soa_rdata(serial, out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::wire;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    use proptest::prelude::*;

    /// A handler over a small list with three groups in the three modes.
    fn handler() -> (tempfile::TempDir, Handler) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("adult.txt"),
            "bad.test\nporn.example\nxn--bcher-kva.example\n",
        )
        .unwrap();
        std::fs::write(d.join("gambling.txt"), "||casino.example^\n||bad.test^\n").unwrap();
        std::fs::write(d.join("allow.txt"), "safe.bad.test\n").unwrap();
        let text = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["127.0.0.1:9"]
[blocking]
mode = "nxdomain"
ipv4 = "192.0.2.1"
ipv6 = "2001:db8::1"
[lists]
compiled = "list.fst"
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "gambling"
path = "gambling.txt"
[[lists.allow]]
path = "allow.txt"
[[groups]]
name = "nulls"
clients = ["10.0.0.1/32"]
mode = "null"
deny = ["games.test"]
[[groups]]
name = "ips"
clients = ["10.0.0.2/32"]
mode = "ip"
[[groups]]
name = "default"
"#;
        std::fs::write(d.join("k.toml"), text).unwrap();
        let config = crate::config::load(&d.join("k.toml")).unwrap();
        let handler = crate::app::offline_handler(&config).unwrap();
        (dir, handler)
    }

    fn query(name: &str, qtype: RecordType, edns: Option<(u16, bool)>, rd: bool) -> Vec<u8> {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = rd;
        m.metadata.checking_disabled = !rd;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((payload, dnssec_ok)) = edns {
            let mut e = Edns::new();
            e.set_max_payload(payload);
            e.set_dnssec_ok(dnssec_ok);
            m.edns = Some(e);
        }
        m.to_vec().unwrap()
    }

    /// The reply the general path gives, as bytes.
    fn general(h: &Handler, packet: &[u8], client: IpAddr) -> Option<Vec<u8>> {
        match wire::step(h, packet, client, Protocol::Udp) {
            wire::Packet::Reply(reply) => {
                let mut out = Vec::new();
                wire::encode(&mut out, &reply, wire::udp_limit(&reply));
                Some(out)
            }
            _ => None,
        }
    }

    fn fast(h: &Handler, packet: &[u8], client: IpAddr) -> Option<Vec<u8>> {
        let request = Request::parse(packet)?;
        let mut out = Vec::new();
        match answer(h, &request, client, Protocol::Udp, &mut out) {
            Fast::Replied => Some(out),
            Fast::General(_) => None,
        }
    }

    fn same_reply(fast: &[u8], general: &[u8]) {
        let (a, b) = (
            Message::from_vec(fast).unwrap(),
            Message::from_vec(general).unwrap(),
        );
        assert_eq!(a.metadata, b.metadata);
        assert_eq!(a.queries, b.queries);
        assert_eq!(a.answers, b.answers);
        assert_eq!(a.authorities, b.authorities);
        assert_eq!(a.additionals, b.additionals);
        assert_eq!(a.edns, b.edns);
    }

    #[test]
    fn blocked_replies_match_the_general_path() {
        let (_dir, h) = handler();
        let clients: [IpAddr; 3] = [
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        ];
        let names = [
            "bad.test.",
            "WWW.Bad.Test.",
            "a.b.c.casino.example.",
            "porn.example.",
            "xn--bcher-kva.example.",
            "games.test.",
        ];
        let types = [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::HTTPS,
        ];
        let ednses = [
            None,
            Some((4096, true)),
            Some((512, false)),
            Some((1232, false)),
        ];
        let mut answered = 0;
        for client in clients {
            for name in names {
                for t in types {
                    for edns in ednses {
                        for rd in [true, false] {
                            let packet = query(name, t, edns, rd);
                            let f = fast(&h, &packet, client);
                            match general(&h, &packet, client) {
                                Some(g) => {
                                    if let Some(f) = f {
                                        same_reply(&f, &g);
                                        answered += 1;
                                    }
                                }
                                None => assert!(f.is_none(), "{name} answered, not forwarded"),
                            }
                        }
                    }
                }
            }
        }
        // games.test is only denied for 10.0.0.1; everything else here is blocked.
        assert!(
            answered >= 3 * 5 * 4 * 4 * 2,
            "{answered} answered on the fast path"
        );
    }

    /// Cached upstream replies for the hit-path tests, stored for every DO/CD key.
    fn fill_cache(h: &Handler) {
        use hickory_proto::rr::rdata::{A, CNAME, NS, SOA, TXT};
        use hickory_proto::rr::{RData, Record};
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let reply = |q: &str, t: RecordType| {
            let mut m = Message::new(7, MessageType::Response, OpCode::Query);
            m.metadata.recursion_desired = true;
            m.metadata.recursion_available = true;
            m.add_query(Query::query(n(q), t));
            m
        };
        let a = |owner: &str, ip: [u8; 4]| {
            Record::from_rdata(
                n(owner),
                300,
                RData::A(A::from(std::net::Ipv4Addr::from(ip))),
            )
        };
        let mut entries = Vec::new();
        let mut m = reply("allowed.test.", RecordType::A);
        m.answers.push(a("allowed.test.", [192, 0, 2, 10]));
        m.authorities.push(Record::from_rdata(
            n("test."),
            3600,
            RData::NS(NS(n("ns.test."))),
        ));
        m.additionals.push(a("ns.test.", [192, 0, 2, 53]));
        m.metadata.authentic_data = true;
        entries.push(m);
        // An alias to a listed name: cloaking, which only the general path answers.
        let mut m = reply("alias.test.", RecordType::A);
        m.answers.push(Record::from_rdata(
            n("alias.test."),
            300,
            RData::CNAME(CNAME(n("porn.example."))),
        ));
        m.answers.push(a("porn.example.", [192, 0, 2, 66]));
        entries.push(m);
        // Over 512 bytes: clients without EDNS get it truncated by the general path.
        let mut m = reply("big.test.", RecordType::TXT);
        for i in 0..8 {
            let text = format!("{i}{}", "x".repeat(90));
            m.answers.push(Record::from_rdata(
                n("big.test."),
                60,
                RData::TXT(TXT::new(vec![text])),
            ));
        }
        entries.push(m);
        let mut m = reply("nx.test.", RecordType::A);
        m.metadata.response_code = hickory_proto::op::ResponseCode::NXDomain;
        let soa = SOA::new(n("ns.test."), n("admin.test."), 1, 3600, 600, 86400, 120);
        m.authorities
            .push(Record::from_rdata(n("test."), 120, RData::SOA(soa)));
        entries.push(m);
        let cache = h.cache().unwrap();
        for m in entries {
            for (dnssec_ok, cd) in [(false, false), (true, false), (false, true), (true, true)] {
                let key = crate::upstream::cache::CacheKey::new(&m.queries[0], dnssec_ok)
                    .with_checking_disabled(cd);
                assert!(cache.insert(key, &m));
            }
        }
    }

    /// Two rounds 5 s apart (paused clock): the memoized bytes must follow the TTLs down.
    #[tokio::test(start_paused = true)]
    async fn cache_hits_match_the_general_path() {
        let (_dir, h) = handler();
        fill_cache(&h);
        let clients: [IpAddr; 2] = ["10.0.0.1".parse().unwrap(), "10.0.0.3".parse().unwrap()];
        let ednses = [
            None,
            Some((4096, true)),
            Some((512, false)),
            Some((1232, false)),
        ];
        let mut answered = std::collections::HashMap::new();
        for round in 0..2u32 {
            if round == 1 {
                tokio::time::advance(std::time::Duration::from_secs(5)).await;
            }
            for client in clients {
                for (name, t) in [
                    ("allowed.test.", RecordType::A),
                    ("ALLOWED.Test.", RecordType::A),
                    ("alias.test.", RecordType::A),
                    ("big.test.", RecordType::TXT),
                    ("nx.test.", RecordType::A),
                    ("allowed.test.", RecordType::AAAA),
                ] {
                    for edns in ednses {
                        for rd in [true, false] {
                            let packet = query(name, t, edns, rd);
                            let f = fast(&h, &packet, client);
                            let g = general(&h, &packet, client);
                            if let Some(f) = f {
                                let g = g.expect("answered by the general path too");
                                same_reply(&f, &g);
                                // The client's own spelling of the question, byte for byte.
                                let end = Request::parse(&packet).unwrap().question_end;
                                assert_eq!(f[HEADER..end], packet[HEADER..end]);
                                let m = Message::from_vec(&f).unwrap();
                                if let Some(a) = m.answers.first() {
                                    assert!(a.ttl <= 300 - 5 * round, "{name}: TTL {}", a.ttl);
                                }
                                *answered.entry((name, t, edns.is_some())).or_insert(0) += 1;
                            }
                        }
                    }
                }
            }
        }
        let count = |name, t, edns| answered.get(&(name, t, edns)).copied().unwrap_or(0);
        // 2 rounds x 2 clients x 2 RD values, for each of the 3 EDNS shapes or for none.
        assert_eq!(count("allowed.test.", RecordType::A, true), 24);
        assert_eq!(count("allowed.test.", RecordType::A, false), 8);
        assert_eq!(count("ALLOWED.Test.", RecordType::A, true), 24);
        assert_eq!(count("nx.test.", RecordType::A, true), 24);
        // Cloaked, too big for the client, or not cached: the general path's.
        assert_eq!(count("alias.test.", RecordType::A, true), 0);
        assert_eq!(count("big.test.", RecordType::TXT, false), 0);
        assert_eq!(count("allowed.test.", RecordType::AAAA, true), 0);
        assert!(count("big.test.", RecordType::TXT, true) > 0);
    }

    #[test]
    fn other_queries_are_left_to_the_general_path() {
        let (_dir, h) = handler();
        let client: IpAddr = "10.0.0.3".parse().unwrap();
        for name in ["allowed.test.", "safe.bad.test."] {
            assert!(fast(&h, &query(name, RecordType::A, None, true), client).is_none());
        }
        let mut two = Message::new(1, MessageType::Query, OpCode::Query);
        two.add_query(Query::query(
            Name::from_ascii("bad.test.").unwrap(),
            RecordType::A,
        ));
        two.add_query(Query::query(
            Name::from_ascii("bad.test.").unwrap(),
            RecordType::A,
        ));
        assert!(Request::parse(&two.to_vec().unwrap()).is_none());
        let mut packet = query("bad.test.", RecordType::A, None, true);
        packet.push(0);
        assert!(Request::parse(&packet).is_none(), "trailing bytes");
        let packet = query("bad.test.", RecordType::A, Some((1232, false)), true);
        assert!(
            Request::parse(&packet[..packet.len() - 1]).is_none(),
            "cut OPT"
        );
    }

    proptest! {
        /// Any bytes: never a panic, and whatever the fast path answers (blocks and cache
        /// hits), it answers as the general path would.
        #[test]
        fn random_packets(mut bytes in proptest::collection::vec(any::<u8>(), 0..300), prefix in 0..3u8) {
            let (_dir, h) = handler();
            fill_cache(&h);
            // Most random bytes fail to parse; start some with a blocked or a cached query.
            let start = match prefix {
                1 => Some(query("casino.example.", RecordType::A, Some((1232, true)), true)),
                2 => Some(query("allowed.test.", RecordType::A, Some((1232, false)), true)),
                _ => None,
            };
            if let Some(q) = start && bytes.len() > 12 {
                let flip = usize::from(bytes[0]) % q.len();
                let n = bytes.len().min(q.len());
                bytes[..n].copy_from_slice(&q[..n]);
                if prefix == 2 && bytes.len() >= q.len() {
                    // The whole cached query with one byte's 0x20 bit flipped: another
                    // spelling, other flags, or a broken length.
                    bytes.truncate(q.len());
                    bytes[flip] ^= 0x20;
                }
            }
            let client: IpAddr = "10.0.0.3".parse().unwrap();
            if let Some(f) = fast(&h, &bytes, client) {
                let g = general(&h, &bytes, client).unwrap();
                same_reply(&f, &g);
            }
        }
    }
}
