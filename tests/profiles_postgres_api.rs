//! Two kidsafe-dns nodes (two app instances, each with its own state dir and admin API)
//! on one PostgreSQL: a profile and an identity created through node A's API are read
//! through node B's. Skipped loudly when PostgreSQL is not installed (and `CI` unset).

mod common;
#[path = "common/postgres.rs"]
mod pg_cluster;

use std::net::SocketAddr;
use std::time::Duration;

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
        Some(json!({"name": "teens", "categories": ["adult"]})),
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
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}
