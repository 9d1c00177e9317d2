//! Two kidsafe-dns nodes (two app instances, each with its own state dir and admin API)
//! on one PostgreSQL: a profile and an identity created through node A's API are read
//! through node B's and decide node B's DNS answers; with PostgreSQL gone B keeps
//! filtering, refuses writes with a 503, and boots again from its last-good copy.
//! Skipped loudly when PostgreSQL is not installed (and `CI` unset).

mod common;
#[path = "common/postgres.rs"]
mod pg_cluster;

use std::net::SocketAddr;
use std::time::Duration;

use common::dig::{dig, dig_profile};
use common::*;
use pg_cluster::PgCluster;
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-admin-token";

fn config(upstream: SocketAddr, url: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 500
{STANDARD_LISTS}
[admin]
listen = ["127.0.0.1:0"]
token = "{TOKEN}"
[store]
url = "{url}"
"#
    )
}

async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = c.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_created_on_node_a_is_read_on_node_b() {
    let Some(pg) = tokio::task::spawn_blocking(PgCluster::start).await.unwrap() else {
        return;
    };
    let up = Upstream::start(Zone::standard()).await;
    let a = start_from_text(list_dir(), &config(up.addr, &pg.url()), None).await;
    let b = start_from_text(list_dir(), &config(up.addr, &pg.url()), None).await;
    kidsafe_dns::feed::http::install_crypto_provider();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (base_a, base_b) = (
        format!("http://{}", a.running.admin_addrs[0]),
        format!("http://{}", b.running.admin_addrs[0]),
    );

    let (status, body) = call(
        &c,
        reqwest::Method::POST,
        format!("{base_a}/v1/profiles"),
        Some(json!({"name": "teens", "categories": ["adult"], "deny": ["innocent.test"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &c,
        reqwest::Method::POST,
        format!("{base_a}/v1/profiles/{id}/identities"),
        Some(json!({"kind": "client_id", "value": "kid-tablet"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        &c,
        reqwest::Method::POST,
        format!("{base_a}/v1/profiles/{id}/identities"),
        Some(json!({"kind": "ip", "value": "127.0.0.5"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Node B's answers follow the profile written on A.
    let started = std::time::Instant::now();
    loop {
        let text = dig(b.addr, "127.0.0.5", &["innocent.test"]).await;
        if dig_profile(&text) == "teens" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B never applied it: {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "written on A → in force on B's DNS in {:?}",
        started.elapsed()
    );
    let other = dig(b.addr, "127.0.0.6", &["innocent.test"]).await;
    assert_eq!(dig_profile(&other), "forwarded", "{other}");

    let (status, body) = call(
        &c,
        reqwest::Method::GET,
        format!("{base_b}/v1/profiles"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"teens"), "{names:?}");
    let (status, body) = call(
        &c,
        reqwest::Method::GET,
        format!("{base_b}/v1/profiles/{id}/identities"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("kid-tablet"), "{body}");

    // PostgreSQL gone: a write through B is a 503 saying nothing changed; reads answer.
    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let (status, body) = call(
        &c,
        reqwest::Method::POST,
        format!("{base_b}/v1/profiles"),
        Some(json!({"name": "other"})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.to_string().contains("nothing was changed"), "{body}");
    let (status, body) = call(
        &c,
        reqwest::Method::GET,
        format!("{base_b}/v1/profiles"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = dig(b.addr, "127.0.0.5", &["innocent.test"]).await;
    assert_eq!(dig_profile(&text), "teens", "B keeps filtering: {text}");

    // B restarts with PostgreSQL still down: it boots from its last-good copy and the
    // stored profile decides its first answer.
    let Kidsafe { dir, running, .. } = b;
    running.stop().await;
    let text_b = std::fs::read_to_string(dir.path().join("kidsafe.toml")).unwrap();
    let b = start_from_text(dir, &text_b, None).await;
    let text = dig(b.addr, "127.0.0.5", &["innocent.test"]).await;
    assert_eq!(
        dig_profile(&text),
        "teens",
        "booted from the last-good copy: {text}"
    );
    drop((a, b));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// Is `n` blocked for 127.0.0.5 by node `k` (an EDE naming a group)?
async fn blocked_for_dot5(k: &Kidsafe, n: &str) -> bool {
    let q = query_msg(n, hickory_proto::rr::RecordType::A, true);
    let bytes = q.to_vec().unwrap();
    match raw_udp_from("127.0.0.5", k.addr, &bytes).await {
        Some(m) => ede(&m).is_some_and(|(_, text)| text.contains("(profile teens)")),
        None => false,
    }
}

/// A→B in force, 100 times: the time from node A's API answering a profile edit to node
/// B's DNS answering with it (polled every millisecond). Prints the percentiles for
/// BENCHMARKS.md: `cargo test --release --test profiles_postgres_api -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints percentiles"]
async fn propagation_to_dns_answers() {
    let Some(pg) = tokio::task::spawn_blocking(PgCluster::start).await.unwrap() else {
        return;
    };
    let up = Upstream::start(Zone::standard()).await;
    let a = start_from_text(list_dir(), &config(up.addr, &pg.url()), None).await;
    let b = start_from_text(list_dir(), &config(up.addr, &pg.url()), None).await;
    let api = common::admin_api::Api::new(a.running.admin_addrs[0], TOKEN);
    let r = api
        .post(
            "/v1/profiles",
            json!({"name": "teens", "deny": ["games.test"]}),
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
    while !blocked_for_dot5(&b, "games.test").await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut times = Vec::with_capacity(100);
    for (i, version) in (0..100).zip(1..) {
        let denied = if i % 2 == 0 {
            "innocent.test"
        } else {
            "games.test"
        };
        let r = api
            .write(
                "PATCH",
                &format!("/v1/profiles/{id}"),
                Some(json!({ "deny": [denied] })),
                &format!("\"{version}\""),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let start = std::time::Instant::now();
        while !blocked_for_dot5(&b, denied).await {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "change {i} never reached B"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        times.push(start.elapsed());
    }
    times.sort();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    eprintln!(
        "A's API → B's DNS answers, 100 changes: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(50),
        pct(90),
        pct(99),
        times[times.len() - 1]
    );
    drop((a, b));
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
