//! Bypass protection end to end, with real `dig` from loopback source addresses: `kids`
//! (127.0.0.2, filtered, bypass protection on by default), `teens` (127.0.0.3,
//! `bypass_protection = false`) and `default`. The DoH canary and iCloud Private Relay get
//! NXDOMAIN with an EDE saying why, a public DoH resolver and a VPN are blocked, DDR
//! (`_dns.resolver.arpa` SVCB) names our own DoT/DoH endpoints (NODATA without them), and
//! `kidsafe_bypass_attempts_total` counts per profile. With `../shared/data`, hagezi's
//! DoH/VPN/proxy list loaded as category `bypass` blocks a sample of its names, and our
//! own shipped catalog overlaps it.

mod common;

use std::collections::HashSet;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use common::dig::dig;
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use kidsafe_dns::bypass::{Bypass, Kind};

const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 55);

/// Names the upstream knows (so a forwarded answer is told apart from a block).
const NAMES: &[&str] = &[
    "use-application-dns.net.",
    "mask.icloud.com.",
    "mask-h2.icloud.com.",
    "dns.google.",
    "cloudflare-dns.com.",
    "downloads.nordvpn.com.",
    "www.example.org.",
];

fn config(upstream: SocketAddr, server_extra: &str, lists_extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
shutdown_grace_ms = 1000
{server_extra}
[admin]
listen = ["127.0.0.1:0"]
{}
{lists_extra}
[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
[[groups]]
name = "teens"
clients = ["127.0.0.3/32"]
bypass_protection = false
[[groups]]
name = "default"
"#,
        upstream_and_lists(upstream)
    )
}

const TLS: &str = r#"dot_listen = ["127.0.0.1:0"]
doh_listen = ["127.0.0.1:0"]
tls_cert = "cert.pem"
tls_key = "key.pem"
ddr_name = "dns.kidsafe.test"
"#;

fn write_cert(dir: &Path) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["dns.kidsafe.test".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
}

async fn upstream() -> Upstream {
    let mut zone = Zone::standard();
    for n in NAMES {
        zone.add(Record::from_rdata(name(n), 300, RData::A(A(ANSWER))));
    }
    Upstream::start(zone).await
}

/// dig's `EDE:` line, if any.
fn ede_line(text: &str) -> Option<&str> {
    text.lines().find(|l| l.contains("EDE:"))
}

fn status(text: &str) -> &str {
    text.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("a status in {text}"))
}

