//! Live swap: the compiled list is replaced while a client queries non-stop; no query is
//! lost and verdicts flip right after each swap. A corrupt replacement is refused and the
//! old list keeps serving.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hickory_net::client::ClientHandle;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use kidsafe_dns::lists::compile::{InlineRules, compile};
use kidsafe_dns::lists::rule::Rule;

/// Compiles a list blocking `blocked` (category adult) into `path`.
/// One test at a time: the SIGHUP test signals the whole process, and a SIGHUP makes a
/// server whose compiled list was published by hand recompile its configured sources
/// (CI saw the swap test's list replaced by its 5 sources mid-test).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn publish(path: &std::path::Path, blocked: &[&str]) {
    let inline = InlineRules {
        rules: blocked
            .iter()
            .map(|n| (Some("adult".to_owned()), Rule::block(*n)))
            .collect(),
    };
    compile(&[], &inline, path, &mut |_| {}).unwrap();
}

async fn is_blocked(c: &mut DnsClient, n: &str) -> bool {
    query(c, n, RecordType::A).await.metadata.response_code == ResponseCode::NXDomain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_the_list_under_load_loses_nothing_and_flips_verdicts() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], "mode = \"nxdomain\"", "").await;
    let compiled = k.compiled();

    // A client querying as fast as it can for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for task in 0..4 {
        let (stop, sent, failed, addr) = (stop.clone(), sent.clone(), failed.clone(), k.addr);
        load.push(tokio::spawn(async move {
            let mut c = udp_client(addr);
            let names = ["allowed.test.", "www.bad.test.", "innocent.test."];
            let mut i = task;
            while !stop.load(Ordering::Relaxed) {
                let n = names[i % names.len()];
                i += 1;
                match c
                    .query(name(n), hickory_proto::rr::DNSClass::IN, RecordType::A)
                    .await
                {
                    Ok(r)
                        if matches!(
                            r.metadata.response_code,
                            ResponseCode::NoError | ResponseCode::NXDomain
                        ) => {}
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let mut probe = udp_client(k.addr);
    assert!(!is_blocked(&mut probe, "innocent.test.").await);
    // Three swaps: innocent.test becomes blocked, allowed again, blocked again.
    for (round, block_it) in [true, false, true].into_iter().enumerate() {
        let list: Vec<&str> = if block_it {
            vec!["bad.test", "innocent.test"]
        } else {
            vec!["bad.test"]
        };
        publish(&compiled, &list);
        let since = Instant::now();
        loop {
            if is_blocked(&mut probe, "innocent.test.").await == block_it {
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "round {round}: verdict did not flip"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            is_blocked(&mut probe, "www.bad.test.").await,
            "round {round}"
        );
        assert_eq!(
            k.running.lists.current().manifest().entries,
            list.len() as u64
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // On a loaded CI box the swaps may finish early: keep the load on until it is real.
    let since = Instant::now();
    while sent.load(Ordering::Relaxed) < 1000 && since.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for h in load {
        h.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("{sent} queries during three swaps, {failed} failed");
    assert!(sent >= 1000, "only {sent} queries sent");
    assert_eq!(failed, 0);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn a_corrupt_or_truncated_replacement_is_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], "mode = \"nxdomain\"", "").await;
    let compiled = k.compiled();
    let serial = k.running.lists.current().manifest().serial;
    let mut c = udp_client(k.addr);

    // Truncate a copy of the good FST and rename it into place (the manifest stays).
    let bytes = std::fs::read(&compiled).unwrap();
    let tmp = compiled.with_extension("tmp");
    std::fs::write(&tmp, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::rename(&tmp, &compiled).unwrap();
    assert!(k.running.lists.reload().await.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        is_blocked(&mut c, "www.bad.test.").await,
        "old list still serving"
    );
    assert_eq!(k.running.lists.current().manifest().serial, serial);

    // Same size, one flipped byte: the checksum catches it.
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0x55;
    std::fs::write(&tmp, &flipped).unwrap();
    std::fs::rename(&tmp, &compiled).unwrap();
    assert!(k.running.lists.reload().await.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(is_blocked(&mut c, "www.bad.test.").await);
    assert_eq!(k.running.lists.current().manifest().serial, serial);

    // The good FST back, but a damaged Bloom filter beside it: refused too.
    std::fs::write(&tmp, &bytes).unwrap();
    std::fs::rename(&tmp, &compiled).unwrap();
    let bloom_path = kidsafe_dns::lists::manifest::bloom_path_for(&compiled);
    let mut bloom = std::fs::read(&bloom_path).unwrap();
    bloom[7] ^= 0x01;
    std::fs::write(&tmp, &bloom).unwrap();
    std::fs::rename(&tmp, &bloom_path).unwrap();
    let err = k.running.lists.reload().await.unwrap_err().to_string();
    assert!(err.contains("Bloom"), "{err}");
    assert!(is_blocked(&mut c, "www.bad.test.").await);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn sighup_recompiles_changed_sources_and_swaps() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], "mode = \"nxdomain\"", "").await;
    let mut c = udp_client(k.addr);
    assert!(!is_blocked(&mut c, "innocent.test.").await);
    // A school admin adds a name to a source list, then sends SIGHUP.
    tokio::time::sleep(Duration::from_millis(1100)).await; // coarse mtimes
    std::fs::write(
        k.dir.path().join("adult.txt"),
        format!("{ADULT}innocent.test\n"),
    )
    .unwrap();
    let pid = std::process::id().to_string();
    let since = Instant::now();
    loop {
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if is_blocked(&mut c, "innocent.test.").await {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "SIGHUP did not pick up the change"
        );
    }
    k.running.stop().await;
    up.stop().await;
}
