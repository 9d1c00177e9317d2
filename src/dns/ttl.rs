//! The smallest TTL of a reply's answer and authority sections, read from its bytes: the
//! `max-age` a DoH response carries (RFC 8484 §5.1).
//!
//! Hand-written on purpose: the DoH path gets its reply as bytes from the fast path
//! ([`crate::server::fastpath`]), and decoding them with hickory-proto to read a few TTLs
//! would allocate every name and cost most of what the fast path saved. Only the RFC 1035
//! §4.1 layout is walked (names as labels or compression pointers, then TYPE, CLASS, TTL
//! and RDLENGTH); every length is checked and anything that does not fit is `None`.

use super::HEADER_LEN as HEADER;

/// The smallest TTL among the answer and authority records of `reply`; 0 when they are
/// empty (as the general path says), `None` when the bytes are not a whole message header
/// and those sections.
pub fn min_ttl(reply: &[u8]) -> Option<u32> {
    let count = |at: usize| {
        Some(usize::from(u16::from_be_bytes([
            *reply.get(at)?,
            *reply.get(at + 1)?,
        ])))
    };
    let (questions, answers, authorities) = (count(4)?, count(6)?, count(8)?);
    let mut at = HEADER;
    for _ in 0..questions {
        at = skip_name(reply, at)? + 4;
    }
    let mut min: Option<u32> = None;
    for _ in 0..answers + authorities {
        at = skip_name(reply, at)?;
        let fixed = reply.get(at..at + 10)?;
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlength = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        at += 10 + rdlength;
        if at > reply.len() {
            return None;
        }
        min = Some(min.map_or(ttl, |m| m.min(ttl)));
    }
    Some(min.unwrap_or(0))
}

/// The offset just past the name at `at`: its labels up to the root, or up to a
/// compression pointer (two octets, whose target need not be followed to skip it).
fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *p.get(at)?;
        match len {
            0 => return Some(at + 1),
            1..=63 => at += 1 + usize::from(len),
            0xC0..=0xFF => {
                p.get(at + 1)?;
                return Some(at + 2);
            }
            // 0x40 and 0x80 prefixes are not in use (RFC 6891 §5 retired extended labels).
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// What the DoH general path computes from the decoded message.
    fn decoded_min(bytes: &[u8]) -> u32 {
        let m = Message::from_vec(bytes).unwrap();
        m.answers
            .iter()
            .chain(&m.authorities)
            .map(|r| r.ttl)
            .min()
            .unwrap_or(0)
    }

    #[test]
    fn agrees_with_the_decoded_message() {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(n("www.example.test."), RecordType::A));
        let bytes = m.to_vec().unwrap();
        assert_eq!(min_ttl(&bytes), Some(0), "no records");
        for (i, ttl) in [300u32, 60, 3600].into_iter().enumerate() {
            let ip = std::net::Ipv4Addr::new(192, 0, 2, i as u8);
            m.answers.push(Record::from_rdata(
                n("www.example.test."),
                ttl,
                RData::A(A::from(ip)),
            ));
        }
        let soa = SOA::new(n("ns.test."), n("admin.test."), 1, 3600, 600, 86400, 120);
        m.authorities
            .push(Record::from_rdata(n("example.test."), 30, RData::SOA(soa)));
        // Additionals (an OPT) do not count.
        m.additionals.push(Record::from_rdata(
            n("ns.test."),
            5,
            RData::A(A::from(std::net::Ipv4Addr::LOCALHOST)),
        ));
        let bytes = m.to_vec().unwrap();
        assert_eq!(min_ttl(&bytes), Some(decoded_min(&bytes)));
        assert_eq!(min_ttl(&bytes), Some(30));
        // Cut anywhere inside the sections read: never a wrong figure.
        for cut in 0..bytes.len() {
            if let Some(t) = min_ttl(&bytes[..cut]) {
                assert!(cut >= bytes.len() - 16, "read a cut message at {cut}: {t}");
            }
        }
    }

    proptest::proptest! {
        /// Any bytes: never a panic.
        #[test]
        fn random_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = min_ttl(&bytes);
        }
    }
}
