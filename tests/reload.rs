//! Everything that replaces the serving list while the resolver runs: SIGHUP, `POST
//! /v1/reload`, the manifest watcher. Only real changes reload; every route goes through
//! the same guards; `force` is the only way past them.
//!
//! SIGHUP goes to the whole test process, so the tests here take turns.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// One test at a time: a SIGHUP reaches every server in this process.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ADMIN: &str = "[admin]\nlisten = [\"127.0.0.1:0\"]\n";

fn sighup() {
    let pid = std::process::id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(st.success());
}

async fn metrics(admin: SocketAddr) -> String {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn code(addr: SocketAddr, n: &str) -> ResponseCode {
    let msg = query_msg(n, RecordType::A, true).to_vec().unwrap();
    raw_udp(addr, &msg).await.unwrap().metadata.response_code
}

async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_after_a_sighup_means_no_reloads() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], "mode = \"nxdomain\"", ADMIN).await;
    let admin = k.running.admin_addrs[0];
    let before = k.running.lists.loads();
    sighup();
    wait_until(Duration::from_secs(5), "the SIGHUP reload", || async {
        k.running.lists.loads() > before
    })
    .await;
    // Let the SIGHUP's own reload and any watcher event it caused settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = k.running.lists.loads();
    let scraped = sample(&metrics(admin).await, "kidsafe_list_loads_total");
    assert_eq!(scraped, Some(settled as f64));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = k.running.lists.loads();
    assert_eq!(after, settled, "{} reloads while idle", after - settled);
    assert_eq!(
        sample(&metrics(admin).await, "kidsafe_list_loads_total"),
        Some(settled as f64)
    );
    assert_eq!(code(k.addr, "allowed.test.").await, ResponseCode::NoError);
    k.running.stop().await;
    up.stop().await;
}
