//! kidsafe-dns as an RPZ primary (`publish::rpz::serve` over a `MemoryLists`), followed by
//! real secondaries on loopback: `dig` and `kdig` (AXFR, IXFR, TSIG), Unbound (`rpz:` with
//! `primary:`, NOTIFY), PowerDNS Recursor (`rpzPrimary` with TSIG) and a kidsafe-dns edge
//! (`[[lists.source]] rpz = {...}` with NOTIFY and IXFR). Each peer blocks a name within a
//! measured time after it is published, and unblocks it after it is withdrawn.
//!
//! A peer that is not installed is skipped with a printed reason, unless CI asked for it
//! (`KIDSAFE_REQUIRE_DIG`, `KIDSAFE_REQUIRE_UNBOUND`, `KIDSAFE_REQUIRE_PDNS`).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::central::free_port;
use common::tools::{Daemon, tool_or_skip};
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use kidsafe_dns::feed::xfr::TsigKey;
use kidsafe_dns::publish::PublishConfig;
use kidsafe_dns::publish::memory::MemoryLists;
use kidsafe_dns::publish::rpz::{RpzStats, serve};
use tokio_util::sync::{CancellationToken, DropGuard};

/// One test at a time: the timings below are measured, and each starts a resolver.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ZONE: &str = "gambling.rpz.kidsafe.";
const KEY_NAME: &str = "xfr-key";
const SECRET: &str = "a2lkc2FmZS1kbnMgdGVzdCB0c2lnIHNlY3JldCAzMmI=";
const WRONG: &str = "d3JvbmcgdHNpZyBzZWNyZXQgZm9yIHRoZSB0ZXN0cw==";

fn key() -> TsigKey {
    TsigKey {
        name: format!("{KEY_NAME}."),
        algorithm: "hmac-sha256".into(),
        secret_base64: SECRET.into(),
    }
}

struct Primary {
    addr: SocketAddr,
    lists: Arc<MemoryLists>,
    stats: Arc<RpzStats>,
    _stop: DropGuard,
}

async fn primary(tsig: bool, notify: Vec<SocketAddr>, journal_keep: usize) -> Primary {
    let lists = Arc::new(MemoryLists::new(&["gambling", "allow"], journal_keep));
    let config = PublishConfig {
        minisign_key_file: "unused-by-rpz".into(),
        xfr_listen: vec!["127.0.0.1:0".parse().unwrap()],
        notify,
        tsig_key: tsig.then(key),
        xfr_allow: vec!["127.0.0.0/8".parse().unwrap()],
        zone_suffix: "rpz.kidsafe.".into(),
        journal_keep,
    };
    let stop = CancellationToken::new();
    let running = serve(&config, lists.clone(), stop.clone()).await.unwrap();
    Primary {
        addr: running.addrs[0],
        lists,
        stats: running.stats,
        _stop: stop.drop_guard(),
    }
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `limit`.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ask(resolver: SocketAddr, name: &str) -> Option<Message> {
    let q = query_msg(name, RecordType::A, true).to_vec().unwrap();
    raw_udp(resolver, &q).await
}

/// NXDOMAIN from `resolver` (a name the upstream has: only a policy makes it so).
async fn nxdomain(resolver: SocketAddr, name: &str) -> bool {
    ask(resolver, name)
        .await
        .is_some_and(|m| m.response_code == ResponseCode::NXDomain)
}

/// The upstream's address for `name`, through `resolver`.
async fn resolves_to(resolver: SocketAddr, name: &str, want: [u8; 4]) -> bool {
    ask(resolver, name)
        .await
        .is_some_and(|m| a_records(&m) == [Ipv4Addr::from(want)])
}

// ------------------------------------------------------------------ dig and kdig

/// Runs a DNS client tool; its stdout and stderr together.
fn run(tool: &Path, args: &[String]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn dig_args(p: &Primary, qtype: &str, secret: Option<&str>) -> Vec<String> {
    let mut args = vec![
        format!("@{}", p.addr.ip()),
        "-p".into(),
        p.addr.port().to_string(),
        "+noall".into(),
        "+answer".into(),
        "+tries=1".into(),
        "+time=5".into(),
        ZONE.into(),
        qtype.into(),
    ];
    if let Some(s) = secret {
        args.push("-y".into());
        args.push(format!("hmac-sha256:{KEY_NAME}:{s}"));
    }
    args
}

/// The records of dig's answer lines as `(owner, type, data)`.
fn records(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5).then(|| (f[0].to_owned(), f[3].to_owned(), f[4..].join(" ")))
        })
        .filter(|(_, t, _)| t != "TSIG")
        .collect()
}

