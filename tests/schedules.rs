//! Schedules, exceptions, pauses and mandatory categories on the real server, judged by a
//! clock the test moves (no sleeping for the windows): an allow window flips at its
//! edges, an exception made through the admin API unblocks at once and lapses when the
//! clock passes it, a pause lets all but mandatory through, a mandatory category is never
//! unblocked (allow list, exception, pause), and an exception keeps its expiry across a
//! restart.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::admin_api::Api;
use common::dig::{dig, dig_until};
use common::*;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};
use serde_json::json;

const TOKEN: &str = "schedule-writer-token";
/// 2027-02-13, a Saturday, 00:00 UTC.
const SAT: i64 = 1_802_476_800;
const HOUR: i64 = 3600;
const KIDS: &str = "/v1/profiles/config:kids";

/// Kids (127.0.0.2): adult blocked, TikTok blocked, Roblox only on Saturday 14:00-17:00;
/// their allow list names `casino.example`, in the mandatory `gambling` category.
fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[blocking]
mode = "nxdomain"
[admin]
listen = ["127.0.0.1:0"]
token = "{TOKEN}"
[lists]
compiled = "var/blocklist.fst"
mandatory = ["gambling"]
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "gambling"
path = "gambling.txt"

[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
categories = ["adult"]
allow = ["casino.example"]
services = ["tiktok"]
[[groups.schedules]]
days = ["sat"]
start = "14:00"
end = "17:00"
timezone = "UTC"
action = "allow"
services = ["roblox"]
"#
    )
}

fn zone() -> Zone {
    let mut z = Zone::standard();
    for (n, last) in [("roblox.com.", 50), ("tiktok.com.", 51)] {
        let ip = Ipv4Addr::new(192, 0, 2, last);
        z.add(Record::from_rdata(name(n), 3600, RData::A(A(ip))));
    }
    z
}

/// "blocked" (NXDOMAIN) or "forwarded" (an answer from the test upstream) for the kids.
async fn kids(k: &Kidsafe, name: &str) -> &'static str {
    let text = dig(k.addr, "127.0.0.2", &[name]).await;
    if text.contains("status: NXDOMAIN") {
        "blocked"
    } else {
        assert!(text.contains("192.0.2."), "{text}");
        "forwarded"
    }
}

fn clock(at: &Arc<AtomicI64>) -> kidsafe_dns::policy::decide::Clock {
    let at = at.clone();
    Arc::new(move || jiff::Timestamp::from_second(at.load(Ordering::SeqCst)).unwrap())
}

