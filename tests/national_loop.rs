//! The national loop (issue 16) end to end, as operators run it, with real processes on
//! loopback: one central (`kidsafe-dns serve` with `[publish]`: review API, signed HTTP
//! feed, RPZ primary with NOTIFY), three edges (`kidsafe-dns serve` forwarding their
//! reports to it) and a real Unbound RPZ secondary, all resolving through one test
//! upstream. Edges 1 and 2 follow the central's RPZ zone (NOTIFY + IXFR), edge 3 its signed
//! HTTP feed (1 s poll), Unbound the RPZ zone (`rpz:` with `primary:` and `allow-notify:`).
//!
//! A report filed at edge 2 reaches the central; a reviewer accepts it; all four followers
//! block the name; a revert lets it through everywhere. The central is killed: reports
//! filed at edges 1 and 3 (API and block page form) are spooled, the edges keep filtering
//! from their last lists (also across their own restart), and after the central restarts
//! (same ports, same data) every report arrives exactly once, and its next decisions reach
//! every follower again: a block, and a "blocked by mistake" report accepted to the
//! allowlist (`allow.rpz.kidsafe.` / `allow.txt`), which every follower honours.
//! The times from each decision to each follower's change are printed, never asserted
//! tightly (figures go to BENCHMARKS.md).
//!
//! Run (with the latencies):
//! `cargo test --test national_loop -- --nocapture`
//!
//! Skipped with a printed reason when Unbound is not installed, unless
//! `KIDSAFE_REQUIRE_UNBOUND=1` (CI), as in tests/rpz_primary.rs. Needs `minisign`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::admin_api::Api;
use common::blockpage::{block_page, post_form};
use common::central::{
    Serving, free_port, http, local, metric, metric_sample, minisign_keys, serve,
};
use common::tools::{Daemon, tool_or_skip};
use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::{Value, json};

/// The central's admin (reviewer) token.
const TOKEN: &str = "central-reviewer-0123456789";
/// The published zone the RPZ followers transfer.
const ZONE: &str = "gambling.rpz.kidsafe.";
/// The published allowlist's zone (`rpz-passthru.`: accepted "blocked by mistake" reports).
const ALLOW_ZONE: &str = "allow.rpz.kidsafe.";
/// Generous bounds: correctness, not speed, is asserted (a loaded CI machine is slow).
const NOTIFY_LIMIT: Duration = Duration::from_secs(30);
/// The HTTP follower polls every second; the rest is slack for a loaded machine.
const POLL_LIMIT: Duration = Duration::from_secs(31);
/// The edges' backoff cap (`reports.retry_max`): a restarted central gets the spool
/// within about this, plus a delivery.
const RETRY_MAX: &str = "1s";

/// Names the upstream answers, with their addresses: only a policy makes them NXDOMAIN.
const NAMES: &[(&str, u8)] = &[
    ("steady.test", 60),
    ("casino-x.test", 61),
    ("outage-a.test", 62),
    ("outage-b.test", 63),
    ("outage-c.test", 64),
    ("outage-d.test", 65),
];

fn zone() -> Zone {
    let mut z = Zone::standard();
    for (n, last) in NAMES {
        z.add(Record::from_rdata(
            name(&format!("{n}.")),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, *last))),
        ));
    }
    z
}

fn address_of(n: &str) -> Ipv4Addr {
    let last = NAMES
        .iter()
        .chain(&[("allowed.test", 10)])
        .find(|(x, _)| *x == n)
        .map(|(_, l)| *l)
        .unwrap();
    Ipv4Addr::new(192, 0, 2, last)
}

/// The ports a central listens on; kept for its restart.
#[derive(Clone, Copy)]
struct CentralPorts {
    dns: u16,
    admin: u16,
    xfr: u16,
}

