//! Per-client policy end to end. Each loopback address (127.0.0.2, 127.0.0.3, ...) is a
//! different client, so one server shows different verdicts per group.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

fn config(upstream: std::net::SocketAddr, extra_server: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
allow_clients = ["127.0.0.0/28"]
{extra_server}
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[blocking]
mode = "nxdomain"
ipv4 = "127.0.0.1"
[lists]
compiled = "var/blocklist.fst"
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "gambling"
path = "gambling.txt"
[safesearch]
dir = "{safesearch}"

[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
categories = ["adult", "gambling"]
deny = ["games.test"]
safesearch = true
mode = "null"

[[groups]]
name = "school"
clients = ["127.0.0.3"]
categories = ["adult"]
[groups.schedule]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "08:00"
end = "16:00"
timezone = "UTC"
categories = ["gambling"]

[[groups]]
name = "default"
categories = ["adult"]
"#,
        safesearch = concat!(env!("CARGO_MANIFEST_DIR"), "/blocklists/safesearch"),
    )
}

async fn ask(from: &str, k: &Kidsafe, name: &str, t: RecordType) -> Message {
    let q = query_msg(name, t, true).to_vec().unwrap();
    raw_udp_from(from, k.addr, &q).await.expect("an answer")
}

/// A clock the test moves: seconds since the epoch.
fn test_clock(at: &Arc<AtomicI64>) -> kidsafe_dns::policy::decide::Clock {
    let at = at.clone();
    Arc::new(move || jiff::Timestamp::from_second(at.load(Ordering::SeqCst)).unwrap())
}

// 2026-11-23 is a Monday; 10:00 and 20:00 UTC.
const MON_10H: i64 = 1_795_428_000;
const MON_20H: i64 = MON_10H + 10 * 3600;