async fn metrics(admin: SocketAddr) -> String {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of `kidsafe_bypass_attempts_total` for `profile` and `kind` (0 if absent).
fn attempts(metrics: &str, profile: &str, kind: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("kidsafe_bypass_attempts_total{"))
        .filter(|l| l.contains(&format!("profile=\"{profile}\"")))
        .filter(|l| l.contains(&format!("kind=\"{kind}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn bypass_attempts_are_blocked_for_protected_profiles_and_counted() {
    let up = upstream().await;
    let dir = list_dir();
    write_cert(dir.path());
    let k = start_from_text(dir, &config(up.addr, TLS, ""), None).await;
    let admin = k.running.admin_addrs[0];

    // The canary and Private Relay: NXDOMAIN, any type, the EDE saying why.
    for (n, kind, t) in [
        ("use-application-dns.net", "canary", "A"),
        ("use-application-dns.net", "canary", "AAAA"),
        ("mask.icloud.com", "relay", "A"),
        ("mask-h2.icloud.com", "relay", "HTTPS"),
    ] {
        let out = dig(k.addr, "127.0.0.2", &[n, t]).await;
        assert_eq!(status(&out), "NXDOMAIN", "{n} {t}: {out}");
        assert!(!out.contains("192.0.2.55"), "{out}");
        let ede = ede_line(&out).unwrap_or_else(|| panic!("an EDE: {out}"));
        assert!(
            ede.contains(&format!("blocked: bypass {kind} {n} (profile kids)")),
            "{ede}"
        );
    }
    // A public DoH resolver and a VPN, with a name under it.
    for (n, listed, kind) in [
        ("dns.google", "dns.google", "resolver"),
        ("cloudflare-dns.com", "cloudflare-dns.com", "resolver"),
        ("downloads.nordvpn.com", "nordvpn.com", "vpn"),
    ] {
        let out = dig(k.addr, "127.0.0.2", &[n, "A"]).await;
        assert_eq!(status(&out), "NXDOMAIN", "{n}: {out}");
        let ede = ede_line(&out).unwrap_or_else(|| panic!("an EDE: {out}"));
        assert!(ede.contains("EDE: 17"), "{ede}");
        assert!(
            ede.contains(&format!("blocked: bypass {kind} {listed} (profile kids)")),
            "{ede}"
        );
    }
    // Teens have bypass protection off: everything is forwarded.
    for n in ["use-application-dns.net", "mask.icloud.com", "dns.google"] {
        let out = dig(k.addr, "127.0.0.3", &[n, "A"]).await;
        assert_eq!(status(&out), "NOERROR", "{n}: {out}");
        assert!(out.contains("192.0.2.55"), "{out}");
        assert!(ede_line(&out).is_none(), "{out}");
    }
    // The implicit-default rule: `default` filters every category, so it is protected.
    let out = dig(k.addr, "127.0.0.4", &["dns.google", "A"]).await;
    assert_eq!(status(&out), "NXDOMAIN", "{out}");
    assert!(out.contains("(profile default)"), "{out}");
    // Other names are untouched.
    let out = dig(k.addr, "127.0.0.2", &["www.example.org", "A"]).await;
    assert!(out.contains("192.0.2.55"), "{out}");

    // Counted per profile and kind, never per device.
    let m = metrics(admin).await;
    assert_eq!(attempts(&m, "kids", "canary"), 2, "{m}");
    assert_eq!(attempts(&m, "kids", "relay"), 2, "{m}");
    assert_eq!(attempts(&m, "kids", "resolver"), 2, "{m}");
    assert_eq!(attempts(&m, "kids", "vpn"), 1, "{m}");
    assert_eq!(attempts(&m, "default", "resolver"), 1, "{m}");
    for kind in ["canary", "relay", "resolver", "vpn"] {
        assert_eq!(attempts(&m, "teens", kind), 0, "{m}");
    }
    assert!(!m.contains("127.0.0.2"), "no client address in the metrics");

    // DDR: our own DoT and DoH endpoints, as bound.
    let dot = k.running.dot_addrs[0];
    let doh = k.running.doh_addrs[0];
    let out = dig(k.addr, "127.0.0.2", &["_dns.resolver.arpa", "SVCB"]).await;
    assert_eq!(status(&out), "NOERROR", "{out}");
    let svcb: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(';') && l.contains("\tSVCB\t"))
        .collect();
    assert_eq!(svcb.len(), 2, "{out}");
    let dot_line = svcb.iter().find(|l| l.contains("alpn=\"dot\""));
    let dot_line = dot_line.unwrap_or_else(|| panic!("a DoT record: {out}"));
    assert!(dot_line.contains("SVCB\t1 dns.kidsafe.test."), "{dot_line}");
    assert!(
        dot_line.contains(&format!("port={}", dot.port())),
        "{dot_line}"
    );
    assert!(dot_line.contains("ipv4hint=127.0.0.1"), "{dot_line}");
    let doh_line = svcb.iter().find(|l| l.contains("alpn=\"h2\""));
    let doh_line = doh_line.unwrap_or_else(|| panic!("a DoH record: {out}"));
    assert!(doh_line.contains("SVCB\t2 dns.kidsafe.test."), "{doh_line}");
    assert!(
        doh_line.contains(&format!("port={}", doh.port())),
        "{doh_line}"
    );
    assert!(
        doh_line.contains("dohpath=\"/dns-query{?dns}\"")
            || doh_line.contains("key7=\"/dns-query{?dns}\""),
        "{doh_line}"
    );
    // Whatever the profile (it names only us), and never forwarded.
    let out = dig(k.addr, "127.0.0.3", &["_dns.resolver.arpa", "SVCB"]).await;
    assert!(out.contains("dns.kidsafe.test."), "{out}");
    let out = dig(k.addr, "127.0.0.2", &["_dns.resolver.arpa", "A"]).await;
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(out.contains("ANSWER: 0"), "{out}");
    assert!(
        out.contains("resolver.arpa.") && out.contains("SOA"),
        "{out}"
    );
    assert_eq!(up.queries_for("_dns.resolver.arpa."), 0);
    k.running.stop().await;
}

#[tokio::test]
async fn ddr_without_encrypted_listeners_is_nodata() {
    let up = upstream().await;
    let k = start_from_text(list_dir(), &config(up.addr, "", ""), None).await;
    let out = dig(k.addr, "127.0.0.2", &["_dns.resolver.arpa", "SVCB"]).await;
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(out.contains("ANSWER: 0"), "{out}");
    assert!(out.contains("AUTHORITY: 1"), "{out}");
    assert!(
        out.contains("resolver.arpa.") && out.contains("SOA"),
        "{out}"
    );
    // kdig agrees, where installed.
    if let Ok(o) = std::process::Command::new("kdig")
        .arg(format!("@{}", k.addr.ip()))
        .args(["-p", &k.addr.port().to_string(), "-b", "127.0.0.2"])
        .args(["_dns.resolver.arpa", "SVCB"])
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("NOERROR"), "{text}");
    }
    assert_eq!(up.queries_for("_dns.resolver.arpa."), 0);
    k.running.stop().await;
}

