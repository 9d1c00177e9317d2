//! The response cache through the real server: hits do not reach upstream, TTLs count
//! down, negative answers are cached, identical concurrent misses become one upstream
//! query, and an expired entry stands in (EDE 3) when upstream is gone.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

#[tokio::test]
async fn hits_are_served_from_cache_with_decremented_ttl() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], "mode = \"nxdomain\"", "").await;
    let mut c = udp_client(k.addr);
    let first = query(&mut c, "allowed.test.", RecordType::A).await;
    assert_eq!(first.answers[0].ttl, 3600);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = query(&mut c, "allowed.test.", RecordType::A).await;
    assert_eq!(a_records(&second), a_records(&first));
    assert!(
        second.answers[0].ttl < 3600 && second.answers[0].ttl >= 3598,
        "ttl {}",
        second.answers[0].ttl
    );
    assert_eq!(
        up.queries_for("allowed.test."),
        1,
        "the hit never reached upstream"
    );
    // Negative answers too (RFC 2308), with the SOA kept.
    for _ in 0..3 {
        let m = query(&mut c, "nope.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities.len(), 1);
    }
    assert_eq!(up.queries_for("nope.test."), 1);
    // A different type is a different entry.
    let _ = query(&mut c, "allowed.test.", RecordType::AAAA).await;
    assert_eq!(up.seen.lock().unwrap().len(), 3);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_misses_make_one_upstream_query() {
    let (up, count) = slow_upstream_counted(Duration::from_millis(300)).await;
    let k = start_kidsafe(&[up], "mode = \"nxdomain\"", "").await;
    let q = query_msg("same.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (q, addr) = (q.clone(), k.addr);
            tokio::spawn(async move { raw_udp(addr, &q).await })
        })
        .collect();
    let mut answered = 0;
    for t in tasks {
        let m = t.await.unwrap().expect("answered");
        assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 77)]);
        answered += 1;
    }
    assert_eq!(answered, 100);
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "100 identical misses, one upstream query"
    );
    k.running.stop().await;
}

#[tokio::test]
async fn serve_stale_answers_when_upstream_is_gone() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(
        &[up.addr],
        "mode = \"nxdomain\"",
        "[cache]\nserve_stale = true",
    )
    .await;
    let mut c = udp_client(k.addr);
    let m = query(&mut c, "short.test.", RecordType::A).await;
    assert_eq!(m.answers[0].ttl, 1);
    up.stop().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let q = query_msg("short.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    let m = raw_udp(k.addr, &q).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 43)]);
    assert_eq!(m.answers[0].ttl, 30);
    assert_eq!(ede(&m).unwrap().0, 3, "EDE 3 Stale Answer");
    // Never-cached names still fail properly.
    let q = query_msg("allowed.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    let m = raw_udp(k.addr, &q).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    k.running.stop().await;
}

#[tokio::test]
async fn a_disabled_cache_forwards_every_query() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(
        &[up.addr],
        "mode = \"nxdomain\"",
        "[cache]\nmax_entries = 0",
    )
    .await;
    let mut c = udp_client(k.addr);
    for _ in 0..3 {
        query(&mut c, "allowed.test.", RecordType::A).await;
    }
    assert_eq!(up.queries_for("allowed.test."), 3);
    k.running.stop().await;
    up.stop().await;
}
