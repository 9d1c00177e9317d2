//! A reply on the wire within a size limit, truncated the way a strict client accepts.
//!
//! hickory-proto's own limit (`BinEncoder::set_max_size`) drops whichever record first
//! overflows, writes the OPT record last (so a full buffer loses it) and does not shrink the
//! buffer when it rolls a record back, which left bytes past the counted records. The rules
//! here instead, with the RFCs that ask for them:
//!
//! - the OPT record is always kept (RFC 6891 §7: "the OPT RR MUST be included" in a
//!   truncated response), as is a TSIG record, which must stay last (RFC 8945 §5.3);
//! - records are dropped as whole RRsets, never a partial one (RFC 2181 §9), keeping the
//!   longest prefix of the answer then authority sections that fits, with TC=1;
//! - when only additional-section data does not fit, whole RRsets of it are dropped without
//!   TC (RFC 2181 §9: "the TC bit should not be set merely because some extra information
//!   could have been included"), except for a DNSSEC reply (DO set), whose signatures in the
//!   additional section a validator may need (RFC 4035 §3.1.1): there TC=1;
//! - the bytes end with the last counted record.
//!
//! Truncation is the rare path (a large answer over UDP), so it simply re-encodes the
//! message for each candidate cut, found by binary search (the encoded size only grows as
//! RRsets are added).

use hickory_proto::op::{Edns, Header, HeaderCounts, Message, Metadata, emit_message_parts};
use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// How much of each section a candidate encoding keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cut {
    answers: usize,
    authorities: usize,
    additionals: usize,
    truncated: bool,
}

/// `reply` on the wire in at most `max` bytes, truncated as the module says when it does
/// not fit. A reply that cannot be encoded at all becomes a bare SERVFAIL.
pub fn encode(out: &mut Vec<u8>, reply: &Message, max: u16) {
    let max = usize::from(max);
    let whole = Cut {
        answers: reply.answers.len(),
        authorities: reply.authorities.len(),
        additionals: reply.additionals.len(),
        truncated: false,
    };
    match emit(out, reply, reply.edns.as_ref(), whole) {
        Ok(()) if out.len() <= max => return,
        Ok(()) => {}
        Err(error) => {
            tracing::error!(%error, "error encoding message");
            return servfail(out, &reply.metadata);
        }
    }
    let cut = best_cut(
        reply,
        &mut |cut| matches!(emit(out, reply, reply.edns.as_ref(), cut), Ok(()) if out.len() <= max),
    );
    if let Some(cut) = cut
        && emit(out, reply, reply.edns.as_ref(), cut).is_ok()
    {
        return;
    }
    // Not even the question and the OPT fit: our own EDE text is the only thing that can
    // make that so. Keep the OPT (payload, DO) without its options.
    let bare = reply.edns.as_ref().map(|e| {
        let mut bare = Edns::new();
        bare.set_max_payload(e.max_payload());
        bare.set_dnssec_ok(e.flags().dnssec_ok);
        bare
    });
    let empty = Cut {
        answers: 0,
        authorities: 0,
        additionals: 0,
        truncated: true,
    };
    match emit(out, reply, bare.as_ref(), empty) {
        Ok(()) if out.len() <= max => {}
        _ => servfail(out, &reply.metadata),
    }
}

/// The largest cut for which `fits` holds, or `None` when not even the bare reply fits.
fn best_cut(reply: &Message, fits: &mut dyn FnMut(Cut) -> bool) -> Option<Cut> {
    // RRset boundaries across the answer then authority sections: cut p keeps the first p
    // RRsets.
    let answer_ends = rrset_ends(&reply.answers);
    let authority_ends = rrset_ends(&reply.authorities);
    let head = |p: usize| -> Cut {
        let (answers, authorities) = if p <= answer_ends.len() {
            (answer_ends[..p].last().copied().unwrap_or(0), 0)
        } else {
            let q = p - answer_ends.len();
            (
                reply.answers.len(),
                authority_ends[..q].last().copied().unwrap_or(0),
            )
        };
        Cut {
            answers,
            authorities,
            additionals: 0,
            truncated: true,
        }
    };
    let total = answer_ends.len() + authority_ends.len();
    let all_main = Cut {
        answers: reply.answers.len(),
        authorities: reply.authorities.len(),
        additionals: 0,
        truncated: false,
    };
    if !fits(all_main) {
        let p = largest(total, &mut |p| fits(head(p)))?;
        return Some(head(p));
    }
    // Answer and authority fit whole; some additional data does not.
    let dnssec = reply.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    let additional_ends = rrset_ends(&reply.additionals);
    let tail = |q: usize| Cut {
        additionals: additional_ends[..q].last().copied().unwrap_or(0),
        truncated: dnssec,
        ..all_main
    };
    let q = largest(additional_ends.len(), &mut |q| fits(tail(q)))?;
    Some(tail(q))
}

