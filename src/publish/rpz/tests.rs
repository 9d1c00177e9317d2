//! The primary over loopback, checked with our own secondary (`feed::xfr`, which verifies
//! every answer message's TSIG with hickory's verifier) and with raw messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::dns::frame;
use crate::feed::xfr::{
    TsigKey, XfrError, XfrOutcome, XfrSource, apply, is_notify_for, notify_response,
};
use crate::publish::memory::MemoryLists;

const SECRET: &str = "a2lkc2FmZS1kbnMgdGVzdCB0c2lnIHNlY3JldCAzMmI=";

fn key(secret: &str) -> TsigKey {
    TsigKey {
        name: "xfr-key.".into(),
        algorithm: "hmac-sha256".into(),
        secret_base64: secret.into(),
    }
}

fn config(tsig: Option<TsigKey>, notify: Vec<SocketAddr>) -> PublishConfig {
    PublishConfig {
        minisign_key_file: "unused".into(),
        xfr_listen: vec!["127.0.0.1:0".parse().unwrap()],
        notify,
        tsig_key: tsig,
        xfr_allow: Vec::new(),
        zone_suffix: "rpz.kidsafe.".into(),
        journal_keep: 100,
    }
}

struct Running {
    addr: SocketAddr,
    stats: Arc<RpzStats>,
    lists: Arc<MemoryLists>,
    _stop: tokio_util::sync::DropGuard,
}

async fn start(cfg: PublishConfig, journal_keep: usize) -> Running {
    let lists = Arc::new(MemoryLists::new(&["gambling", "allow"], journal_keep));
    let stop = CancellationToken::new();
    let primary = serve(&cfg, lists.clone(), stop.clone()).await.unwrap();
    Running {
        addr: primary.addrs[0],
        stats: primary.stats,
        lists,
        _stop: stop.drop_guard(),
    }
}

fn source(addr: SocketAddr, zone: &str, tsig: Option<TsigKey>) -> XfrSource {
    XfrSource {
        primary: addr,
        zone: Name::from_ascii(zone).unwrap(),
        tsig,
    }
}

const T: Duration = Duration::from_secs(10);

