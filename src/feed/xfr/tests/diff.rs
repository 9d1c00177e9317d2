//! `apply`: folding an incremental outcome into a snapshot, offline.

use super::*;

#[test]
fn apply_incremental_outcome() {
    let mut snap = snapshot_of(1, vec![rule("a"), rule("b"), rule("c")]);
    let deleted = vec![soa(1), rule("b")];
    let added = vec![soa_with(2, 7200, 300), rule("d"), rule_ttl("a", 5)];
    apply(&mut snap, 2, &deleted, &added);
    assert_eq!(snap.serial, 2);
    assert_eq!(snap.refresh, Duration::from_secs(7200));
    assert_eq!(snap.retry, Duration::from_secs(300));
    assert_eq!(snap.records[0], soa_with(2, 7200, 300));
    assert_eq!(snap.records.iter().filter_map(soa_of).count(), 1);
    assert_eq!(
        sorted_keys(&snap.records[1..]),
        sorted_keys(&[rule("c"), rule("d"), rule_ttl("a", 5)])
    );
}

#[test]
fn apply_without_soa_bumps_serial_only() {
    let mut snap = snapshot_of(1, vec![rule("a")]);
    apply(
        &mut snap,
        9,
        &[rule("a"), rule("not-there")],
        &[rule("z"), rule("z")],
    );
    assert_eq!(snap.serial, 9);
    assert_eq!(soa_of(&snap.records[0]).unwrap().serial, 9);
    assert_eq!(snap.refresh, Duration::from_secs(3600));
    assert_eq!(snap.records[1..].to_vec(), vec![rule("z")]);
}

#[test]
fn apply_matches_case_insensitively_and_ignores_ttl() {
    let mut snap = snapshot_of(1, vec![rule_ttl("Mixed", 77)]);
    apply(&mut snap, 2, &[rule("mixed")], &[]);
    assert_eq!(snap.records.len(), 1);
}
