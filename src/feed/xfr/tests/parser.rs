//! The transfer parser (SOA framing, AXFR/IXFR outcomes) and RFC 1982 serial arithmetic, offline.

use super::*;

// ------------------------------------------------------- serial arithmetic

#[test]
fn serial_arithmetic_follows_rfc1982() {
    assert!(serial_gt(2, 1));
    assert!(!serial_gt(1, 2));
    assert!(!serial_gt(5, 5));
    assert!(
        serial_gt(0, u32::MAX),
        "wrap-around: 0 is newer than 2^32-1"
    );
    assert!(serial_gt(10, u32::MAX - 10));
    assert!(serial_lt(u32::MAX, 0));
    assert!(serial_gt(0x7fff_ffff, 0));
    // Exactly 2^31 apart: undefined, neither is newer.
    assert!(!serial_gt(0x8000_0000, 0));
    assert!(!serial_gt(0, 0x8000_0000));
}

// ------------------------------------------------------------------ parser

#[test]
fn axfr_single_and_multi_message() {
    let out = parse_all(None, &[vec![soa(7), rule("a"), rule("b"), soa(7)]]).unwrap();
    let Some(XfrOutcome::Full(snap)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 7);
    assert_eq!(snap.refresh, Duration::from_secs(3600));
    assert_eq!(snap.retry, Duration::from_secs(600));
    assert_eq!(snap.records, vec![soa(7), rule("a"), rule("b")]);
    assert_eq!(snap.soa(), Some(&soa(7)));

    // Split across messages, including a message that ends right after the
    // opening SOA (must not be mistaken for "up to date" in AXFR mode).
    let out = parse_all(
        None,
        &[vec![soa(7)], vec![rule("a")], vec![rule("b"), soa(7)]],
    )
    .unwrap();
    let Some(XfrOutcome::Full(snap)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.records.len(), 3);

    // SOA-only zone.
    let out = parse_all(None, &[vec![soa(3), soa(3)]]).unwrap();
    let Some(XfrOutcome::Full(snap)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.records, vec![soa(3)]);

    // Incomplete: no closing SOA yet.
    assert_eq!(parse_all(None, &[vec![soa(7), rule("a")]]).unwrap(), None);
}

#[test]
fn ixfr_single_sequence() {
    let out = parse_all(
        Some(1),
        &[vec![
            soa(2),
            soa(1),
            rule("old"),
            soa(2),
            rule("new"),
            soa(2),
        ]],
    )
    .unwrap();
    assert_eq!(
        out,
        Some(XfrOutcome::Incremental {
            serial: 2,
            deleted: vec![soa(1), rule("old")],
            added: vec![soa(2), rule("new")],
        })
    );
}

#[test]
fn ixfr_sequences_are_merged() {
    // 1 -> 2: add x, add y; 2 -> 3: delete x, add z, y's TTL 300 -> 60;
    // 3 -> 4: delete z, add z back with the same TTL (no-op), add x again.
    let out = parse_all(
        Some(1),
        &[
            vec![soa(4), soa(1), soa(2), rule("x"), rule("y")],
            vec![
                soa(2),
                rule("x"),
                rule("y"),
                soa(3),
                rule("z"),
                rule_ttl("y", 60),
            ],
            vec![soa(3), rule("z"), soa(4), rule("z"), rule("x"), soa(4)],
        ],
    )
    .unwrap();
    let Some(XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    }) = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(serial, 4);
    assert_eq!(deleted, vec![soa(1)]);
    assert_eq!(
        non_soa(&added),
        vec![rule_ttl("y", 60), rule("z"), rule("x")]
    );
    assert_eq!(added.iter().filter_map(soa_of).count(), 1);
    assert_eq!(added.iter().find_map(soa_of).unwrap().serial, 4);
    // y keeps its new TTL.
    assert_eq!(added.iter().find(|r| **r == rule("y")).unwrap().ttl, 60);
}