/// Owners of the CNAME records, relative to the zone, with their targets.
fn rules(records: &[Record], zone: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::CNAME(c) => Some((
                r.name
                    .to_ascii()
                    .strip_suffix(&format!(".{zone}"))
                    .unwrap_or("?")
                    .to_owned(),
                c.0.to_ascii(),
            )),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn axfr_then_ixfr_then_full_when_the_journal_is_too_short() {
    let p = start(config(None, vec![]), 3).await;
    p.lists.add("gambling", "casino.example").unwrap();
    p.lists.add("allow", "good.example").unwrap();
    let gambling = source(p.addr, "gambling.rpz.kidsafe.", None);
    let XfrOutcome::Full(mut snap) = gambling.transfer(None, T).await.unwrap() else {
        panic!("AXFR gives the whole zone")
    };
    assert_eq!(snap.serial, 2);
    assert_eq!(snap.refresh, Duration::from_secs(60));
    assert_eq!(
        rules(&snap.records, "gambling.rpz.kidsafe."),
        [
            ("*.casino.example".into(), ".".into()),
            ("casino.example".into(), ".".into())
        ]
    );
    assert!(
        snap.records
            .iter()
            .any(|r| r.record_type() == RecordType::NS)
    );
    let allow = source(p.addr, "allow.rpz.kidsafe.", None);
    let XfrOutcome::Full(a) = allow.transfer(None, T).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        rules(&a.records, "allow.rpz.kidsafe."),
        [
            ("*.good.example".into(), "rpz-passthru.".into()),
            ("good.example".into(), "rpz-passthru.".into())
        ]
    );
    assert_eq!(gambling.soa_serial(T).await.unwrap(), 2);

    // Up to date: the SOA alone.
    assert_eq!(
        gambling.transfer(Some(2), T).await.unwrap(),
        XfrOutcome::UpToDate
    );
    assert_eq!(p.stats.ixfr_soa_only.load(Ordering::Relaxed), 1);

    // Two changes: two difference sequences, folded by the client.
    p.lists.add("gambling", "bet.example").unwrap();
    p.lists.remove("gambling", "casino.example").unwrap();
    let outcome = gambling.transfer(Some(2), T).await.unwrap();
    let XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    } = &outcome
    else {
        panic!("IXFR from 2: {outcome:?}")
    };
    assert_eq!(*serial, 5);
    assert_eq!(rules(deleted, "gambling.rpz.kidsafe.").len(), 2);
    assert_eq!(rules(added, "gambling.rpz.kidsafe.").len(), 2);
    apply(&mut snap, *serial, deleted, added);
    assert_eq!(snap.serial, 5);
    assert_eq!(
        rules(&snap.records, "gambling.rpz.kidsafe."),
        [
            ("*.bet.example".into(), ".".into()),
            ("bet.example".into(), ".".into())
        ]
    );
    assert_eq!(p.stats.ixfr_incremental.load(Ordering::Relaxed), 1);

    // The journal keeps 3 changes: from serial 1 it no longer reaches, so the whole zone.
    p.lists.add("gambling", "dice.example").unwrap();
    p.lists.add("gambling", "slots.example").unwrap();
    let XfrOutcome::Full(full) = gambling.transfer(Some(1), T).await.unwrap() else {
        panic!("IXFR from before the journal is a full transfer")
    };
    assert_eq!(full.serial, 7);
    assert_eq!(rules(&full.records, "gambling.rpz.kidsafe.").len(), 6);
    assert_eq!(p.stats.ixfr_full.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_large_zone_streams_in_many_messages_each_within_64k_and_all_signed() {
    let p = start(config(Some(key(SECRET)), vec![]), 100).await;
    let names: Vec<String> = (0..20_000)
        .map(|i| format!("host-{i:05}.example"))
        .collect();
    p.lists.load("gambling", &names).unwrap();

    // Our secondary checks every message's TSIG, chained (hickory's TSigVerifier).
    let signed = source(p.addr, "gambling.rpz.kidsafe.", Some(key(SECRET)));
    let XfrOutcome::Full(snap) = signed.transfer(None, T).await.unwrap() else {
        panic!()
    };
    assert_eq!(rules(&snap.records, "gambling.rpz.kidsafe.").len(), 40_000);

    // Raw: count the messages and their sizes.
    let (sizes, _) = raw_tcp(p.addr, &axfr_request(Some(&key(SECRET)))).await;
    assert!(sizes.len() > 5, "{} messages", sizes.len());
    assert!(sizes.iter().all(|&s| s <= 65_535));
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&s| s > 30_000),
        "messages are filled: {sizes:?}"
    );
    assert_eq!(p.stats.axfr.load(Ordering::Relaxed), 2);
}

fn axfr_request(key: Option<&TsigKey>) -> Vec<u8> {
    let zone = Name::from_ascii("gambling.rpz.kidsafe.").unwrap();
    let mut msg = Message::query();
    let mut q = Query::query(zone, RecordType::AXFR);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    if let Some(k) = key {
        msg.finalize(&k.signer().unwrap(), crate::clock::now_unix())
            .unwrap();
    }
    msg.to_vec().unwrap()
}

/// Sends `request` over TCP and reads the answer messages until the final SOA (or one
/// error message): their sizes, and the first message.
async fn raw_tcp(addr: SocketAddr, request: &[u8]) -> (Vec<usize>, Message) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    frame::write(&mut conn, request).await.unwrap();
    let mut sizes = Vec::new();
    let mut first = None;
    let mut soas = 0;
    loop {
        let m = frame::read(&mut conn).await.unwrap().expect("a message");
        sizes.push(m.len());
        let msg = Message::from_vec(&m).unwrap();
        soas += msg
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let done = msg.response_code != ResponseCode::NoError || soas >= 2;
        first.get_or_insert(msg);
        if done {
            return (sizes, first.unwrap());
        }
    }
}

