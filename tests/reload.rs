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

/// Blocked by the resolver: the sinkhole's NXDOMAIN with EDE 15 "Blocked".
async fn blocked(addr: SocketAddr, n: &str) -> bool {
    let msg = query_msg(n, RecordType::A, true).to_vec().unwrap();
    let reply = raw_udp(addr, &msg).await.unwrap();
    reply.metadata.response_code == ResponseCode::NXDomain
        && ede(&reply).is_some_and(|(code, _)| code == 15)
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

fn guarded_config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
shutdown_grace_ms = 500
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[lists]
compiled = "var/blocklist.fst"
watch = false
[[lists.source]]
category = "adult"
path = "big.txt"
[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
deny_paths = ["kids-deny.txt"]
[[groups]]
name = "default"
{ADMIN}
"#
    )
}

fn names(n: usize) -> String {
    (0..n).map(|i| format!("n{i}.big.test\n")).collect()
}

async fn reload_api(admin: SocketAddr, query: &str) -> (u16, serde_json::Value) {
    kidsafe_dns::feed::http::install_crypto_provider();
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/v1/reload{query}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

/// Truncating a path source to 5 of its 1,000 names is refused by the shrink guard
/// whether SIGHUP or the API asks for the reload; `?force=true` takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_the_api_go_through_the_shrink_guard() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    std::fs::write(dir.path().join("big.txt"), names(1000)).unwrap();
    std::fs::write(dir.path().join("kids-deny.txt"), "roblox.test\n").unwrap();
    let k = start_from_text(dir, &guarded_config(up.addr), None).await;
    let admin = k.running.admin_addrs[0];
    assert_eq!(k.running.lists.current().len(), 1000);
    tokio::time::sleep(Duration::from_millis(1100)).await; // coarse mtimes
    std::fs::write(k.dir.path().join("big.txt"), names(5)).unwrap();

    let pipeline = k.dir.path().join("var/pipeline.json");
    let shrink_refusals = || {
        let v: serde_json::Value = std::fs::read(&pipeline)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        v["refused"]["shrink"].as_u64().unwrap_or(0)
    };
    let before = shrink_refusals();
    sighup();
    wait_until(Duration::from_secs(10), "SIGHUP's refusal", || async {
        shrink_refusals() > before
    })
    .await;
    assert_eq!(k.running.lists.current().len(), 1000, "SIGHUP installed it");
    assert!(blocked(k.addr, "n999.big.test.").await);

    let (status, body) = reload_api(admin, "").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["list"], "refused", "{body}");
    let why = body["refused"].as_str().unwrap();
    assert!(
        why.starts_with("shrink:") && why.contains("from 1000 to 5"),
        "{body}"
    );
    assert!(
        body["error"].as_str().unwrap().contains("force=true"),
        "{body}"
    );
    assert_eq!(body["entries"], 1000, "{body}");
    assert_eq!(
        k.running.lists.current().len(),
        1000,
        "the API installed it"
    );

    let (status, _) = reload_api(admin, "?force=maybe").await;
    assert_eq!(status, 400);
    let (status, body) = reload_api(admin, "?force=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["list"], "recompiled", "{body}");
    assert_eq!(body["entries"], 5, "{body}");
    assert_eq!(k.running.lists.current().len(), 5);
    assert!(!blocked(k.addr, "n999.big.test.").await);
    assert!(blocked(k.addr, "n4.big.test.").await);
    k.running.stop().await;
    up.stop().await;
}

/// A reload that recompiles a group's own list says so, by group, and leaves the main
/// list's numbers as they are (the log used to read as if the main list shrank to 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_a_group_list_is_reported_as_the_group() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    std::fs::write(dir.path().join("big.txt"), names(1000)).unwrap();
    std::fs::write(dir.path().join("kids-deny.txt"), "roblox.test\n").unwrap();
    let k = start_from_text(dir, &guarded_config(up.addr), None).await;
    let admin = k.running.admin_addrs[0];
    let (status, body) = reload_api(admin, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["list"], "unchanged", "{body}");
    assert_eq!(body["groups"][0]["list"], "unchanged", "{body}");

    tokio::time::sleep(Duration::from_millis(1100)).await; // coarse mtimes
    std::fs::write(
        k.dir.path().join("kids-deny.txt"),
        "roblox.test\nminecraft.test\n",
    )
    .unwrap();
    let (status, body) = reload_api(admin, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["list"], "unchanged", "{body}");
    assert_eq!(body["entries"], 1000, "{body}");
    let group = &body["groups"][0];
    assert_eq!(group["group"], "kids", "{body}");
    assert_eq!(group["list"], "recompiled", "{body}");
    assert_eq!(group["entries"], 2, "{body}");
    assert_eq!(k.running.lists.current().len(), 1000);
    let msg = query_msg("minecraft.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    let reply = raw_udp_from("127.0.0.2", k.addr, &msg).await.unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    k.running.stop().await;
    up.stop().await;
}

/// A group's `deny = [...]` written in the config shrinks only because its admin removed
/// names: a restart with the shorter list starts and applies it (the shrink guard is for
/// list files that may arrive cut short).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_names_from_a_groups_inline_deny_list_is_applied() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    let config = |deny: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\n{}\n[[groups]]\nname = \"kids\"\nclients = [\"127.0.0.2/32\"]\ndeny = [{deny}]\n[[groups]]\nname = \"default\"\n",
            upstream_and_lists(up.addr)
        )
    };
    let path = dir.path().join("kidsafe.toml");
    let k = start_from_text(dir, &config("\"games.test\", \"innocent.test\""), None).await;
    let ask = |addr, n: &str| {
        let msg = query_msg(n, RecordType::A, true).to_vec().unwrap();
        async move { raw_udp_from("127.0.0.2", addr, &msg).await.unwrap() }
    };
    let reply = ask(k.addr, "innocent.test.").await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let dir = k.dir;
    k.running.stop().await;
    std::fs::write(&path, config("\"games.test\"")).unwrap();
    let cfg = kidsafe_dns::config::load(&path).unwrap();
    let running = kidsafe_dns::app::start(cfg)
        .await
        .expect("starts with the shorter list");
    let reply = ask(running.addrs[0], "innocent.test.").await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let reply = ask(running.addrs[0], "games.test.").await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    running.stop().await;
    drop(dir);
    up.stop().await;
}
