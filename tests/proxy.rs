//! kidsafe-dns behind a load balancer that speaks the PROXY protocol v2: the client named in
//! the header is the one the closed-resolver check, the rate limit and the groups see.
//!
//! The balancer is played two ways: by hand (raw UDP and TCP sockets on 127.0.0.1, headers
//! built with the `ppp` crate, so broken headers can be sent too), and by a real dnsdist
//! with `useProxyProtocol=true` when one is installed.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use ppp::v2::{Builder, Command as PpCommand, Protocol, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// `games.test` is on the pupils' deny list; `allowed.test` and `games.test` resolve
/// upstream for everyone else.
fn config(upstream: SocketAddr, pupils: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
proxy_protocol_from = ["127.0.0.1/32"]
allow_clients = ["127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16"]
rate_limit_qps = 10
rate_limit_burst = 10
{}
[admin]
listen = ["127.0.0.1:0"]
[[groups]]
name = "pupils"
clients = ["{pupils}"]
deny = ["games.test"]
[[groups]]
name = "default"
"#,
        upstream_and_lists(upstream)
    )
}

/// A PROXY v2 header saying `client` sent this (to the balancer's port 53).
fn header(command: PpCommand, protocol: Protocol, client: &str) -> Vec<u8> {
    let client: SocketAddr = client.parse().unwrap();
    let dst: SocketAddr = if client.is_ipv4() {
        "192.0.2.53:53".parse().unwrap()
    } else {
        "[2001:db8::53]:53".parse().unwrap()
    };
    Builder::with_addresses(Version::Two | command, protocol, (client, dst))
        .build()
        .unwrap()
}

fn proxied(client: &str, query: &Message) -> Vec<u8> {
    let mut bytes = header(PpCommand::Proxy, Protocol::Datagram, client);
    bytes.extend_from_slice(&query.to_vec().unwrap());
    bytes
}

/// Sends `bytes` from 127.0.0.1 (the trusted balancer) or `from`; the reply, or `None`
/// after `wait`.
async fn send_from(from: &str, k: &Kidsafe, bytes: &[u8], wait: Duration) -> Option<Message> {
    let s = UdpSocket::bind((from, 0)).await.unwrap();
    s.send_to(bytes, k.addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(wait, s.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap())
}

/// `name` as asked by subscriber `client` through the balancer, over UDP.
async fn ask_as(k: &Kidsafe, client: &str, name: &str) -> Message {
    let q = query_msg(name, RecordType::A, true);
    let m = send_from("127.0.0.1", k, &proxied(client, &q), Duration::from_secs(3))
        .await
        .unwrap_or_else(|| panic!("{client} {name}: no reply"));
    assert_eq!(m.metadata.id, q.metadata.id);
    assert_eq!(m.queries, q.queries);
    m
}

fn assert_denied_for_pupils(m: &Message, what: &str) {
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{what}");
    let (code, text) = ede(m).unwrap_or_else(|| panic!("{what}: no EDE"));
    assert_eq!(code, 17, "{what}");
    assert!(text.contains("profile pupils"), "{what}: {text}");
}

fn assert_resolved(m: &Message, what: &str) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{what}");
    assert_eq!(
        a_records(m),
        [std::net::Ipv4Addr::new(192, 0, 2, 42)],
        "{what}"
    );
}

