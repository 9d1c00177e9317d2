//! Tests for the XFR client: the transfer parser, `apply`, NOTIFY helpers and
//! TSIG key handling offline; fallbacks and failure modes against a scripted
//! in-process primary; and the real thing against `knotd` (Debian package
//! `knot`), skipped with a notice when knotd is not installed unless
//! `KIDSAFE_REQUIRE_KNOT=1` is set.

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

// ------------------------------------------------------------------- apply

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

// ------------------------------------------------------------------ notify

fn notify_bytes(zone: &str, with_soa: Option<u32>) -> Vec<u8> {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    m.add_query(Query::query(name(zone), RecordType::SOA));
    if let Some(serial) = with_soa {
        m.add_answer(soa(serial));
    }
    m.to_vec().unwrap()
}

#[test]
fn notify_detection_and_ack() {
    let bytes = notify_bytes("rpz.test.", Some(77));
    let msg = Message::from_vec(&bytes).unwrap();
    assert!(is_notify_for(&msg, &zone()));
    assert!(
        is_notify_for(&msg, &name("RPZ.test")),
        "relative/case-insensitive"
    );
    assert!(!is_notify_for(&msg, &name("other.test.")));
    assert_eq!(notify_serial(&msg), Some(77));
    assert_eq!(
        notify_serial(&Message::from_vec(&notify_bytes("rpz.test.", None)).unwrap()),
        None
    );

    let ack = Message::from_vec(&notify_response(&bytes).unwrap()).unwrap();
    assert_eq!(ack.id, 4242);
    assert_eq!(ack.message_type, MessageType::Response);
    assert_eq!(ack.op_code, OpCode::Notify);
    assert_eq!(ack.response_code, ResponseCode::NoError);
    assert!(ack.authoritative);
    assert_eq!(ack.queries, msg.queries);

    // A plain query is not a NOTIFY.
    let mut q = Message::query();
    q.add_query(Query::query(zone(), RecordType::SOA));
    let qb = q.to_vec().unwrap();
    assert!(!is_notify_for(&q, &zone()));
    assert_eq!(notify_response(&qb), None);
    assert_eq!(notify_response(b"\x00\x01garbage"), None);
    // A NOTIFY response is not a NOTIFY.
    assert!(!is_notify_for(&ack, &zone()));
}

// -------------------------------------------------------------------- tsig

fn key(name: &str, secret: &[u8]) -> TsigKey {
    TsigKey {
        name: name.to_owned(),
        algorithm: "hmac-sha256".to_owned(),
        secret_base64: data_encoding::BASE64.encode(secret),
    }
}

#[test]
fn tsig_key_validation() {
    let good = key("xfr-key.", b"0123456789abcdef0123456789abcdef");
    let signer = good.signer().unwrap();
    assert_eq!(signer.signer_name(), &name("xfr-key."));
    let mut upper = good.clone();
    upper.algorithm = "HMAC-SHA512.".into();
    upper.signer().unwrap();

    let mut bad = good.clone();
    bad.algorithm = "hmac-md5".into();
    assert!(matches!(bad.signer(), Err(XfrError::InvalidKey { .. })));
    let mut bad = good.clone();
    bad.secret_base64 = "not base64!".into();
    let Err(err) = bad.signer() else {
        panic!("bad base64 accepted")
    };
    assert!(err.to_string().contains("base64"), "{err}");
    let mut bad = good.clone();
    bad.secret_base64 = String::new();
    assert!(bad.signer().is_err());

    let dbg = format!("{good:?}");
    assert!(
        !dbg.contains(&good.secret_base64) && dbg.contains("redacted"),
        "{dbg}"
    );
}

// ------------------------------------------- scripted in-process primaries

type Script = Arc<dyn Fn(&Message) -> Vec<Message> + Send + Sync>;

/// A TCP primary on 127.0.0.1 that answers each request with the messages
/// `script` returns (ids fixed up), then closes the connection.
async fn scripted_primary(script: Script) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let script = script.clone();
            tokio::spawn(async move {
                if let Ok(Some(q)) = frame::read(&mut conn).await {
                    let query = Message::from_vec(&q).unwrap();
                    for mut m in script(&query) {
                        m.metadata.id = query.id;
                        if frame::write(&mut conn, &m.to_vec().unwrap()).await.is_err() {
                            return;
                        }
                    }
                }
                // Dropping `conn` closes the connection.
            });
        }
    });
    (addr, task)
}

