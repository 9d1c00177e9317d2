//! RPZ secondary: SOA polling, AXFR/IXFR client with TSIG, and NOTIFY helpers.
//!
//! The caller keeps a [`ZoneSnapshot`] (in memory and persisted), polls
//! [`XfrSource::soa_serial`] every `refresh` (or on NOTIFY, see
//! [`is_notify_for`] / [`notify_response`]), and when the primary's serial is
//! newer ([`serial_gt`]) calls [`XfrSource::transfer`] with the serial it has.
//! A [`XfrOutcome::Full`] replaces the snapshot; a
//! [`XfrOutcome::Incremental`] is folded in with [`apply`]. Either way the
//! caller then rebuilds its rules from `snapshot.records`.
//!
//! # Records as the caller gets them
//! Every owner name is absolute (FQDN) and ends in the zone name, e.g.
//! `bad.example.rpz.example.` for zone `rpz.example.`; an RPZ trigger is the
//! owner with the zone suffix removed (`bad.example`). The apex SOA is part of
//! `records` (exactly once, first after a full transfer) and apex NS records are
//! there too: they are zone plumbing, not rules, so skip records whose owner is
//! the apex. Incremental `deleted`/`added` follow RFC 1995: `deleted` holds the
//! old SOA and `added` the new one, besides the changed rules.
//!
//! # Why the transfer is hand-written over a `TcpStream`
//! hickory-net 0.26.3 does have `ClientHandle::zone_transfer`, but it is not fit
//! for a security feed: its `DnsMultiplexer` hands each response message to the
//! caller through an 8-slot channel with `try_send` and only logs a warning when
//! that channel is full, so a large AXFR can silently lose whole messages (the
//! SOA framing does not notice a missing middle message); its `ClientStreamXfr`
//! ends the stream without an error when the first record is not an SOA, waits
//! for a second message after an up-to-date IXFR answer (a lone SOA) until the
//! timeout, and does not expose the RCODE needed to fall back from IXFR to AXFR.
//! DNS over TCP framing is a two-byte length prefix per message (RFC 1035
//! §4.2.2, RFC 7766), so owning it costs ~20 lines and gives exact control over
//! validation, TSIG chaining, limits and the deadline. Messages, records and
//! TSIG (`TSigner`/`TSigVerifier`, hickory-proto `dnssec-ring`) are
//! hickory-proto's.
//!
//! # Layout
//! - this file: the types a caller holds ([`XfrSource`], [`ZoneSnapshot`],
//!   [`XfrOutcome`]) and RFC 1982 serial arithmetic;
//! - `tsig`: the configured [`TsigKey`] and how it becomes hickory's signer;
//! - `error`: [`XfrError`], one variant per thing to check;
//! - `client`: the network side, SOA query (UDP, then TCP) and the transfer
//!   exchange over TCP with request signing and answer checks;
//! - `parser`: the SOA framing of a transfer's records, into an outcome;
//! - `diff`: the net effect of IXFR sequences and [`apply`];
//! - `notify_msg`: recognising and acknowledging NOTIFY messages;
//! - `tests/`: one test file per part above, plus the scripted-primary and
//!   `knotd` tests.

mod client;
mod diff;
mod error;
mod notify_msg;
mod parser;
mod tsig;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub use diff::apply;
pub use error::XfrError;
pub use notify_msg::{is_notify_for, notify_refusal, notify_response, notify_serial};
pub use tsig::TsigKey;

/// Upper bound on the records of one transfer (all messages together); a
/// primary sending more is treated as broken rather than exhausting memory.
pub const MAX_XFR_RECORDS: usize = 10_000_000;

/// Where an RPZ zone comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XfrSource {
    /// The primary's address (port 53 usually).
    pub primary: SocketAddr,
    /// The zone to transfer, e.g. `rpz.example.` (a relative name is taken as
    /// absolute).
    pub zone: Name,
    /// TSIG key to sign requests with and require on answers.
    pub tsig: Option<TsigKey>,
}

/// The zone's content as the caller needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSnapshot {
    /// SOA serial.
    pub serial: u32,
    /// SOA refresh: how often to poll the primary's serial.
    pub refresh: Duration,
    /// SOA retry: how soon to poll again after a failed poll or transfer.
    pub retry: Duration,
    /// Every record of the zone, the apex SOA included once. Owner names are
    /// absolute (see the module docs).
    pub records: Vec<Record>,
}

impl ZoneSnapshot {
    /// The apex SOA record.
    pub fn soa(&self) -> Option<&Record> {
        self.records
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
    }
}

/// What [`XfrSource::transfer`] brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XfrOutcome {
    /// The primary has the serial we have: nothing to do.
    UpToDate,
    /// A whole zone (AXFR, or an IXFR answered in AXFR form): replace the
    /// snapshot with it.
    Full(ZoneSnapshot),
    /// Changes since the serial we have, merged across all the IXFR
    /// sequences: fold in with [`apply`].
    Incremental {
        /// The new serial.
        serial: u32,
        /// Records to remove (the old SOA among them). Matched ignoring TTL.
        deleted: Vec<Record>,
        /// Records to add (the new SOA among them).
        added: Vec<Record>,
    },
}

/// RFC 1982 serial arithmetic: is `a` newer than `b`? (False when equal or
/// when the two are exactly 2^31 apart, where the order is undefined.)
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// RFC 1982 serial arithmetic: is `a` older than `b`?
pub fn serial_lt(a: u32, b: u32) -> bool {
    serial_gt(b, a)
}

fn secs(v: i32) -> Duration {
    Duration::from_secs(u64::try_from(v).unwrap_or(0))
}

fn soa_of(r: &Record) -> Option<&SOA> {
    match &r.data {
        RData::SOA(soa) => Some(soa),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
