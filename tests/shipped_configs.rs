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
