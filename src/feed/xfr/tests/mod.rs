//! Tests for the XFR client, one file per part: the transfer parser, `apply`,
//! NOTIFY helpers and TSIG key handling offline; fallbacks and failure modes
//! against a scripted in-process primary; and the real thing against `knotd`
//! (Debian package `knot`), skipped with a notice when knotd is not installed
//! unless `KIDSAFE_REQUIRE_KNOT=1` is set. Shared helpers live here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::{Instant, timeout_at};

use super::parser::{ParseError, XfrParser};
use super::*;
use crate::dns::frame;

mod diff;
mod knot;
mod notify_msg;
mod parser;
mod scripted;
mod tsig;

// ---------------------------------------------------------------- helpers

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn zone() -> Name {
    name("rpz.test.")
}

fn soa(serial: u32) -> Record {
    soa_with(serial, 3600, 600)
}

fn soa_with(serial: u32, refresh: i32, retry: i32) -> Record {
    Record::from_rdata(
        zone(),
        3600,
        RData::SOA(SOA::new(
            name("ns.rpz.test."),
            name("hostmaster.rpz.test."),
            serial,
            refresh,
            retry,
            86400,
            60,
        )),
    )
}

/// `<owner>.rpz.test. CNAME .` — an NXDOMAIN rule.
fn rule(owner: &str) -> Record {
    rule_ttl(owner, 300)
}

fn rule_ttl(owner: &str, ttl: u32) -> Record {
    Record::from_rdata(
        name(&format!("{owner}.rpz.test.")),
        ttl,
        RData::CNAME(CNAME(Name::root())),
    )
}

fn parse_all(have: Option<u32>, msgs: &[Vec<Record>]) -> Result<Option<XfrOutcome>, ParseError> {
    let mut p = XfrParser::new(zone(), have);
    for m in msgs {
        for r in m {
            p.push(r.clone())?;
        }
        if let Some(out) = p.end_of_message()? {
            return Ok(Some(out));
        }
    }
    Ok(None)
}

fn malformed(res: Result<Option<XfrOutcome>, ParseError>) -> String {
    match res {
        Err(ParseError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn non_soa(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.record_type() != RecordType::SOA)
        .cloned()
        .collect()
}

fn sorted_keys(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name.to_lowercase(),
                r.ttl,
                r.record_type(),
                r.data
            )
        })
        .collect();
    v.sort();
    v
}

fn snapshot_of(serial: u32, rules: Vec<Record>) -> ZoneSnapshot {
    let mut records = vec![soa(serial)];
    records.extend(rules);
    ZoneSnapshot {
        serial,
        refresh: Duration::from_secs(3600),
        retry: Duration::from_secs(600),
        records,
    }
}

fn key(name: &str, secret: &[u8]) -> TsigKey {
    TsigKey {
        name: name.to_owned(),
        algorithm: "hmac-sha256".to_owned(),
        secret_base64: data_encoding::BASE64.encode(secret),
    }
}

/// Deadline for every exchange in the network tests.
const T: Duration = Duration::from_secs(5);
