//! The resolver end to end: real UDP/TCP sockets on loopback, a real authoritative upstream
//! (hickory-server in process), real clients (hickory client, raw sockets, and `dig` where
//! installed).

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

const NXDOMAIN_MODE: &str = "mode = \"nxdomain\"\nttl = 120";

#[tokio::test]
async fn blocked_name_gets_nxdomain_soa_and_ede_over_udp_and_tcp() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let mut udp = udp_client(k.addr);
    let mut tcp = tcp_client(k.addr).await;
    for client in [&mut udp, &mut tcp] {
        for n in [
            "bad.test.",
            "www.bad.test.",
            "deep.sub.www.bad.test.",
            "BAD.Test.",
        ] {
            let m = query(client, n, RecordType::A).await;
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{n}");
            assert!(m.answers.is_empty());
            let soa = &m.authorities[0];
            assert_eq!(soa.ttl, 120);
            assert!(matches!(soa.data, RData::SOA(_)), "{n}: {soa:?}");
            assert_eq!(soa.name, name("bad.test."));
            let (code, text) = ede(&m).expect("EDE present");
            assert_eq!(code, 15);
            assert_eq!(text, "blocked: adult, gambling (kidsafe-dns)");
        }
        // Other query types of a blocked name: NXDOMAIN too in this mode.
        let m = query(client, "www.bad.test.", RecordType::MX).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    // Blocked names never reached upstream.
    assert_eq!(
        up.queries_for("bad.test.") + up.queries_for("www.bad.test."),
        0
    );
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn allowlisted_subdomain_and_allowed_names_get_the_upstream_answer() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let mut c = udp_client(k.addr);
    let m = query(&mut c, "safe.bad.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 20)]);
    assert!(ede(&m).is_none());
    let m = query(&mut c, "www.safe.bad.test.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 21)]);

    let m = query(&mut c, "allowed.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.recursion_available);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].ttl, 3600, "TTL kept");
    assert_eq!(m.answers[0].name, name("allowed.test."));
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 10)]);
    assert_eq!(up.queries_for("allowed.test."), 1);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn upstream_nxdomain_and_nodata_pass_through_with_soa() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let mut c = tcp_client(k.addr).await;
    let m = query(&mut c, "nope.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].name, name("test."));
    assert_eq!(m.authorities[0].ttl, 900);
    assert!(ede(&m).is_none(), "an upstream NXDOMAIN is not a block");
    let m = query(&mut c, "allowed.test.", RecordType::MX).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn null_mode_answers_zero_addresses_and_nodata() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], "mode = \"null\"\nttl = 60", "").await;
    let mut c = udp_client(k.addr);
    let m = query(&mut c, "www.bad.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::UNSPECIFIED]);
    assert_eq!(m.answers[0].ttl, 60);
    assert_eq!(ede(&m).unwrap().0, 15);
    let m = query(&mut c, "www.bad.test.", RecordType::AAAA).await;
    assert!(matches!(m.answers[0].data, RData::AAAA(a) if a.0.is_unspecified()));
    let m = query(&mut c, "www.bad.test.", RecordType::TXT).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert!(
        matches!(m.authorities[0].data, RData::SOA(_)),
        "NODATA carries an SOA"
    );
    assert_eq!(ede(&m).unwrap().0, 15);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn ip_mode_points_at_the_block_page() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(
        &[up.addr],
        "mode = \"ip\"\nttl = 30\nipv4 = \"192.0.2.1\"\nipv6 = \"2001:db8::1\"",
        "",
    )
    .await;
    let mut c = udp_client(k.addr);
    let m = query(&mut c, "casino.example.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(ede(&m).unwrap().1, "blocked: gambling (kidsafe-dns)");
    let m = query(&mut c, "casino.example.", RecordType::AAAA).await;
    assert!(
        matches!(m.answers[0].data, RData::AAAA(a) if a.0 == "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap())
    );
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn cname_into_a_blocked_name_is_blocked() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let mut c = udp_client(k.addr);
    let m = query(&mut c, "cloak.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.answers.is_empty(), "no part of the cloaked chain leaks");
    assert_eq!(ede(&m).unwrap().0, 15);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn upstream_down_gives_servfail_with_ede_22_in_time() {
    // One upstream that never answers, one port with nothing behind it.
    let (silent, _h) = silent_upstream().await;
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let k = start_kidsafe(&[closed, silent], NXDOMAIN_MODE, "").await;
    let msg = query_msg("allowed.test.", RecordType::A, true);
    let started = Instant::now();
    let m = raw_udp(k.addr, &msg.to_vec().unwrap())
        .await
        .expect("an answer, not silence");
    let took = started.elapsed();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(ede(&m).unwrap().0, 22);
    assert!(
        took < Duration::from_millis(1800),
        "answered after {took:?} with a 1000 ms budget"
    );
    k.running.stop().await;
}

#[tokio::test]
async fn a_dead_first_upstream_falls_over_to_the_next() {
    let (silent, _h) = silent_upstream().await;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[silent, up.addr], NXDOMAIN_MODE, "").await;
    let mut c = udp_client(k.addr);
    let m = query(&mut c, "allowed.test.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 10)]);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn large_answer_truncates_over_udp_and_comes_whole_over_tcp() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let msg = query_msg("big.test.", RecordType::TXT, true);
    let m = raw_udp(k.addr, &msg.to_vec().unwrap()).await.unwrap();
    assert!(m.metadata.truncation, "TC=1 over UDP");
    assert_eq!(m.metadata.id, msg.metadata.id);
    let mut tcp = tcp_client(k.addr).await;
    let m = query(&mut tcp, "big.test.", RecordType::TXT).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn clients_without_edns_get_no_opt_and_512_byte_answers() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let msg = query_msg("bad.test.", RecordType::A, false);
    let m = raw_udp(k.addr, &msg.to_vec().unwrap()).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.edns.is_none());
    let msg = query_msg("big.test.", RecordType::TXT, false);
    let m = raw_udp(k.addr, &msg.to_vec().unwrap()).await.unwrap();
    assert!(m.metadata.truncation);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn garbage_datagrams_do_not_stop_the_server() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..100 {
        let len = 1 + (i * 37) % 700;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        s.send_to(&bytes, k.addr).await.unwrap();
    }
    // A header-only query with QDCOUNT=2 but no questions: FORMERR, not a crash.
    let bad = [0x12, 0x34, 0x01, 0x00, 0x00, 0x02, 0, 0, 0, 0, 0, 0];
    s.send_to(&bad, k.addr).await.unwrap();
    let mut c = udp_client(k.addr);
    let m = query(&mut c, "allowed.test.", RecordType::A).await;
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 10)]);
    let m = query(&mut c, "bad.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn idn_names_match_their_punycode_form() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let mut c = udp_client(k.addr);
    // The list has `BÜCHER.example`; clients query the A-label form.
    for n in ["xn--bcher-kva.example.", "www.xn--bcher-kva.example."] {
        let m = query(&mut c, n, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{n}");
        assert_eq!(ede(&m).unwrap().1, "blocked: adult (kidsafe-dns)");
    }
    k.running.stop().await;
    up.stop().await;
}

/// `dig`, the tool an admin reaches for, sees the block and its reason.
#[tokio::test]
async fn dig_shows_the_block_and_the_ede() {
    let Ok(out) = std::process::Command::new("dig").arg("-v").output() else {
        eprintln!("dig not installed: skipping");
        return;
    };
    assert!(out.status.success() || !out.stderr.is_empty());
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let addr = k.addr;
    let dig = move |name: &'static str, tcp: bool| {
        let mut cmd = std::process::Command::new("dig");
        cmd.args([
            format!("@{}", addr.ip()),
            "-p".into(),
            addr.port().to_string(),
            name.into(),
        ]);
        if tcp {
            cmd.arg("+tcp");
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).into_owned()
    };
    let blocked = tokio::task::spawn_blocking(move || dig("www.bad.test", false))
        .await
        .unwrap();
    assert!(blocked.contains("status: NXDOMAIN"), "{blocked}");
    assert!(blocked.contains("EDE: 15 (Blocked)"), "{blocked}");
    assert!(
        blocked.contains("blocked: adult, gambling (kidsafe-dns)"),
        "{blocked}"
    );
    let allowed = tokio::task::spawn_blocking(move || dig("allowed.test", true))
        .await
        .unwrap();
    assert!(allowed.contains("status: NOERROR"), "{allowed}");
    assert!(allowed.contains("192.0.2.10"), "{allowed}");
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn answers_on_ipv4_and_ipv6_listeners() {
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe_on(&["127.0.0.1:0", "[::1]:0"], &[up.addr], NXDOMAIN_MODE, "").await;
    assert_eq!(k.running.addrs.len(), 2);
    for addr in k.running.addrs.clone() {
        let mut u = udp_client(addr);
        let mut t = tcp_client(addr).await;
        for c in [&mut u, &mut t] {
            let m = query(c, "www.bad.test.", RecordType::A).await;
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{addr}");
            let m = query(c, "allowed.test.", RecordType::A).await;
            assert_eq!(
                a_records(&m),
                [std::net::Ipv4Addr::new(192, 0, 2, 10)],
                "{addr}"
            );
        }
    }
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn a_lost_upstream_packet_is_retransmitted() {
    let (lossy, count) = lossy_upstream().await;
    let k = start_kidsafe(&[lossy], NXDOMAIN_MODE, "").await;
    let msg = query_msg("lossy.test.", RecordType::A, true);
    // Without a retransmission the only copy is lost and the 1 s budget ends in SERVFAIL.
    let m = raw_udp(k.addr, &msg.to_vec().unwrap()).await.unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 88)]);
    assert!(count.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    k.running.stop().await;
}

/// Many queries queued before the server reads any: the UDP loop reads and answers them
/// in batches (`recvmmsg`/`sendmmsg`), and each client must still get exactly one reply per
/// query, with its own ID and question, whether it was blocked, forwarded or cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_queued_queries_gets_one_right_reply_each() {
    use std::collections::HashMap;
    let up = Upstream::start(Zone::standard()).await;
    let k = start_kidsafe(&[up.addr], NXDOMAIN_MODE, "").await;
    let names = [
        ("bad.test.", RecordType::A),
        ("allowed.test.", RecordType::A),
        ("www.bad.test.", RecordType::AAAA),
        ("innocent.test.", RecordType::A),
    ];
    let mut sockets = Vec::new();
    for _ in 0..8 {
        sockets.push(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    let mut expected: Vec<HashMap<u16, (&str, RecordType)>> = vec![HashMap::new(); 8];
    for i in 0..40usize {
        for (s, socket) in sockets.iter().enumerate() {
            let (n, t) = names[(i + s) % names.len()];
            let mut msg = query_msg(n, t, i % 2 == 0);
            let id = (s * 1000 + i) as u16;
            msg.metadata.id = id;
            socket
                .send_to(&msg.to_vec().unwrap(), k.addr)
                .await
                .unwrap();
            expected[s].insert(id, (n, t));
            if i % 10 == 0 {
                // Junk without a header: dropped, and must not shift the replies after it.
                socket.send_to(&[0xde, 0xad], k.addr).await.unwrap();
            }
        }
    }
    for (s, socket) in sockets.iter().enumerate() {
        let mut buf = vec![0u8; 4096];
        while !expected[s].is_empty() {
            let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("socket {s}: {} replies missing", expected[s].len()))
                .unwrap();
            let m = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
            let (name, qtype) = expected[s].remove(&m.metadata.id).unwrap_or_else(|| {
                panic!("socket {s}: unexpected or repeated ID {}", m.metadata.id)
            });
            assert_eq!(m.queries[0].name().to_ascii(), name);
            assert_eq!(m.queries[0].query_type(), qtype);
            match name {
                "bad.test." | "www.bad.test." => {
                    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}")
                }
                "allowed.test." => {
                    assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 10)])
                }
                _ => assert_eq!(a_records(&m), [std::net::Ipv4Addr::new(192, 0, 2, 30)]),
            }
        }
    }
    // Nothing more: no reply for the junk, no duplicate.
    for socket in &sockets {
        let mut buf = [0u8; 512];
        let extra = tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await;
        assert!(extra.is_err(), "an extra datagram arrived");
    }
    k.running.stop().await;
    up.stop().await;
}