/// The largest `p` in `0..=n` with `fits(p)`, for a `fits` that holds up to some point and
/// not after; `None` when not even `fits(0)`.
fn largest(n: usize, fits: &mut dyn FnMut(usize) -> bool) -> Option<usize> {
    if !fits(0) {
        return None;
    }
    // Invariant: fits(lo), and !fits(hi) unless hi == n + 1 (unknown beyond n).
    let (mut lo, mut hi) = (0usize, n + 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// The end index of each RRset in `records`: a run of records with the same owner (up to
/// case), type and class.
fn rrset_ends(records: &[Record]) -> Vec<usize> {
    let mut ends = Vec::new();
    for (i, record) in records.iter().enumerate() {
        // hickory's `Name` equality ignores case.
        let same = i > 0 && {
            let prev = &records[i - 1];
            prev.record_type() == record.record_type()
                && prev.dns_class == record.dns_class
                && prev.name == record.name
        };
        if same {
            if let Some(last) = ends.last_mut() {
                *last = i + 1;
            }
        } else {
            ends.push(i + 1);
        }
    }
    ends
}

fn emit(out: &mut Vec<u8>, reply: &Message, edns: Option<&Edns>, cut: Cut) -> Result<(), String> {
    out.clear();
    let mut metadata = reply.metadata;
    metadata.truncation |= cut.truncated;
    let mut encoder = BinEncoder::new(out);
    emit_message_parts(
        &metadata,
        &mut reply.queries.iter(),
        &mut reply.answers[..cut.answers].iter(),
        &mut reply.authorities[..cut.authorities].iter(),
        &mut reply.additionals[..cut.additionals].iter(),
        edns,
        reply.signature.as_deref(),
        &mut encoder,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// A header-only SERVFAIL with the request's ID.
fn servfail(out: &mut Vec<u8>, request: &Metadata) {
    out.clear();
    let mut metadata = Metadata::new(request.id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    let mut encoder = BinEncoder::new(out);
    if let Err(error) = header.emit(&mut encoder) {
        tracing::error!(%error, "cannot encode even a header");
        out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, Query};
    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::{Name, RData, RecordType};
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn txt(owner: &str, n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let text = format!("{i:03}-{}", "y".repeat(50));
                Record::from_rdata(name(owner), 60, RData::TXT(TXT::new(vec![text])))
            })
            .collect()
    }

    fn reply(dnssec_ok: bool) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name("a.test."), RecordType::TXT));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(dnssec_ok);
        m.edns = Some(edns);
        m
    }

    /// Decodes strictly: nothing may follow the counted records.
    fn strict(bytes: &[u8]) -> Message {
        let mut decoder = BinDecoder::new(bytes);
        let m = Message::read(&mut decoder).unwrap();
        assert_eq!(decoder.len(), 0, "trailing bytes");
        m
    }

    #[test]
    fn a_reply_that_fits_is_encoded_whole() {
        let mut m = reply(false);
        m.answers = txt("a.test.", 3);
        let mut out = Vec::new();
        encode(&mut out, &m, 512);
        let back = strict(&out);
        assert_eq!(back.answers.len(), 3);
        assert!(!back.metadata.truncation);
    }

    #[test]
    fn answer_and_authority_are_cut_at_rrset_boundaries_with_tc() {
        let mut m = reply(false);
        // Three RRsets: 2 small, then 30 big ones; then an authority RRset.
        m.answers = txt("a.test.", 2);
        m.answers.extend(txt("b.test.", 2));
        m.answers.extend(txt("c.test.", 30));
        m.authorities = txt("d.test.", 1);
        for max in [512u16, 700, 1232] {
            let mut out = Vec::new();
            encode(&mut out, &m, max);
            assert!(out.len() <= usize::from(max));
            let back = strict(&out);
            assert!(back.metadata.truncation, "{max}");
            assert!(back.edns.is_some(), "{max}: OPT kept");
            assert_eq!(back.answers.len(), 4, "{max}: the two whole small RRsets");
            assert!(back.authorities.is_empty());
        }
    }

    #[test]
    fn additional_data_is_dropped_without_tc_unless_dnssec() {
        for dnssec_ok in [false, true] {
            let mut m = reply(dnssec_ok);
            m.answers = vec![Record::from_rdata(
                name("a.test."),
                60,
                RData::A(A(Ipv4Addr::LOCALHOST)),
            )];
            m.additionals = txt("x.test.", 2);
            m.additionals.extend(txt("y.test.", 30));
            let mut out = Vec::new();
            encode(&mut out, &m, 512);
            let back = strict(&out);
            assert_eq!(back.answers.len(), 1);
            assert_eq!(back.additionals.len(), 2, "the first whole RRset");
            assert_eq!(back.metadata.truncation, dnssec_ok);
            assert!(back.edns.is_some());
        }
    }

    #[test]
    fn the_opt_survives_even_when_nothing_else_fits() {
        let mut m = reply(true);
        m.answers = txt("a.test.", 40);
        let mut out = Vec::new();
        encode(&mut out, &m, 512);
        let back = strict(&out);
        assert!(back.answers.is_empty() && back.metadata.truncation);
        assert!(back.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
    }

    #[test]
    fn largest_finds_the_last_fitting_cut() {
        for limit in 0..10 {
            let mut calls = 0;
            let got = largest(9, &mut |p| {
                calls += 1;
                p <= limit
            });
            assert_eq!(got, Some(limit));
            assert!(calls <= 5);
        }
        assert_eq!(largest(3, &mut |_| false), None);
    }
}