fn soa_serials(recs: &[(String, String, String)]) -> Vec<u32> {
    recs.iter()
        .filter(|(_, t, _)| t == "SOA")
        .filter_map(|(_, _, d)| d.split_whitespace().nth(2)?.parse().ok())
        .collect()
}

fn cnames(recs: &[(String, String, String)]) -> Vec<String> {
    let mut v: Vec<String> = recs
        .iter()
        .filter(|(_, t, _)| t == "CNAME")
        .map(|(o, _, d)| format!("{o} {d}"))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_and_kdig_transfer_with_tsig_and_see_ixfr_differences() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "dig_and_kdig_transfer_with_tsig_and_see_ixfr_differences";
    let Some(dig) = tool_or_skip(test, "dig", "bind9-dnsutils", "KIDSAFE_REQUIRE_DIG") else {
        return;
    };
    let p = primary(true, vec![], 3).await;
    p.lists.add("gambling", "casino.example").unwrap(); // serial 2
    p.lists.add("gambling", "bet.example").unwrap(); // 3

    // AXFR with the key: SOA, NS, two records per name, SOA.
    let out = run(&dig, &dig_args(&p, "AXFR", Some(SECRET)));
    let recs = records(&out);
    assert_eq!(soa_serials(&recs), [3, 3], "{out}");
    assert_eq!(
        cnames(&recs),
        [
            "*.bet.example.gambling.rpz.kidsafe. .",
            "*.casino.example.gambling.rpz.kidsafe. .",
            "bet.example.gambling.rpz.kidsafe. .",
            "casino.example.gambling.rpz.kidsafe. ."
        ],
        "{out}"
    );
    assert!(!out.contains("failed"), "{out}");

    // Without the key, or with a wrong one: no records.
    let out = run(&dig, &dig_args(&p, "AXFR", None));
    assert!(records(&out).is_empty(), "unsigned: {out}");
    assert!(out.contains("Transfer failed"), "{out}");
    assert_eq!(p.stats.refused_unsigned.load(Ordering::Relaxed), 1);
    let out = run(&dig, &dig_args(&p, "AXFR", Some(WRONG)));
    assert!(records(&out).is_empty(), "wrong key: {out}");
    assert_eq!(p.stats.refused_bad_tsig.load(Ordering::Relaxed), 1);
    println!("dig with a wrong key says: {}", out.trim());

    // IXFR from 2: one difference sequence (adds bet.example).
    let out = run(&dig, &dig_args(&p, "IXFR=2", Some(SECRET)));
    let recs = records(&out);
    assert_eq!(soa_serials(&recs), [3, 2, 3, 3], "{out}");
    assert_eq!(
        cnames(&recs),
        [
            "*.bet.example.gambling.rpz.kidsafe. .",
            "bet.example.gambling.rpz.kidsafe. ."
        ]
    );
    // A removal: the old SOA, the deleted records, the new SOA.
    p.lists.remove("gambling", "casino.example").unwrap(); // 4
    let out = run(&dig, &dig_args(&p, "IXFR=3", Some(SECRET)));
    let recs = records(&out);
    assert_eq!(soa_serials(&recs), [4, 3, 4, 4], "{out}");
    assert_eq!(recs[2].0, "casino.example.gambling.rpz.kidsafe.", "{out}");
    // Up to date: the SOA alone.
    let out = run(&dig, &dig_args(&p, "IXFR=4", Some(SECRET)));
    assert_eq!(soa_serials(&records(&out)), [4], "{out}");
    // The journal keeps 3 changes: from serial 1 it no longer reaches, so the whole zone.
    p.lists.add("gambling", "dice.example").unwrap(); // 5
    let out = run(&dig, &dig_args(&p, "IXFR=1", Some(SECRET)));
    let recs = records(&out);
    assert_eq!(soa_serials(&recs), [5, 5], "full: {out}");
    assert_eq!(cnames(&recs).len(), 4, "bet and dice: {out}");

    // kdig checks every message's TSIG of a transfer many messages long.
    let Some(kdig) = tool_or_skip(test, "kdig", "knot-dnsutils", "KIDSAFE_REQUIRE_KDIG") else {
        return;
    };
    let names: Vec<String> = (0..30_000).map(|i| format!("site-{i}.example")).collect();
    p.lists.load("gambling", &names).unwrap();
    let out = run(
        &kdig,
        &[
            format!("@{}", p.addr.ip()),
            "-p".into(),
            p.addr.port().to_string(),
            "-y".into(),
            format!("hmac-sha256:{KEY_NAME}:{SECRET}"),
            "AXFR".into(),
            ZONE.into(),
        ],
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with(";; Received"))
        .unwrap_or_else(|| panic!("kdig summary: {}", &out[out.len().saturating_sub(2000)..]));
    println!("kdig AXFR of 30,000 names with TSIG: {summary}");
    // kdig prints a warning (and stops) when a message's TSIG does not verify.
    assert!(
        !out.contains("WARNING") && !out.contains("failed"),
        "kdig found a problem: {}",
        &out[out.len().saturating_sub(2000)..]
    );
    // ";; Received 1234 B (12 messages, 60004 records)"
    let messages: u64 = summary
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(messages > 5, "{summary}");
    // 30,002 names (bet and dice stay), two records each; SOA, NS, SOA.
    assert!(summary.contains("60007 records"), "{summary}");
}

