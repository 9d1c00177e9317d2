//! The national loop's first half, with real processes: an edge `kidsafe-dns serve` takes
//! reports (its API and its block page's forms) and forwards them to a central `serve`,
//! which takes deliveries only from edges it knows by token and counts each report once
//! however often it is delivered. The central stopped, reports wait in the edge's spool
//! (the edge keeps answering DNS) and all arrive, once each, when it is back.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::blockpage::{block_page, post_form};
use common::central::{free_port, http, local, metric, serve};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

const EDGE_TOKEN: &str = "edge-one-token-0123456789";

/// The config both roles share: DNS on `dns`, the test lists, the admin API on `admin`
/// (1000 public reports an hour, so the tests are not rate-limited), then `extra`.
fn config(upstream: std::net::SocketAddr, dns: u16, admin: u16, extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:{dns}\"]\n{}\n[admin]\nlisten = [\"127.0.0.1:{admin}\"]\nreports_per_hour = 1000\n{extra}",
        upstream_and_lists(upstream)
    )
}

/// A central that takes deliveries from `edge-1` (token in `edge1.token`).
fn central_config(dir: &Path, upstream: std::net::SocketAddr, dns: u16, admin: u16) -> String {
    std::fs::write(dir.join("edge1.token"), format!("{EDGE_TOKEN}\n")).unwrap();
    config(
        upstream,
        dns,
        admin,
        "[reports]\nedges = [{ node = \"edge-1\", token_file = \"edge1.token\" }]\n",
    )
}

/// An edge forwarding to the central's admin port, with a block page on `page`.
fn edge_config(
    dir: &Path,
    upstream: std::net::SocketAddr,
    (dns, admin, page): (u16, u16, u16),
    central: u16,
) -> String {
    std::fs::write(dir.join("central.token"), format!("{EDGE_TOKEN}\n")).unwrap();
    config(
        upstream,
        dns,
        admin,
        &format!(
            "[blockpage]\nlisten = [\"127.0.0.1:{page}\"]\n[reports]\nforward_to = \"http://127.0.0.1:{central}/v1/reports\"\ntoken_file = \"central.token\"\nnode_id = \"edge-1\"\nretry_max = \"500ms\"\n"
        ),
    )
}

