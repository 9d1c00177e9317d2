//! What one published list looks like as an RPZ zone: its name, its SOA and NS, and the two
//! records each listed name becomes.
//!
//! ```text
//! gambling.rpz.kidsafe.               SOA   localhost. hostmaster.gambling.rpz.kidsafe. SERIAL 60 10 2419200 60
//! gambling.rpz.kidsafe.               NS    localhost.
//! casino.example.gambling.rpz.kidsafe.   CNAME .               ; NXDOMAIN for the name
//! *.casino.example.gambling.rpz.kidsafe. CNAME .               ; ... and everything below it
//! ```
//!
//! On the allowlist the target is `rpz-passthru.` instead of `.`. Both records are published
//! because RPZ's `*.name` does not cover `name` itself, and a listed name blocks its
//! subdomains (as the block lists do).

use hickory_proto::rr::rdata::{CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record};

use crate::publish::lists::ALLOW_LIST;

/// SOA refresh: how often a secondary without NOTIFY polls the serial. Short, because a
/// published decision should reach every resolver in about a minute even where NOTIFY is
/// not configured (each poll is one small SOA query).
pub const REFRESH: i32 = 60;
/// SOA retry: poll again this soon after a failed poll.
pub const RETRY: i32 = 10;
/// SOA expire: a secondary that cannot reach us keeps the zone (and keeps filtering) this
/// long, 28 days, so an outage of the central never silently unblocks anything.
pub const EXPIRE: i32 = 28 * 86_400;
/// SOA minimum (negative-caching TTL), and the TTL of every record in the zone.
pub const TTL: u32 = 60;

/// The zones of one primary: `<list>.<suffix>` for each published list.
#[derive(Clone, Debug)]
pub struct Zones {
    suffix: Name,
    server: Name,
}

/// Why a zone suffix cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("zone_suffix `{suffix}` is not a domain name: {reason}")]
pub struct BadSuffix {
    /// The suffix as configured.
    pub suffix: String,
    /// What hickory found wrong with it.
    pub reason: String,
}

impl Zones {
    /// Zones named under `suffix` (e.g. `rpz.kidsafe.`; a missing final dot is added).
    pub fn new(suffix: &str) -> Result<Zones, BadSuffix> {
        let bad = |reason: String| BadSuffix {
            suffix: suffix.to_owned(),
            reason,
        };
        let trimmed = suffix.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err(bad("empty".to_owned()));
        }
        let mut name = Name::from_ascii(trimmed).map_err(|e| bad(e.to_string()))?;
        name.set_fqdn(true);
        let mut server = Name::from_ascii("localhost.").map_err(|e| bad(e.to_string()))?;
        server.set_fqdn(true);
        Ok(Zones {
            suffix: name.to_lowercase(),
            server,
        })
    }

    /// The zone of `list`, or `None` when the list's name cannot be a DNS label.
    pub fn zone_of(&self, list: &str) -> Option<Name> {
        if list.is_empty() || list.contains('.') {
            return None;
        }
        Name::from_ascii(list)
            .ok()?
            .append_domain(&self.suffix)
            .ok()
            .map(|n| n.to_lowercase())
    }

    /// The list whose zone `qname` is, among `lists` (names with their serials).
    pub fn list_for<'a>(
        &self,
        qname: &Name,
        lists: &'a [(String, u32)],
    ) -> Option<&'a (String, u32)> {
        if qname.num_labels() != self.suffix.num_labels() + 1 || !self.suffix.zone_of(qname) {
            return None;
        }
        lists
            .iter()
            .find(|(list, _)| self.zone_of(list).is_some_and(|z| z.eq_ignore_root(qname)))
    }

    /// The zone's SOA record at `serial`.
    pub fn soa(&self, zone: &Name, serial: u32) -> Record {
        let rname = Name::from_ascii("hostmaster")
            .ok()
            .and_then(|h| h.append_domain(zone).ok())
            .unwrap_or_else(|| self.server.clone());
        let soa = SOA::new(
            self.server.clone(),
            rname,
            serial,
            REFRESH,
            RETRY,
            EXPIRE,
            TTL,
        );
        Record::from_rdata(zone.clone(), TTL, RData::SOA(soa))
    }

    /// The zone's NS record (zone plumbing: secondaries need one, nobody resolves it).
    pub fn ns(&self, zone: &Name) -> Record {
        Record::from_rdata(zone.clone(), TTL, RData::NS(NS(self.server.clone())))
    }
}

/// The two records `name` becomes in `list`'s zone, or `None` when `name` is not a domain
/// name or is too long to sit under the zone (`*.` + name + zone over 255 octets).
pub fn name_records(zone: &Name, list: &str, name: &str) -> Option<[Record; 2]> {
    let target = if list == ALLOW_LIST {
        Name::from_ascii("rpz-passthru.").ok()?
    } else {
        Name::root()
    };
    let relative = Name::from_ascii(name.trim_end_matches('.')).ok()?;
    let owner = relative.clone().append_domain(zone).ok()?;
    let wildcard = Name::from_ascii("*")
        .ok()?
        .append_name(&relative)
        .ok()?
        .append_domain(zone)
        .ok()?;
    let cname = |owner: Name| Record::from_rdata(owner, TTL, RData::CNAME(CNAME(target.clone())));
    Some([cname(owner), cname(wildcard)])
}

/// An upper bound on `record`'s size on the wire before name compression: owner, type,
/// class, TTL, length, RDATA. Used to fill a message without encoding it twice.
pub fn wire_bound(record: &Record) -> usize {
    let rdata = match &record.data {
        RData::CNAME(c) => c.0.len() + 1,
        RData::NS(n) => n.0.len() + 1,
        RData::SOA(s) => s.mname.len() + s.rname.len() + 2 + 20,
        _ => 512,
    };
    record.name.len() + 1 + 10 + rdata
}