// ------------------------------------------------------------------ Unbound

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_follows_the_primary_by_notify_within_two_seconds() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "unbound_follows_the_primary_by_notify_within_two_seconds";
    let Some(unbound) = tool_or_skip(test, "unbound", "unbound", "KIDSAFE_REQUIRE_UNBOUND") else {
        return;
    };
    let up = Upstream::start(Zone::standard()).await;
    let port = free_port();
    let resolver = SocketAddr::from(([127, 0, 0, 1], port));
    // Unbound 1.17 (Debian 12) has no TSIG for zone transfers: this primary has no key and
    // allows loopback only.
    let p = primary(false, vec![resolver], 100).await;
    p.lists.add("gambling", "bad.test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("unbound.conf");
    std::fs::write(
        &conf,
        format!(
            r#"server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    qname-minimisation: no
    module-config: "respip iterator"
    # test. is one of Unbound's built-in NXDOMAIN zones (RFC 6761): let it through.
    local-zone: "test." nodefault
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@{up}
rpz:
    name: "{ZONE}"
    primary: 127.0.0.1@{primary}
    allow-notify: 127.0.0.1
    rpz-log: yes
"#,
            dir = dir.path().display(),
            up = up.addr.port(),
            primary = p.addr.port(),
        ),
    )
    .unwrap();
    let daemon = Daemon::spawn(
        Command::new(&unbound).args(["-d", "-c"]).arg(&conf),
        dir.path().join("unbound.log"),
    );
    let started = Instant::now();
    let loaded = tokio::time::timeout(Duration::from_secs(15), async {
        while !nxdomain(resolver, "bad.test.").await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        loaded.is_ok(),
        "Unbound never loaded the zone:\n{}",
        daemon.log()
    );
    println!(
        "unbound: started and transferred in {:?}",
        started.elapsed()
    );
    assert!(
        nxdomain(resolver, "www.bad.test.").await,
        "*.name blocks below it"
    );
    assert!(
        resolves_to(resolver, "games.test.", [192, 0, 2, 42]).await,
        "{:?}\n{}",
        ask(resolver, "games.test.").await,
        daemon.log()
    );

    // Published: NOTIFY, Unbound's SOA probe, IXFR; blocked.
    let ixfr_before = p.stats.ixfr_incremental.load(Ordering::Relaxed);
    let published = Instant::now();
    p.lists.add("gambling", "games.test").unwrap();
    let took = wait_for(Duration::from_secs(2), "Unbound blocks games.test", || {
        nxdomain(resolver, "games.test.")
    })
    .await;
    println!("unbound: published -> NXDOMAIN in {took:?} (NOTIFY + IXFR)");
    assert!(published.elapsed() < Duration::from_secs(2));
    assert!(p.stats.notify_acked.load(Ordering::Relaxed) >= 1);
    assert!(p.stats.ixfr_incremental.load(Ordering::Relaxed) > ixfr_before);

    // Withdrawn: answered again.
    let took = {
        p.lists.remove("gambling", "games.test").unwrap();
        wait_for(
            Duration::from_secs(2),
            "Unbound unblocks games.test",
            || resolves_to(resolver, "games.test.", [192, 0, 2, 42]),
        )
        .await
    };
    println!("unbound: withdrawn -> answered in {took:?}");
    assert!(nxdomain(resolver, "bad.test.").await);
    drop(daemon);
    up.stop().await;
}

// ------------------------------------------------------------------ PowerDNS Recursor

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powerdns_recursor_transfers_with_tsig_and_blocks() {
    let _one = ONE_AT_A_TIME.lock().await;
    let test = "powerdns_recursor_transfers_with_tsig_and_blocks";
    let Some(recursor) = tool_or_skip(
        test,
        "pdns_recursor",
        "pdns-recursor",
        "KIDSAFE_REQUIRE_PDNS",
    ) else {
        return;
    };
    let up = Upstream::start(Zone::standard()).await;
    let p = primary(true, vec![], 100).await;
    p.lists.add("gambling", "bad.test").unwrap();
    let port = free_port();
    let resolver = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = tempfile::tempdir().unwrap();
    // Recursor 4.8 takes no NOTIFY for RPZ: it polls, here every second (`refresh`).
    std::fs::write(
        dir.path().join("rpz.lua"),
        format!(
            "rpzPrimary(\"{}\", \"{ZONE}\", {{refresh=1, tsigname=\"{KEY_NAME}.\", tsigalgo=\"hmac-sha256\", tsigsecret=\"{SECRET}\"}})\n",
            p.addr
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("recursor.conf"),
        format!(
            "local-address=127.0.0.1\nlocal-port={port}\nsocket-dir={d}\nlua-config-file={d}/rpz.lua\n\
             forward-zones-recurse=.=127.0.0.1:{up}\ndont-query=\nallow-from=127.0.0.0/8\n\
             daemon=no\nwrite-pid=no\ndisable-syslog=yes\nloglevel=6\nthreads=1\n\
             disable-packetcache=yes\ndnssec=off\n",
            d = dir.path().display(),
            up = up.addr.port(),
        ),
    )
    .unwrap();
    let daemon = Daemon::spawn(
        Command::new(&recursor).arg(format!("--config-dir={}", dir.path().display())),
        dir.path().join("recursor.log"),
    );
    let loaded = tokio::time::timeout(Duration::from_secs(15), async {
        while !nxdomain(resolver, "bad.test.").await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        loaded.is_ok(),
        "the Recursor never loaded the zone:\n{}",
        daemon.log()
    );
    assert!(nxdomain(resolver, "www.bad.test.").await);
    assert!(resolves_to(resolver, "games.test.", [192, 0, 2, 42]).await);

    p.lists.add("gambling", "games.test").unwrap();
    let took = wait_for(
        Duration::from_secs(5),
        "the Recursor blocks games.test",
        || nxdomain(resolver, "games.test."),
    )
    .await;
    println!("pdns-recursor: published -> NXDOMAIN in {took:?} (1 s polling, IXFR with TSIG)");
    p.lists.remove("gambling", "games.test").unwrap();
    let took = wait_for(
        Duration::from_secs(5),
        "the Recursor unblocks games.test",
        || resolves_to(resolver, "games.test.", [192, 0, 2, 42]),
    )
    .await;
    println!("pdns-recursor: withdrawn -> answered in {took:?}");
    assert_eq!(p.stats.refused_unsigned.load(Ordering::Relaxed), 0);
    assert!(
        p.stats.ixfr_incremental.load(Ordering::Relaxed) >= 1,
        "{:?}\n{}",
        p.stats,
        daemon.log()
    );
    drop(daemon);
    up.stop().await;
}

// ------------------------------------------------------------------ a kidsafe-dns edge

/// NXDOMAIN with EDE 15 (Blocked): kidsafe-dns's own block answer.
async fn edge_blocked(addr: SocketAddr, name: &str) -> bool {
    ask(addr, name).await.is_some_and(|m| {
        m.response_code == ResponseCode::NXDomain && ede(&m).is_some_and(|(code, _)| code == 15)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kidsafe_edge_follows_by_notify_and_ixfr_with_tsig() {
    let _one = ONE_AT_A_TIME.lock().await;
    let up = Upstream::start(Zone::standard()).await;
    let notify_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let p = primary(true, vec![notify_addr], 100).await;
    p.lists.add("gambling", "bad.test").unwrap();
    // A one-hour refresh: only NOTIFY can make the changes below show up in time.
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
shutdown_grace_ms = 500
[upstream]
servers = ["{up}"]
timeout_ms = 1000
[lists]
compiled = "var/blocklist.fst"
[[lists.source]]
name = "central"
category = "gambling"
refresh = "1h"
rpz = {{ primary = "{primary}", zone = "{ZONE}", notify_listen = "{notify_addr}", tsig_key = {{ name = "{KEY_NAME}.", algorithm = "hmac-sha256", secret = "{SECRET}" }} }}
"#,
        up = up.addr,
        primary = p.addr,
    );
    let k = start_from_text(tempfile::tempdir().unwrap(), &text, None).await;
    assert!(edge_blocked(k.addr, "bad.test.").await);
    assert!(edge_blocked(k.addr, "www.bad.test.").await);
    assert!(!edge_blocked(k.addr, "games.test.").await);

    p.lists.add("gambling", "games.test").unwrap();
    let took = wait_for(Duration::from_secs(2), "the edge blocks games.test", || {
        edge_blocked(k.addr, "games.test.")
    })
    .await;
    println!("kidsafe edge: published -> blocked in {took:?} (NOTIFY + IXFR, TSIG)");
    p.lists.remove("gambling", "games.test").unwrap();
    let took = wait_for(
        Duration::from_secs(2),
        "the edge unblocks games.test",
        || resolves_to(k.addr, "games.test.", [192, 0, 2, 42]),
    )
    .await;
    println!("kidsafe edge: withdrawn -> answered in {took:?}");
    assert!(edge_blocked(k.addr, "bad.test.").await);
    assert!(
        p.stats.ixfr_incremental.load(Ordering::Relaxed) >= 2,
        "{:?}",
        p.stats
    );
    assert_eq!(p.stats.refused_bad_tsig.load(Ordering::Relaxed), 0);
    k.running.stop().await;
    up.stop().await;
}