async fn post(c: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut r = c
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every report at `admin`, by (name, kind, category): count.
async fn counts(c: &reqwest::Client, admin: u16) -> Vec<(String, String, String, u64)> {
    let text = c
        .get(format!("http://127.0.0.1:{admin}/v1/reports?limit=1000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<_> = v["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
                r["category"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Waits until `check` holds (polled), or fails with `what`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row(name: &str, kind: &str, category: &str, count: u64) -> (String, String, String, u64) {
    (name.into(), kind.into(), category.into(), count)
}

/// Reports posted to the edge's API and its block page forms reach the central; with the
/// central stopped they wait in the spool while the edge keeps answering DNS, and after
/// it restarts every one arrives exactly once.
#[tokio::test]
async fn reports_reach_the_central_once_each_even_across_an_outage() {
    let up = Upstream::start(Zone::standard()).await;
    let (cdir, edir) = (list_dir(), list_dir());
    let (c_dns, c_admin) = (free_port(), free_port());
    let edge_ports = (free_port(), free_port(), free_port());
    let (e_dns, e_admin, e_page) = edge_ports;
    let central_text = central_config(cdir.path(), up.addr, c_dns, c_admin);
    let central = serve(cdir.path(), "central", &central_text, local(c_admin)).await;
    let edge_text = edge_config(edir.path(), up.addr, edge_ports, c_admin);
    let edge = serve(edir.path(), "edge", &edge_text, local(e_admin)).await;
    let c = http();
    let edge_url = format!("http://127.0.0.1:{e_admin}/v1/reports");

    // Through the edge's API: a harmful site twice, a mistake, a URL (reduced to its host).
    for body in [
        json!({"name": "bet.example", "category": "gambling", "note": "at school"}),
        json!({"name": "BET.example.", "category": "gambling"}),
        json!({"name": "safe.example", "kind": "mistake"}),
        json!({"name": "https://Bad.Example/x?y=1", "category": "adult"}),
    ] {
        let (status, v) = post(&c, &edge_url, None, &body).await;
        assert!(status == 200 || status == 201, "{body}: {status} {v}");
    }
    // Through the block page: "blocked by mistake" for casino.example (blocked as
    // gambling, so the form names that category), and a harmful site.
    let (html, token) = block_page(&c, e_page, "casino.example", "").await;
    assert!(html.contains("Trang này bị chặn nhầm?"), "Vietnamese first");
    assert!(html.contains("value=\"gambling\""), "{html}");
    let (status, body) = post_form(
        &c,
        e_page,
        "casino.example",
        Some("casino.example"),
        &[
            ("token", &token),
            ("kind", "mistake"),
            ("name", "casino.example"),
            ("category", "gambling"),
            ("lang", "vi"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("Cảm ơn"), "{body}");
    let (status, body) = post_form(
        &c,
        e_page,
        "casino.example",
        Some("casino.example"),
        &[
            ("token", &token),
            ("kind", "harmful"),
            ("name", "worse.example"),
            ("category", "adult"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let expected = vec![
        row("bad.example", "harmful", "adult", 1),
        row("bet.example", "harmful", "gambling", 2),
        row("casino.example", "mistake", "gambling", 1),
        row("safe.example", "mistake", "", 1),
        row("worse.example", "harmful", "adult", 1),
    ];
    eventually("the first reports reach the central", || async {
        counts(&c, c_admin).await == expected
    })
    .await;
    assert_eq!(
        counts(&c, e_admin).await,
        expected,
        "the edge keeps its own"
    );
    assert_eq!(
        metric(&c, local(c_admin), "kidsafe_report_intake_accepted_total").await,
        6.0
    );

    // The central stops: reports spool at the edge, which keeps answering DNS.
    drop(central);
    for i in 0..30 {
        let body = json!({"name": format!("site{}.example", i % 10), "category": "adult"});
        let (status, v) = post(&c, &edge_url, None, &body).await;
        assert!(status == 200 || status == 201, "{status} {v}");
    }
    let mut m = udp_client(([127, 0, 0, 1], e_dns).into());
    let reply = query(&mut m, "bad.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let reply = query(&mut m, "allowed.test.", RecordType::A).await;
    assert_eq!(a_records(&reply), [std::net::Ipv4Addr::new(192, 0, 2, 10)]);
    eventually("the edge counts failed deliveries", || async {
        metric(&c, local(e_admin), "kidsafe_report_delivery_failures_total").await >= 1.0
    })
    .await;
    assert_eq!(
        metric(&c, local(e_admin), "kidsafe_report_spool_pending").await,
        30.0
    );

    // Back: every spooled report arrives, once.
    let central = serve(cdir.path(), "central", &central_text, local(c_admin)).await;
    let mut expected = expected;
    for i in 0..10 {
        expected.push(row(&format!("site{i}.example"), "harmful", "adult", 3));
    }
    expected.sort();
    eventually("the spooled reports reach the central", || async {
        counts(&c, c_admin).await == expected
    })
    .await;
    eventually("the spool is empty", || async {
        metric(&c, local(e_admin), "kidsafe_report_spool_pending").await == 0.0
    })
    .await;
    assert_eq!(
        metric(&c, local(e_admin), "kidsafe_report_spooled_total").await,
        36.0
    );
    assert_eq!(
        metric(&c, local(e_admin), "kidsafe_report_delivered_total").await,
        36.0
    );
    // Nothing more arrives later (no redelivery counted twice).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(counts(&c, c_admin).await, expected);
    // The reporter's address went nowhere.
    let listed = c
        .get(format!("http://127.0.0.1:{c_admin}/v1/reports?limit=1000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains("127.0.0.1"), "{listed}");
    drop((edge, central));
    up.stop().await;
}

/// The central's intake: a delivery without the right edge token is a 401 and counted; a
/// redelivered key counts nothing; bad input in a batch is listed, the rest is taken.
#[tokio::test]
async fn the_central_refuses_wrong_tokens_and_counts_each_key_once() {
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    let (dns, admin) = (free_port(), free_port());
    let text = central_config(dir.path(), up.addr, dns, admin);
    let central = serve(dir.path(), "central", &text, local(admin)).await;
    let c = http();
    let url = format!("http://127.0.0.1:{admin}/v1/reports");
    let batch = json!({"node": "edge-1", "reports": [
        {"key": "k1", "serial": 3, "name": "a.example", "category": "adult"},
        {"key": "k2", "name": "a.example", "category": "adult"},
        {"key": "k3", "name": "192.0.2.1", "category": "adult"},
        {"key": "k4", "name": "b.example", "category": "weapons"},
        {"key": "k5", "name": "https://C.example/path", "kind": "mistake"},
    ]});

    let (status, _) = post(&c, &url, None, &batch).await;
    assert_eq!(status, 401);
    let (status, _) = post(&c, &url, Some("not-the-edge-token-at-all"), &batch).await;
    assert_eq!(status, 401);
    assert_eq!(
        metric(
            &c,
            local(admin),
            "kidsafe_report_intake_refused_total{reason=\"missing_token\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(
            &c,
            local(admin),
            "kidsafe_report_intake_refused_total{reason=\"wrong_token\"}"
        )
        .await,
        1.0
    );
    assert!(counts(&c, admin).await.is_empty(), "nothing taken");

    let (status, v) = post(&c, &url, Some(EDGE_TOKEN), &batch).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(3), Some(0))
    );
    let invalid: Vec<&str> = v["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(invalid, ["k3", "k4"], "{v}");
    // Replayed: the whole batch, then one key alone.
    let (status, v) = post(&c, &url, Some(EDGE_TOKEN), &batch).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(3))
    );
    let one = json!({"reports": [{"key": "k1", "name": "a.example", "category": "adult"}]});
    let (_, v) = post(&c, &url, Some(EDGE_TOKEN), &one).await;
    assert_eq!(v["duplicates"], 1, "{v}");
    assert_eq!(
        counts(&c, admin).await,
        vec![
            row("a.example", "harmful", "adult", 2),
            row("c.example", "mistake", "", 1),
        ]
    );
    assert_eq!(
        metric(&c, local(admin), "kidsafe_report_intake_duplicates_total").await,
        4.0
    );

    // The public form of the same route: bad input is a 400 that says why.
    for (body, says) in [
        (
            json!({"name": "192.0.2.7", "category": "adult"}),
            "IP address",
        ),
        (
            json!({"name": "2001:db8::7", "category": "adult"}),
            "IP address",
        ),
        (
            json!({"name": format!("{}.example", vec!["a".repeat(60); 5].join(".")), "category": "adult"}),
            "253",
        ),
        (
            json!({"name": "d.example", "category": "weapons"}),
            "unknown category",
        ),
        (json!({"name": "d.example"}), "needs a category"),
        (
            json!({"name": "d.example", "kind": "rumour", "category": "adult"}),
            "expected `harmful` or `mistake`",
        ),
    ] {
        let (status, v) = post(&c, &url, None, &body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (status, v) = post(
        &c,
        &url,
        None,
        &json!({"name": "https://Bad.Example/x?y", "category": "adult", "contact": "me@example.org"}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["name"], "bad.example");
    let listed = c.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(
        !listed.contains("me@example.org"),
        "contacts are dropped unless allow_contact: {listed}"
    );
    drop(central);
    up.stop().await;
}

/// The block page's forms: a post without a valid token (none, forged, another host's)
/// or from another origin is refused and stores nothing; what is echoed is escaped;
/// `?lang=en` switches the forms to English.
#[tokio::test]
async fn block_page_forms_refuse_posts_without_a_valid_token_or_origin() {
    let up = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    let (dns, admin, page) = (free_port(), free_port(), free_port());
    let text = config(
        up.addr,
        dns,
        admin,
        &format!("[blockpage]\nlisten = [\"127.0.0.1:{page}\"]\n[reports]\nallow_contact = true\n"),
    );
    let edge = serve(dir.path(), "edge", &text, local(admin)).await;
    let c = http();
    let (html, token) = block_page(&c, page, "bad.test", "?lang=en").await;
    assert!(html.contains("Blocked by mistake?"), "{html}");
    assert!(
        html.contains("name=\"contact\""),
        "allow_contact shows the field"
    );
    let (_, other_host_token) = block_page(&c, page, "porn.example", "").await;
    let fields = |t: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![("token", t), ("kind", "mistake"), ("name", "bad.test")]
    };
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let token: &'static str = leak(token);
    let other: &'static str = leak(other_host_token);
    for (origin, fields, why) in [
        (Some("bad.test"), fields(""), "no token"),
        (Some("bad.test"), fields("99999999999.00ff"), "forged token"),
        (Some("bad.test"), fields(other), "another host's token"),
        (Some("evil.example"), fields(token), "another origin"),
        (None, fields(token), "no Origin or Referer"),
    ] {
        let (status, body) = post_form(&c, page, "bad.test", origin, &fields).await;
        assert_eq!(status, 403, "{why}: {body}");
    }
    assert!(counts(&c, admin).await.is_empty(), "nothing stored");

    // Bad input is explained, escaped.
    let (status, body) = post_form(
        &c,
        page,
        "bad.test",
        Some("bad.test"),
        &[
            ("token", token),
            ("kind", "harmful"),
            ("name", "<script>x</script>"),
            ("category", "adult"),
            ("lang", "en"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("<script>"), "{body}");
    // A good one, with a contact the operator allows.
    let (status, body) = post_form(
        &c,
        page,
        "bad.test",
        Some("bad.test"),
        &[
            ("token", token),
            ("kind", "mistake"),
            ("name", "bad.test"),
            ("contact", "parent@example.org"),
            ("lang", "en"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("Thank you"), "{body}");
    let listed = c
        .get(format!("http://127.0.0.1:{admin}/v1/reports"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let r = &listed["reports"][0];
    assert_eq!(
        (r["name"].as_str(), r["kind"].as_str()),
        (Some("bad.test"), Some("mistake"))
    );
    assert_eq!(r["contacts"], json!(["parent@example.org"]));
    drop(edge);
    up.stop().await;
}

/// A central with its own `forward_to` (an ISP's) forwards what it takes onwards (to the
/// national central), keys unchanged: an edge's redelivery to the ISP counts once at
/// both, and the ISP's own public reports go up too.
#[tokio::test]
async fn an_isp_central_forwards_onwards_to_the_national_central() {
    const ISP_TOKEN: &str = "isp-central-token-0123456789";
    let up = Upstream::start(Zone::standard()).await;
    let (ndir, idir) = (list_dir(), list_dir());
    let (n_dns, n_admin, i_dns, i_admin) = (free_port(), free_port(), free_port(), free_port());
    std::fs::write(ndir.path().join("isp.token"), format!("{ISP_TOKEN}\n")).unwrap();
    let national_text = config(
        up.addr,
        n_dns,
        n_admin,
        "[reports]\nedges = [{ node = \"isp-1\", token_file = \"isp.token\" }]\n",
    );
    let national = serve(ndir.path(), "national", &national_text, local(n_admin)).await;
    std::fs::write(idir.path().join("edge1.token"), format!("{EDGE_TOKEN}\n")).unwrap();
    std::fs::write(idir.path().join("national.token"), format!("{ISP_TOKEN}\n")).unwrap();
    let isp_text = config(
        up.addr,
        i_dns,
        i_admin,
        &format!(
            "[reports]\nedges = [{{ node = \"edge-1\", token_file = \"edge1.token\" }}]\nforward_to = \"http://127.0.0.1:{n_admin}/v1/reports\"\ntoken_file = \"national.token\"\nnode_id = \"isp-1\"\nretry_max = \"500ms\"\n"
        ),
    );
    let isp = serve(idir.path(), "isp", &isp_text, local(i_admin)).await;
    let c = http();
    let url = format!("http://127.0.0.1:{i_admin}/v1/reports");
    let batch = json!({"node": "edge-1", "reports": [
        {"key": "e1-k1", "serial": 1, "name": "up.example", "category": "adult"},
        {"key": "e1-k2", "serial": 1, "name": "up.example", "category": "adult"},
    ]});
    for _ in 0..2 {
        let (status, v) = post(&c, &url, Some(EDGE_TOKEN), &batch).await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = post(
        &c,
        &url,
        None,
        &json!({"name": "own.example", "kind": "mistake"}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let expected = vec![
        row("own.example", "mistake", "", 1),
        row("up.example", "harmful", "adult", 2),
    ];
    assert_eq!(counts(&c, i_admin).await, expected);
    eventually("the ISP's reports reach the national central", || async {
        counts(&c, n_admin).await == expected
    })
    .await;
    assert_eq!(
        metric(&c, local(n_admin), "kidsafe_report_intake_accepted_total").await,
        3.0
    );
    drop((isp, national));
    up.stop().await;
}
