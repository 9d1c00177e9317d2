//! Graceful shutdown: a query in flight when shutdown starts still gets its answer; after
//! shutdown the port no longer answers.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::rr::RecordType;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_queries_finish_after_shutdown_starts() {
    let up = slow_upstream(Duration::from_millis(400)).await;
    let k = start_kidsafe(&[up], "mode = \"nxdomain\"", "").await;
    let addr = k.addr;
    let msg = query_msg("slow.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    let pending = tokio::spawn(async move { raw_udp(addr, &msg).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(k.running.stop());
    let reply = pending
        .await
        .unwrap()
        .expect("the in-flight query was answered");
    assert_eq!(a_records(&reply), [std::net::Ipv4Addr::new(192, 0, 2, 77)]);
    stopping.await.unwrap();
    // Stopped: nothing answers any more.
    let msg = query_msg("bad.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    assert!(raw_udp(addr, &msg).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_answers_without_shutdown() {
    let up = slow_upstream(Duration::from_millis(400)).await;
    let k = start_kidsafe(&[up], "mode = \"nxdomain\"", "").await;
    let msg = query_msg("slow.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    let reply = raw_udp(k.addr, &msg).await.expect("answered");
    assert_eq!(a_records(&reply), [std::net::Ipv4Addr::new(192, 0, 2, 77)]);
    k.running.stop().await;
}