fn reply(query: &Message, answers: Vec<Record>) -> Message {
    let mut m = Message::response(query.id, OpCode::Query);
    m.metadata.authoritative = true;
    m.add_queries(query.queries.clone());
    m.add_answers(answers);
    m
}

fn source(primary: SocketAddr) -> XfrSource {
    XfrSource {
        primary,
        zone: name("rpz.test"),
        tsig: None,
    }
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn ixfr_refused_falls_back_to_axfr() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        match q.queries[0].query_type() {
            RecordType::IXFR => {
                let mut m = reply(q, vec![]);
                m.metadata.response_code = ResponseCode::NotImp;
                vec![m]
            }
            // Two messages, to exercise multi-message reads.
            _ => vec![
                reply(q, vec![soa(8), rule("a")]),
                reply(q, vec![rule("b"), soa(8)]),
            ],
        }
    }))
    .await;
    let out = source(addr).transfer(Some(5), T).await.unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 8);
    assert_eq!(snap.records, vec![soa(8), rule("a"), rule("b")]);
    task.abort();
}

#[tokio::test]
async fn error_rcode_is_reported_with_a_hint() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        let mut m = reply(q, vec![]);
        m.metadata.response_code = ResponseCode::Refused;
        vec![m]
    }))
    .await;
    let err = source(addr).transfer(None, T).await.unwrap_err();
    assert!(
        matches!(
            err,
            XfrError::Rcode {
                rcode: ResponseCode::Refused,
                query: RecordType::AXFR,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("ACL") && msg.contains("rpz.test"), "{msg}");
    task.abort();
}

#[tokio::test]
async fn wrong_question_and_early_close_are_rejected() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        let mut m = reply(q, vec![soa(1), rule("a"), soa(1)]);
        m.queries[0].set_name(name("other.test."));
        vec![m]
    }))
    .await;
    let err = source(addr).transfer(None, T).await.unwrap_err();
    assert!(
        matches!(&err, XfrError::Malformed { reason, .. } if reason.contains("other.test")),
        "{err:?}"
    );
    task.abort();

    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        vec![reply(q, vec![soa(1), rule("a")])]
    }))
    .await;
    let err = source(addr).transfer(None, T).await.unwrap_err();
    assert!(
        matches!(&err, XfrError::Malformed { reason, .. } if reason.contains("closed before")),
        "{err:?}"
    );
    task.abort();
}

#[tokio::test]
async fn stalled_primary_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (_conn, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let start = std::time::Instant::now();
    let err = source(addr)
        .transfer(None, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Timeout { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    task.abort();
}

#[tokio::test]
async fn unsigned_answer_to_signed_request_is_rejected() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        vec![reply(q, vec![soa(1), rule("a"), soa(1)])]
    }))
    .await;
    let mut src = source(addr);
    src.tsig = Some(key("xfr-key.", b"0123456789abcdef"));
    let err = src.transfer(None, T).await.unwrap_err();
    assert!(matches!(err, XfrError::Tsig { .. }), "{err:?}");
    task.abort();
}

#[tokio::test]
async fn soa_query_falls_back_to_tcp_when_truncated() {
    // UDP and TCP on the same port: UDP always answers TC.
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(addr).await.unwrap();
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let q = Message::from_vec(&buf[..n]).unwrap();
            let mut m = reply(&q, vec![]);
            m.metadata.truncation = true;
            udp.send_to(&m.to_vec().unwrap(), from).await.unwrap();
        }
    });
    let tcp_task = tokio::spawn(async move {
        let (mut conn, _) = tcp.accept().await.unwrap();
        let q = Message::from_vec(&frame::read(&mut conn).await.unwrap().unwrap()).unwrap();
        frame::write(&mut conn, &reply(&q, vec![soa(31)]).to_vec().unwrap())
            .await
            .unwrap();
    });
    assert_eq!(source(addr).soa_serial(T).await.unwrap(), 31);
    udp_task.abort();
    tcp_task.abort();
}

