//! The ISP subscriber map end to end: a subscriber file maps 127.0.0.2 to the `kids`
//! profile, whose deny list has `blocked.example`; queries from 127.0.0.2 and 127.0.0.3
//! (client sockets bound to those loopback addresses) see the block only where the map
//! says. The file is rewritten and the new mapping applies live; a file with under half
//! the rows is refused, the old mapping stays and `/metrics` counts the refusal.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
shutdown_grace_ms = 1000
{}
[cache]
max_entries = 0
[admin]
listen = ["127.0.0.1:0"]
[subscribers]
path = "subscribers.txt"
refresh = "50ms"
[[groups]]
name = "kids"
deny = ["blocked.example"]
[[groups]]
name = "default"
"#,
        upstream_and_lists(upstream)
    )
}

/// Replaces the subscriber file whole (write, then rename), as an export job would.
fn write_lines(dir: &Path, text: &str) {
    let tmp = dir.join("subscribers.txt.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("subscribers.txt")).unwrap();
}

/// Whether `blocked.example` is blocked for a client at `from` (EDE 17: the group's own
/// deny list), or answered from upstream.
async fn blocked_for(from: &str, server: SocketAddr) -> bool {
    let q = query_msg("blocked.example.", RecordType::A, true);
    let reply = raw_udp_from(from, server, &q.to_vec().unwrap())
        .await
        .expect("an answer");
    match ede(&reply) {
        Some((17, _)) => {
            assert_eq!(reply.response_code, ResponseCode::NXDomain);
            true
        }
        other => {
            assert_eq!(
                a_records(&reply),
                [Ipv4Addr::new(192, 0, 2, 77)],
                "{other:?}"
            );
            false
        }
    }
}

/// Polls until the block applies to exactly `blocked` of .2 and .3 (a few seconds at most).
async fn until_blocked(server: SocketAddr, blocked: [bool; 2]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = [
            blocked_for("127.0.0.2", server).await,
            blocked_for("127.0.0.3", server).await,
        ];
        if now == blocked {
            return;
        }
        assert!(Instant::now() < deadline, "still {now:?}, want {blocked:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn metrics(k: &Kidsafe) -> String {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::get(format!("http://{}/metrics", k.running.admin_addrs[0]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, sample: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_lines_choose_the_profile_live() {
    let mut zone = Zone::standard();
    zone.add(Record::from_rdata(
        name("blocked.example."),
        300,
        RData::A(A(Ipv4Addr::new(192, 0, 2, 77))),
    ));
    let upstream = Upstream::start(zone).await;
    let dir = list_dir();
    // Four rows: 127.0.0.2 is a kids line, the others fill the table.
    write_lines(
        dir.path(),
        "# ISP export\n127.0.0.2 config:kids\n10.0.0.0/24,config:kids\n2001:db8::/32 config:kids\n\
         10.0.1.1 p404\nthis line is malformed\n",
    );
    let k = start_from_text(dir, &config(upstream.addr), None).await;
    let server = k.addr;

    // Served from the first query on: the file was read at start.
    assert!(blocked_for("127.0.0.2", server).await);
    assert!(!blocked_for("127.0.0.3", server).await);
    let m = metrics(&k).await;
    assert_eq!(metric(&m, "kidsafe_subscribers_rows "), Some(4), "{m}");

    // A new export moves the kids line to 127.0.0.3: it applies without a restart.
    write_lines(
        k.dir.path(),
        "127.0.0.3 config:kids\n10.0.0.0/24 config:kids\n10.0.2.0/24 config:kids\n10.0.3.0/24 config:kids\n10.0.4.1 config:kids\n",
    );
    until_blocked(server, [false, true]).await;
    assert_eq!(
        metric(&metrics(&k).await, "kidsafe_subscribers_rows "),
        Some(5)
    );

    // A truncated export (2 of 5 rows) is refused: the old mapping stays.
    write_lines(k.dir.path(), "127.0.0.2 config:kids\n127.0.0.3 p404\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    let sample = r#"kidsafe_subscribers_refused_total{reason="shrink"} "#;
    loop {
        let m = metrics(&k).await;
        if metric(&m, sample) == Some(1) {
            assert_eq!(metric(&m, "kidsafe_subscribers_rows "), Some(5), "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no shrink refusal counted: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!blocked_for("127.0.0.2", server).await);
    assert!(blocked_for("127.0.0.3", server).await);

    k.running.stop().await;
    upstream.stop().await;
}