fn central_config(p: CentralPorts, upstream: SocketAddr, notify: &[SocketAddr]) -> String {
    let notify: Vec<String> = notify.iter().map(|a| format!("\"{a}\"")).collect();
    let edges: Vec<String> = (1..=3)
        .map(|i| format!("{{ node = \"edge-{i}\", token_file = \"edge-{i}.token\" }}"))
        .collect();
    format!(
        r#"[server]
listen = ["127.0.0.1:{dns}"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[lists]
compiled = "var/central.fst"
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "gambling"
path = "gambling.txt"
[admin]
listen = ["127.0.0.1:{admin}"]
token = "{TOKEN}"
reports_per_hour = 1000
feed_requests_per_hour = 100000
[reports]
edges = [{edges}]
[publish]
minisign_key_file = "central.key"
xfr_listen = ["127.0.0.1:{xfr}"]
notify = [{notify}]
xfr_allow = ["127.0.0.0/8"]
"#,
        dns = p.dns,
        admin = p.admin,
        xfr = p.xfr,
        edges = edges.join(", "),
        notify = notify.join(", "),
    )
}

/// How an edge follows the central's gambling list.
enum Follow {
    /// The RPZ zone, told of changes by NOTIFY on this address (1 h refresh: only NOTIFY
    /// makes a change show up in time).
    Rpz { notify_listen: SocketAddr },
    /// The signed HTTP feed, polled every second.
    Feed { pubkey: String },
}

/// An edge: its own dir (spool, state), DNS and admin ports.
struct Edge {
    node: String,
    dir: tempfile::TempDir,
    dns: SocketAddr,
    admin: SocketAddr,
    /// Its block page (HTTP), with the report forms.
    page: u16,
    how: &'static str,
    /// Its config, for a restart.
    text: String,
    serving: Option<Serving>,
}

impl Edge {
    /// Kills it (SIGKILL, as a power cut would) and starts it again on the same config,
    /// ports and state.
    async fn restart(&mut self) {
        drop(self.serving.take());
        self.serving = Some(serve(self.dir.path(), &self.node, &self.text, self.admin).await);
    }
}

async fn start_edge(
    i: usize,
    follow: Follow,
    upstream: SocketAddr,
    central: CentralPorts,
    token: &str,
) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let (dns, admin, page) = (local(free_port()), local(free_port()), free_port());
    let node = format!("edge-{i}");
    std::fs::write(dir.path().join("central.token"), format!("{token}\n")).unwrap();
    let (source, how) = match follow {
        Follow::Rpz { notify_listen } => (
            format!(
                "refresh = \"1h\"\nrpz = {{ primary = \"127.0.0.1:{xfr}\", zone = \"{ZONE}\", notify_listen = \"{notify_listen}\" }}\n\
                 [[lists.allow]]\nname = \"central-allow\"\nrefresh = \"1h\"\n\
                 rpz = {{ primary = \"127.0.0.1:{xfr}\", zone = \"{ALLOW_ZONE}\", notify_listen = \"{notify_listen}\" }}",
                xfr = central.xfr
            ),
            "RPZ/NOTIFY",
        ),
        Follow::Feed { pubkey } => (
            format!(
                "refresh = \"1s\"\nurl = \"http://127.0.0.1:{admin}/v1/published/gambling.txt\"\nminisign_pubkey = \"{pubkey}\"\n\
                 [[lists.allow]]\nname = \"central-allow\"\nrefresh = \"1s\"\n\
                 url = \"http://127.0.0.1:{admin}/v1/published/allow.txt\"\nminisign_pubkey = \"{pubkey}\"",
                admin = central.admin
            ),
            "HTTP feed",
        ),
    };
    let text = format!(
        r#"[server]
listen = ["{dns}"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[blocking]
mode = "nxdomain"
ttl = 1
[lists]
compiled = "var/edge.fst"
[[lists.source]]
name = "central-gambling"
category = "gambling"
{source}
[admin]
listen = ["{admin}"]
reports_per_hour = 1000
[blockpage]
listen = ["127.0.0.1:{page}"]
[reports]
forward_to = "http://127.0.0.1:{c_admin}/v1/reports"
token_file = "central.token"
node_id = "{node}"
retry_max = "{RETRY_MAX}"
"#,
        c_admin = central.admin,
    );
    let serving = serve(dir.path(), &node, &text, admin).await;
    Edge {
        node,
        dir,
        dns,
        admin,
        page,
        how,
        text,
        serving: Some(serving),
    }
}

/// Unbound following the central's zone: NOTIFY from the central, IXFR.
fn start_unbound(unbound: &Path, dir: &Path, port: u16, upstream: SocketAddr, xfr: u16) -> Daemon {
    let conf = dir.join("unbound.conf");
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
# Unbound applies the first RPZ zone that matches: the allowlist goes first.
rpz:
    name: "{ALLOW_ZONE}"
    primary: 127.0.0.1@{xfr}
    allow-notify: 127.0.0.1
rpz:
    name: "{ZONE}"
    primary: 127.0.0.1@{xfr}
    allow-notify: 127.0.0.1
"#,
            dir = dir.display(),
            up = upstream.port(),
        ),
    )
    .unwrap();
    Daemon::spawn(
        Command::new(unbound).args(["-d", "-c"]).arg(&conf),
        dir.join("unbound.log"),
    )
}

