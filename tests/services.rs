//! Blocked services end to end: kidsafe-dns started from a config whose group `kids`
//! (127.0.0.2) blocks `services = ["tiktok"]` and `service_groups = ["games"]`, a loopback
//! upstream that knows every name asked, and real UDP queries from 127.0.0.2 (kids) and
//! 127.0.0.3 (default). Every such service of the catalog is blocked by its first domain
//! and a name under it for kids only, with the EDE text naming the service; a CNAME into
//! a blocked service is blocked too (also when the answer comes from the cache); the
//! group's allow list still wins; `/v1/check`, the metrics and `check --client` name it.

mod common;

use std::net::{Ipv4Addr, SocketAddr};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{RData, Record, RecordType};
use kidsafe_dns::services::Catalog;

const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
shutdown_grace_ms = 1000
{}
[admin]
listen = ["127.0.0.1:0"]
[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
services = ["tiktok"]
service_groups = ["games"]
allow = ["music.tiktok.com"]
[[groups]]
name = "everything"
clients = ["127.0.0.4/32"]
categories = []
bypass_protection = false
service_groups = [{}]
[[groups]]
name = "default"
"#,
        upstream_and_lists(upstream),
        every_group()
    )
}

/// Every service group of the built-in catalog, as a TOML array's items.
fn every_group() -> String {
    let mut groups: Vec<String> = Catalog::builtin()
        .unwrap()
        .services()
        .iter()
        .map(|s| format!("{:?}", s.group))
        .collect();
    groups.sort();
    groups.dedup();
    groups.join(", ")
}

/// The services `kids` blocks, each with the two names asked: its first domain and a
/// name under it.
fn blocked_services(catalog: &Catalog) -> Vec<(String, [String; 2])> {
    catalog
        .services()
        .iter()
        .filter(|s| s.id == "tiktok" || s.group == "games")
        .map(|s| {
            let first = &s.domains[0].name;
            (
                s.id.clone(),
                [format!("{first}."), format!("kidsafe-test.{first}.")],
            )
        })
        .collect()
}

async fn ask(from: &str, addr: SocketAddr, n: &str) -> Message {
    let q = query_msg(n, RecordType::A, true).to_vec().unwrap();
    raw_udp_from(from, addr, &q).await.unwrap()
}

