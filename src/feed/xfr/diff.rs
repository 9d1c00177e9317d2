//! Record-set arithmetic for IXFR: the net effect of several sequences
//! ([`NetDiff`]) and folding an incremental outcome into a snapshot ([`apply`]).

use std::collections::{HashMap, HashSet};

use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

#[cfg(doc)]
use super::XfrOutcome;
use super::{ZoneSnapshot, secs, soa_of};

/// Identity of a record for set operations: owner (case-insensitive),
/// class, rdata. TTL excluded, as in RFC 2136 §1.1.1.
type Key = (Name, DNSClass, RData);

fn key(r: &Record) -> Key {
    (r.name.clone(), r.dns_class, r.data.clone())
}

/// Net effect of several IXFR sequences, in arrival order.
#[derive(Default)]
pub(super) struct NetDiff {
    deleted: Vec<Option<Record>>,
    added: Vec<Option<Record>>,
    del_idx: HashMap<Key, usize>,
    add_idx: HashMap<Key, usize>,
}

impl NetDiff {
    pub(super) fn delete(&mut self, rec: Record) {
        let k = key(&rec);
        if let Some(i) = self.add_idx.remove(&k) {
            // Added by an earlier sequence, deleted now: never existed for us.
            self.added[i] = None;
            return;
        }
        if !self.del_idx.contains_key(&k) {
            self.del_idx.insert(k, self.deleted.len());
            self.deleted.push(Some(rec));
        }
    }

    pub(super) fn add(&mut self, rec: Record) {
        let k = key(&rec);
        let restored = self
            .del_idx
            .get(&k)
            .is_some_and(|&i| self.deleted[i].as_ref().is_some_and(|d| d.ttl == rec.ttl));
        if restored {
            let i = self.del_idx[&k];
            // Deleted by an earlier sequence and restored unchanged.
            self.deleted[i] = None;
            self.del_idx.remove(&k);
            return;
        }
        // (A restore with another TTL keeps the deletion: apply() deletes,
        // then adds, so the new TTL wins.)
        match self.add_idx.get(&k) {
            Some(&i) => self.added[i] = Some(rec),
            None => {
                self.add_idx.insert(k, self.added.len());
                self.added.push(Some(rec));
            }
        }
    }

    pub(super) fn into_parts(self) -> (Vec<Record>, Vec<Record>) {
        (
            self.deleted.into_iter().flatten().collect(),
            self.added.into_iter().flatten().collect(),
        )
    }
}

type KeyRef<'a> = (&'a Name, DNSClass, &'a RData);

fn key_ref(r: &Record) -> KeyRef<'_> {
    (&r.name, r.dns_class, &r.data)
}

/// Applies an incremental transfer to a snapshot: removes `deleted`
/// (matched on owner, class and rdata; TTL ignored), then adds `added`
/// (replacing an equal record, so TTL changes take effect).
///
/// If `added` carries the apex SOA (as [`XfrOutcome::Incremental`] does) it
/// replaces the snapshot's SOA and `refresh`/`retry` follow it; otherwise
/// only the SOA's serial is set to `serial`. The SOA is kept first in
/// `records`. Deleting a record that is not there is not an error (the caller
/// that wants to detect divergence compares its record count or re-fetches
/// with AXFR periodically).
pub fn apply(snapshot: &mut ZoneSnapshot, serial: u32, deleted: &[Record], added: &[Record]) {
    let added_soa = added.iter().rposition(|r| soa_of(r).is_some());
    let gone: HashSet<KeyRef<'_>> = deleted.iter().chain(added.iter()).map(key_ref).collect();
    snapshot.records.retain(|r| {
        let is_soa = r.record_type() == RecordType::SOA;
        !(gone.contains(&key_ref(r)) || (is_soa && added_soa.is_some()))
    });
    let mut seen: HashSet<KeyRef<'_>> = HashSet::with_capacity(added.len());
    // Last one wins for duplicates within `added`.
    let mut fresh: Vec<&Record> = Vec::with_capacity(added.len());
    for r in added.iter().rev() {
        if soa_of(r).is_none() && seen.insert(key_ref(r)) {
            fresh.push(r);
        }
    }
    snapshot.records.extend(fresh.into_iter().rev().cloned());

    // The SOA: from `added`, or the existing one with the new serial; first.
    let mut soa = match added_soa {
        Some(i) => Some(added[i].clone()),
        None => snapshot
            .records
            .iter()
            .position(|r| r.record_type() == RecordType::SOA)
            .map(|i| snapshot.records.remove(i)),
    };
    if let Some(RData::SOA(s)) = soa.as_mut().map(|rec| &mut rec.data) {
        s.serial = serial;
        snapshot.refresh = secs(s.refresh);
        snapshot.retry = secs(s.retry);
    }
    if let Some(rec) = soa {
        snapshot.records.insert(0, rec);
    }
    snapshot.serial = serial;
}
