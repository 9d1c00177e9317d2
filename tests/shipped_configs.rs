//! The configs and sample lists shipped in the repo load, compile, and block what their
//! comments promise.

use std::path::Path;

use kidsafe_dns::config;
use kidsafe_dns::lists::Blocklist;
use kidsafe_dns::lists::matcher::Decision;

fn compiled(name: &str) -> (tempfile::TempDir, Blocklist, config::Config) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name);
    let mut cfg = config::load(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.lists.compiled = dir.path().join("list.fst");
    let m = kidsafe_dns::feed::install::open_or_build(&cfg.lists, None)
        .unwrap()
        .1
        .unwrap();
    for s in &m.sources {
        assert!(s.accepted > 0, "{}", s.path.display());
    }
    let list = Blocklist::open(&cfg.lists.compiled).unwrap();
    (dir, list, cfg)
}

#[test]
fn every_shipped_config_loads_and_compiles() {
    for name in ["family.toml", "school.toml", "isp.toml"] {
        let (_d, list, _) = compiled(name);
        for blocked in [
            "www.pornhub.com",
            "bet365.com",
            "bestgore.example",
            "shop.drugs.example",
        ] {
            assert!(list.lookup(blocked).is_blocked(), "{name}: {blocked}");
        }
        for allowed in ["wikipedia.org", "help.casino.example", "info.drugs.example"] {
            assert!(!list.lookup(allowed).is_blocked(), "{name}: {allowed}");
        }
        // Hosts entries are exact.
        assert!(!list.lookup("www.bestgore.example").is_blocked(), "{name}");
    }
}

#[test]
fn family_sample_lists_cover_every_format() {
    let (_d, list, _) = compiled("family.toml");
    let m = list.manifest();
    let formats: Vec<&str> = m.sources.iter().map(|s| s.format.as_str()).collect();
    assert_eq!(
        formats,
        ["domains", "adblock", "hosts", "rpz", "domains", "domains"]
    );
    assert!(
        m.sources[1].unsupported >= 2,
        "cosmetic and path rules counted"
    );
    assert!(
        list.lookup("dating.example").is_blocked(),
        "gzip sample read"
    );
    assert_eq!(
        list.lookup("safe.adult.example").decision,
        Decision::Allowed
    );
    assert!(list.lookup("adult.example").is_blocked());
    // IDN entry in the sample list matches its punycode form.
    let idn = idna::domain_to_ascii("pörn.example").unwrap();
    assert!(list.lookup(&idn).is_blocked(), "{idn}");
}

/// The samples run side by side (every DNS, DoT, DoH, admin and block page port differs)
/// and clear of the ports other DNS software holds.
#[test]
fn shipped_configs_use_distinct_ports_nothing_common_holds() {
    // DNS, mDNS (avahi, browsers), unbound for Pi-hole, cloudflared, common alternates,
    // LLMNR (systemd-resolved), CoreDNS metrics, DoT, HTTP(S).
    let taken = [
        53, 5353, 5335, 5053, 8053, 5354, 5355, 9153, 853, 443, 80, 8080,
    ];
    let mut seen: Vec<(u16, String)> = Vec::new();
    for name in ["family.toml", "school.toml", "isp.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name);
        let cfg = config::load(&path).unwrap();
        let mut ports: Vec<u16> = cfg.server.listen.iter().map(|a| a.port()).collect();
        if let Some(t) = &cfg.server.tls {
            ports.extend(t.dot_listen.iter().chain(&t.doh_listen).map(|a| a.port()));
        }
        if let Some(a) = &cfg.admin {
            ports.extend(a.listen.iter().map(|a| a.port()));
        }
        if let Some(b) = &cfg.blockpage {
            ports.extend(b.listen.iter().map(|a| a.port()));
        }
        // IPv4 and IPv6 of one service share a port: count each port once per config.
        ports.sort_unstable();
        ports.dedup();
        for port in ports {
            assert!(
                !taken.contains(&port),
                "{name}: port {port} is commonly taken"
            );
            if let Some((_, other)) = seen.iter().find(|(p, _)| *p == port) {
                panic!("{name} and {other} both use port {port}");
            }
            seen.push((port, name.to_owned()));
        }
    }
}
