//! Stored profiles decide live: a profile and its identities created through the admin
//! API apply to the next queries (dig from the profile's address, and with the device MAC
//! a trusted home router adds), edits and deletes too, a stored identity that clashes
//! with the config file is the file's, and after a restart the stored profiles decide
//! from the first answer and `check` judges with them.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::admin_api::Api;
use common::dig::{dig, dig_profile, dig_until};
use common::*;
use serde_json::json;

const TOKEN: &str = "profile-writer-token";

/// `games.test` and `innocent.test` exist upstream (and no shared list has them); the `kids` group of the file denies
/// `games.test` for 127.0.0.2. 127.0.0.7 is the home router (a trusted forwarder).
fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
trusted_forwarders = ["127.0.0.7/32"]
{}
[cache]
max_entries = 0
[admin]
listen = ["127.0.0.1:0"]
token = "{TOKEN}"
[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
deny = ["games.test"]
"#,
        upstream_and_lists(upstream)
    )
}

/// Asks `name` from `from` (with `extra` dig arguments) until the answer is `want` (a
/// profile name or "forwarded"); how long that took. Panics after 10 s: a change that
/// never applies.
async fn until(k: &Kidsafe, from: &str, extra: &[&str], name: &str, want: &str) -> Duration {
    let mut args = extra.to_vec();
    args.push(name);
    dig_until(k.addr, from, &args, want, |text| dig_profile(text) == want)
        .await
        .1
}

#[tokio::test]
async fn api_profile_changes_decide_the_next_queries_and_survive_a_restart() {
    let up = Upstream::start(Zone::standard()).await;
    let text = config(up.addr);
    let k = start_from_text(list_dir(), &text, None).await;
    let api = Api::new(k.running.admin_addrs[0], TOKEN);

    let before = dig(k.addr, "127.0.0.5", &["games.test"]).await;
    assert_eq!(dig_profile(&before), "forwarded", "{before}");

    // A family's profile, then its device's address: the next queries follow it.
    let r = api
        .post(
            "/v1/profiles",
            json!({"name": "family", "deny": ["games.test"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/profiles/{id}");
    let identities = format!("{path}/identities");
    let r = api
        .post(&identities, json!({"kind": "ip", "value": "127.0.0.5"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let took = until(&k, "127.0.0.5", &[], "games.test", "family").await;
    eprintln!("identity added → in force for queries in {took:?}");
    let other = dig(k.addr, "127.0.0.6", &["games.test"]).await;
    assert_eq!(dig_profile(&other), "forwarded", "another address: {other}");
    let kids = dig(k.addr, "127.0.0.2", &["games.test"]).await;
    assert_eq!(dig_profile(&kids), "kids", "the file's group: {kids}");

    // The tablet behind the home router, by the MAC address the router adds.
    let r = api
        .post(
            &identities,
            json!({"kind": "mac", "value": "02:00:5E:10:00:01"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mac = ["+ednsopt=65001:02005e100001"];
    until(&k, "127.0.0.7", &mac, "games.test", "family").await;
    let router = dig(k.addr, "127.0.0.7", &["games.test"]).await;
    assert_eq!(dig_profile(&router), "forwarded", "no MAC: {router}");

    // An address the file's `kids` group lists is the file's, even when stored too.
    let r = api
        .post(&identities, json!({"kind": "ip", "value": "127.0.0.2"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .write(
            "PATCH",
            &path,
            Some(json!({"deny": ["innocent.test"]})),
            "\"1\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let took = until(&k, "127.0.0.5", &[], "innocent.test", "family").await;
    eprintln!("profile edited → in force for queries in {took:?}");
    until(&k, "127.0.0.5", &[], "games.test", "forwarded").await;
    let kids = dig(k.addr, "127.0.0.2", &["games.test"]).await;
    assert_eq!(dig_profile(&kids), "kids", "still the file's: {kids}");

    let metrics = api
        .c
        .get(format!("{}/metrics", api.base))
        .bearer_auth(TOKEN);
    let metrics = metrics.send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("kidsafe_profile_changes_applied_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kidsafe_profile_changes_applied_total{result=\"failed\"} 0"),
        "{metrics}"
    );

    // Restart on the same state directory: the stored profile decides the first answer.
    let Kidsafe { dir, running, .. } = k;
    running.stop().await;
    let k = start_from_text(dir, &text, None).await;
    let first = dig(k.addr, "127.0.0.5", &["innocent.test"]).await;
    assert_eq!(dig_profile(&first), "family", "first answer: {first}");

    // `check` judges as the resolver does: the stored profile decides.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
        .arg("check")
        .arg("--config")
        .arg(k.dir.path().join("kidsafe.toml"))
        .args(["--client", "127.0.0.5", "innocent.test", "games.test"])
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.contains("innocent.test\tBLOCKED") && out.contains("profile family (by address)"),
        "{out}"
    );
    assert!(out.contains("games.test\tALLOWED"), "{out}");

    // Deleted: the next queries are the default's again.
    let api = Api::new(k.running.admin_addrs[0], TOKEN);
    let r = api.write("DELETE", &path, None, "\"2\"").await;
    assert_eq!(r.status, 204, "{}", r.body);
    until(&k, "127.0.0.5", &[], "innocent.test", "forwarded").await;
    up.stop().await;
}