#[tokio::test]
async fn soa_query_requires_authority() {
    let (addr, task) = scripted_primary(Arc::new(|q: &Message| {
        let mut m = reply(q, vec![soa(4)]);
        m.metadata.authoritative = false;
        vec![m]
    }))
    .await;
    // Nothing listens on UDP there: UDP times out (half the budget), TCP
    // answers without AA.
    let err = source(addr)
        .soa_serial(Duration::from_millis(600))
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::NotAuthoritative { .. }), "{err:?}");
    task.abort();
}

// ------------------------------------------------------------ real knotd

const ZONE: &str = "rpz.test.";
const TSIG_ZONE: &str = "tsig.test.";
const NOIXFR_ZONE: &str = "noixfr.test.";
const KEY_NAME: &str = "xfr-key.";
const KEY_SECRET: &[u8] = b"kidsafe-dns test tsig secret 32b";
const BIG_ZONE_RULES: usize = 3000;

fn zone_file(origin: &str, serial: u32, rules: usize) -> String {
    let mut z = format!(
        "$ORIGIN {origin}\n$TTL 300\n\
         @ 3600 IN SOA localhost. hostmaster.localhost. {serial} 3600 600 864000 60\n\
         @ NS localhost.\n\
         bad.example CNAME .\n\
         *.bad.example CNAME .\n\
         adult.example CNAME .\n\
         passthru.example CNAME rpz-passthru.\n\
         32.1.2.0.192.rpz-ip CNAME .\n"
    );
    for i in 0..rules {
        z.push_str(&format!("host{i}.blocked-by-kidsafe.example CNAME .\n"));
    }
    z
}

/// Path of a system tool, looking in sbin directories too (not always on a
/// non-root PATH).
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A knotd on 127.0.0.1:<free port> in a temp dir; killed on drop.
struct Knot {
    child: Child,
    dir: tempfile::TempDir,
    conf: PathBuf,
    knotc: PathBuf,
    addr: SocketAddr,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Knot {
    /// Starts knotd, or returns `None` (after a notice) if it is not
    /// installed. With `KIDSAFE_REQUIRE_KNOT=1` a missing knotd fails the test.
    async fn start(test: &str, notify_to: Option<SocketAddr>) -> Option<Knot> {
        let (Some(knotd), Some(knotc)) = (find_tool("knotd"), find_tool("knotc")) else {
            if std::env::var_os("KIDSAFE_REQUIRE_KNOT").is_some_and(|v| v == "1") {
                panic!("{test}: knotd/knotc not installed and KIDSAFE_REQUIRE_KNOT=1");
            }
            eprintln!("{test}: SKIPPED, knotd/knotc not installed (apt-get install knot)");
            return None;
        };
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let knot = Self::spawn(&knotd, &knotc, notify_to);
            if knot.wait_ready().await {
                return Some(knot);
            }
            last_log = knot.log();
        }
        panic!("{test}: knotd did not come up; last log:\n{last_log}");
    }

