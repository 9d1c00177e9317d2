//! The national loop over the signed HTTP feed, with real processes: a central
//! (`kidsafe-dns serve` with `[publish]` and a key made by the real `minisign` CLI) takes
//! reports, a reviewer decides, and an edge (another `kidsafe-dns serve` following
//! `/v1/published/{list}.txt` with the central's public key) blocks, or lets through, within
//! its poll; `dig` asks the edge, `minisign -Vm` checks what the central serves.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

use common::admin_api::Api;
use common::central::{free_port, minisign_keys, serve};
use common::dig::dig;
use common::*;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use serde_json::{Value, json};

const TOKEN: &str = "central-0123456789abcdef";

/// The central's config.
fn central_config(
    dns: u16,
    admin: SocketAddr,
    upstream: SocketAddr,
    extra_admin: &str,
    key: &str,
) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{dns}"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[lists]
compiled = "var/central.fst"
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "gambling"
path = "gambling.txt"
[admin]
listen = ["{admin}"]
token = "{TOKEN}"
reports_per_hour = 1000
feed_requests_per_hour = 100000
{extra_admin}
[publish]
minisign_key_file = "{key}"
"#
    )
}

/// The upstream zone plus the names the test reports.
fn zone() -> Zone {
    let mut z = Zone::standard();
    for (n, last) in [
        ("baseline.test.", 50),
        ("casino-x.test.", 51),
        ("mistake.test.", 52),
    ] {
        z.add(Record::from_rdata(
            name(n),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        ));
    }
    z
}

/// Whether the edge blocks `n` (NXDOMAIN with an EDE) rather than forwarding it.
async fn blocked(edge: SocketAddr, n: &str) -> bool {
    let out = dig(edge, "127.0.0.1", &[n, "A"]).await;
    if out.contains("status: NXDOMAIN") && out.contains("EDE") {
        return true;
    }
    assert!(out.contains("status: NOERROR"), "{out}");
    false
}