#[tokio::test]
async fn windows_exceptions_pause_and_mandatory_end_to_end() {
    let up = Upstream::start(zone()).await;
    let text = config(up.addr);
    let at = Arc::new(AtomicI64::new(SAT + 14 * HOUR - 1));
    let k = start_from_text(list_dir(), &text, Some(clock(&at))).await;
    let api = Api::new(k.running.admin_addrs[0], TOKEN);

    // The allow window flips at its edges.
    assert_eq!(kids(&k, "roblox.com").await, "blocked", "13:59:59");
    at.store(SAT + 14 * HOUR, Ordering::SeqCst);
    assert_eq!(kids(&k, "roblox.com").await, "forwarded", "14:00");
    assert_eq!(kids(&k, "roblox.com").await, "forwarded", "14:00, cached");
    at.store(SAT + 17 * HOUR, Ordering::SeqCst);
    assert_eq!(kids(&k, "roblox.com").await, "blocked", "17:00");

    // An exception through the API unblocks at once, then lapses with the clock.
    assert_eq!(kids(&k, "tiktok.com").await, "blocked");
    let r = api
        .post(
            &format!("{KIDS}/exceptions"),
            json!({"service": "tiktok", "minutes": 60}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(kids(&k, "tiktok.com").await, "forwarded");
    at.store(SAT + 18 * HOUR, Ordering::SeqCst);
    assert_eq!(kids(&k, "tiktok.com").await, "blocked", "lapsed");

    // A pause: everything but the mandatory category.
    let r = api
        .post(&format!("{KIDS}/pause"), json!({"minutes": 30}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    for name in ["xn--bcher-kva.example", "roblox.com", "tiktok.com"] {
        assert_eq!(kids(&k, name).await, "forwarded", "{name} paused");
    }
    assert_eq!(
        kids(&k, "casino.example").await,
        "blocked",
        "mandatory, paused"
    );
    at.store(SAT + 18 * HOUR + 30 * 60, Ordering::SeqCst);
    assert_eq!(
        kids(&k, "xn--bcher-kva.example").await,
        "blocked",
        "the pause lapsed"
    );

    // Mandatory: the allow list names it, and an exception does not help either.
    let r = api
        .post(
            &format!("{KIDS}/exceptions"),
            json!({"name": "casino.example", "minutes": 60}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        kids(&k, "casino.example").await,
        "blocked",
        "mandatory, excepted"
    );

    // Bad input.
    let r = api
        .post(
            &format!("{KIDS}/exceptions"),
            json!({"pause": true, "minutes": 0}),
        )
        .await;
    assert_eq!((r.status, r.body["field"].as_str()), (400, Some("minutes")));
    let r = api
        .post(
            &format!("{KIDS}/exceptions"),
            json!({"service": "robloxx", "minutes": 5}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.body["error"].as_str().unwrap().contains("roblox"),
        "{}",
        r.body
    );
    let r = api
        .post(
            &format!("{KIDS}/exceptions"),
            json!({"pause": true, "minutes": 10081}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .post(
            "/v1/profiles/p999/exceptions",
            json!({"pause": true, "minutes": 5}),
        )
        .await;
    assert_eq!(r.status, 404);

    // An exception survives a restart with the same expiry; revoking it ends it.
    let r = api
        .post(
            &format!("{KIDS}/exceptions"),
            json!({"name": "xn--bcher-kva.example", "minutes": 120}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (eid, until) = (r.body["id"].clone(), r.body["until"].clone());
    assert_eq!(kids(&k, "xn--bcher-kva.example").await, "forwarded");
    let Kidsafe { dir, running, .. } = k;
    running.stop().await;
    let k = start_from_text(dir, &text, Some(clock(&at))).await;
    let api = Api::new(k.running.admin_addrs[0], TOKEN);
    let r = api.get(&format!("{KIDS}/exceptions")).await;
    let listed = r.body["exceptions"].as_array().unwrap().clone();
    let found = listed.iter().find(|e| e["id"] == eid).expect("kept");
    assert_eq!(found["until"], until, "same expiry after a restart");
    assert_eq!(
        kids(&k, "xn--bcher-kva.example").await,
        "forwarded",
        "after the restart"
    );
    let r = api
        .send(
            "DELETE",
            &format!("{KIDS}/exceptions/{}", eid.as_str().unwrap()),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        kids(&k, "xn--bcher-kva.example").await,
        "blocked",
        "revoked"
    );
    k.running.stop().await;
}

/// Asks `name` from `from` until the verdict is `want`; panics after 10 s (a stored
/// profile applies once the policy is rebuilt, a few hundred milliseconds after a write).
async fn until(k: &Kidsafe, from: &str, name: &str, want: &str) {
    let got = |text: &str| {
        if text.contains("status: NXDOMAIN") {
            "blocked"
        } else {
            "forwarded"
        }
    };
    dig_until(k.addr, from, &[name], want, |text| got(text) == want).await;
}

#[tokio::test]
async fn stored_profiles_take_windows_through_the_api() {
    let up = Upstream::start(zone()).await;
    let text = config(up.addr);
    let at = Arc::new(AtomicI64::new(SAT + 15 * HOUR));
    let k = start_from_text(list_dir(), &text, Some(clock(&at))).await;
    let api = Api::new(k.running.admin_addrs[0], TOKEN);
    let window = |end: &str, tz: &str| {
        json!({"days": ["sat"], "start": "14:00", "end": end, "timezone": tz,
               "action": "allow", "services": ["roblox"], "except": ["2027-02-20"]})
    };

    // Bad windows are refused, naming the field.
    for (w, field) in [
        (window("14:00", "UTC"), "schedules[0].end"),
        (window("17:00", "Mars/Olympus"), "schedules[0].timezone"),
    ] {
        let r = api
            .post("/v1/profiles", json!({"name": "family", "schedules": [w]}))
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["field"], field, "{}", r.body);
    }

    let r = api
        .post(
            "/v1/profiles",
            json!({"name": "family", "schedules": [window("17:00", "UTC")]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = api
        .post(
            &format!("/v1/profiles/{id}/identities"),
            json!({"kind": "ip", "value": "127.0.0.3"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    until(&k, "127.0.0.3", "roblox.com", "forwarded").await;
    at.store(SAT + 17 * HOUR, Ordering::SeqCst);
    until(&k, "127.0.0.3", "roblox.com", "blocked").await;
    // The excepted Saturday stays shut.
    at.store(SAT + 7 * 24 * HOUR + 15 * HOUR, Ordering::SeqCst);
    until(&k, "127.0.0.3", "roblox.com", "blocked").await;
    at.store(SAT + 14 * 24 * HOUR + 15 * HOUR, Ordering::SeqCst);
    until(&k, "127.0.0.3", "roblox.com", "forwarded").await;
    k.running.stop().await;
}