    fn spawn(knotd: &Path, knotc: &Path, notify_to: Option<SocketAddr>) -> Knot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        std::fs::write(d.join("rpz.test.zone"), zone_file(ZONE, 100, 0)).unwrap();
        std::fs::write(
            d.join("tsig.test.zone"),
            zone_file(TSIG_ZONE, 200, BIG_ZONE_RULES),
        )
        .unwrap();
        std::fs::write(d.join("noixfr.test.zone"), zone_file(NOIXFR_ZONE, 300, 0)).unwrap();
        let notify = match notify_to {
            Some(a) => format!(
                "remote:\n  - id: listener\n    address: {}@{}\n",
                a.ip(),
                a.port()
            ),
            None => String::new(),
        };
        let zone_notify = if notify_to.is_some() {
            "    notify: listener\n"
        } else {
            ""
        };
        let conf = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{d}/knot.sock"
log:
  - target: "{d}/knotd.log"
    any: info
database:
    storage: "{d}"
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {secret}
{notify}acl:
  - id: open
    address: 127.0.0.0/8
    action: transfer
  - id: signed
    address: 127.0.0.0/8
    key: {KEY_NAME}
    action: transfer
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    serial-policy: increment
zone:
  - domain: {ZONE}
    file: rpz.test.zone
    acl: open
{zone_notify}  - domain: {TSIG_ZONE}
    file: tsig.test.zone
    acl: signed
  - domain: {NOIXFR_ZONE}
    file: noixfr.test.zone
    acl: open
    provide-ixfr: off
"#,
            d = d.display(),
            secret = data_encoding::BASE64.encode(KEY_SECRET),
        );
        let conf_path = d.join("knot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("knotd.stderr")).unwrap())
            .spawn()
            .expect("spawn knotd");
        Knot {
            child,
            dir,
            conf: conf_path,
            knotc: knotc.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    async fn wait_ready(&self) -> bool {
        let src = self.source(ZONE, None);
        for _ in 0..100 {
            if src.soa_serial(Duration::from_millis(200)).await.is_ok() {
                return true;
            }
            if let Ok(Some(_)) = self.child_exited() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn child_exited(&self) -> std::io::Result<Option<()>> {
        // `try_wait` needs &mut; probing the pid is enough here.
        let alive = Path::new(&format!("/proc/{}", self.child.id())).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
                .unwrap_or_default()
                .contains(") Z ");
        Ok(if alive { None } else { Some(()) })
    }

    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("knotd.log"), read("knotd.stderr"))
    }

    fn source(&self, zone: &str, tsig: Option<TsigKey>) -> XfrSource {
        XfrSource {
            primary: self.addr,
            zone: name(zone),
            tsig,
        }
    }

    fn knotc(&self, args: &[&str]) {
        let out = Command::new(&self.knotc)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("run knotc");
        assert!(
            out.status.success(),
            "knotc {args:?} failed: {}{}\nknotd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// One transaction: `(owner, type, rdata)` to add and to remove.
    fn edit(&self, zone: &str, add: &[(&str, &str, &str)], remove: &[(&str, &str, &str)]) {
        self.knotc(&["zone-begin", zone]);
        for (owner, rtype, rdata) in add {
            self.knotc(&["zone-set", zone, owner, "300", rtype, rdata]);
        }
        for (owner, rtype, rdata) in remove {
            self.knotc(&["zone-unset", zone, owner, rtype, rdata]);
        }
        self.knotc(&["zone-commit", zone]);
    }

    /// Waits until the primary serves `serial` (commits apply asynchronously).
    async fn wait_serial(&self, zone: &str, serial: u32) {
        let src = self.source(zone, None);
        for _ in 0..100 {
            if src.soa_serial(Duration::from_millis(500)).await.ok() == Some(serial) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{zone} never reached serial {serial}; log:\n{}", self.log());
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP at the time of the call.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn rule_owner(owner: &str, zone: &str) -> Name {
    name(&format!("{owner}.{zone}"))
}

#[tokio::test]
async fn knot_axfr_gets_all_records_and_serial() {
    let Some(knot) = Knot::start("knot_axfr_gets_all_records_and_serial", None).await else {
        return;
    };
    let src = knot.source(ZONE, None);
    assert_eq!(src.soa_serial(T).await.unwrap(), 100);
    let out = src.transfer(None, T).await.unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 100);
    assert_eq!(snap.refresh, Duration::from_secs(3600));
    assert_eq!(snap.retry, Duration::from_secs(600));
    assert_eq!(snap.records[0].record_type(), RecordType::SOA);
    // SOA, NS and five rules.
    assert_eq!(snap.records.len(), 7, "{:#?}", snap.records);
    let owners: Vec<String> = snap.records.iter().map(|r| r.name.to_ascii()).collect();
    for expected in [
        "bad.example.rpz.test.",
        "*.bad.example.rpz.test.",
        "adult.example.rpz.test.",
        "passthru.example.rpz.test.",
        "32.1.2.0.192.rpz-ip.rpz.test.",
    ] {
        assert!(
            owners.iter().any(|o| o == expected),
            "{expected} in {owners:?}"
        );
    }
    let passthru = snap
        .records
        .iter()
        .find(|r| r.name == name("passthru.example.rpz.test."))
        .unwrap();
    assert_eq!(passthru.data, RData::CNAME(CNAME(name("rpz-passthru."))));
    assert!(
        snap.records
            .iter()
            .all(|r| r.name.is_fqdn() && zone().zone_of(&r.name)),
        "owners are absolute and inside the zone"
    );

    // A zone the server does not have.
    let err = knot
        .source("missing.test.", None)
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Rcode { .. }), "{err:?}");
}

#[tokio::test]
async fn knot_ixfr_add_delete_and_up_to_date() {
    let Some(knot) = Knot::start("knot_ixfr_add_delete_and_up_to_date", None).await else {
        return;
    };
    let src = knot.source(ZONE, None);
    let XfrOutcome::Full(mut snap) = src.transfer(None, T).await.unwrap() else {
        panic!("expected AXFR")
    };
    assert_eq!(snap.serial, 100);

    // Up to date.
    assert_eq!(
        src.transfer(Some(100), T).await.unwrap(),
        XfrOutcome::UpToDate
    );

    // Add one rule: serial 100 -> 101 (serial-policy increment).
    knot.edit(ZONE, &[("new.example.rpz.test.", "CNAME", ".")], &[]);
    knot.wait_serial(ZONE, 101).await;
    let out = src.transfer(Some(100), T).await.unwrap();
    let XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(serial, 101);
    assert_eq!(non_soa(&deleted), vec![]);
    let added_rules = non_soa(&added);
    assert_eq!(added_rules.len(), 1, "{added_rules:?}");
    assert_eq!(added_rules[0].name, rule_owner("new.example", ZONE));
    assert_eq!(added_rules[0].data, RData::CNAME(CNAME(Name::root())));
    assert_eq!(deleted.iter().find_map(soa_of).unwrap().serial, 100);
    assert_eq!(added.iter().find_map(soa_of).unwrap().serial, 101);
    apply(&mut snap, serial, &deleted, &added);

    // Delete it again: 101 -> 102.
    knot.edit(ZONE, &[], &[("new.example.rpz.test.", "CNAME", ".")]);
    knot.wait_serial(ZONE, 102).await;
    let out = src.transfer(Some(101), T).await.unwrap();
    let XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(serial, 102);
    assert_eq!(non_soa(&added), vec![]);
    let deleted_rules = non_soa(&deleted);
    assert_eq!(deleted_rules.len(), 1);
    assert_eq!(deleted_rules[0].name, rule_owner("new.example", ZONE));
    apply(&mut snap, serial, &deleted, &added);

    // Two sequences at once (100 -> 102) net to nothing but the SOA.
    let out = src.transfer(Some(100), T).await.unwrap();
    let XfrOutcome::Incremental { deleted, added, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(non_soa(&deleted), vec![]);
    assert_eq!(non_soa(&added), vec![]);

    // Another change, then the incrementally maintained snapshot must equal a
    // fresh AXFR.
    knot.edit(
        ZONE,
        &[("other.example.rpz.test.", "A", "192.0.2.1")],
        &[("adult.example.rpz.test.", "CNAME", ".")],
    );
    knot.wait_serial(ZONE, 103).await;
    let XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    } = src.transfer(Some(102), T).await.unwrap()
    else {
        panic!("expected IXFR")
    };
    apply(&mut snap, serial, &deleted, &added);
    let XfrOutcome::Full(fresh) = src.transfer(None, T).await.unwrap() else {
        panic!("expected AXFR")
    };
    assert_eq!(snap.serial, 103);
    assert_eq!(snap.serial, fresh.serial);
    assert_eq!(snap.records[0], fresh.records[0]);
    assert_eq!(sorted_keys(&snap.records), sorted_keys(&fresh.records));

    // Asking from a serial newer than the primary's.
    let err = src.transfer(Some(500), T).await.unwrap_err();
    assert!(
        matches!(
            err,
            XfrError::SerialBehind {
                have: 500,
                primary_serial: 103,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn knot_ixfr_answered_with_axfr_when_provide_ixfr_is_off() {
    let Some(knot) = Knot::start("knot_ixfr_answered_with_axfr", None).await else {
        return;
    };
    knot.edit(
        NOIXFR_ZONE,
        &[("n.example.noixfr.test.", "CNAME", ".")],
        &[],
    );
    knot.wait_serial(NOIXFR_ZONE, 301).await;
    let out = knot
        .source(NOIXFR_ZONE, None)
        .transfer(Some(300), T)
        .await
        .unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 301);
    assert_eq!(snap.records.len(), 8);
}

#[tokio::test]
async fn knot_tsig_right_key_works_wrong_key_fails() {
    let Some(knot) = Knot::start("knot_tsig_right_key_works_wrong_key_fails", None).await else {
        return;
    };
    let right = key(KEY_NAME, KEY_SECRET);
    let src = knot.source(TSIG_ZONE, Some(right.clone()));

    // Signed SOA query (UDP) and a multi-message signed AXFR.
    assert_eq!(src.soa_serial(T).await.unwrap(), 200);
    let out = src.transfer(None, T).await.unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 200);
    assert_eq!(snap.records.len(), 7 + BIG_ZONE_RULES);

    // Signed IXFR.
    knot.edit(TSIG_ZONE, &[("t.example.tsig.test.", "CNAME", ".")], &[]);
    knot.wait_serial(TSIG_ZONE, 201).await;
    let out = src.transfer(Some(200), T).await.unwrap();
    let XfrOutcome::Incremental { serial, added, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(serial, 201);
    assert_eq!(non_soa(&added).len(), 1);

    // Unsigned: the ACL requires the key.
    let err = knot
        .source(TSIG_ZONE, None)
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Rcode { .. }), "unsigned: {err:?}");

    // Right name, wrong secret.
    let wrong_secret = key(KEY_NAME, b"not the secret the primary knows!");
    let err = knot
        .source(TSIG_ZONE, Some(wrong_secret.clone()))
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            XfrError::Rcode {
                rcode: ResponseCode::NotAuth,
                tsig_error: Some(_),
                ..
            }
        ),
        "wrong secret: {err:?}"
    );
    assert!(err.to_string().contains("TSIG"), "{err}");
    let err = knot
        .source(TSIG_ZONE, Some(wrong_secret))
        .soa_serial(T)
        .await
        .unwrap_err();
    assert!(
        matches!(err, XfrError::Rcode { .. }),
        "wrong secret SOA: {err:?}"
    );

    // Unknown key name.
    let err = knot
        .source(TSIG_ZONE, Some(key("other-key.", KEY_SECRET)))
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            XfrError::Rcode {
                rcode: ResponseCode::NotAuth,
                ..
            }
        ),
        "unknown key: {err:?}"
    );
}

