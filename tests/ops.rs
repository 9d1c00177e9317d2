//! Operations over real sockets: the admin API with a real HTTP client (health, readiness,
//! Prometheus metrics after real DNS traffic, the safety check, public reports kept in
//! SQLite across a restart, reload, the bearer token) and the privacy query log.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

fn config(upstream: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 500
{STANDARD_LISTS}
[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
[[groups]]
name = "default"
categories = ["adult"]
{extra}
"#
    )
}

const ADMIN: &str = "[admin]\nlisten = [\"127.0.0.1:0\"]\nreports_per_hour = 5\n";

fn http() -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get_json(c: &reqwest::Client, url: String) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post_json(c: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The value of the sample `series` (name plus labels, as rendered) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn health_readiness_and_metrics_follow_real_traffic() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr, ADMIN), None).await;
    let admin = k.running.admin_addrs[0];
    let c = http();

    let r = c
        .get(format!("http://{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, ready) = get_json(&c, format!("http://{admin}/readyz")).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["upstream_reachable"], true);
    assert!(ready["list"]["entries"].as_u64().unwrap() > 0);

    // Traffic: 3 blocked (gambling, for the kids group), 2 allowed, 1 over TCP.
    for _ in 0..3 {
        let m = raw_udp_from(
            "127.0.0.2",
            k.addr,
            &query_msg("casino.example.", RecordType::A, true)
                .to_vec()
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    for _ in 0..2 {
        let m = raw_udp(
            k.addr,
            &query_msg("allowed.test.", RecordType::AAAA, true)
                .to_vec()
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    }
    let mut tcp = tcp_client(k.addr).await;
    let m = query(&mut tcp, "porn.example.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    let r = c
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let scrape = r.text().await.unwrap();
    let expect = [
        (r#"kidsafe_queries_total{protocol="udp",qtype="A"}"#, 3.0),
        (r#"kidsafe_queries_total{protocol="udp",qtype="AAAA"}"#, 2.0),
        (r#"kidsafe_queries_total{protocol="tcp",qtype="A"}"#, 1.0),
        (
            r#"kidsafe_answers_total{group="kids",verdict="blocked"}"#,
            3.0,
        ),
        (
            r#"kidsafe_blocked_total{group="kids",category="gambling"}"#,
            3.0,
        ),
        (
            r#"kidsafe_answers_total{group="default",verdict="blocked"}"#,
            1.0,
        ),
        (
            r#"kidsafe_blocked_total{group="default",category="adult"}"#,
            1.0,
        ),
        (
            r#"kidsafe_answers_total{group="default",verdict="allowed"}"#,
            2.0,
        ),
        (r#"kidsafe_cache_lookups_total{result="hit"}"#, 1.0),
        (r#"kidsafe_cache_lookups_total{result="miss"}"#, 1.0),
    ];
    for (series, value) in expect {
        assert_eq!(
            sample(&scrape, series),
            Some(value),
            "{series} in\n{scrape}"
        );
    }
    assert!(sample(&scrape, "kidsafe_list_entries").unwrap() > 0.0);
    assert!(sample(&scrape, "kidsafe_list_swapped_timestamp_seconds").unwrap() > 1.6e9);
    assert!(scrape.contains("kidsafe_upstream_duration_seconds_bucket"));
    assert!(scrape.contains("# HELP kidsafe_queries_total"));
    assert!(
        !scrape.contains("127.0.0"),
        "no client addresses in metrics"
    );
    // Answered from memory: readiness does not need a probe after real traffic, and a
    // stopped upstream makes it fail once the last answer is old... which a test cannot
    // wait 30 s for; the probe path is covered below.
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn readiness_fails_without_an_upstream() {
    let (silent, _task) = silent_upstream().await;
    let k = start_from_text(list_dir(), &config(silent, ADMIN), None).await;
    let admin = k.running.admin_addrs[0];
    let (status, body) = get_json(&http(), format!("http://{admin}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["upstream_reachable"], false);
    // Blocked names are still answered locally.
    let m = raw_udp(
        k.addr,
        &query_msg("porn.example.", RecordType::A, true)
            .to_vec()
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    k.running.stop().await;
}

#[tokio::test]
async fn check_says_whether_a_site_is_safe_per_group() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr, ADMIN), None).await;
    let admin = k.running.admin_addrs[0];
    let c = http();

    let (status, v) = get_json(
        &c,
        format!("http://{admin}/v1/check?name=WWW.Casino.Example."),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["normalized"], "www.casino.example");
    assert_eq!(v["listed"], true);
    assert_eq!(v["categories"], json!(["gambling"]));
    assert_eq!(v["rule"]["name"], "casino.example");
    assert_eq!(v["rule"]["scope"], "subdomains");
    let groups = v["groups"].as_array().unwrap();
    let verdict = |g: &str| {
        groups
            .iter()
            .find(|x| x["group"] == g)
            .map(|x| x["verdict"].clone())
    };
    assert_eq!(verdict("kids"), Some(json!("blocked")));
    assert_eq!(
        verdict("default"),
        Some(json!("allowed")),
        "default only blocks adult"
    );

    let (_, v) = get_json(
        &c,
        format!("http://{admin}/v1/check?name=b%C3%BCcher.example"),
    )
    .await;
    assert_eq!(v["normalized"], "xn--bcher-kva.example");
    assert_eq!(v["listed"], true);

    let (_, v) = get_json(&c, format!("http://{admin}/v1/check?name=safe.bad.test")).await;
    assert_eq!(v["listed"], false, "allowlisted: {v}");
    assert_eq!(v["rule"]["action"], "allow");

    let (_, v) = get_json(&c, format!("http://{admin}/v1/check?name=allowed.test")).await;
    assert_eq!(v["listed"], false);
    assert_eq!(v["rule"], Value::Null);

    for bad in ["", "a..b", "192.0.2.1", "exa%20mple.com", &"x".repeat(300)] {
        let (status, v) = get_json(&c, format!("http://{admin}/v1/check?name={bad}")).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"].is_string());
    }
    let (status, _) = get_json(&c, format!("http://{admin}/v1/check")).await;
    assert_eq!(status, 400);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn reports_are_validated_deduplicated_limited_and_kept_across_restarts() {
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    let text = config(up.addr, ADMIN);
    let k = start_from_text(dir, &text, None).await;
    let admin = k.running.admin_addrs[0];
    let url = format!("http://{admin}/v1/reports");
    let c = http();

    let first = json!({"name": "Bet.Example.", "category": "gambling", "note": "seen at school"});
    let (status, v) = post_json(&c, &url, first).await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["name"], "bet.example");
    assert_eq!(v["count"], 1);
    let again = json!({"name": "bet.example", "category": "gambling"});
    let (status, v) = post_json(&c, &url, again).await;
    assert_eq!(status, 200, "a repeat is not a new report: {v}");
    assert_eq!(v["count"], 2);

    // Bad input: 4xx with a reason, nothing stored.
    let unknown = json!({"name": "x.example", "category": "weapons"});
    let (status, v) = post_json(&c, &url, unknown).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("category"), "{v}");
    let (status, v) = post_json(&c, &url, json!({"name": "not a name", "category": "adult"})).await;
    assert_eq!(status, 400, "{v}");
    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let huge = json!({"name": "x.example", "category": "adult", "note": "x".repeat(10_000)});
    let (status, _) = post_json(&c, &url, huge).await;
    assert_eq!(status, 413);

    // 5 per hour from one address: 2 accepted + 2 refused-as-invalid so far count too.
    let mut limited = false;
    for i in 0..5 {
        let body = json!({"name": format!("site{i}.example"), "category": "adult"});
        let (status, _) = post_json(&c, &url, body).await;
        if status == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "the per-source limit triggers");

    let (status, v) = get_json(&c, url.clone()).await;
    assert_eq!(status, 200);
    let reports = v["reports"].as_array().unwrap().clone();
    let bet = reports.iter().find(|r| r["name"] == "bet.example").unwrap();
    assert_eq!(bet["count"], 2);
    assert_eq!(bet["notes"], json!(["seen at school"]));
    assert_eq!(bet["status"], "open");
    assert!(
        !v.to_string().contains("127.0.0.1"),
        "reporters are not stored"
    );

    // Restart on the same state directory: the reports are still there.
    let Kidsafe { dir, running, .. } = k;
    running.stop().await;
    let k = start_from_text(dir, &text, None).await;
    let admin = k.running.admin_addrs[0];
    let (_, v) = get_json(&c, format!("http://{admin}/v1/reports")).await;
    assert_eq!(v["reports"].as_array().unwrap().len(), reports.len());
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn a_token_protects_everything_but_health() {
    let up = Upstream::start(Zone::standard()).await;
    let admin_cfg = "[admin]\nlisten = [\"127.0.0.1:0\"]\ntoken = \"0123456789abcdef-secret\"\n";
    let k = start_from_text(list_dir(), &config(up.addr, admin_cfg), None).await;
    let admin = k.running.admin_addrs[0];
    let c = http();
    for path in ["/metrics", "/v1/check?name=casino.example", "/v1/reports"] {
        let r = c.get(format!("http://{admin}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = c
            .get(format!("http://{admin}{path}"))
            .bearer_auth("0123456789abcdef-wrong!")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        let r = c
            .get(format!("http://{admin}{path}"))
            .bearer_auth("0123456789abcdef-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with the token");
    }
    let r = c
        .get(format!("http://{admin}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    k.running.stop().await;
    up.stop().await;
}

#[test]
fn a_public_admin_address_needs_a_token() {
    let dir = list_dir();
    let path = dir.path().join("k.toml");
    let text = config(
        "127.0.0.1:53".parse().unwrap(),
        "[admin]\nlisten = [\"0.0.0.0:9153\"]\n",
    );
    std::fs::write(&path, text).unwrap();
    let e = kidsafe_dns::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("admin.listen") && e.contains("token"), "{e}");
}

#[tokio::test]
async fn reload_over_the_api_picks_up_an_edited_list() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr, ADMIN), None).await;
    let admin = k.running.admin_addrs[0];
    let ask = || async {
        raw_udp(
            k.addr,
            &query_msg("allowed.test.", RecordType::A, true)
                .to_vec()
                .unwrap(),
        )
        .await
        .unwrap()
        .metadata
        .response_code
    };
    assert_eq!(ask().await, ResponseCode::NoError);
    let adult = k.dir.path().join("adult.txt");
    let mut text = std::fs::read_to_string(&adult).unwrap();
    text.push_str("allowed.test\n");
    std::fs::write(&adult, text).unwrap();
    let r = http()
        .post(format!("http://{admin}/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(v["serial"].as_u64().is_some(), "{v}");
    assert_eq!(ask().await, ResponseCode::NXDomain);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn the_query_log_holds_blocked_events_only_with_truncated_clients() {
    let up = Upstream::start(Zone::standard()).await;
    let log = "[querylog]\nenabled = true\npath = \"var/q.jsonl\"\n";
    let k = start_from_text(list_dir(), &config(up.addr, log), None).await;
    for n in ["casino.example.", "allowed.test.", "porn.example."] {
        raw_udp_from(
            "127.0.0.2",
            k.addr,
            &query_msg(n, RecordType::A, true).to_vec().unwrap(),
        )
        .await
        .unwrap();
    }
    let path = k.dir.path().join("var/q.jsonl");
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "blocked only:\n{text}");
    assert_eq!(lines[0]["name"], "casino.example");
    assert_eq!(lines[0]["group"], "kids");
    assert_eq!(lines[0]["categories"], json!(["gambling"]));
    assert_eq!(lines[0]["client"], "127.0.0.0/24");
    assert!(!text.contains("127.0.0.2"), "no full client address");
    assert!(!text.contains("allowed.test"));
    k.running.stop().await;
    up.stop().await;
}
