//! The RPZ primary with a 1,000,000-name zone: AXFR time and size, then IXFR after 10 and
//! after 100 changes (its size must follow the change, not the zone).
//!
//! `cargo bench --bench rpz_transfer` (release build; prints a table). The primary and the
//! reader share the machine, so the times include both ends. `RPZ_BENCH_NAMES` changes the
//! zone size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use kidsafe_dns::dns::frame;
use kidsafe_dns::feed::xfr::{XfrOutcome, XfrSource};
use kidsafe_dns::publish::PublishConfig;
use kidsafe_dns::publish::memory::MemoryLists;
use kidsafe_dns::publish::rpz::serve;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const ZONE: &str = "gambling.rpz.kidsafe.";

/// What one raw transfer took.
struct Taken {
    time: Duration,
    bytes: usize,
    messages: usize,
    largest: usize,
}

/// Sends an AXFR (`have == None`) or IXFR request and reads until the answer's last SOA:
/// the apex SOA appears `soas` times in the answer (2 for AXFR).
async fn raw(addr: SocketAddr, have: Option<u32>) -> Taken {
    let zone = Name::from_ascii(ZONE).unwrap();
    let mut msg = Message::query();
    let qtype = if have.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let mut q = hickory_proto::op::Query::query(zone.clone(), qtype);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    if let Some(serial) = have {
        let soa = SOA::new(zone.clone(), zone.clone(), serial, 0, 0, 0, 0);
        msg.add_authority(Record::from_rdata(zone, 0, RData::SOA(soa)));
    }
    let start = Instant::now();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    frame::write(&mut conn, &msg.to_vec().unwrap())
        .await
        .unwrap();
    let (mut bytes, mut messages, mut largest) = (0, 0, 0);
    // AXFR: the answer ends at its second SOA (the reader decodes every message).
    let mut apex_soas = 0usize;
    // IXFR (small): decoded. The SOA serials in order, and whether the second record was
    // an SOA (difference sequences) or not (the whole zone).
    let mut serials: Vec<u32> = Vec::new();
    let mut records = 0usize;
    let mut incremental = true;
    loop {
        let m = frame::read(&mut conn).await.unwrap().expect("a message");
        bytes += m.len() + 2;
        messages += 1;
        largest = largest.max(m.len());
        if have.is_none() {
            apex_soas += Message::from_vec(&m)
                .unwrap()
                .answers
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .count();
            if apex_soas >= 2 {
                break;
            }
            continue;
        }
        for r in Message::from_vec(&m).unwrap().answers {
            records += 1;
            match &r.data {
                RData::SOA(s) => serials.push(s.serial),
                _ if records == 2 => incremental = false,
                _ => {}
            }
        }
        let done = if incremental {
            serials.len() >= 4
                && serials.len().is_multiple_of(2)
                && serials.last() == serials.first()
        } else {
            serials.len() >= 2
        } || (serials.len() == 1 && records == 1);
        if done {
            break;
        }
    }
    Taken {
        time: start.elapsed(),
        bytes,
        messages,
        largest,
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not ours means "not me".
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"rpz_transfer".contains(a.as_str()))
    {
        return;
    }
    let n: usize = std::env::var("RPZ_BENCH_NAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let lists = Arc::new(MemoryLists::new(&["gambling"], 1000));
        let t = Instant::now();
        lists
            .load(
                "gambling",
                (0..n).map(|i| format!("site-{i:07}.example-{}.test", i % 997)),
            )
            .unwrap();
        println!("loaded {n} names in {:?} (RSS {:.0} MiB)", t.elapsed(), rss_mib());
        let config = PublishConfig {
            minisign_key_file: "unused".into(),
            xfr_listen: vec!["127.0.0.1:0".parse().unwrap()],
            notify: vec![],
            tsig_key: None,
            xfr_allow: vec![],
            zone_suffix: "rpz.kidsafe.".into(),
            journal_keep: 1000,
        };
        let stop = CancellationToken::new();
        let primary = serve(&config, lists.clone(), stop.clone()).await.unwrap();
        let addr = primary.addrs[0];

        let rss_before = rss_mib();
        for round in 1..=3 {
            let a = raw(addr, None).await;
            println!(
                "AXFR {n} names (raw reader), round {round}: {:?}, {} bytes ({:.1} MiB), {} messages, largest {} B, {:.0} names/s",
                a.time,
                a.bytes,
                a.bytes as f64 / 1048576.0,
                a.messages,
                a.largest,
                n as f64 / a.time.as_secs_f64()
            );
        }
        println!(
            "RSS before AXFRs {rss_before:.0} MiB, peak {:.0} MiB (names held by the store + one snapshot copy)",
            peak_rss_mib()
        );
        let source = XfrSource {
            primary: addr,
            zone: Name::from_ascii(ZONE).unwrap(),
            tsig: None,
        };
        let t = Instant::now();
        let XfrOutcome::Full(snap) = source.transfer(None, Duration::from_secs(300)).await.unwrap() else {
            panic!("a full transfer")
        };
        println!(
            "AXFR with our secondary (parses and checks every record): {:?}, {} records",
            t.elapsed(),
            snap.records.len()
        );
        drop(snap);

        for changes in [10usize, 100] {
            let (before, _) = {
                let l = lists.clone();
                tokio::task::spawn_blocking(move || {
                    use kidsafe_dns::publish::PublishedLists;
                    l.snapshot("gambling").map(|(s, _)| (s, ()))
                })
                .await
                .unwrap()
                .unwrap()
            };
            for i in 0..changes {
                if i % 2 == 0 {
                    lists.add("gambling", &format!("new-{changes}-{i}.example")).unwrap();
                } else {
                    lists
                        .remove("gambling", &format!("site-{:07}.example-{}.test", i, i % 997))
                        .unwrap();
                }
            }
            let ix = raw(addr, Some(before)).await;
            let t = Instant::now();
            let outcome = source.transfer(Some(before), Duration::from_secs(60)).await.unwrap();
            let took = t.elapsed();
            let XfrOutcome::Incremental { deleted, added, .. } = outcome else {
                panic!("an incremental transfer")
            };
            println!(
                "IXFR after {changes} changes: {:?} (raw), {} bytes, {} messages; our secondary {:?}, {} deleted + {} added records (SOAs included)",
                ix.time, ix.bytes, ix.messages, took, deleted.len(), added.len()
            );
        }
        println!("primary counters: {:?}", primary.stats);
        stop.cancel();
    });
}