#[tokio::test]
async fn same_name_different_verdicts_per_group() {
    let up = Upstream::start(Zone::standard()).await;
    let now = Arc::new(AtomicI64::new(MON_20H));
    let k = start_from_text(list_dir(), &config(up.addr, ""), Some(test_clock(&now))).await;

    // kids: gambling applies, answered in the group's own mode (null).
    let m = ask("127.0.0.2", &k, "casino.example.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::UNSPECIFIED]);
    assert_eq!(
        ede(&m).unwrap(),
        (15, "blocked: gambling (profile kids)".to_owned())
    );
    // default: adult only, so gambling is forwarded.
    let m = ask("127.0.0.4", &k, "casino.example.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 41)]);
    // Everyone gets adult blocked; the default group in the global mode (nxdomain).
    let m = ask("127.0.0.4", &k, "www.bad.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        ede(&m).unwrap(),
        (15, "blocked: adult (profile default)".to_owned())
    );
    // A name in two categories reports only those the group filters.
    let m = ask("127.0.0.3", &k, "bad.test.", RecordType::A).await;
    assert_eq!(ede(&m).unwrap().1, "blocked: adult (profile school)");
    // The group's own deny list: EDE 17 Filtered.
    let m = ask("127.0.0.2", &k, "games.test.", RecordType::A).await;
    assert_eq!(
        ede(&m).unwrap(),
        (17, "blocked: deny list (profile kids)".to_owned())
    );
    let m = ask("127.0.0.4", &k, "games.test.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 42)]);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn schedule_adds_categories_during_school_hours() {
    let up = Upstream::start(Zone::standard()).await;
    let now = Arc::new(AtomicI64::new(MON_20H));
    let k = start_from_text(list_dir(), &config(up.addr, ""), Some(test_clock(&now))).await;
    let m = ask("127.0.0.3", &k, "casino.example.", RecordType::A).await;
    assert_eq!(
        a_records(&m),
        [std::net::Ipv4Addr::new(192, 0, 2, 41)],
        "after hours: allowed"
    );
    now.store(MON_10H, Ordering::SeqCst);
    let m = ask("127.0.0.3", &k, "casino.example.", RecordType::A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "school hours: blocked"
    );
    assert_eq!(ede(&m).unwrap().1, "blocked: gambling (profile school)");
    now.store(MON_20H, Ordering::SeqCst);
    let m = ask("127.0.0.3", &k, "casino.example.", RecordType::A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "after hours again"
    );
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn clients_outside_allow_clients_are_refused() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr, ""), None).await;
    let m = ask("127.0.0.100", &k, "allowed.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(ede(&m).unwrap().0, 18);
    assert!(m.answers.is_empty());
    assert_eq!(
        up.queries_for("allowed.test."),
        0,
        "nothing forwarded for a refused client"
    );
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn drop_action_answers_nothing() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(
        list_dir(),
        &config(up.addr, "refuse_action = \"drop\""),
        None,
    )
    .await;
    let q = query_msg("allowed.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    assert!(raw_udp_from("127.0.0.100", k.addr, &q).await.is_none());
    assert!(raw_udp_from("127.0.0.4", k.addr, &q).await.is_some());
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn rate_limit_triggers_at_the_configured_rate_per_client() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(
        list_dir(),
        &config(up.addr, "rate_limit_qps = 5\nrate_limit_burst = 5"),
        None,
    )
    .await;
    let s = tokio::net::UdpSocket::bind("127.0.0.5:0").await.unwrap();
    let q = query_msg("www.bad.test.", RecordType::A, true)
        .to_vec()
        .unwrap();
    for _ in 0..20 {
        s.send_to(&q, k.addr).await.unwrap();
    }
    let (mut ok, mut refused) = (0, 0);
    let mut buf = vec![0u8; 4096];
    while let Ok(Ok(n)) =
        tokio::time::timeout(std::time::Duration::from_millis(500), s.recv(&mut buf)).await
    {
        let m = Message::from_vec(&buf[..n]).unwrap();
        match m.metadata.response_code {
            ResponseCode::Refused => {
                assert_eq!(
                    ede(&m).unwrap(),
                    (18, "rate limited (kidsafe-dns)".to_owned())
                );
                refused += 1
            }
            _ => ok += 1,
        }
    }
    // Burst 5, then 5 per second: a slow sender may earn a token or two more.
    assert!((5..=7).contains(&ok), "{ok} answered, {refused} refused");
    assert_eq!(ok + refused, 20);
    // Another client is not affected.
    let m = ask("127.0.0.6", &k, "allowed.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn safesearch_answers_with_the_vendor_cname() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr, ""), None).await;
    for (name, target) in [
        ("www.google.com.", "forcesafesearch.google.com."),
        ("google.com.vn.", "forcesafesearch.google.com."),
        ("www.google.com.vn.", "forcesafesearch.google.com."),
        ("www.youtube.com.", "restrict.youtube.com."),
    ] {
        let m = ask("127.0.0.2", &k, name, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        match &m.answers[0].data {
            RData::CNAME(c) => assert_eq!(c.0.to_string(), target, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(m.answers[0].name.to_string(), name);
        assert_eq!(
            a_records(&m),
            [std::net::Ipv4Addr::new(216, 239, 38, 120)],
            "{name}"
        );
    }
    // Not rewritten for a group without SafeSearch.
    let m = ask("127.0.0.4", &k, "www.google.com.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(142, 250, 0, 1)]);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn block_page_shows_the_category_and_escapes_the_host() {
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    let text = config(up.addr, "")
        + "\n[blockpage]\nlisten = [\"127.0.0.1:0\"]\nreview_url = \"https://report.example/review\"\n";
    let k = start_from_text(dir, &text, None).await;
    let page = k.running.blockpage_addrs[0];
    kidsafe_dns::feed::http::install_crypto_provider();
    let client = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let r = client
        .get(format!("http://{page}/some/path?x=1"))
        .header("Host", "casino.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = r.text().await.unwrap();
    for needle in [
        "casino.example",
        "gambling",
        "111",
        "bị chặn",
        "blocked to protect children",
        "https://report.example/review",
    ] {
        assert!(body.contains(needle), "{needle} missing");
    }
    let r = client
        .get(format!("http://{page}/"))
        .header("Host", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(
        !body.contains("<script>alert"),
        "Host header reflected unescaped"
    );
    k.running.stop().await;
    up.stop().await;
}
