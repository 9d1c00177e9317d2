//! A query read in place, without decoding it into a message: the zero-copy view the UDP
//! fast path answers from.
//!
//! Hand-written on purpose: hickory-proto has no borrowed view of a message. What is read
//! is the fixed RFC 1035 header and question layout and the RFC 6891 OPT record; every
//! length is checked, and anything unexpected (compression in the question, other
//! sections, EDNS versions above 0, meta-types, trailing bytes, EDNS options that do not
//! fill the OPT's data exactly, an EDNS Client Subnet option) is `None`: the caller decodes
//! such a packet fully instead. The other EDNS options are read in place
//! ([`Request::options`]: the server reads a router's device MAC there).

use super::{CLASS_IN, HEADER_LEN as HEADER, TYPE_OPT};
const MAX_LABELS: usize = 128;

/// A plain query read in place: one question of class IN, at most an OPT record.
pub struct Request<'a> {
    /// The whole datagram.
    pub packet: &'a [u8],
    /// The query's ID.
    pub id: u16,
    /// Recursion desired, as the client set it (as are CD and AD).
    pub rd: bool,
    /// Checking disabled.
    pub cd: bool,
    /// Authentic data (a client that understands AD, RFC 6840 §5.7).
    pub ad: bool,
    /// The question's name, lowercased, in wire form without the root label.
    lower: [u8; 255],
    /// (start, length) of each label in `lower`, leftmost first.
    labels: [(u8, u8); MAX_LABELS],
    label_count: usize,
    /// The question's type.
    pub qtype: u16,
    /// End of the question section in `packet`.
    pub question_end: usize,
    /// The client's OPT: UDP payload size and DO bit.
    pub edns: Option<(u16, bool)>,
    /// Where the OPT's options are in `packet` (empty without any).
    options: std::ops::Range<usize>,
}

/// EDNS Client Subnet (RFC 7871): left to the general path, whose decoder reads it.
const OPTION_ECS: u16 = 8;

fn u16_at(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

impl<'a> Request<'a> {
    /// Reads `packet` if it is a plain query; `None` sends it to the general path.
    pub fn parse(packet: &'a [u8]) -> Option<Request<'a>> {
        let header = packet.get(..HEADER)?;
        let (flags1, flags2) = (header[2], header[3]);
        // QR=0, opcode QUERY, TC=0; Z bit clear.
        if flags1 & 0xFA != 0 || flags2 & 0x40 != 0 {
            return None;
        }
        let counts = [
            u16_at(header, 4)?,
            u16_at(header, 6)?,
            u16_at(header, 8)?,
            u16_at(header, 10)?,
        ];
        if counts[0] != 1 || counts[1] != 0 || counts[2] != 0 || counts[3] > 1 {
            return None;
        }
        let mut r = Request {
            packet,
            id: u16_at(header, 0)?,
            rd: flags1 & 0x01 != 0,
            cd: flags2 & 0x10 != 0,
            ad: flags2 & 0x20 != 0,
            lower: [0; 255],
            labels: [(0, 0); MAX_LABELS],
            label_count: 0,
            qtype: 0,
            question_end: 0,
            edns: None,
            options: 0..0,
        };
        let mut at = HEADER;
        let mut len = 0usize;
        loop {
            let n = usize::from(*packet.get(at)?);
            if n == 0 {
                at += 1;
                break;
            }
            // 0xC0: a compression pointer; 0x40/0x80: obsolete label types.
            if n > 63 || r.label_count == MAX_LABELS || len + n + 1 > 254 {
                return None;
            }
            let label = packet.get(at + 1..at + 1 + n)?;
            r.lower[len] = n as u8;
            for (dst, src) in r.lower[len + 1..len + 1 + n].iter_mut().zip(label) {
                *dst = src.to_ascii_lowercase();
            }
            r.labels[r.label_count] = ((len + 1) as u8, n as u8);
            r.label_count += 1;
            len += n + 1;
            at += n + 1;
        }
        r.qtype = u16_at(packet, at)?;
        if u16_at(packet, at + 2)? != CLASS_IN || r.label_count == 0 {
            return None;
        }
        // Meta-types (OPT, 128..=254) are answered by the protocol rules of the general
        // path (`super::local`), never from the list or the cache.
        if super::is_meta_qtype(r.qtype) {
            return None;
        }
        at += 4;
        r.question_end = at;
        if counts[3] == 1 {
            // OPT: root owner, type 41, CLASS = payload, TTL = ext-RCODE, version, flags.
            if *packet.get(at)? != 0 || u16_at(packet, at + 1)? != TYPE_OPT {
                return None;
            }
            let payload = u16_at(packet, at + 3)?;
            let (ext_rcode, version) = (*packet.get(at + 5)?, *packet.get(at + 6)?);
            if ext_rcode != 0 || version != 0 {
                return None;
            }
            let dnssec_ok = packet.get(at + 7)? & 0x80 != 0;
            let rdlen = usize::from(u16_at(packet, at + 9)?);
            at += 11;
            r.options = at..at + rdlen;
            // Options: code, length, data; they must fill the data exactly.
            let mut opt = at;
            while opt < at + rdlen {
                let len = usize::from(u16_at(packet, opt + 2)?);
                if u16_at(packet, opt)? == OPTION_ECS || opt + 4 + len > at + rdlen {
                    return None;
                }
                opt += 4 + len;
            }
            at += rdlen;
            r.edns = Some((payload, dnssec_ok));
        }
        (at == packet.len()).then_some(r)
    }

    /// The OPT record's options (code, data), in order; none without an OPT.
    pub fn options(&self) -> impl Iterator<Item = (u16, &'a [u8])> + use<'a> {
        let mut rest = self.packet.get(self.options.clone()).unwrap_or_default();
        std::iter::from_fn(move || {
            let code = u16_at(rest, 0)?;
            let len = usize::from(u16_at(rest, 2)?);
            let data = rest.get(4..4 + len)?;
            rest = rest.get(4 + len..)?;
            Some((code, data))
        })
    }

    /// The question's labels, lowercased, leftmost first.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.labels[..self.label_count]
            .iter()
            .map(|&(start, len)| &self.lower[usize::from(start)..][..usize::from(len)])
    }

    /// The question's name as text, lowercased, without the trailing dot.
    pub fn name_text(&self) -> String {
        let labels: Vec<String> = self
            .labels()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        labels.join(".")
    }

    /// Offset in the packet of the label where the last `count` labels start.
    pub fn suffix_offset(&self, count: usize) -> Option<usize> {
        if count == 0 {
            return None;
        }
        let first = self.label_count.checked_sub(count)?;
        let (start, _) = self.labels.get(first)?;
        // `lower` mirrors the packet's name from offset HEADER, length bytes included.
        Some(HEADER + usize::from(*start) - 1)
    }
}