/// A resolver the test watches, and how its block answer looks.
#[derive(Clone)]
struct Follower {
    label: String,
    addr: SocketAddr,
    /// kidsafe-dns blocks with NXDOMAIN and EDE 15; Unbound's RPZ with a bare NXDOMAIN.
    kidsafe: bool,
}

async fn ask(resolver: SocketAddr, n: &str) -> Option<Message> {
    let q = query_msg(&format!("{n}."), RecordType::A, true)
        .to_vec()
        .unwrap();
    raw_udp(resolver, &q).await
}

impl Follower {
    /// Whether it blocks `n`; `None` for an answer that is neither a block nor the
    /// upstream's address (no answer, SERVFAIL, a wrong address).
    async fn verdict(&self, n: &str) -> Option<bool> {
        let m = ask(self.addr, n).await?;
        if m.response_code == ResponseCode::NXDomain
            && (!self.kidsafe || ede(&m).is_some_and(|(code, _)| code == 15))
        {
            return Some(true);
        }
        (m.response_code == ResponseCode::NoError && a_records(&m) == [address_of(n)])
            .then_some(false)
    }
}

/// Polls every follower every 20 ms until each gives `want` for `n`; each one's time from
/// `since`. Panics (naming who and what it last answered) past `limit` for that follower.
async fn until_all(
    followers: &[(Follower, Duration)],
    n: &str,
    want: bool,
    since: Instant,
) -> Vec<(String, Duration)> {
    let tasks: Vec<_> = followers
        .iter()
        .cloned()
        .map(|(f, limit)| {
            let n = n.to_owned();
            tokio::spawn(async move {
                loop {
                    let got = f.verdict(&n).await;
                    if got == Some(want) {
                        return (f.label.clone(), since.elapsed());
                    }
                    assert!(
                        since.elapsed() < limit,
                        "{}: {n} still {got:?} (want blocked = {want}) after {limit:?}",
                        f.label
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// "decision → last blocker: X ms (RPZ/NOTIFY: a, b, unbound c; HTTP feed: d)".
fn summary(what: &str, times: &[(String, Duration)]) -> String {
    let last = times.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let each: Vec<String> = times
        .iter()
        .map(|(l, d)| format!("{l} {} ms", d.as_millis()))
        .collect();
    format!("{what}: {} ms ({})", last.as_millis(), each.join(", "))
}

/// Every report at the central, by (name, kind, category): count.
async fn central_counts(api: &Api) -> Vec<(String, String, String, u64)> {
    let r = api.get("/v1/reports?limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut out: Vec<_> = r.body["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
                r["category"].as_str().unwrap().to_owned(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn row(n: &str, kind: &str, category: &str, count: u64) -> (String, String, String, u64) {
    (n.into(), kind.into(), category.into(), count)
}

/// Files a report at an edge's public `POST /v1/reports` (no token: as the portal or a
/// parent would); the edge must take it.
async fn report_at(c: &reqwest::Client, edge: &Edge, body: Value) {
    let r = c
        .post(format!("http://{}/v1/reports", edge.admin))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    assert!(
        status == 200 || status == 201,
        "{} refused {body}: {status} {text}",
        edge.node
    );
}

/// The open report for `n` at the central, once it is there; its id.
async fn open_report_id(api: &Api, n: &str, limit: Duration) -> i64 {
    let start = Instant::now();
    loop {
        let r = api.get("/v1/reports?status=open&sort=count").await;
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(id) = r.body["reports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .and_then(|x| x["id"].as_i64())
        {
            return id;
        }
        assert!(start.elapsed() < limit, "{n} never reached the central");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Accepts report `id` into `list` (a category, or `allow`); the instant the central's
/// answer arrived.
async fn accept(api: &Api, id: i64, list: &str, note: &str) -> Instant {
    let sent = Instant::now();
    let r = api
        .post(
            &format!("/v1/reports/{id}/decision"),
            json!({"decision": "accept", "category": list, "note": note, "reviewer": "alice"}),
        )
        .await;
    let answered = Instant::now();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "accepted", "{}", r.body);
    assert_eq!(r.body["published"]["list"], list, "{}", r.body);
    eprintln!(
        "decision request answered in {} ms",
        (answered - sent).as_millis()
    );
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_report_anywhere_becomes_a_block_everywhere_and_survives_a_central_outage() {
    let test = "a_report_anywhere_becomes_a_block_everywhere_and_survives_a_central_outage";
    let Some(unbound) = tool_or_skip(test, "unbound", "unbound", "KIDSAFE_REQUIRE_UNBOUND") else {
        return;
    };
    let up = Upstream::start(zone()).await;
    let cdir = list_dir();
    let c = cdir.path();
    let pubkey = minisign_keys(c);
    let tokens: Vec<String> = (1..=3)
        .map(|i| format!("edge-{i}-token-0123456789abcdef"))
        .collect();
    for (i, t) in tokens.iter().enumerate() {
        std::fs::write(c.join(format!("edge-{}.token", i + 1)), format!("{t}\n")).unwrap();
    }
    let ports = CentralPorts {
        dns: free_port(),
        admin: free_port(),
        xfr: free_port(),
    };
    let (notify1, notify2, unbound_port) = (free_port(), free_port(), free_port());
    let notify = [local(notify1), local(notify2), local(unbound_port)];
    let central_text = central_config(ports, up.addr, &notify);
    let central = serve(c, "central", &central_text, local(ports.admin)).await;
    let api = Api::new(local(ports.admin), TOKEN);
    let client = http();

    // A name already decided before the edges start: what they block from their first list.
    let r = api
        .post(
            "/v1/reports",
            json!({"name": "steady.test", "category": "gambling", "note": "hotline 111"}),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let steady = open_report_id(&api, "steady.test", NOTIFY_LIMIT).await;
    accept(&api, steady, "gambling", "hotline: betting site").await;

    let mut edges = [
        start_edge(
            1,
            Follow::Rpz {
                notify_listen: local(notify1),
            },
            up.addr,
            ports,
            &tokens[0],
        )
        .await,
        start_edge(
            2,
            Follow::Rpz {
                notify_listen: local(notify2),
            },
            up.addr,
            ports,
            &tokens[1],
        )
        .await,
        start_edge(
            3,
            Follow::Feed {
                pubkey: pubkey.clone(),
            },
            up.addr,
            ports,
            &tokens[2],
        )
        .await,
    ];
    let udir = tempfile::tempdir().unwrap();
    let daemon = start_unbound(&unbound, udir.path(), unbound_port, up.addr, ports.xfr);
    let mut followers: Vec<(Follower, Duration)> = edges
        .iter()
        .map(|e| {
            let limit = if e.how == "HTTP feed" {
                POLL_LIMIT
            } else {
                NOTIFY_LIMIT
            };
            (
                Follower {
                    label: format!("{} {}", e.how, e.node),
                    addr: e.dns,
                    kidsafe: true,
                },
                limit,
            )
        })
        .collect();
    followers.push((
        Follower {
            label: "RPZ/NOTIFY unbound".into(),
            addr: local(unbound_port),
            kidsafe: false,
        },
        NOTIFY_LIMIT,
    ));

    // Everyone loads the first list: steady.test blocked, the rest answered.
    let started = Instant::now();
    let loaded = tokio::time::timeout(
        NOTIFY_LIMIT,
        until_all(&followers, "steady.test", true, started),
    )
    .await;
    assert!(
        loaded.is_ok(),
        "first load; Unbound's log:\n{}",
        daemon.log()
    );
    eprintln!(
        "{}",
        summary("start → every follower loaded", &loaded.unwrap())
    );
    for n in ["casino-x.test", "allowed.test"] {
        until_all(&followers, n, false, Instant::now()).await;
    }

    // A report at edge 2 reaches the central.
    let reported = Instant::now();
    report_at(
        &client,
        &edges[1],
        json!({"name": "casino-x.test", "category": "gambling", "note": "seen by a pupil"}),
    )
    .await;
    let id = open_report_id(&api, "casino-x.test", NOTIFY_LIMIT).await;
    eprintln!(
        "report at edge-2 → open at the central: {} ms",
        reported.elapsed().as_millis()
    );

    // Accepted: every follower blocks it.
    let decided = accept(&api, id, "gambling", "online casino").await;
    let blocked = until_all(&followers, "casino-x.test", true, decided).await;
    eprintln!("{}", summary("decision → last blocker", &blocked));
    for (f, _) in &followers {
        assert_eq!(f.verdict("steady.test").await, Some(true), "{}", f.label);
        assert_eq!(f.verdict("allowed.test").await, Some(false), "{}", f.label);
    }

    // Reverted: every follower lets it through again.
    let r = api
        .post(
            &format!("/v1/reports/{id}/revert"),
            json!({"note": "a sports news site", "reviewer": "bob"}),
        )
        .await;
    let reverted = Instant::now();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "open", "{}", r.body);
    let unblocked = until_all(&followers, "casino-x.test", false, reverted).await;
    eprintln!("{}", summary("revert → last unblocker", &unblocked));
    for (f, _) in &followers {
        assert_eq!(f.verdict("steady.test").await, Some(true), "{}", f.label);
    }

    // The central's /metrics show the publishing: the serial of the list, the RPZ edges'
    // IXFRs after the decision and the revert, NOTIFYs acknowledged.
    let value = async |series: &str| -> f64 {
        metric_sample(&client, local(ports.admin), Some(TOKEN), series)
            .await
            .unwrap_or_else(|| panic!("no {series} in the central's /metrics"))
    };
    assert!(value(r#"kidsafe_published_serial{list="gambling"}"#).await >= 3.0);
    assert!(value(r#"kidsafe_rpz_transfers_total{kind="ixfr"}"#).await >= 2.0);
    assert!(value(r#"kidsafe_rpz_notify_total{result="acked"}"#).await >= 2.0);

    // The central goes down. Reports filed at edges 1 and 3 are taken and spooled.
    drop(central);
    let outage = [
        (0, json!({"name": "outage-a.test", "category": "gambling"})),
        (
            0,
            json!({"name": "outage-a.test", "category": "gambling", "note": "again"}),
        ),
        (0, json!({"name": "outage-b.test", "category": "gambling"})),
        (2, json!({"name": "outage-c.test", "category": "gambling"})),
        (
            2,
            json!({"name": "https://Outage-A.test/page?x=1", "category": "gambling"}),
        ),
        (2, json!({"name": "outage-d.test", "kind": "mistake"})),
    ];
    for (i, body) in &outage {
        report_at(&client, &edges[*i], body.clone()).await;
    }
    // And one through edge 3's block page: "this page was blocked by mistake".
    let (html, form_token) = block_page(&client, edges[2].page, "steady.test", "?lang=en").await;
    assert!(html.contains("value=\"gambling\""), "{html}");
    let (status, body) = post_form(
        &client,
        edges[2].page,
        "steady.test",
        Some("steady.test"),
        &[
            ("token", &form_token),
            ("kind", "mistake"),
            ("name", "steady.test"),
            ("category", "gambling"),
            ("lang", "en"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Longer than several feed polls and delivery retries: the edges keep filtering from
    // their last good lists, and answer what is allowed.
    for round in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (f, _) in &followers {
            assert_eq!(
                f.verdict("steady.test").await,
                Some(true),
                "{} during the outage (round {round})",
                f.label
            );
            assert_eq!(
                f.verdict("allowed.test").await,
                Some(false),
                "{} during the outage (round {round})",
                f.label
            );
        }
    }
    for (i, pending) in [(0, 3.0), (2, 4.0)] {
        let e = &edges[i];
        assert!(
            metric(&client, e.admin, "kidsafe_report_delivery_failures_total").await >= 1.0,
            "{} tried to deliver while the central was down",
            e.node
        );
        assert_eq!(
            metric(&client, e.admin, "kidsafe_report_spool_pending").await,
            pending,
            "{}",
            e.node
        );
    }

    // Edges 1 (RPZ) and 3 (HTTP feed) lose power and come back while the central is still
    // down: they filter from the lists they kept on disk, and their spools kept the reports.
    for i in [0, 2] {
        edges[i].restart().await;
    }
    for (f, _) in &followers {
        assert_eq!(
            f.verdict("steady.test").await,
            Some(true),
            "{} after its restart, central down",
            f.label
        );
        assert_eq!(f.verdict("allowed.test").await, Some(false), "{}", f.label);
        assert_eq!(f.verdict("casino-x.test").await, Some(false), "{}", f.label);
    }
    for (i, pending) in [(0, 3.0), (2, 4.0)] {
        let e = &edges[i];
        assert_eq!(
            metric(&client, e.admin, "kidsafe_report_spool_pending").await,
            pending,
            "{}'s spool after its restart",
            e.node
        );
    }

    // Back on the same ports with the same data: every queued report arrives, once.
    let back = Instant::now();
    let central = serve(c, "central", &central_text, local(ports.admin)).await;
    let mut expected = vec![
        row("casino-x.test", "harmful", "gambling", 1),
        row("outage-a.test", "harmful", "gambling", 3),
        row("outage-b.test", "harmful", "gambling", 1),
        row("outage-c.test", "harmful", "gambling", 1),
        row("outage-d.test", "mistake", "", 1),
        row("steady.test", "harmful", "gambling", 1),
        row("steady.test", "mistake", "gambling", 1),
    ];
    expected.sort();
    let bound = Duration::from_secs(30);
    loop {
        let got = central_counts(&api).await;
        if got == expected {
            break;
        }
        assert!(
            back.elapsed() < bound,
            "after {bound:?} the central has {got:?}, want {expected:?}; edge-1's log:\n{}",
            std::fs::read_to_string(edges[0].dir.path().join("edge-1.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "central restart → every spooled report in: {} ms",
        back.elapsed().as_millis()
    );
    for e in [&edges[0], &edges[2]] {
        let start = Instant::now();
        while metric(&client, e.admin, "kidsafe_report_spool_pending").await != 0.0 {
            assert!(start.elapsed() < bound, "{}'s spool never emptied", e.node);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Nothing arrives twice later.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        central_counts(&api).await,
        expected,
        "no redelivery counted"
    );
    // The reporters' address (every report came from 127.0.0.1) went nowhere.
    let listed = api.get("/v1/reports?limit=1000").await.body.to_string();
    assert!(!listed.contains("127.0.0.1"), "{listed}");

    // The restarted central still reaches every follower: a decision on a report that
    // waited out the outage blocks everywhere (NOTIFY + IXFR from the same journal).
    let id = open_report_id(&api, "outage-a.test", NOTIFY_LIMIT).await;
    let decided = accept(&api, id, "gambling", "reported three times").await;
    let blocked = until_all(&followers, "outage-a.test", true, decided).await;
    eprintln!(
        "{}",
        summary("after the restart: decision → last blocker", &blocked)
    );
    for (f, _) in &followers {
        assert_eq!(f.verdict("steady.test").await, Some(true), "{}", f.label);
        assert_eq!(f.verdict("casino-x.test").await, Some(false), "{}", f.label);
    }

    // The "blocked by mistake" form from the outage, accepted: steady.test goes to the
    // published allowlist, which every follower honours over the block it still lists.
    let id = open_report_id(&api, "steady.test", NOTIFY_LIMIT).await;
    let decided = accept(&api, id, "allow", "a sports results site").await;
    let allowed = until_all(&followers, "steady.test", false, decided).await;
    eprintln!(
        "{}",
        summary("mistake accepted → last follower answers", &allowed)
    );
    for (f, _) in &followers {
        assert_eq!(f.verdict("outage-a.test").await, Some(true), "{}", f.label);
    }
    drop(daemon);
    drop(edges);
    drop(central);
    up.stop().await;
}
