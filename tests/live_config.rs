//! The whole config reloads live, without a restart: SIGHUP, `POST /v1/reload` and an edit
//! of the config file apply a group's new deny list, new upstream servers; an invalid file
//! keeps the old config serving and says why; a changed listen address needs a restart
//! and says so while the rest applies.
//!
//! SIGHUP goes to the whole test process, and every server watches its own config file,
//! so the tests here take turns.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// One test at a time: a SIGHUP reaches every server in this process.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The config: `kids` (127.0.0.2) with its own inline `deny` list, upstream `servers`,
/// DNS on `listen`, an admin API.
fn config(listen: &str, servers: &[SocketAddr], deny: &[&str], extra: &str) -> String {
    let servers: Vec<String> = servers.iter().map(|a| format!("\"{a}\"")).collect();
    let deny: Vec<String> = deny.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"
[server]
listen = ["{listen}"]
shutdown_grace_ms = 500
[upstream]
servers = [{}]
timeout_ms = 3000
[blocking]
mode = "nxdomain"
{STANDARD_LISTS}
[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
deny = [{}]
{extra}
[[groups]]
name = "default"
[admin]
listen = ["127.0.0.1:0"]
"#,
        servers.join(", "),
        deny.join(", ")
    )
}

/// Rewrites the config file (replaced by a rename, as editors and config managers do).
fn rewrite(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn sighup() {
    let pid = std::process::id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(st.success());
}

/// A query from the `kids` client (127.0.0.2).
async fn ask_as_kid(addr: SocketAddr, n: &str) -> Message {
    let msg = query_msg(n, RecordType::A, true).to_vec().unwrap();
    raw_udp_from("127.0.0.2", addr, &msg).await.unwrap()
}

/// Filtered by the group's own deny list: NXDOMAIN with EDE 17 "Filtered".
async fn filtered(addr: SocketAddr, n: &str) -> bool {
    let reply = ask_as_kid(addr, n).await;
    reply.metadata.response_code == ResponseCode::NXDomain
        && ede(&reply).is_some_and(|(code, _)| code == 17)
}

async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn reload_api(admin: SocketAddr) -> (u16, serde_json::Value) {
    kidsafe_dns::feed::http::install_crypto_provider();
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/v1/reload"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
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

/// 1. A group's deny list edited in the TOML, then SIGHUP: the verdict changes without a
///    restart, and a query already waiting on upstream when the reload lands is answered
///    as it was decided.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_groups_new_deny_list_and_a_query_in_flight_finishes() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = slow_upstream(Duration::from_millis(1500)).await;
    let text = config("127.0.0.1:0", &[up], &["games.test"], "");
    let k = start_from_text(list_dir(), &text, None).await;
    let path = k.dir.path().join("kidsafe.toml");
    assert!(filtered(k.addr, "games.test.").await);

    // In flight: decided (allowed) now, waiting 1.5 s on upstream while the reload lands.
    let addr = k.addr;
    let in_flight = tokio::spawn(async move { ask_as_kid(addr, "video.test.").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    rewrite(
        &path,
        &config("127.0.0.1:0", &[up], &["games.test", "video.test"], ""),
    );
    sighup();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        a_records(&reply),
        vec![std::net::Ipv4Addr::new(192, 0, 2, 77)]
    );

    wait_until(Duration::from_secs(10), "video.test filtered", || {
        filtered(k.addr, "video.test.")
    })
    .await;
    assert!(filtered(k.addr, "games.test.").await);
    // Other clients are not in the group.
    let msg = query_msg("video.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    let other = raw_udp(k.addr, &msg).await.unwrap();
    assert_eq!(other.metadata.response_code, ResponseCode::NoError);
    k.running.stop().await;
}

/// 2a. The same through `POST /v1/reload`: the answer says the config applied, and the new
///     deny list serves at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reloads_the_config() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(
        list_dir(),
        &config("127.0.0.1:0", &[up.addr], &["games.test"], ""),
        None,
    )
    .await;
    let admin = k.running.admin_addrs[0];
    let path = k.dir.path().join("kidsafe.toml");
    assert!(!filtered(k.addr, "allowed.test.").await);
    rewrite(
        &path,
        &config("127.0.0.1:0", &[up.addr], &["allowed.test"], ""),
    );
    let (status, body) = reload_api(admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["result"], "ok", "{body}");
    assert_eq!(
        body["config"]["restart_needed"],
        serde_json::json!([]),
        "{body}"
    );
    assert!(filtered(k.addr, "allowed.test.").await);
    assert!(!filtered(k.addr, "games.test.").await);
    let scrape = metrics(admin).await;
    let ok = sample(&scrape, "kidsafe_config_reloads_total{result=\"ok\"}");
    assert!(ok.is_some_and(|n| n >= 1.0), "{scrape}");
    assert!(
        sample(
            &scrape,
            "kidsafe_config_last_reload_success_timestamp_seconds"
        )
        .is_some_and(|t| t > 0.0),
        "{scrape}"
    );
    k.running.stop().await;
    up.stop().await;
}

/// 2b. Editing the file is enough: the watcher reloads it, no signal, no API call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_config_file_is_reloaded_by_the_watcher() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(
        list_dir(),
        &config("127.0.0.1:0", &[up.addr], &["games.test"], ""),
        None,
    )
    .await;
    let path = k.dir.path().join("kidsafe.toml");
    assert!(!filtered(k.addr, "allowed.test.").await);
    rewrite(
        &path,
        &config("127.0.0.1:0", &[up.addr], &["allowed.test"], ""),
    );
    wait_until(Duration::from_secs(10), "the watcher's reload", || {
        filtered(k.addr, "allowed.test.")
    })
    .await;
    assert!(!filtered(k.addr, "games.test.").await);
    k.running.stop().await;
    up.stop().await;
}