#[tokio::test]
async fn tsig_missing_wrong_or_unknown_is_refused_and_counted() {
    let p = start(config(Some(key(SECRET)), vec![]), 100).await;
    p.lists.add("gambling", "casino.example").unwrap();
    let zone = "gambling.rpz.kidsafe.";

    let unsigned = source(p.addr, zone, None);
    match unsigned.transfer(None, T).await {
        Err(XfrError::Rcode { rcode, .. }) => assert_eq!(rcode, ResponseCode::Refused),
        other => panic!("unsigned AXFR: {other:?}"),
    }
    assert_eq!(p.stats.refused_unsigned.load(Ordering::Relaxed), 1);
    // SOA queries need no TSIG.
    assert_eq!(unsigned.soa_serial(T).await.unwrap(), 2);

    let wrong = source(
        p.addr,
        zone,
        Some(key("d3JvbmcgdHNpZyBzZWNyZXQgZm9yIHRoZSB0ZXN0cw==")),
    );
    match wrong.transfer(None, T).await {
        Err(XfrError::Rcode {
            rcode, tsig_error, ..
        }) => {
            assert_eq!(rcode, ResponseCode::NotAuth);
            assert_eq!(tsig_error.as_deref(), Some("BadSig"));
        }
        other => panic!("wrong secret: {other:?}"),
    }
    let mut other_name = key(SECRET);
    other_name.name = "other-key.".into();
    match source(p.addr, zone, Some(other_name))
        .transfer(None, T)
        .await
    {
        Err(XfrError::Rcode {
            rcode, tsig_error, ..
        }) => {
            assert_eq!(rcode, ResponseCode::NotAuth);
            assert_eq!(tsig_error.as_deref(), Some("BadKey"));
        }
        other => panic!("unknown key: {other:?}"),
    }
    assert_eq!(p.stats.refused_bad_tsig.load(Ordering::Relaxed), 2);

    let right = source(p.addr, zone, Some(key(SECRET)));
    assert!(matches!(
        right.transfer(None, T).await,
        Ok(XfrOutcome::Full(_))
    ));
    assert_eq!(
        right.soa_serial(T).await.unwrap(),
        2,
        "signed SOA, signed answer"
    );
}

#[tokio::test]
async fn addresses_outside_xfr_allow_and_unknown_zones_are_refused() {
    let mut cfg = config(None, vec![]);
    cfg.xfr_allow = vec!["127.0.0.2/32".parse().unwrap()];
    let p = start(cfg, 100).await;
    match source(p.addr, "gambling.rpz.kidsafe.", None)
        .transfer(None, T)
        .await
    {
        Err(XfrError::Rcode { rcode, .. }) => assert_eq!(rcode, ResponseCode::Refused),
        other => panic!("{other:?}"),
    }
    assert_eq!(p.stats.refused_address.load(Ordering::Relaxed), 1);

    let p = start(config(None, vec![]), 100).await;
    for zone in [
        "adult.rpz.kidsafe.",
        "rpz.kidsafe.",
        "x.gambling.rpz.kidsafe.",
        "example.",
    ] {
        match source(p.addr, zone, None).transfer(None, T).await {
            Err(XfrError::Rcode { rcode, .. }) => {
                assert_eq!(rcode, ResponseCode::NotAuth, "{zone}")
            }
            other => panic!("{zone}: {other:?}"),
        }
    }
    assert_eq!(p.stats.refused_unknown_zone.load(Ordering::Relaxed), 4);
    // Garbage gets FORMERR (its header is readable) and the server keeps serving.
    let answer = udp(p.addr, &[0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff]).await;
    assert_eq!(answer.response_code, ResponseCode::FormErr);
    assert_eq!(answer.id, 0x1234);
    assert_eq!(
        source(p.addr, "gambling.rpz.kidsafe.", None)
            .soa_serial(T)
            .await
            .unwrap(),
        1
    );
}

