//! A profile's activity counts (what the console shows a parent) end to end: a profile and
//! its device made through the admin API, real `dig` queries from the device's address,
//! and `GET /v1/profiles/{id}/activity` counting them today and this week by category,
//! service, own list and bypass attempt. Another address's queries do not count for it; a
//! profile edit (the policy rebuilt) keeps the counts; the answer names no queried name
//! and no address; the route wants the token and a profile that exists.

mod common;

use std::net::SocketAddr;

use common::admin_api::Api;
use common::dig::{dig, dig_until};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "activity-reader-token";

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
{}
[cache]
max_entries = 0
[admin]
listen = ["127.0.0.1:0"]
token = "{TOKEN}"
"#,
        upstream_and_lists(upstream)
    )
}

/// Asks `name` from `from` until dig's answer holds `want` (e.g. the EDE's profile).
async fn until(k: &Kidsafe, from: &str, name: &str, want: &str) {
    dig_until(k.addr, from, &[name], want, |text| text.contains(want)).await;
}

/// A count in the activity answer: `period.key` or `period.map.key`; 0 when absent.
fn count(v: &Value, path: &str) -> u64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_u64()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_profiles_queries_are_counted_by_what_blocked_them() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr), None).await;
    let api = Api::new(k.running.admin_addrs[0], TOKEN);
    let r = api
        .post(
            "/v1/profiles",
            json!({"name": "family", "services": ["tiktok"], "deny": ["games.test"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = api
        .post(
            &format!("/v1/profiles/{id}/identities"),
            json!({"kind": "ip", "value": "127.0.0.5"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    until(&k, "127.0.0.5", "games.test", "(profile family)").await;
    let activity = format!("/v1/profiles/{id}/activity");
    let before = api.get(&activity).await;
    assert_eq!(before.status, 200, "{}", before.body);

    // adult ×2, gambling ×1, both (bad.test is on both lists) ×1, TikTok ×3, the browsers'
    // DoH canary ×1, the profile's own deny list ×1, allowed ×2.
    let asked = [
        "porn.example",
        "porn.example",
        "casino.example",
        "bad.test",
        "www.tiktok.com",
        "tiktok.com",
        "www.tiktok.com",
        "use-application-dns.net",
        "games.test",
        "innocent.test",
        "innocent.test",
    ];
    for n in asked {
        dig(k.addr, "127.0.0.5", &[n]).await;
    }
    // Another address is another profile (default): not this one's.
    for _ in 0..3 {
        dig(k.addr, "127.0.0.6", &["porn.example"]).await;
    }
    let after = api.get(&activity).await;
    assert_eq!(after.status, 200, "{}", after.body);
    let (b, a) = (&before.body, &after.body);
    let delta = |path: &str| count(a, path) - count(b, path);
    for period in ["today", "week"] {
        let d = |key: &str| delta(&format!("{period}.{key}"));
        assert_eq!(d("queries"), 11, "{a}");
        assert_eq!(d("blocked"), 9, "{a}");
        assert_eq!(d("categories.adult"), 3, "{a}");
        assert_eq!(d("categories.gambling"), 2, "{a}");
        assert_eq!(d("services.tiktok"), 3, "{a}");
        assert_eq!(d("bypass.canary"), 1, "{a}");
        assert_eq!(d("own_list"), 1, "{a}");
    }
    // Counts only: no name asked, no address.
    let text = a.to_string();
    for secret in ["porn.example", "tiktok.com", "127.0.0.5", "games.test"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // An edit rebuilds the policy; the profile's counts carry on.
    let r = api
        .write(
            "PATCH",
            &format!("/v1/profiles/{id}"),
            Some(json!({"services": ["tiktok", "roblox"]})),
            "\"1\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    until(
        &k,
        "127.0.0.5",
        "roblox.com",
        "service roblox (profile family)",
    )
    .await;
    let edited = api.get(&activity).await.body;
    assert!(
        count(&edited, "week.queries") > count(a, "week.queries"),
        "{edited}"
    );
    assert!(count(&edited, "week.services.roblox") >= 1, "{edited}");
    assert_eq!(
        count(&edited, "week.services.tiktok"),
        count(a, "week.services.tiktok"),
        "{edited}"
    );

    // A profile that does not exist; no token.
    assert_eq!(api.get("/v1/profiles/p999/activity").await.status, 404);
    let anonymous = reqwest::get(format!("{}{activity}", api.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    k.running.stop().await;
    up.stop().await;
}
