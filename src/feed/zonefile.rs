//! A zone snapshot on disk: the transferred records as RFC 1035 zone text, SOA first, every
//! owner absolute. The list compiler reads it as an RPZ file (the SOA names the apex, so
//! triggers are the owners relative to the zone), and a restart reads it back into a
//! [`ZoneSnapshot`] to continue with IXFR from its serial.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::feed::state::write_atomic;
use crate::feed::xfr::ZoneSnapshot;

/// Zone text for `snapshot` of `zone`.
pub fn to_text(zone: &Name, snapshot: &ZoneSnapshot) -> String {
    let mut out = String::with_capacity(snapshot.records.len() * 48 + 64);
    // `write!` to a String cannot fail.
    let _ = writeln!(out, "$ORIGIN {zone}");
    let soa = snapshot
        .records
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA);
    let rest = snapshot
        .records
        .iter()
        .filter(|r| r.record_type() != RecordType::SOA);
    for record in soa.take(1).chain(rest) {
        let _ = writeln!(out, "{record}");
    }
    out
}

/// Writes `snapshot` to `path` atomically and durably.
///
/// # Errors
/// Any I/O error; `path` is then untouched.
pub fn write(path: &Path, zone: &Name, snapshot: &ZoneSnapshot) -> std::io::Result<()> {
    write_atomic(path, to_text(zone, snapshot).as_bytes(), true)
}

/// Reads a snapshot written by [`write()`].
///
/// # Errors
/// A message when the file is missing, does not parse, or has no SOA for `zone`.
pub fn read(path: &Path, zone: &Name) -> Result<ZoneSnapshot, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (_, sets) = Parser::new(text, None, Some(zone.clone()))
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut soa: Option<Record> = None;
    let mut records = Vec::new();
    for record in sets.into_values().flat_map(|set| set.into_parts().records) {
        if record.record_type() == RecordType::SOA && record.name.eq_ignore_root(zone) {
            soa = Some(record);
        } else {
            records.push(record);
        }
    }
    let Some(soa) = soa else {
        return Err(format!("{}: no SOA for {zone}", path.display()));
    };
    let RData::SOA(s) = &soa.data else {
        return Err(format!("{}: no SOA for {zone}", path.display()));
    };
    let secs = |v: i32| Duration::from_secs(u64::try_from(v).unwrap_or(0));
    let snapshot = ZoneSnapshot {
        serial: s.serial,
        refresh: secs(s.refresh),
        retry: secs(s.retry),
        records: std::iter::once(soa.clone()).chain(records).collect(),
    };
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{CNAME, SOA};

    use super::*;
    use crate::lists::parse::Format;
    use crate::lists::rule::{Action, Rule, Scope};
    use crate::lists::source::read_source;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn snapshot() -> ZoneSnapshot {
        let zone = name("kidsafe.rpz.");
        let soa = SOA::new(
            name("ns.kidsafe.rpz."),
            name("h.kidsafe.rpz."),
            7,
            60,
            10,
            600,
            30,
        );
        let cname = |owner: &str, target: &str| {
            Record::from_rdata(name(owner), 300, RData::CNAME(CNAME(name(target))))
        };
        ZoneSnapshot {
            serial: 7,
            refresh: Duration::from_secs(60),
            retry: Duration::from_secs(10),
            records: vec![
                Record::from_rdata(zone.clone(), 3600, RData::SOA(soa)),
                cname("bad.example.kidsafe.rpz.", "."),
                cname("*.bad.example.kidsafe.rpz.", "."),
                cname("ok.bad.example.kidsafe.rpz.", "rpz-passthru."),
            ],
        }
    }

    #[test]
    fn round_trip_and_compiler_reads_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.rpz");
        let zone = name("kidsafe.rpz.");
        write(&path, &zone, &snapshot()).unwrap();
        let back = read(&path, &zone).unwrap();
        assert_eq!(back.serial, 7);
        assert_eq!(back.refresh, Duration::from_secs(60));
        assert_eq!(back.records.len(), 4);
        assert_eq!(back.records[0].record_type(), RecordType::SOA);

        let mut rules = Vec::new();
        read_source(&path, Format::Rpz, &mut |r| rules.push(r)).unwrap();
        rules.sort();
        let mut want = vec![
            Rule {
                name: "bad.example".into(),
                action: Action::Block,
                scope: Scope::Exact,
            },
            Rule {
                name: "bad.example".into(),
                action: Action::Block,
                scope: Scope::Subtree,
            },
            Rule {
                name: "ok.bad.example".into(),
                action: Action::Allow,
                scope: Scope::Exact,
            },
        ];
        want.sort();
        assert_eq!(rules, want);
    }

    #[test]
    fn missing_soa_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.rpz");
        std::fs::write(&path, "$ORIGIN kidsafe.rpz.\nbad.example CNAME .\n").unwrap();
        assert!(read(&path, &name("kidsafe.rpz.")).is_err());
        assert!(read(&dir.path().join("none"), &name("kidsafe.rpz.")).is_err());
    }
}