/// 3. An invalid file (a bad CIDR, an unknown key) changes nothing: the old config keeps
///    serving, the API answers 422 naming file, line and key, and the metric counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_config_keeps_the_old_one_serving_and_says_why() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let good = config("127.0.0.1:0", &[up.addr], &["games.test"], "");
    let k = start_from_text(list_dir(), &good, None).await;
    let admin = k.running.admin_addrs[0];
    let path = k.dir.path().join("kidsafe.toml");

    let bad_cidr = good.replace("127.0.0.2/32", "127.0.0.2/33");
    rewrite(&path, &bad_cidr);
    let (status, body) = reload_api(admin).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("kidsafe.toml:"), "{body}");
    assert!(error.contains("clients"), "{body}");
    assert_eq!(body["config"]["result"], "invalid", "{body}");
    assert!(
        filtered(k.addr, "games.test.").await,
        "the old config serves"
    );

    let unknown = good.replace(
        "shutdown_grace_ms = 500",
        "shutdown_grace_ms = 500\nbogus = 1",
    );
    rewrite(&path, &unknown);
    let (status, body) = reload_api(admin).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    // The line of `bogus` in the file.
    let line = unknown
        .lines()
        .position(|l| l.starts_with("bogus"))
        .unwrap()
        + 1;
    assert!(error.contains(&format!("kidsafe.toml:{line}:")), "{body}");
    assert!(error.contains("bogus"), "{body}");
    assert!(
        filtered(k.addr, "games.test.").await,
        "the old config serves"
    );

    let scrape = metrics(admin).await;
    let invalid = sample(&scrape, "kidsafe_config_reloads_total{result=\"invalid\"}");
    assert!(invalid.is_some_and(|n| n >= 2.0), "{scrape}");
    let ok = sample(&scrape, "kidsafe_config_reloads_total{result=\"ok\"}");
    assert_eq!(ok, Some(0.0), "{scrape}");
    // `status` reads the same from the state directory.
    let same_dirs = k.dir.path().join("status.toml");
    std::fs::write(&same_dirs, &good).unwrap();
    let cfg = kidsafe_dns::config::load(&same_dirs).unwrap();
    let status = kidsafe_dns::app::reload::status_text(&cfg, kidsafe_dns::clock::now_unix());
    assert!(status.contains("refused"), "{status}");
    assert!(status.contains("bogus"), "{status}");
    k.running.stop().await;
    up.stop().await;
}

/// 4. A new listen address needs a restart: the reload says so for that key, the rest
///    applies, and DNS keeps being served on the old address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_listen_address_needs_a_restart_and_the_rest_applies() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(
        list_dir(),
        &config("127.0.0.1:0", &[up.addr], &["games.test"], ""),
        None,
    )
    .await;
    let admin = k.running.admin_addrs[0];
    let path = k.dir.path().join("kidsafe.toml");
    rewrite(
        &path,
        &config("127.0.0.1:5399", &[up.addr], &["allowed.test"], ""),
    );
    let (status, body) = reload_api(admin).await;
    assert_eq!(status, 200, "{body}");
    let config = &body["config"];
    assert_eq!(config["result"], "ok", "{body}");
    assert_eq!(
        config["restart_needed"],
        serde_json::json!(["server.listen"]),
        "{body}"
    );
    assert!(
        config["warning"]
            .as_str()
            .is_some_and(|w| w.contains("server.listen") && w.contains("restart")),
        "{body}"
    );
    // Served on the old address, with the new deny list.
    assert!(filtered(k.addr, "allowed.test.").await);
    assert!(!filtered(k.addr, "games.test.").await);
    k.running.stop().await;
    up.stop().await;
}

/// 5. New upstream servers apply live: the next query goes to the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_upstream_servers_apply_live() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (first, first_count) = slow_upstream_counted(Duration::ZERO).await;
    let (second, second_count) = slow_upstream_counted(Duration::ZERO).await;
    let k = start_from_text(
        list_dir(),
        &config("127.0.0.1:0", &[first], &["games.test"], ""),
        None,
    )
    .await;
    let admin = k.running.admin_addrs[0];
    let path = k.dir.path().join("kidsafe.toml");
    let reply = ask_as_kid(k.addr, "one.test.").await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let asked_first = first_count.load(std::sync::atomic::Ordering::SeqCst);
    assert!(asked_first >= 1);
    assert_eq!(second_count.load(std::sync::atomic::Ordering::SeqCst), 0);

    rewrite(
        &path,
        &config("127.0.0.1:0", &[second], &["games.test"], ""),
    );
    let (status, body) = reload_api(admin).await;
    assert_eq!(status, 200, "{body}");
    let reply = ask_as_kid(k.addr, "two.test.").await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(second_count.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(
        first_count.load(std::sync::atomic::Ordering::SeqCst),
        asked_first,
        "the old upstream was asked after the reload"
    );
    k.running.stop().await;
}