/// Pipelined TCP queries are answered as each is ready (RFC 7766 §6.2.1.1): a blocked name
/// and a second slow miss behind a slow miss on the same connection do not wait in line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_tcp_queries_are_not_held_behind_a_slow_miss() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slow = slow_upstream(Duration::from_millis(600)).await;
    let k = start_kidsafe(&[slow], "mode = \"nxdomain\"", "").await;
    let queries = [
        query_msg("slow1.test.", RecordType::A, true),
        query_msg("www.bad.test.", RecordType::A, true),
        query_msg("slow2.test.", RecordType::A, true),
        query_msg("casino.example.", RecordType::A, true),
    ];
    let wire: Vec<u8> = queries.iter().flat_map(framed_msg).collect();
    let mut s = tokio::net::TcpStream::connect(k.addr).await.unwrap();
    let sent = Instant::now();
    s.write_all(&wire).await.unwrap();
    let mut got = Vec::new();
    for _ in &queries {
        let len = s.read_u16().await.unwrap();
        let mut body = vec![0u8; usize::from(len)];
        s.read_exact(&mut body).await.unwrap();
        got.push((Message::from_vec(&body).unwrap(), sent.elapsed()));
    }
    let by_id = |q: &Message| {
        got.iter()
            .find(|(m, _)| m.metadata.id == q.metadata.id)
            .unwrap_or_else(|| panic!("no reply to {:?}", q.queries))
    };
    // The blocks come first, before the upstream has answered anything.
    for blocked in [&queries[1], &queries[3]] {
        let (m, at) = by_id(blocked);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(*at < Duration::from_millis(500), "a block waited {at:?}");
    }
    // The two misses went upstream side by side: both back about one delay after sending,
    // not one after the other.
    for miss in [&queries[0], &queries[2]] {
        let (m, at) = by_id(miss);
        assert_eq!(a_records(m), [Ipv4Addr::new(192, 0, 2, 77)]);
        assert!(*at < Duration::from_millis(1100), "a miss waited {at:?}");
    }
    // The connection still answers afterwards.
    let q = query_msg("bad.test.", RecordType::A, false);
    s.write_all(&framed_msg(&q)).await.unwrap();
    let len = s.read_u16().await.unwrap();
    let mut body = vec![0u8; usize::from(len)];
    s.read_exact(&mut body).await.unwrap();
    assert_eq!(Message::from_vec(&body).unwrap().metadata.id, q.metadata.id);
    k.running.stop().await;
}