#[test]
fn ixfr_deletion_of_preexisting_record_then_restore_with_other_ttl() {
    let out = parse_all(
        Some(1),
        &[vec![
            soa(3),
            soa(1),
            rule("keep"),
            soa(2),
            soa(2),
            soa(3),
            rule_ttl("keep", 10),
            soa(3),
        ]],
    )
    .unwrap();
    let Some(XfrOutcome::Incremental { deleted, added, .. }) = out else {
        panic!("{out:?}")
    };
    // Delete-then-add with a new TTL: apply() removes then re-adds.
    assert_eq!(non_soa(&deleted), vec![rule("keep")]);
    assert_eq!(non_soa(&added), vec![rule_ttl("keep", 10)]);
    let mut snap = snapshot_of(1, vec![rule("keep")]);
    apply(&mut snap, 3, &deleted, &added);
    assert_eq!(snap.records[1].ttl, 10);
}

#[test]
fn ixfr_answered_as_axfr() {
    let out = parse_all(Some(1), &[vec![soa(5), rule("a"), soa(5)]]).unwrap();
    let Some(XfrOutcome::Full(snap)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 5);
    assert_eq!(snap.records, vec![soa(5), rule("a")]);
}

#[test]
fn ixfr_lone_soa() {
    assert_eq!(
        parse_all(Some(9), &[vec![soa(9)]]).unwrap(),
        Some(XfrOutcome::UpToDate)
    );
    assert_eq!(
        parse_all(Some(9), &[vec![soa(8)]]),
        Err(ParseError::SerialBehind {
            have: 9,
            primary_serial: 8
        })
    );
    // Newer serial alone in the first message: the rest must follow.
    assert_eq!(parse_all(Some(9), &[vec![soa(10)]]).unwrap(), None);
    assert!(matches!(
        parse_all(
            Some(9),
            &[vec![soa(10)], vec![soa(9), soa(10), rule("n"), soa(10)]]
        ),
        Ok(Some(XfrOutcome::Incremental { serial: 10, .. }))
    ));
    // Wrap-around: serial 0 is newer than u32::MAX.
    assert_eq!(parse_all(Some(u32::MAX), &[vec![soa(0)]]).unwrap(), None);
}

#[test]
fn parser_rejects_protocol_violations() {
    let m = malformed(parse_all(None, &[vec![rule("a"), soa(1)]]));
    assert!(m.contains("instead of the zone's SOA"), "{m}");

    let m = malformed(parse_all(
        None,
        &[vec![soa(1), rule("a"), soa(1), rule("b")]],
    ));
    assert!(m.contains("after the closing SOA"), "{m}");

    let m = malformed(parse_all(None, &[vec![soa(1), rule("a"), soa(2)]]));
    assert!(m.contains("closes with serial 2"), "{m}");

    let outside = Record::from_rdata(name("evil.example."), 60, RData::A(A::new(1, 2, 3, 4)));
    let m = malformed(parse_all(None, &[vec![soa(1), outside, soa(1)]]));
    assert!(m.contains("outside the zone"), "{m}");

    let mut deep_soa = soa(1);
    deep_soa.name = name("sub.rpz.test.");
    let m = malformed(parse_all(None, &[vec![soa(1), deep_soa]]));
    assert!(m.contains("not at the zone apex"), "{m}");

    let m = malformed(parse_all(None, &[vec![soa(1), soa(2)]]));
    assert!(m.contains("second SOA"), "{m}");

    // IXFR that does not start from our serial.
    let m = malformed(parse_all(Some(1), &[vec![soa(3), soa(2), soa(3), soa(3)]]));
    assert!(m.contains("starts its first sequence at serial 2"), "{m}");

    // Broken chain: 1 -> 2, then a sequence from 5.
    let m = malformed(parse_all(
        Some(1),
        &[vec![soa(6), soa(1), soa(2), soa(5), soa(6), soa(6)]],
    ));
    assert!(m.contains("previous one ended at 2"), "{m}");

    // A sequence that goes backwards.
    let m = malformed(parse_all(Some(5), &[vec![soa(6), soa(5), soa(4)]]));
    assert!(m.contains("not newer"), "{m}");

    // Empty first message.
    let mut p = XfrParser::new(zone(), None);
    assert!(matches!(p.end_of_message(), Err(ParseError::Malformed(_))));
}

#[test]
fn owner_names_compare_case_insensitively() {
    let mut upper_soa = soa(2);
    upper_soa.name = name("RPZ.Test.");
    let out = parse_all(None, &[vec![upper_soa, rule("a"), soa(2)]]).unwrap();
    assert!(matches!(out, Some(XfrOutcome::Full(_))));
}