/// hagezi's DoH/VPN/proxy bypass list (GPL-3.0, test data only: never shipped).
fn hagezi_bypass(data: &Path) -> Vec<String> {
    let path = data.join("blocklists/hagezi/wildcard/doh-vpn-proxy-bypass-onlydomains.txt.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
#[cfg_attr(shared_data_absent, ignore = "../shared/data absent")]
async fn hagezi_bypass_list_as_a_category_blocks_its_names() {
    let Some(data) = data_dir() else {
        return;
    };
    let names = hagezi_bypass(&data);
    assert!(names.len() > 10_000, "{}", names.len());
    let up = upstream().await;
    let source = data.join("blocklists/hagezi/wildcard/doh-vpn-proxy-bypass-onlydomains.txt.gz");
    let extra = format!(
        "[[lists.source]]\ncategory = \"bypass\"\npath = \"{}\"\n",
        source.display()
    );
    let k = start_from_text(list_dir(), &config(up.addr, "", &extra), None).await;
    // Every 500th name, for kids: blocked (by our catalog or by the list's category).
    let step = names.len() / 30;
    for n in names.iter().step_by(step) {
        let q = query_msg(&format!("{n}."), RecordType::A, true)
            .to_vec()
            .unwrap();
        let m: Message = raw_udp_from("127.0.0.2", k.addr, &q).await.unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{n}");
        let (_, text) = ede(&m).unwrap_or_else(|| panic!("{n}: an EDE"));
        assert!(
            text.contains("bypass") && text.contains("(profile kids)"),
            "{n}: {text}"
        );
    }
    k.running.stop().await;
}

#[test]
#[cfg_attr(shared_data_absent, ignore = "../shared/data absent")]
fn our_catalog_overlaps_hagezis_list() {
    let Some(data) = data_dir() else {
        return;
    };
    let theirs: HashSet<String> = hagezi_bypass(&data).into_iter().collect();
    let covered = |d: &str| {
        let labels: Vec<&str> = d.split('.').collect();
        (0..labels.len() - 1).any(|i| theirs.contains(&labels[i..].join(".")))
    };
    let ours = Bypass::builtin().unwrap();
    let mut total = 0;
    let mut missing = Vec::new();
    for s in ours.catalog().services() {
        let kind = Kind::of_group(&s.group).unwrap();
        if kind.is_signal() {
            continue; // network signals, not bypass services
        }
        for d in &s.domains {
            total += 1;
            if !covered(&d.name) {
                missing.push(d.name.clone());
            }
        }
    }
    let share = 1.0 - missing.len() as f64 / total as f64;
    assert!(
        share >= 0.85,
        "{share:.2} of ours in hagezi; not: {missing:?}"
    );
    // Ours is a curated list, not a copy: far smaller.
    assert!(total * 50 < theirs.len(), "{total}");
}