/// Receives one NOTIFY over UDP or TCP (Knot 3.2 sends it over TCP), acks
/// it the same way, and returns the parsed message.
async fn receive_notify(udp: &UdpSocket, tcp: &TcpListener, deadline: Instant) -> Option<Message> {
    let mut buf = vec![0u8; 65535];
    tokio::select! {
        r = timeout_at(deadline, udp.recv_from(&mut buf)) => {
            let (n, from) = r.ok()?.unwrap();
            let ack = notify_response(&buf[..n]).expect("a NOTIFY");
            udp.send_to(&ack, from).await.unwrap();
            Message::from_vec(&buf[..n]).ok()
        }
        r = timeout_at(deadline, tcp.accept()) => {
            let (mut conn, _) = r.ok()?.unwrap();
            let q = frame::read(&mut conn).await.unwrap().unwrap();
            let ack = notify_response(&q).expect("a NOTIFY");
            frame::write(&mut conn, &ack).await.unwrap();
            Message::from_vec(&q).ok()
        }
    }
}

#[tokio::test]
async fn knot_notify_is_recognised_and_acked() {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen_addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(listen_addr).await.unwrap();
    let Some(knot) = Knot::start("knot_notify_is_recognised_and_acked", Some(listen_addr)).await
    else {
        return;
    };
    knot.edit(ZONE, &[("notified.example.rpz.test.", "CNAME", ".")], &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msg = receive_notify(&udp, &tcp, deadline)
            .await
            .unwrap_or_else(|| panic!("no NOTIFY from knotd; log:\n{}", knot.log()));
        assert!(is_notify_for(&msg, &zone()), "{msg:?}");
        // Knot notifies at load (serial 100) and after the edit (101).
        if notify_serial(&msg) == Some(101) {
            break;
        }
    }
    // Knot logs a successful notify once our ack arrives.
    for _ in 0..100 {
        let log = knot.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("notify, outgoing") && l.contains("serial 101"))
        {
            assert!(!line.contains("failed"), "{line}");
            eprintln!("knotd: {line}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("knotd did not log the NOTIFY ack; log:\n{}", knot.log());
}