#[tokio::test]
async fn udp_from_the_balancer_is_judged_by_the_client_in_its_header() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr, "10.10.0.0/16"), None).await;

    // The same balancer address, three subscribers, three policies.
    assert_denied_for_pupils(&ask_as(&k, "10.10.1.5:40001", "games.test.").await, "pupil");
    assert_resolved(
        &ask_as(&k, "192.168.1.9:40002", "games.test.").await,
        "home",
    );
    assert_resolved(
        &ask_as(&k, "[::ffff:192.168.1.9]:1", "games.test.").await,
        "mapped",
    );
    let m = ask_as(&k, "203.0.113.5:40003", "games.test.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused, "outsider");
    assert_eq!(ede(&m).map(|e| e.0), Some(18), "outsider");
    let m = ask_as(&k, "[2001:db8::5]:40004", "games.test.").await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::Refused,
        "IPv6 outsider"
    );
    // Shared-list blocks take the fast path; it sees the subscriber too.
    let m = ask_as(&k, "10.10.1.5:40001", "www.bad.test.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(ede(&m).unwrap().1.contains("profile pupils"), "{m:?}");

    // The balancer's health check (LOCAL) is the balancer itself: the default group.
    let q = query_msg("games.test.", RecordType::A, true);
    let mut bytes = header(PpCommand::Local, Protocol::Datagram, "10.10.1.5:1");
    bytes.extend_from_slice(&q.to_vec().unwrap());
    let m = send_from("127.0.0.1", &k, &bytes, Duration::from_secs(3))
        .await
        .expect("LOCAL answered");
    assert_resolved(&m, "LOCAL");

    // From the balancer, a datagram without a valid header is dropped, never answered as
    // if the balancer had asked.
    let good = proxied("10.10.1.5:40001", &q);
    let mut version1 = good.clone();
    version1[12] = 0x11;
    let mut overlong = good.clone();
    overlong[15] = 0xff;
    let broken: [(&str, Vec<u8>); 5] = [
        ("no header", q.to_vec().unwrap()),
        ("cut header", good[..20].to_vec()),
        ("version 1", version1),
        ("length past the end", overlong),
        (
            "text header",
            [
                b"PROXY TCP4 10.10.1.5 127.0.0.1 1 53\r\n".as_slice(),
                &q.to_vec().unwrap(),
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in &broken {
        let got = send_from("127.0.0.1", &k, bytes, Duration::from_millis(400)).await;
        assert!(got.is_none(), "{what}: answered {got:?}");
    }

    // Each is counted, for the operator whose balancer is misconfigured.
    kidsafe_dns::feed::http::install_crypto_provider();
    let metrics = reqwest::get(format!("http://{}/metrics", k.running.admin_addrs[0]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("kidsafe_proxy_invalid_total 5\n"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("proxy"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Anyone else is plain DNS, and a header from them is not believed.
    let m = send_from(
        "127.0.0.2",
        &k,
        &q.to_vec().unwrap(),
        Duration::from_secs(3),
    )
    .await
    .expect("plain client answered");
    assert_resolved(&m, "plain client");
    let got = send_from("127.0.0.2", &k, &good, Duration::from_millis(400)).await;
    assert!(
        got.as_ref()
            .is_none_or(|m| m.metadata.response_code != ResponseCode::NoError),
        "a header from an untrusted source was honoured: {got:?}"
    );

    // The rate limit is per subscriber: one exhausts its bucket, the next is still served.
    let mut limited = 0;
    for _ in 0..30 {
        let m = ask_as(&k, "10.10.2.1:5000", "allowed.test.").await;
        if m.metadata.response_code == ResponseCode::Refused {
            limited += 1;
        }
    }
    assert!(limited >= 10, "only {limited} of 30 limited");
    let m = ask_as(&k, "10.10.2.2:5000", "allowed.test.").await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    k.running.stop().await;
    up.stop().await;
}

/// Writes `bytes` on a new connection from 127.0.0.1 and reads `n` framed replies; fewer
/// when the server closes first.
async fn over_tcp(k: &Kidsafe, pieces: &[Vec<u8>], n: usize) -> Vec<Message> {
    let mut s = TcpStream::connect(k.addr).await.unwrap();
    for piece in pieces {
        s.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut replies = Vec::new();
    for _ in 0..n {
        let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(3), s.read_u16()).await else {
            break;
        };
        let mut buf = vec![0u8; usize::from(len)];
        s.read_exact(&mut buf).await.unwrap();
        replies.push(Message::from_vec(&buf).unwrap());
    }
    replies
}

#[tokio::test]
async fn tcp_from_the_balancer_starts_with_the_header() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_from_text(list_dir(), &config(up.addr, "10.10.0.0/16"), None).await;
    let games = query_msg("games.test.", RecordType::A, true);
    let allowed = query_msg("allowed.test.", RecordType::A, true);

    // One header, then several queries on the connection, all the pupil's.
    let pupil = header(PpCommand::Proxy, Protocol::Stream, "10.10.1.5:40001");
    let all = [pupil.clone(), framed_msg(&games), framed_msg(&allowed)].concat();
    let replies = over_tcp(&k, &[all], 2).await;
    assert_eq!(replies.len(), 2);
    assert_denied_for_pupils(&replies[0], "pupil over TCP");
    assert_eq!(replies[1].metadata.response_code, ResponseCode::NoError);

    // The header in small pieces, as a slow network delivers it.
    let home = header(PpCommand::Proxy, Protocol::Stream, "192.168.1.9:40002");
    let mut pieces: Vec<Vec<u8>> = home.chunks(3).map(<[u8]>::to_vec).collect();
    pieces.push(framed_msg(&games));
    let replies = over_tcp(&k, &pieces, 1).await;
    assert_resolved(&replies[0], "home over TCP");

    // From the balancer without a header: closed, nothing answered.
    let replies = over_tcp(&k, &[framed_msg(&games)], 1).await;
    assert!(replies.is_empty(), "{replies:?}");
    let mut bad = pupil.clone();
    bad[0] = b'X';
    let replies = over_tcp(&k, &[[bad, framed_msg(&games)].concat()], 1).await;
    assert!(replies.is_empty(), "{replies:?}");

    // A plain client elsewhere is plain TCP.
    let mut client = tcp_client_from("127.0.0.2", k.addr).await;
    client.write_all(&framed_msg(&games)).await.unwrap();
    let len = client.read_u16().await.unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    client.read_exact(&mut buf).await.unwrap();
    assert_resolved(&Message::from_vec(&buf).unwrap(), "plain TCP client");
    k.running.stop().await;
    up.stop().await;
}

async fn tcp_client_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind((from.parse::<std::net::IpAddr>().unwrap(), 0).into())
        .unwrap();
    socket.connect(to).await.unwrap()
}

// ------------------------------------------------------------------ a real dnsdist

/// dnsdist, killed when dropped.
struct Dnsdist(Child);

impl Drop for Dnsdist {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsdist_path() -> Option<&'static str> {
    ["/usr/bin/dnsdist", "/usr/sbin/dnsdist"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

#[tokio::test]
async fn behind_a_real_dnsdist_each_subscriber_gets_its_own_policy() {
    let Some(dnsdist) = dnsdist_path() else {
        assert!(
            std::env::var_os("KIDSAFE_REQUIRE_DNSDIST").is_none(),
            "dnsdist required but not installed"
        );
        eprintln!("dnsdist not installed (apt-get install dnsdist): skipped");
        return;
    };
    let up = Upstream::start(Zone::standard()).await;
    // Subscribers are loopback addresses: 127.0.0.2 is a pupil, 127.0.0.3 is not.
    let k = start_from_text(list_dir(), &config(up.addr, "127.0.0.2/32"), None).await;
    let front = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("dnsdist.conf");
    std::fs::write(
        &conf,
        format!(
            r#"
setLocal("{front}")
setACL({{"127.0.0.0/8"}})
newServer({{address="{backend}", useProxyProtocol=true, checkInterval=1}})
"#,
            backend = k.addr
        ),
    )
    .unwrap();
    let _d = Dnsdist(
        Command::new(dnsdist)
            .args(["--supervised", "--disable-syslog", "-C"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait for dnsdist to answer (and to have health-checked its backend up).
    let q = query_msg("allowed.test.", RecordType::A, true);
    let started = Instant::now();
    loop {
        if let Some(m) = raw_udp_from("127.0.0.3", front, &q.to_vec().unwrap()).await
            && m.metadata.response_code == ResponseCode::NoError
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "dnsdist never answered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    for (from, pupil) in [("127.0.0.2", true), ("127.0.0.3", false)] {
        let q = query_msg("games.test.", RecordType::A, true);
        let m = raw_udp_from(from, front, &q.to_vec().unwrap())
            .await
            .unwrap_or_else(|| panic!("{from}: no reply through dnsdist"));
        if pupil {
            assert_denied_for_pupils(&m, "pupil through dnsdist");
        } else {
            assert_resolved(&m, "home through dnsdist");
        }
        // And over TCP through dnsdist.
        let mut s = tcp_client_from(from, front).await;
        s.write_all(&framed_msg(&q)).await.unwrap();
        let len = s.read_u16().await.unwrap();
        let mut buf = vec![0u8; usize::from(len)];
        s.read_exact(&mut buf).await.unwrap();
        let m = Message::from_vec(&buf).unwrap();
        if pupil {
            assert_denied_for_pupils(&m, "pupil through dnsdist over TCP");
        } else {
            assert_resolved(&m, "home through dnsdist over TCP");
        }
    }
    // dnsdist kept the backend up: its health checks carry a header too.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let m = raw_udp_from("127.0.0.3", front, &q.to_vec().unwrap())
        .await
        .expect("still answered");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    k.running.stop().await;
    up.stop().await;
}