/// Waits until the edge's verdict on `n` is `want`; how long it took.
async fn until(edge: SocketAddr, n: &str, want: bool, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if blocked(edge, n).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{n}: still {} after {limit:?}",
            if want { "not blocked" } else { "blocked" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn report(api: &Api, n: &str, category: &str, note: &str) -> i64 {
    let r = api
        .post(
            "/v1/reports",
            json!({"name": n, "category": category, "note": note}),
        )
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

async fn decide(api: &Api, id: i64, body: Value) -> (u16, Value) {
    let r = api.post(&format!("/v1/reports/{id}/decision"), body).await;
    (r.status, r.body)
}

/// A reviewer's decision at the central reaches an edge through the signed feed within its
/// 1 s poll, and so does its revert; a "blocked by mistake" decision goes to the allowlist
/// the edge follows; `minisign -Vm` verifies what the central serves; ETags give 304.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_at_the_central_blocks_at_the_edge_within_a_poll_and_a_revert_unblocks() {
    let up = Upstream::start(zone()).await;
    let dir = list_dir();
    let d = dir.path();
    let pubkey = minisign_keys(d);
    let (c_admin, c_dns) = (SocketAddr::from(([127, 0, 0, 1], free_port())), free_port());
    let _central = serve(
        d,
        "central",
        &central_config(c_dns, c_admin, up.addr, "", "central.key"),
        c_admin,
    )
    .await;
    let api = Api::new(c_admin, TOKEN);

    // The edge: its own local list, and the central's gambling list and allowlist.
    std::fs::write(d.join("local.txt"), "mistake.test\n").unwrap();
    let (e_admin, e_dns) = (SocketAddr::from(([127, 0, 0, 1], free_port())), free_port());
    let feed = format!("http://{c_admin}/v1/published");
    let edge_text = format!(
        r#"[server]
listen = ["127.0.0.1:{e_dns}"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[blocking]
mode = "nxdomain"
ttl = 1
[lists]
compiled = "var/edge.fst"
state_dir = "var/edge-state"
[[lists.source]]
category = "adult"
path = "local.txt"
[[lists.source]]
name = "central-gambling"
category = "gambling"
url = "{feed}/gambling.txt"
minisign_pubkey = "{pubkey}"
refresh = "1s"
[[lists.allow]]
name = "central-allow"
url = "{feed}/allow.txt"
minisign_pubkey = "{pubkey}"
refresh = "1s"
[admin]
listen = ["{e_admin}"]
"#,
        upstream = up.addr
    );
    let _edge = serve(d, "edge", &edge_text, e_admin).await;
    let edge = SocketAddr::from(([127, 0, 0, 1], e_dns));
    assert!(!blocked(edge, "baseline.test").await);
    assert!(blocked(edge, "mistake.test").await, "the edge's own list");

    // Accept: the edge blocks within its poll (1 s, plus the settle of its pipeline).
    let limit = Duration::from_secs(15);
    let mut timings = Vec::new();
    for n in ["baseline.test", "casino-x.test"] {
        let id = report(&api, n, "gambling", "betting").await;
        let decided = Instant::now();
        let (status, v) = decide(
            &api,
            id,
            json!({"decision": "accept", "category": "gambling", "note": "betting site", "reviewer": "alice"}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["status"], "accepted");
        assert_eq!(v["published"]["list"], "gambling");
        assert_eq!(v["published"]["actor"], "admin:alice");
        assert!(v["published"]["serial"].as_u64().unwrap() > 1, "{v}");
        until(edge, n, true, limit).await;
        timings.push(decided.elapsed());
    }
    println!("decision -> edge blocking (HTTP feed, 1 s poll): {timings:?}");

    // What the central serves is verified by the real minisign CLI.
    let c = reqwest::Client::new();
    let body = c.get(format!("{feed}/gambling.txt")).send().await.unwrap();
    assert_eq!(body.status(), 200);
    let etag = body.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    let text = body.text().await.unwrap();
    assert!(
        text.starts_with("# kidsafe-dns published list: gambling\n"),
        "{text}"
    );
    assert!(text.contains("\nbaseline.test\ncasino-x.test\n"), "{text}");
    let sig = c
        .get(format!("{feed}/gambling.txt.minisig"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(d.join("got.txt"), &text).unwrap();
    std::fs::write(d.join("got.txt.minisig"), &sig).unwrap();
    let verify = Command::new("minisign")
        .args(["-V", "-P", &pubkey, "-m"])
        .arg(d.join("got.txt"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said} {verify:?}");
    assert!(said.contains("published list gambling serial"), "{said}");
    // A tampered body does not verify.
    std::fs::write(d.join("got.txt"), text.replace("casino-x", "casino-y")).unwrap();
    let tampered = Command::new("minisign")
        .args(["-V", "-P", &pubkey, "-m"])
        .arg(d.join("got.txt"))
        .output()
        .unwrap();
    assert!(!tampered.status.success());

    // The ETag: 304 while the list is unchanged.
    let again = c
        .get(format!("{feed}/gambling.txt"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let unknown = c.get(format!("{feed}/poker.txt")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    // Revert: the removal is published, the edge lets the name through again.
    let ids: Value = api.get("/v1/reports?status=accepted").await.body;
    let casino = ids["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "casino-x.test")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let reverted = Instant::now();
    let r = api
        .post(
            &format!("/v1/reports/{casino}/revert"),
            json!({"note": "a sports news site", "reviewer": "bob"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["reverted"]["reverted_by"], "admin:bob");
    let audit = r.body["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["actor"], "admin:alice");
    assert_eq!(audit[0]["note"], "betting site");
    assert_eq!(audit[0]["revert_note"], "a sports news site");
    until(edge, "casino-x.test", false, limit).await;
    let unblocked = reverted.elapsed();
    assert!(
        blocked(edge, "baseline.test").await,
        "the other decision stands"
    );
    let changed = c
        .get(format!("{feed}/gambling.txt"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "a new serial, a new ETag");
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);

    // The last name reverted: the list is empty but still one the edge accepts (its
    // guards refuse a copy with no valid entry and one that shrinks by more than half;
    // the published list's `.invalid` keep-alive name covers both), so the edge lets
    // that name through as well.
    let baseline = ids["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "baseline.test")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let r = api
        .post(
            &format!("/v1/reports/{baseline}/revert"),
            json!({"note": "not a betting site", "reviewer": "bob"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until(edge, "baseline.test", false, limit).await;
    let empty = c
        .get(format!("{feed}/gambling.txt"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(empty.contains("# names: 0\n"), "{empty}");
    assert!(!empty.contains("baseline.test"), "{empty}");

    // "Blocked by mistake": accepted to the allowlist, which the edge follows.
    let id = report(&api, "mistake.test", "adult", "a school's site").await;
    let decided = Instant::now();
    let (status, v) = decide(
        &api,
        id,
        json!({"decision": "accept", "category": "allow", "note": "not adult content"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["published"]["list"], "allow");
    until(edge, "mistake.test", false, limit).await;
    let allowed = decided.elapsed();
    println!("revert -> edge unblocking: {unblocked:?}; mistake -> edge allowing: {allowed:?}");
    up.stop().await;
}

/// The review API: the queue by count, and every refusal changes nothing: 404 unknown
/// report, 409 decided twice or nothing to revert, 400 unknown category or bad body; the
/// public check answers without the token, in short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_api_sorts_refuses_bad_decisions_and_the_public_check_says_little() {
    let up = Upstream::start(zone()).await;
    let dir = list_dir();
    let d = dir.path();
    minisign_keys(d);
    let c_admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let text = central_config(
        free_port(),
        c_admin,
        up.addr,
        "public_check = true\npublic_check_per_hour = 8",
        "central.key",
    );
    let _central = serve(d, "central", &text, c_admin).await;
    let api = Api::new(c_admin, TOKEN);

    let once = report(&api, "once.test", "gambling", "who@example.org saw it").await;
    for _ in 0..3 {
        report(&api, "thrice.test", "gambling", "").await;
    }
    for _ in 0..2 {
        report(&api, "twice.test", "adult", "").await;
    }
    let by_count = api.get("/v1/reports?status=open&sort=count").await;
    assert_eq!(by_count.status, 200, "{}", by_count.body);
    let names: Vec<&str> = by_count.body["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["thrice.test", "twice.test", "once.test"]);
    let page = api
        .get("/v1/reports?status=open&sort=count&limit=1&offset=1")
        .await;
    assert_eq!(page.body["reports"][0]["name"], "twice.test");
    let oldest = api.get("/v1/reports?sort=first_seen&limit=1").await;
    assert_eq!(oldest.body["reports"][0]["name"], "once.test");
    assert_eq!(api.get("/v1/reports?sort=size").await.status, 400);

    // Refusals.
    let (status, v) = decide(&api, 9999, json!({"decision": "accept"})).await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = decide(
        &api,
        once,
        json!({"decision": "accept", "category": "poker"}),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("poker"), "{v}");
    let (status, v) = decide(&api, once, json!({"decision": "maybe"})).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = decide(&api, once, json!({"decision": "accept", "by": "x"})).await;
    assert_eq!(status, 400, "{v}");
    let r = api
        .post(&format!("/v1/reports/{once}/revert"), json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    let unchanged = api.get("/v1/reports?status=open").await;
    assert_eq!(unchanged.body["reports"].as_array().unwrap().len(), 3);
    let feed = format!("http://{c_admin}/v1/published/gambling.txt");
    let c = reqwest::Client::new();
    let empty = c.get(&feed).send().await.unwrap().text().await.unwrap();
    assert!(empty.contains("# names: 0"), "{empty}");

    // Under review, listed, not listed; nothing about who reported or why.
    let public = |n: &str| {
        let c = c.clone();
        let url = format!("http://{c_admin}/v1/check?name={n}");
        async move {
            let r = c.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap(),
            )
        }
    };
    let (status, v) = public("www.once.test").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "under_review");
    let shown = v.to_string();
    assert!(
        !shown.contains("who@") && !shown.contains("note"),
        "{shown}"
    );
    let (status, v) = decide(&api, once, json!({"decision": "accept", "note": "casino"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["published"]["list"], "gambling", "the report's category");
    let (status, v) = decide(&api, once, json!({"decision": "reject"})).await;
    assert_eq!(status, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("already decided"),
        "{v}"
    );
    let (_, v) = public("once.test").await;
    assert_eq!(v["status"], "listed");
    assert_eq!(v["categories"], json!(["gambling"]));
    let (_, v) = public("bad.test").await;
    assert_eq!(v["status"], "listed", "the central's own list: {v}");
    let (_, v) = public("innocent.test").await;
    assert_eq!(v["status"], "not_listed");
    let (status, _) = public("not..a..name").await;
    assert_eq!(status, 400);
    // Limited per address (8 per hour; the invalid one was given back).
    let mut limited = false;
    for _ in 0..8 {
        limited |= public("innocent.test").await.0 == 429;
    }
    assert!(limited, "the public check is limited per address");
    // The token still gets the full report.
    let full = api.get("/v1/check?name=once.test").await;
    assert_eq!(full.status, 200);
    assert!(full.body["groups"].is_array(), "{}", full.body);
    up.stop().await;
}

/// A signing key that is missing: the central serves, its feed answers 503 and says why
/// (never an unsigned list), `check-config` names the key file; without `public_check`
/// `/v1/check` needs the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_stops_publishing_and_the_check_needs_the_token() {
    let up = Upstream::start(zone()).await;
    let dir = list_dir();
    let d = dir.path();
    let c_admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let text = central_config(free_port(), c_admin, up.addr, "", "missing.key");
    let _central = serve(d, "central", &text, c_admin).await;
    let c = reqwest::Client::new();
    for file in ["gambling.txt", "gambling.txt.minisig", "allow.txt"] {
        let r = c
            .get(format!("http://{c_admin}/v1/published/{file}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{file}");
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("minisign_key_file"),
            "{v}"
        );
    }
    // Decisions are still recorded and published to the store; the feed waits for a key.
    let api = Api::new(c_admin, TOKEN);
    let id = report(&api, "casino-x.test", "gambling", "").await;
    let (status, v) = decide(&api, id, json!({"decision": "accept"})).await;
    assert_eq!(status, 200, "{v}");
    let log = std::fs::read_to_string(d.join("central.log")).unwrap();
    assert_eq!(
        log.matches("publishing stopped").count(),
        1,
        "logged once: {log}"
    );
    // The key arrives: publishing resumes (no restart), signed.
    let pubkey = minisign_keys(d);
    std::fs::rename(d.join("central.key"), d.join("missing.key")).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = c
        .get(format!("http://{c_admin}/v1/published/gambling.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("casino-x.test"));
    assert!(!pubkey.is_empty());

    let check = Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
        .args(["check-config", "--config"])
        .arg(d.join("central.toml"))
        .output()
        .unwrap();
    assert!(check.status.success(), "the key is there now: {check:?}");
    std::fs::remove_file(d.join("missing.key")).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
        .args(["check-config", "--config"])
        .arg(d.join("central.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr).into_owned()
        + &String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{said}");
    assert!(
        said.contains("minisign_key_file") && said.contains("missing.key"),
        "{said}"
    );

    let r = c
        .get(format!("http://{c_admin}/v1/check?name=bad.test"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "public_check is off");
    up.stop().await;
}
