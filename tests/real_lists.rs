//! Compiles the real public lists in `../shared/data/` (every supported format, gzipped) into
//! one categorized FST and spot-checks verdicts. Listed as ignored when the folder is
//! absent (`build.rs`); with `KIDSAFE_REQUIRE_SHARED_DATA=1` an unreadable folder fails.

mod common;

use kidsafe_dns::lists::Blocklist;
use kidsafe_dns::lists::compile::{InlineRules, ListSource, compile};
use kidsafe_dns::lists::matcher::Decision;
use kidsafe_dns::lists::parse::Format;
use kidsafe_dns::lists::rule::Scope;

#[test]
#[cfg_attr(shared_data_absent, ignore = "../shared/data absent")]
fn real_lists_compile_and_answer_as_expected() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let b = data.join("blocklists");
    let src = |category: Option<&str>, path: &str, format: Format| ListSource {
        category: category.map(str::to_owned),
        path: b.join(path),
        format,
    };
    let sources = vec![
        src(Some("adult"), "hagezi/rpz/nsfw.txt.gz", Format::Auto),
        src(
            Some("adult"),
            "sinfonietta/pornography-hosts.gz",
            Format::Auto,
        ),
        src(
            Some("gambling"),
            "hagezi/adblock/gambling.txt.gz",
            Format::Auto,
        ),
        src(Some("gambling"), "ut1/gambling.domains.gz", Format::Auto),
        src(Some("drugs"), "blocklistproject/drugs.txt.gz", Format::Auto),
        src(Some("violence"), "sinfonietta/snuff-hosts.gz", Format::Auto),
        src(None, "ut1/child.domains.gz", Format::Auto),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("real.fst");
    let mut reports = Vec::new();
    let manifest = compile(&sources, &InlineRules::default(), &out, &mut |p| {
        if let kidsafe_dns::lists::compile::Progress::SourceDone(s, r) = p {
            eprintln!(
                "{}: {:?} accepted {} rejected {:?} unsupported {}",
                s.path.display(),
                r.parse.format,
                r.parse.accepted,
                r.parse.rejected,
                r.parse.unsupported
            );
            reports.push((s.path.clone(), r.parse.format, r.parse.accepted));
        }
    })
    .unwrap();

    // Formats were sniffed right.
    let formats: Vec<Format> = reports.iter().map(|r| r.1).collect();
    assert_eq!(
        formats,
        [
            Format::Rpz,
            Format::Hosts,
            Format::Adblock,
            Format::Domains,
            Format::Hosts,
            Format::Hosts,
            Format::Domains
        ]
    );
    // Entry counts near the published ones (MANIFEST.tsv); the RPZ file has two records per name.
    assert!(reports[0].2 >= 147_000, "rpz nsfw: {}", reports[0].2);
    assert!(
        reports[2].2 >= 202_000,
        "adblock gambling: {}",
        reports[2].2
    );
    assert!(manifest.entries > 300_000);
    assert_eq!(manifest.sources.len(), 7);
    assert!(manifest.sources.iter().all(|s| s.sha256.len() == 64));

    let list = Blocklist::open(&out).unwrap();
    let cats = |n: &str| {
        list.manifest()
            .category_names(list.lookup(n).categories)
            .join(",")
    };
    // RPZ: name and *.name records → subtree.
    let v = list.lookup("www.bunkr.ac");
    assert_eq!(v.decision, Decision::Blocked);
    assert_eq!(v.rule.as_ref().unwrap().name, "bunkr.ac");
    assert_eq!(v.rule.unwrap().scope, Scope::Subtree);
    assert_eq!(cats("bunkr.ac"), "adult");
    // Hosts: exact only.
    assert!(list.lookup("007angels.com").is_blocked());
    assert_eq!(
        list.lookup("007angels.com").rule.unwrap().scope,
        Scope::Exact
    );
    // Adblock ||name^ → subtree; UT1 domains → subtree.
    assert!(list.lookup("m.0-bdmbet.com").is_blocked());
    assert_eq!(cats("casino-kroon.org"), "gambling");
    assert!(list.lookup("www.casino-kroon.org").is_blocked());
    assert!(list.lookup("03pc.biz").is_blocked());
    // The children's allowlist wins over nothing here, and popular sites are not listed.
    assert_eq!(list.lookup("2jr.org").decision, Decision::Allowed);
    for n in ["wikipedia.org", "www.google.com", "khanacademy.org"] {
        assert!(!list.lookup(n).is_blocked(), "{n}");
    }
}

/// `build.rs` marks the real-list tests ignored exactly when `../shared/data` is absent
/// (and the data is not required).
#[test]
fn the_shared_data_cfg_follows_the_folder() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let required = std::env::var_os(common::shared_data::REQUIRE_ENV).is_some_and(|v| v == "1");
    assert_eq!(
        cfg!(shared_data_absent),
        !folder.is_dir() && !required,
        "{} is_dir={}, required={required}: rebuild so build.rs looks again",
        folder.display(),
        folder.is_dir()
    );
}

/// Data that is there but cannot be read fails a test when it is required, and is
/// skipped with a notice otherwise.
#[test]
fn unreadable_shared_data_fails_when_required() {
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(common::shared_data::usable(empty.path(), false), None);
    let e =
        std::panic::catch_unwind(|| common::shared_data::usable(empty.path(), true)).unwrap_err();
    let msg = e.downcast_ref::<String>().unwrap();
    assert!(msg.contains("KIDSAFE_REQUIRE_SHARED_DATA=1"), "{msg}");
    assert!(msg.contains("MANIFEST.tsv cannot be read"), "{msg}");
    if let Some(data) = common::data_dir() {
        assert_eq!(common::shared_data::usable(&data, true), Some(data));
    }
}