#[tokio::test]
async fn a_groups_blocked_services_are_blocked_for_it_only() {
    let catalog = Catalog::builtin().unwrap();
    let services = blocked_services(&catalog);
    assert!(services.len() > 10, "tiktok and the games group");
    let mut zone = Zone::standard();
    for (_, names) in &services {
        for n in names {
            zone.add(Record::from_rdata(name(n), 300, RData::A(A(ANSWER))));
        }
    }
    zone.add(Record::from_rdata(
        name("music.tiktok.com."),
        300,
        RData::A(A(ANSWER)),
    ));
    // CNAME cloaking: an innocent name aliased into TikTok.
    zone.set(
        "clip.test.",
        RecordType::A,
        vec![
            Record::from_rdata(
                name("clip.test."),
                300,
                RData::CNAME(CNAME(name("v16.tiktokcdn.com."))),
            ),
            Record::from_rdata(name("v16.tiktokcdn.com."), 300, RData::A(A(ANSWER))),
        ],
    );
    let up = Upstream::start(zone).await;
    let k = start_from_text(list_dir(), &config(up.addr), None).await;

    for (id, names) in &services {
        for n in names {
            let m = ask("127.0.0.2", k.addr, n).await;
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{n}");
            assert!(a_records(&m).is_empty(), "{n}");
            assert_eq!(
                ede(&m),
                Some((17, format!("blocked: service {id} (profile kids)"))),
                "{n}"
            );
            let m = ask("127.0.0.3", k.addr, n).await;
            assert_eq!(a_records(&m), [ANSWER], "{n} for the default group");
            assert_eq!(ede(&m), None, "{n}");
        }
    }
    // The group's own allow list still wins over its services.
    let m = ask("127.0.0.2", k.addr, "music.tiktok.com.").await;
    assert_eq!(a_records(&m), [ANSWER], "{:?}", ede(&m));
    // A service the group does not block: YouTube is neither tiktok nor a game.
    let m = ask("127.0.0.2", k.addr, "www.youtube.com.").await;
    assert!(ede(&m).is_none_or(|(_, t)| !t.contains("service")));

    // The CNAME chain: forwarded for default (and now cached), blocked for kids, twice
    // (the second from the cache).
    let m = ask("127.0.0.3", k.addr, "clip.test.").await;
    assert_eq!(a_records(&m), [ANSWER]);
    for _ in 0..2 {
        let m = ask("127.0.0.2", k.addr, "clip.test.").await;
        assert!(a_records(&m).is_empty());
        assert_eq!(
            ede(&m),
            Some((17, "blocked: service tiktok (profile kids)".to_owned()))
        );
    }

    // The admin API: /v1/check names the service for the group, the metrics count it.
    let admin = k.running.admin_addrs[0];
    kidsafe_dns::feed::http::install_crypto_provider();
    let url = format!("http://{admin}/v1/check?name=www.tiktok.com&client=127.0.0.2");
    let v: serde_json::Value =
        serde_json::from_str(&reqwest::get(url).await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(v["profile"]["group"], "kids", "{v}");
    assert_eq!(v["profile"]["verdict"], "blocked", "{v}");
    let kids = v["groups"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["group"] == "kids"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(kids["service"], "tiktok", "{v}");
    let metrics = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // tiktok: its two names and the CNAME twice.
    assert!(
        metrics.contains("kidsafe_service_blocks_total{service=\"tiktok\"} 4"),
        "{metrics}"
    );
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn unknown_services_in_the_config_are_refused_with_the_known_ones() {
    let dir = list_dir();
    let text = config("127.0.0.1:9".parse().unwrap()).replace("\"tiktok\"", "\"tikstok\"");
    let path = dir.path().join("kidsafe.toml");
    std::fs::write(&path, &text).unwrap();
    let e = kidsafe_dns::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("kidsafe.toml"), "{e}");
    assert!(e.contains("groups.kids.services"), "{e}");
    assert!(e.contains("tikstok") && e.contains("roblox"), "{e}");
    let text = config("127.0.0.1:9".parse().unwrap()).replace("\"games\"", "\"gamez\"");
    std::fs::write(&path, &text).unwrap();
    let e = kidsafe_dns::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("groups.kids.service_groups"), "{e}");
    assert!(e.contains("ai_companion"), "{e}");
}

#[test]
fn the_check_command_names_the_service() {
    let dir = list_dir();
    let path = dir.path().join("kidsafe.toml");
    std::fs::write(&path, config("127.0.0.1:9".parse().unwrap())).unwrap();
    let check = |ip: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["check", "--config"])
            .arg(&path)
            .args(["--client", ip, "www.tiktok.com"])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), format!("{out}{err}"))
    };
    let (code, out) = check("127.0.0.2");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("service tiktok") && out.contains("rule tiktok.com"),
        "{out}"
    );
    assert!(out.contains("profile kids"), "{out}");
    let (code, out) = check("127.0.0.3");
    assert_eq!(code, Some(0), "{out}");
}

/// Every service of the built-in catalog, by its first domain and a name under it, for a
/// profile that blocks every service group (and nothing else); the default profile gets
/// the upstream's answer for the same names.
#[tokio::test]
async fn every_service_of_the_catalog_is_blocked_by_its_domain_and_a_subdomain() {
    let catalog = Catalog::builtin().unwrap();
    assert!(catalog.services().len() >= 50);
    let mut zone = Zone::standard();
    let mut asked = Vec::new();
    for s in catalog.services() {
        let first = &s.domains[0].name;
        for n in [format!("{first}."), format!("www.kidsafe-test.{first}.")] {
            zone.add(Record::from_rdata(name(&n), 300, RData::A(A(ANSWER))));
            asked.push((s.id.clone(), n));
        }
    }
    let up = Upstream::start(zone).await;
    let k = start_from_text(list_dir(), &config(up.addr), None).await;
    for (id, n) in &asked {
        let m = ask("127.0.0.4", k.addr, n).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{n}");
        assert_eq!(
            ede(&m),
            Some((17, format!("blocked: service {id} (profile everything)"))),
            "{n}"
        );
        let m = ask("127.0.0.3", k.addr, n).await;
        assert_eq!(a_records(&m), [ANSWER], "{n} for the default profile");
    }
    up.stop().await;
}