async fn udp(addr: SocketAddr, bytes: &[u8]) -> Message {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let (len, _) = tokio::time::timeout(T, s.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    Message::from_vec(&buf[..len]).unwrap()
}

fn ixfr_request(have: u32) -> Vec<u8> {
    let zone = Name::from_ascii("gambling.rpz.kidsafe.").unwrap();
    let mut msg = Message::query();
    msg.add_query(Query::query(zone.clone(), RecordType::IXFR));
    let soa = SOA::new(zone.clone(), zone.clone(), have, 0, 0, 0, 0);
    msg.add_authority(Record::from_rdata(zone, 0, RData::SOA(soa)));
    msg.to_vec().unwrap()
}

#[tokio::test]
async fn ixfr_over_udp_fits_or_is_the_soa_alone() {
    let p = start(config(None, vec![]), 100).await;
    p.lists.add("gambling", "casino.example").unwrap();
    let answer = udp(p.addr, &ixfr_request(1)).await;
    assert!(answer.authoritative);
    // SOA 2, SOA 1, SOA 2, two records, SOA 2.
    assert_eq!(answer.answers.len(), 6, "{answer:?}");
    for i in 0..20 {
        p.lists
            .add("gambling", &format!("a-long-enough-name-{i}.example"))
            .unwrap();
    }
    let answer = udp(p.addr, &ixfr_request(1)).await;
    assert_eq!(answer.answers.len(), 1, "does not fit: the SOA alone");
    assert!(matches!(&answer.answers[0].data, RData::SOA(s) if s.serial == 22));
    // AXFR has no UDP form.
    let answer = udp(p.addr, &axfr_request(None)).await;
    assert_eq!(answer.response_code, ResponseCode::NotImp);
}

#[tokio::test]
async fn notify_goes_out_on_every_change_signed_and_is_retried_until_acknowledged() {
    let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = secondary.local_addr().unwrap();
    let p = start(config(Some(key(SECRET)), vec![target]), 100).await;
    let zone = Name::from_ascii("gambling.rpz.kidsafe.").unwrap();
    let mut buf = vec![0u8; 4096];
    let mut next = async || {
        let (len, from) = tokio::time::timeout(T, secondary.recv_from(&mut buf))
            .await
            .expect("a NOTIFY")
            .unwrap();
        (buf[..len].to_vec(), from)
    };
    // At start: one per zone. Acknowledge both.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (bytes, from) = next().await;
        let msg = Message::from_vec(&bytes).unwrap();
        assert!(msg.signature().is_some(), "signed");
        seen.push(msg.queries[0].name().to_ascii());
        secondary
            .send_to(&notify_response(&bytes).unwrap(), from)
            .await
            .unwrap();
    }
    seen.sort();
    assert_eq!(seen, ["allow.rpz.kidsafe.", "gambling.rpz.kidsafe."]);

    // (A change replaces a NOTIFY still waiting for its acknowledgement: let these finish.)
    for _ in 0..50 {
        if p.stats.notify_acked.load(Ordering::Relaxed) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.lists.add("gambling", "casino.example").unwrap();
    // Not acknowledged the first time: sent again.
    let (first, _) = next().await;
    let msg = Message::from_vec(&first).unwrap();
    assert!(is_notify_for(&msg, &zone));
    assert_eq!(crate::feed::xfr::notify_serial(&msg), Some(2));
    let signer = key(SECRET).signer().unwrap();
    signer.verify_message_byte(&first, None, true).unwrap();
    let (again, from) = next().await;
    assert!(is_notify_for(&Message::from_vec(&again).unwrap(), &zone));
    secondary
        .send_to(&notify_response(&again).unwrap(), from)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        p.stats.notify_acked.load(Ordering::Relaxed),
        3,
        "{:?}",
        p.stats
    );
    assert!(p.stats.notify_sent.load(Ordering::Relaxed) >= 4);
}

#[test]
fn zone_names_and_records() {
    let zones = zone::Zones::new("RPZ.Kidsafe").unwrap();
    let z = zones.zone_of("gambling").unwrap();
    assert_eq!(z.to_ascii(), "gambling.rpz.kidsafe.");
    assert!(zones.zone_of("a.b").is_none());
    let lists = vec![("gambling".to_owned(), 7)];
    let asked = Name::from_ascii("GAMBLING.rpz.kidsafe.").unwrap();
    assert_eq!(zones.list_for(&asked, &lists), Some(&lists[0]));
    assert!(zone::Zones::new("").is_err());
    assert!(zone::Zones::new("bad..suffix").is_err());
    // 253 octets under a 21-octet zone does not fit in 255: left out, not an error.
    let long = format!("{}.example", vec!["a".repeat(60); 4].join("."));
    assert!(zone::name_records(&z, "gambling", &long).is_none());
    let [exact, wild] = zone::name_records(&z, "gambling", "casino.example").unwrap();
    assert_eq!(
        exact.name.to_ascii(),
        "casino.example.gambling.rpz.kidsafe."
    );
    assert_eq!(
        wild.name.to_ascii(),
        "*.casino.example.gambling.rpz.kidsafe."
    );
}
