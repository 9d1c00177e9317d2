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

    // 5 per hour from one address: 2 accepted so far (the invalid ones used no quota).
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

/// A client bound to `from` (each 127.0.0.x is another sender).
fn http_from(from: &str) -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn post_with(
    c: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Invalid reports use up no quota; a portal (by address) posting for many people has its
/// own, larger quota, apart from the public's per-address one.
#[tokio::test]
async fn invalid_reports_are_free_and_a_portal_address_has_its_own_quota() {
    let up = Upstream::start(Zone::standard()).await;
    let admin_cfg = "[admin]\nlisten = [\"127.0.0.1:0\"]\nreports_per_hour = 2\nportal_clients = [\"127.0.0.3/32\"]\nportal_reports_per_hour = 5\n";
    let k = start_from_text(list_dir(), &config(up.addr, admin_cfg), None).await;
    let url = format!("http://{}/v1/reports", k.running.admin_addrs[0]);
    let (public, portal) = (http_from("127.0.0.1"), http_from("127.0.0.3"));
    let site = |i: u32| json!({"name": format!("site{i}.example"), "category": "adult"});

    // Three invalid reports from one address: refused, and not counted.
    for bad in [
        json!({"name": "not a name", "category": "adult"}),
        json!({"name": "x.example", "category": "weapons"}),
        json!({"name": "http://192.0.2.1/", "category": "adult"}),
    ] {
        let (status, v) = post_with(&public, &url, None, bad).await;
        assert_eq!(status, 400, "{v}");
    }
    for i in 0..2 {
        let (status, v) = post_with(&public, &url, None, site(i)).await;
        assert_eq!(status, 201, "valid report {i} after invalid ones: {v}");
    }
    let (status, v) = post_with(&public, &url, None, site(2)).await;
    assert_eq!(status, 429, "{v}");
    assert!(v["error"].as_str().unwrap().contains("address"), "{v}");

    // The portal: 5 an hour, whatever the public address did; invalid ones free too.
    for i in 10..15 {
        let bad = json!({"name": "bad..name", "category": "adult"});
        assert_eq!(post_with(&portal, &url, None, bad).await.0, 400);
        let (status, v) = post_with(&portal, &url, None, site(i)).await;
        assert_eq!(status, 201, "portal report {i}: {v}");
    }
    let (status, v) = post_with(&portal, &url, None, site(15)).await;
    assert_eq!(status, 429, "{v}");
    assert!(v["error"].as_str().unwrap().contains("portal"), "{v}");
    k.running.stop().await;
    up.stop().await;
}

/// With `admin.token` set, the portal token posts reports (with the portal's quota) and
/// opens nothing else; reviewers record decisions with the admin token, each kept with its
/// time; a decision that fails validation changes nothing.
#[tokio::test]
async fn a_portal_token_posts_reports_and_reviewers_record_decisions() {
    const ADMIN_TOKEN: &str = "admin-0123456789abcdef";
    const PORTAL_TOKEN: &str = "portal-0123456789abcdef";
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    std::fs::write(dir.path().join("portal.token"), format!("{PORTAL_TOKEN}\n")).unwrap();
    let admin_cfg = format!(
        "[admin]\nlisten = [\"127.0.0.1:0\"]\ntoken = \"{ADMIN_TOKEN}\"\nreports_per_hour = 1\nportal_token_file = \"portal.token\"\nportal_reports_per_hour = 3\n"
    );
    let k = start_from_text(dir, &config(up.addr, &admin_cfg), None).await;
    let admin = k.running.admin_addrs[0];
    let url = format!("http://{admin}/v1/reports");
    let c = http();

    // No token: nothing. The portal token: reports, three an hour (the public's is one).
    let body = json!({"name": "bet.example", "category": "gambling", "note": "a pupil"});
    assert_eq!(post_with(&c, &url, None, body.clone()).await.0, 401);
    let (status, v) = post_with(&c, &url, Some(PORTAL_TOKEN), body).await;
    assert_eq!(status, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    for i in 0..2 {
        let body = json!({"name": format!("p{i}.example"), "category": "adult"});
        assert_eq!(post_with(&c, &url, Some(PORTAL_TOKEN), body).await.0, 201);
    }
    let body = json!({"name": "p9.example", "category": "adult"});
    assert_eq!(post_with(&c, &url, Some(PORTAL_TOKEN), body).await.0, 429);
    // ... and nothing else: not the list, not decisions, not a reload.
    let r = c.get(&url).bearer_auth(PORTAL_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let decide = format!("{url}/{id}/decision");
    let rejected = json!({"status": "rejected", "note": "a sports news site"});
    assert_eq!(
        post_with(&c, &decide, Some(PORTAL_TOKEN), rejected.clone())
            .await
            .0,
        401
    );
    let reload = format!("http://{admin}/v1/reload");
    assert_eq!(
        post_with(&c, &reload, Some(PORTAL_TOKEN), json!({}))
            .await
            .0,
        401
    );

    // A reviewer rejects, then accepts: the status follows, both are kept with their time.
    let now = kidsafe_dns::clock::now_unix();
    let (status, v) = post_with(&c, &decide, Some(ADMIN_TOKEN), rejected).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "rejected");
    // A decided report takes no second decision until the first is reverted.
    let accepted = json!({"status": "accepted", "note": "betting ads on every page"});
    let (status, v) = post_with(&c, &decide, Some(ADMIN_TOKEN), accepted.clone()).await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("already decided"),
        "{v}"
    );
    let revert = format!("{url}/{id}/revert");
    let (status, v) = post_with(&c, &revert, Some(ADMIN_TOKEN), json!({})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "open");
    let (status, v) = post_with(&c, &decide, Some(ADMIN_TOKEN), accepted).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "accepted");
    let decisions = v["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2, "{v}");
    assert_eq!(decisions[0]["status"], "rejected");
    assert_eq!(decisions[0]["note"], "a sports news site");
    assert_eq!(decisions[1]["status"], "accepted");
    for d in decisions {
        let at = d["decided_at"].as_u64().unwrap();
        assert!(at >= now && at <= now + 60, "{d}");
    }

    // Refused decisions: 4xx with a reason, nothing changes.
    for (body, want) in [
        (json!({"status": "open"}), 400),
        (json!({"status": "maybe"}), 400),
        (json!({"status": "rejected", "by": "x"}), 400),
        (json!({"status": "rejected", "note": "x".repeat(1001)}), 400),
    ] {
        let (status, v) = post_with(&c, &decide, Some(ADMIN_TOKEN), body.clone()).await;
        assert_eq!(status, want, "{body}: {v}");
        assert!(v["error"].is_string(), "{body}: {v}");
    }
    let missing = format!("{url}/{}/decision", id + 1000);
    let (status, v) = post_with(
        &c,
        &missing,
        Some(ADMIN_TOKEN),
        json!({"status": "rejected"}),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    let bad_id = format!("{url}/abc/decision");
    assert_eq!(
        post_with(
            &c,
            &bad_id,
            Some(ADMIN_TOKEN),
            json!({"status": "rejected"})
        )
        .await
        .0,
        400
    );
    let r = c.get(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let bet = v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(bet["status"], "accepted");
    assert_eq!(bet["decisions"].as_array().unwrap().len(), 2, "{bet}");
    k.running.stop().await;
    up.stop().await;
}

/// The portal settings are checked like the rest of the config.
#[test]
fn portal_settings_are_validated() {
    let dir = list_dir();
    let path = dir.path().join("kidsafe.toml");
    let up: SocketAddr = "127.0.0.1:53".parse().unwrap();
    for (admin, says) in [
        ("portal_clients = [\"not-a-net\"]", "admin.portal_clients"),
        ("portal_token = \"short\"", "at least 16"),
        (
            "token = \"same-0123456789abcdef\"\nportal_token = \"same-0123456789abcdef\"",
            "must differ",
        ),
        (
            "portal_token_file = \"missing.token\"",
            "admin.portal_token_file",
        ),
    ] {
        let text = config(
            up,
            &format!("[admin]\nlisten = [\"127.0.0.1:0\"]\n{admin}\n"),
        );
        std::fs::write(&path, text).unwrap();
        let e = kidsafe_dns::config::load(&path).unwrap_err().to_string();
        assert!(e.contains(says), "{admin}: {e}");
    }
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
