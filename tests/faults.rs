//! Upstream faults end to end: kidsafe-dns on loopback, queried by a raw UDP client (and a
//! hickory TCP client), forwarding to scripted fake upstreams that misbehave on purpose:
//! silence, slowness, garbage, spoofed replies, truncation followed by a broken TCP
//! connection, replies from the wrong address.
//!
//! Each fake is a raw tokio `UdpSocket` (and `TcpListener` on the same port) whose replies
//! are built by hand with hickory-proto, so every byte the forwarder sees is chosen here.
//! The fake decides what to do from the query's first label, so one fake (and one
//! kidsafe-dns) serves many cases at once, and the cases run concurrently.
//!
//! Every kidsafe-dns here has `upstream.timeout_ms = 1000` and a cache (the defaults of
//! `start_kidsafe`).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures_util::future::join_all;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

const NXDOMAIN_MODE: &str = "mode = \"nxdomain\"\nttl = 120";

/// `upstream.timeout_ms` of every kidsafe-dns started by `start_kidsafe`.
const BUDGET: Duration = Duration::from_millis(1000);
/// Scheduling slack allowed on top of the budget (debug build, tests in parallel).
const SLACK: Duration = Duration::from_millis(500);

/// The honest answer.
const GOOD: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The honest answer for a second name (the victim of a cross-name spoof).
const GOOD2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
/// The honest answer that only comes over TCP.
const GOOD_TCP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);
/// What an attacker (or a broken upstream) wants the client to use.
const SPOOF: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
/// What a truncated (TC=1) UDP reply carries: not a complete answer.
const PARTIAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

// ---------------------------------------------------------------------------------------
// Scripted fake upstreams
// ---------------------------------------------------------------------------------------

/// Which socket a fake upstream sends a datagram from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// The socket the query arrived on (a well-behaved server).
    Same,
    /// Same address, another port.
    OtherPort,
    /// Same port, another address (127.0.0.2).
    OtherAddr,
}

/// One datagram a fake sends back, `after` the query arrived.
struct Out {
    after: Duration,
    bytes: Vec<u8>,
    via: Via,
}

/// `bytes` at once, from the queried socket.
fn now(bytes: Vec<u8>) -> Out {
    at(0, bytes)
}

/// `bytes` after `ms` milliseconds, from the queried socket.
fn at(ms: u64, bytes: Vec<u8>) -> Out {
    Out {
        after: Duration::from_millis(ms),
        bytes,
        via: Via::Same,
    }
}

/// What a fake sends for one UDP query, given how many earlier copies of it (same ID, i.e.
/// retransmissions) it has seen.
type UdpScript = dyn Fn(&Message, usize) -> Vec<Out> + Send + Sync;

/// What a fake writes on a TCP connection after reading one framed query, and whether it
/// then keeps the connection open (stalls) instead of closing it.
struct TcpOut {
    bytes: Vec<u8>,
    hold: bool,
}

type TcpScript = dyn Fn(&Message) -> TcpOut + Send + Sync;

/// A scripted upstream on 127.0.0.1 (UDP, and TCP on the same port when given a script).
struct Fake {
    addr: SocketAddr,
    udp_seen: Arc<Mutex<Vec<Message>>>,
    tcp_seen: Arc<Mutex<Vec<Message>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Fake {
    /// A UDP-only fake (TCP connections to its port are refused).
    async fn udp(script: impl Fn(&Message, usize) -> Vec<Out> + Send + Sync + 'static) -> Fake {
        Fake::start(Arc::new(script), None).await
    }

    /// A fake answering UDP with `udp` and TCP with `tcp`.
    async fn with_tcp(
        udp: impl Fn(&Message, usize) -> Vec<Out> + Send + Sync + 'static,
        tcp: impl Fn(&Message) -> TcpOut + Send + Sync + 'static,
    ) -> Fake {
        Fake::start(Arc::new(udp), Some(Arc::new(tcp))).await
    }

    async fn start(udp: Arc<UdpScript>, tcp: Option<Arc<TcpScript>>) -> Fake {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let other_port = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let other_addr = Arc::new(UdpSocket::bind(("127.0.0.2", addr.port())).await.unwrap());
        let udp_seen = Arc::new(Mutex::new(Vec::new()));
        let tcp_seen = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = vec![tokio::spawn(serve_udp(
            [socket, other_port, other_addr],
            udp,
            udp_seen.clone(),
        ))];
        if let Some(script) = tcp {
            let listener = TcpListener::bind(addr).await.unwrap();
            tasks.push(tokio::spawn(serve_tcp(listener, script, tcp_seen.clone())));
        }
        Fake {
            addr,
            udp_seen,
            tcp_seen,
            tasks,
        }
    }

    /// Distinct UDP queries (by ID: a retransmission is the same query) for `n`/`t`.
    fn queries(&self, n: &str, t: RecordType) -> usize {
        let n = name(n);
        let mut ids: Vec<u16> = self
            .udp_seen
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.queries[0].name() == &n && m.queries[0].query_type() == t)
            .map(|m| m.metadata.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// UDP datagrams (queries and retransmissions) for `n`.
    fn datagrams(&self, n: &str) -> usize {
        let n = name(n);
        let seen = self.udp_seen.lock().unwrap();
        seen.iter().filter(|m| m.queries[0].name() == &n).count()
    }

    /// TCP queries for `n`.
    fn tcp_queries(&self, n: &str) -> usize {
        let n = name(n);
        let seen = self.tcp_seen.lock().unwrap();
        seen.iter().filter(|m| m.queries[0].name() == &n).count()
    }
}

async fn serve_udp(
    sockets: [Arc<UdpSocket>; 3],
    script: Arc<UdpScript>,
    seen: Arc<Mutex<Vec<Message>>>,
) {
    let mut buf = vec![0u8; 65535];
    while let Ok((n, from)) = sockets[0].recv_from(&mut buf).await {
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if query.queries.len() != 1 {
            continue;
        }
        let copy = {
            let mut seen = seen.lock().unwrap();
            let copy = seen
                .iter()
                .filter(|m| m.metadata.id == query.metadata.id)
                .count();
            seen.push(query.clone());
            copy
        };
        let outs = script(&query, copy);
        let sockets = sockets.clone();
        // One task per query sends its datagrams in order, each at its time.
        tokio::spawn(async move {
            let arrived = tokio::time::Instant::now();
            for out in outs {
                tokio::time::sleep_until(arrived + out.after).await;
                let socket = match out.via {
                    Via::Same => &sockets[0],
                    Via::OtherPort => &sockets[1],
                    Via::OtherAddr => &sockets[2],
                };
                let _ = socket.send_to(&out.bytes, from).await;
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, script: Arc<TcpScript>, seen: Arc<Mutex<Vec<Message>>>) {
    while let Ok((mut stream, _)) = listener.accept().await {
        let (script, seen) = (script.clone(), seen.clone());
        tokio::spawn(async move {
            let Ok(len) = stream.read_u16().await else {
                return;
            };
            let mut buf = vec![0u8; usize::from(len)];
            if stream.read_exact(&mut buf).await.is_err() {
                return;
            }
            let Ok(query) = Message::from_vec(&buf) else {
                return;
            };
            seen.lock().unwrap().push(query.clone());
            let out = script(&query);
            let _ = stream.write_all(&out.bytes).await;
            let _ = stream.flush().await;
            if out.hold {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            // Dropped: the connection closes (FIN), possibly mid-message.
        });
    }
}

/// The first label of the query's name: what a fake's script dispatches on.
fn label(q: &Message) -> String {
    let n = q.queries[0].name();
    n.iter()
        .next()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Hand-built replies
// ---------------------------------------------------------------------------------------

/// The honest reply to `q`: its ID, opcode and question, one A record `ip` (TTL 300).
fn reply(q: &Message, ip: Ipv4Addr) -> Message {
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_queries(q.queries.clone());
    r.add_answer(Record::from_rdata(
        q.queries[0].name().clone(),
        300,
        RData::A(A(ip)),
    ));
    r
}

fn wire(m: &Message) -> Vec<u8> {
    m.to_vec().unwrap()
}

/// Deterministic noise (xorshift64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

/// A 12-byte header answering `q`'s ID (QR=1, RD, RA) with the given section counts.
fn header(q: &Message, qd: u16, an: u16) -> Vec<u8> {
    let mut h = q.metadata.id.to_be_bytes().to_vec();
    h.extend_from_slice(&[0x81, 0x80]);
    for count in [qd, an, 0, 0] {
        h.extend_from_slice(&count.to_be_bytes());
    }
    h
}

/// Kinds of garbage an upstream can send.
#[derive(Clone, Copy, Debug)]
enum Junk {
    /// Random bytes of several lengths (1 byte to a full MTU).
    Random,
    /// The first 5 bytes of the honest reply: a cut header with the right ID.
    ShortHeader,
    /// A valid header with the right ID and all counts 0: it parses, but has no question.
    HeaderOnly,
    /// A valid header (right ID, QDCOUNT=1) followed by a broken question: a label longer
    /// than the datagram, a compression pointer to itself, a name with no end.
    BadQuestion,
    /// The honest reply with its last bytes cut off (RDLENGTH points past the end).
    CutAnswer,
    /// A well-formed reply carrying SPOOF, too big for the forwarder's receive buffer (a
    /// server ignoring our EDNS size): cut by the kernel, it must not parse.
    Oversize,
}

const ALL_JUNK: [Junk; 6] = [
    Junk::Random,
    Junk::ShortHeader,
    Junk::HeaderOnly,
    Junk::BadQuestion,
    Junk::CutAnswer,
    Junk::Oversize,
];

fn junk(q: &Message, kind: Junk) -> Vec<Vec<u8>> {
    let honest = wire(&reply(q, SPOOF));
    let seed = (u64::from(q.metadata.id) << 16) | 0xbeef;
    match kind {
        Junk::Random => [1, 2, 11, 12, 13, 100, 512, 1400]
            .iter()
            .enumerate()
            .map(|(i, &len)| noise(seed + i as u64, len))
            .collect(),
        Junk::ShortHeader => vec![honest[..5].to_vec()],
        Junk::HeaderOnly => vec![header(q, 0, 0)],
        Junk::BadQuestion => {
            let long_label = [&header(q, 1, 0)[..], &[63, b'a', b'b', b'c']].concat();
            let self_pointer = [&header(q, 1, 0)[..], &[0xc0, 0x0c, 0, 1, 0, 1]].concat();
            let endless = [&header(q, 1, 0)[..], &[3, b'a', b'b', b'c', 3, b'x']].concat();
            let no_type = [&header(q, 1, 0)[..], &[1, b'a', 0, 0]].concat();
            vec![long_label, self_pointer, endless, no_type]
        }
        Junk::CutAnswer => vec![honest[..honest.len() - 2].to_vec()],
        Junk::Oversize => {
            let mut big = reply(q, SPOOF);
            for i in 0..60 {
                big.add_answer(Record::from_rdata(
                    q.queries[0].name().clone(),
                    300,
                    RData::TXT(TXT::new(vec![format!("{i:02}{}", "x".repeat(100))])),
                ));
            }
            let bytes = wire(&big);
            assert!(bytes.len() > 4096, "{} bytes", bytes.len());
            vec![bytes]
        }
    }
}

/// Kinds of spoofed reply: a reply to `q` carrying SPOOF that the forwarder must reject.
#[derive(Clone, Copy, Debug)]
enum Spoof {
    /// Everything right but the ID.
    WrongId,
    /// The right ID, the question (and answer) for another name.
    OtherName,
    /// The right ID and name, another type (AAAA).
    OtherType,
    /// The right ID, name and type, another class (CH).
    OtherClass,
    /// The right ID and question, but QR=0: a query (e.g. ours reflected back).
    NotAResponse,
    /// The right ID and question, but another opcode (NOTIFY).
    OtherOpcode,
    /// The right ID, no question section at all.
    NoQuestion,
    /// The right ID, our question plus a second one.
    TwoQuestions,
}

const ALL_SPOOFS: [Spoof; 8] = [
    Spoof::WrongId,
    Spoof::OtherName,
    Spoof::OtherType,
    Spoof::OtherClass,
    Spoof::NotAResponse,
    Spoof::OtherOpcode,
    Spoof::NoQuestion,
    Spoof::TwoQuestions,
];

/// The name the `OtherName` spoof tries to poison.
const VICTIM: &str = "victim.faults.test.";

fn spoof(q: &Message, kind: Spoof) -> Vec<u8> {
    let mut r = reply(q, SPOOF);
    match kind {
        Spoof::WrongId => r.metadata.id = q.metadata.id.wrapping_add(1),
        Spoof::OtherName => {
            r.queries[0].set_name(name(VICTIM));
            r.answers[0].name = name(VICTIM);
        }
        Spoof::OtherType => {
            r.queries[0].set_query_type(RecordType::AAAA);
        }
        Spoof::OtherClass => {
            r.queries[0].set_query_class(DNSClass::CH);
        }
        Spoof::NotAResponse => r.metadata.message_type = MessageType::Query,
        Spoof::OtherOpcode => r.metadata.op_code = OpCode::Notify,
        Spoof::NoQuestion => r.queries.clear(),
        Spoof::TwoQuestions => {
            let mut second = r.queries[0].clone();
            second.set_name(name(VICTIM));
            r.queries.push(second);
        }
    }
    wire(&r)
}

// ---------------------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------------------

/// Asks kidsafe-dns at `addr` for `n`/`t` over UDP (EDNS on): the reply and how long it
/// took. Silence (no reply in 3 s) fails the test.
async fn ask(addr: SocketAddr, n: &str, t: RecordType) -> (Message, Duration) {
    let msg = query_msg(n, t, true);
    let started = Instant::now();
    let m = raw_udp(addr, &msg.to_vec().unwrap())
        .await
        .unwrap_or_else(|| panic!("{n}: silence instead of an answer"));
    let took = started.elapsed();
    assert_eq!(m.metadata.id, msg.metadata.id, "{n}");
    (m, took)
}

/// SERVFAIL with EDE 22 (No Reachable Authority), nothing in the answer, within budget.
fn assert_unreachable(m: &Message, took: Duration, what: &str) {
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::ServFail,
        "{what}: {m:?}"
    );
    assert_eq!(ede(m).map(|e| e.0), Some(22), "{what}: {m:?}");
    assert!(m.answers.is_empty(), "{what}: {m:?}");
    assert!(took < BUDGET + SLACK, "{what}: answered after {took:?}");
}

/// NOERROR with exactly the A record `ip`.
fn assert_answer(m: &Message, ip: Ipv4Addr, what: &str) {
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{what}: {m:?}"
    );
    assert_eq!(a_records(m), [ip], "{what}");
    assert!(!m.metadata.truncation, "{what}");
}

/// A blocked name is still answered at once, over UDP.
async fn assert_blocks(addr: SocketAddr) {
    let (m, took) = ask(addr, "www.bad.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ede(&m).map(|e| e.0), Some(15));
    assert!(took < Duration::from_millis(300), "block took {took:?}");
}

// ---------------------------------------------------------------------------------------
// 1. Silence
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn silent_upstream_gives_servfail_ede_22_in_time_while_blocks_are_still_answered() {
    let fake = Fake::udp(|_, _| vec![]).await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let addr = k.addr;
    // Twenty queries waiting on the dead upstream at once.
    let pending = tokio::spawn(async move {
        let asks = (0..20).map(|i| async move {
            let n = format!("silent{i}.faults.test.");
            let (m, took) = ask(addr, &n, RecordType::A).await;
            (n, m, took)
        });
        join_all(asks).await
    });
    // Meanwhile blocked names are answered at once, over UDP and TCP.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tcp = tcp_client(addr).await;
    let mut blocks = 0;
    while !pending.is_finished() {
        assert_blocks(addr).await;
        let started = Instant::now();
        let m = query(&mut tcp, "casino.example.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(started.elapsed() < Duration::from_millis(300));
        blocks += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        blocks >= 5,
        "only {blocks} blocked queries while upstream hung"
    );
    for (n, m, took) in pending.await.unwrap() {
        assert_unreachable(&m, took, &n);
        assert!(
            took >= BUDGET - Duration::from_millis(100),
            "{n}: gave up after {took:?}, before the budget"
        );
        // The forwarder retransmitted while it waited (at 250 and 750 ms).
        assert!(fake.datagrams(&n) >= 2, "{n}: {}", fake.datagrams(&n));
    }
    k.running.stop().await;
}

// ---------------------------------------------------------------------------------------
// 2. Slowness
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_answer_within_the_budget_is_relayed_and_a_late_one_is_not() {
    let fake = Fake::udp(|q, _| match label(q).as_str() {
        // 60% of the budget.
        "slow" => vec![at(600, wire(&reply(q, GOOD)))],
        // Past the budget: the forwarder has given up and closed its socket.
        "late" => vec![at(1300, wire(&reply(q, SPOOF)))],
        _ => vec![],
    })
    .await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let (slow, late) = tokio::join!(
        ask(k.addr, "slow.faults.test.", RecordType::A),
        ask(k.addr, "late.faults.test.", RecordType::A),
    );
    let (m, took) = slow;
    assert_answer(&m, GOOD, "slow");
    assert!(
        took >= Duration::from_millis(600) && took < BUDGET,
        "{took:?}"
    );
    let (m, took) = late;
    assert_unreachable(&m, took, "late");
    // The slow answer was cached: the second ask is immediate and not forwarded.
    let (m, took) = ask(k.addr, "slow.faults.test.", RecordType::A).await;
    assert_answer(&m, GOOD, "slow, cached");
    assert!(took < Duration::from_millis(300), "{took:?}");
    assert_eq!(fake.queries("slow.faults.test.", RecordType::A), 1);
    // The late reply reached no one and nothing was cached from it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (m, took) = ask(k.addr, "late.faults.test.", RecordType::A).await;
    assert_unreachable(&m, took, "late, again");
    assert_blocks(k.addr).await;
    k.running.stop().await;
}

// ---------------------------------------------------------------------------------------
// 3. Garbage
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn garbage_replies_are_ignored_and_a_valid_reply_after_them_is_used() {
    // `junkN-then`: garbage of kind N at once, the honest reply 50 ms later.
    // `junkN-only`: garbage of kind N to every copy of the query, nothing else.
    let fake = Fake::udp(|q, _| {
        let l = label(q);
        let Some((kind, mode)) = l.strip_prefix("junk").and_then(|r| r.split_once('-')) else {
            return vec![now(wire(&reply(q, GOOD)))];
        };
        let kind = ALL_JUNK[kind.parse::<usize>().unwrap()];
        let mut outs: Vec<Out> = junk(q, kind).into_iter().map(now).collect();
        if mode == "then" {
            outs.push(at(50, wire(&reply(q, GOOD))));
        }
        outs
    })
    .await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let cases = (0..ALL_JUNK.len()).flat_map(|i| {
        ["then", "only"].map(|mode| {
            let addr = k.addr;
            async move {
                let n = format!("junk{i}-{mode}.faults.test.");
                let what = format!("{:?} {mode}", ALL_JUNK[i]);
                let (m, took) = ask(addr, &n, RecordType::A).await;
                (what, mode, m, took)
            }
        })
    });
    for (what, mode, m, took) in join_all(cases).await {
        assert!(!a_records(&m).contains(&SPOOF), "{what}: {m:?}");
        if mode == "then" {
            assert_answer(&m, GOOD, &what);
            assert!(took < Duration::from_millis(500), "{what}: {took:?}");
        } else {
            assert_unreachable(&m, took, &what);
        }
    }
    // No panic, no stuck task: the server still serves both kinds of answer.
    assert_blocks(k.addr).await;
    let (m, _) = ask(k.addr, "fine.faults.test.", RecordType::A).await;
    assert_answer(&m, GOOD, "after the garbage");
    k.running.stop().await;
}

#[tokio::test]
async fn a_stream_of_garbage_does_not_stop_retransmission() {
    // The first copy of each query is lost; garbage then arrives every 100 ms (faster than
    // the 250 ms retransmission timer); only a retransmitted copy is answered.
    let fake = Fake::udp(|q, copy| {
        if copy == 0 {
            (1..15)
                .map(|i| at(i * 100, noise(i, 40 + i as usize)))
                .collect()
        } else {
            vec![now(wire(&reply(q, GOOD)))]
        }
    })
    .await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let (m, took) = ask(k.addr, "noisy.faults.test.", RecordType::A).await;
    assert_answer(&m, GOOD, "noisy");
    assert!(took < BUDGET, "{took:?}");
    k.running.stop().await;
}

// ---------------------------------------------------------------------------------------
// 4. Spoofed replies (cache-poisoning defence)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn spoofed_replies_are_rejected_and_never_cached() {
    // `spoofN-then`: spoof of kind N at once, the honest reply 100 ms later.
    // `spoofN-only`: spoof of kind N to every copy of the query, nothing else.
    // Anything else (the victim name, other types): the honest reply GOOD2.
    let fake = Fake::udp(|q, _| {
        let l = label(q);
        let Some((kind, mode)) = l.strip_prefix("spoof").and_then(|r| r.split_once('-')) else {
            return vec![now(wire(&reply(q, GOOD2)))];
        };
        if q.queries[0].query_type() != RecordType::A {
            return vec![now(wire(&reply(q, GOOD2)))];
        }
        let kind = ALL_SPOOFS[kind.parse::<usize>().unwrap()];
        let mut outs = vec![now(spoof(q, kind))];
        if mode == "then" {
            outs.push(at(100, wire(&reply(q, GOOD))));
        }
        outs
    })
    .await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let addr = k.addr;
    let fake = &fake;
    let cases = (0..ALL_SPOOFS.len()).flat_map(|i| {
        ["then", "only"].map(|mode| async move {
            let n = format!("spoof{i}-{mode}.faults.test.");
            let what = format!("{:?} {mode}", ALL_SPOOFS[i]);
            let (m, took) = ask(addr, &n, RecordType::A).await;
            assert!(!a_records(&m).contains(&SPOOF), "{what}: {m:?}");
            if mode == "then" {
                assert_answer(&m, GOOD, &what);
                assert!(took < Duration::from_millis(500), "{what}: {took:?}");
            } else {
                assert_unreachable(&m, took, &what);
            }
            // Again: `then` is answered from the cache with the honest reply; `only` was not
            // cached at all (the spoof would be served from it), so it goes upstream again.
            let (m, took) = ask(addr, &n, RecordType::A).await;
            assert!(!a_records(&m).contains(&SPOOF), "{what}, again: {m:?}");
            if mode == "then" {
                assert_answer(&m, GOOD, &what);
                assert_eq!(fake.queries(&n, RecordType::A), 1, "{what}: not cached");
            } else {
                assert_unreachable(&m, took, &what);
                assert_eq!(fake.queries(&n, RecordType::A), 2, "{what}: cached?");
            }
            // The question the spoof claimed to answer (AAAA of the name) was not cached
            // either: it is asked upstream and gets the honest answer.
            let (m, _) = ask(addr, &n, RecordType::AAAA).await;
            assert!(!a_records(&m).contains(&SPOOF), "{what}, AAAA: {m:?}");
            assert_eq!(
                fake.queries(&n, RecordType::AAAA),
                1,
                "{what}: AAAA cached?"
            );
        })
    });
    join_all(cases).await;
    // The name the cross-name spoofs carried was not poisoned.
    let (m, _) = ask(addr, VICTIM, RecordType::A).await;
    assert_answer(&m, GOOD2, "victim");
    assert_eq!(
        fake.queries(VICTIM, RecordType::A),
        1,
        "victim served from cache"
    );
    assert_blocks(addr).await;
    k.running.stop().await;
}

#[tokio::test]
async fn records_for_other_names_in_a_reply_do_not_poison_them() {
    // A reply whose question matches, carrying extra records for other names in its
    // answer and additional sections (out of bailiwick, RFC 5452 §6).
    let fake = Fake::udp(|q, _| {
        if label(q) != "carrier" {
            return vec![now(wire(&reply(q, GOOD2)))];
        }
        let mut r = reply(q, GOOD);
        let extra = |n: &str| Record::from_rdata(name(n), 86400, RData::A(A(SPOOF)));
        r.add_answer(extra("in-answer.faults.test."));
        r.add_additional(extra("in-additional.faults.test."));
        vec![now(wire(&r))]
    })
    .await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let (m, _) = ask(k.addr, "carrier.faults.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(a_records(&m).contains(&GOOD));
    for n in ["in-answer.faults.test.", "in-additional.faults.test."] {
        let (m, _) = ask(k.addr, n, RecordType::A).await;
        assert_answer(&m, GOOD2, n);
        assert_eq!(fake.queries(n, RecordType::A), 1, "{n}");
    }
    k.running.stop().await;
}

// ---------------------------------------------------------------------------------------
// 5. Truncation, then a broken TCP connection
// ---------------------------------------------------------------------------------------

/// What the TC fake does on TCP.
#[derive(Clone, Copy, Debug)]
enum Tcp {
    /// The honest full answer (GOOD_TCP): proves the fake's TCP path works.
    Good,
    /// The length prefix and half the message, then close.
    HalfMessage,
    /// One byte of the length prefix, then close.
    HalfPrefix,
    /// Reads the query and closes without a byte.
    CloseAtOnce,
    /// A length prefix of 65535 followed by a shorter message, then close.
    OversizeLength,
    /// A well-framed message of random bytes.
    Garbage,
    /// A complete reply with the wrong ID (and SPOOF), then close.
    WrongId,
    /// The length prefix and half the message, then the connection stays open, silent.
    Stall,
}

const ALL_TCP: [Tcp; 8] = [
    Tcp::Good,
    Tcp::HalfMessage,
    Tcp::HalfPrefix,
    Tcp::CloseAtOnce,
    Tcp::OversizeLength,
    Tcp::Garbage,
    Tcp::WrongId,
    Tcp::Stall,
];

/// A fake answering every UDP query with TC=1 (and PARTIAL in the answer), and TCP queries
/// `tcpN.…` as `ALL_TCP[N]` says.
async fn truncating_fake() -> Fake {
    Fake::with_tcp(
        |q, _| {
            let mut r = reply(q, PARTIAL);
            r.metadata.truncation = true;
            vec![now(wire(&r))]
        },
        |q| {
            let l = label(q);
            let kind = ALL_TCP[l.trim_start_matches("tcp").parse::<usize>().unwrap()];
            let full = framed(&wire(&reply(q, GOOD_TCP)));
            let half = full[..full.len() / 2].to_vec();
            let (bytes, hold) = match kind {
                Tcp::Good => (full, false),
                Tcp::HalfMessage => (half, false),
                Tcp::HalfPrefix => (full[..1].to_vec(), false),
                Tcp::CloseAtOnce => (vec![], false),
                Tcp::OversizeLength => ([&[0xff, 0xff], &full[2..]].concat(), false),
                Tcp::Garbage => (framed(&noise(7, 300)), false),
                Tcp::WrongId => {
                    let mut r = reply(q, SPOOF);
                    r.metadata.id = q.metadata.id.wrapping_add(1);
                    (framed(&wire(&r)), false)
                }
                Tcp::Stall => (half, true),
            };
            TcpOut { bytes, hold }
        },
    )
    .await
}

#[tokio::test]
async fn truncated_then_broken_tcp_gives_servfail_ede_22() {
    let fake = truncating_fake().await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let cases = ALL_TCP.iter().enumerate().map(|(i, kind)| {
        let addr = k.addr;
        async move {
            let n = format!("tcp{i}.faults.test.");
            (*kind, n.clone(), ask(addr, &n, RecordType::A).await)
        }
    });
    for (kind, n, (m, took)) in join_all(cases).await {
        let what = format!("{kind:?}");
        // The truncated UDP reply is not a complete answer: never relayed as one.
        assert!(!a_records(&m).contains(&PARTIAL), "{what}: {m:?}");
        assert!(!a_records(&m).contains(&SPOOF), "{what}: {m:?}");
        match kind {
            Tcp::Good => assert_answer(&m, GOOD_TCP, &what),
            Tcp::Stall => assert_unreachable(&m, took, &what),
            _ => {
                assert_unreachable(&m, took, &what);
                // A closed connection fails at once, not at the deadline.
                assert!(took < Duration::from_millis(500), "{what}: {took:?}");
            }
        }
        assert!(fake.tcp_queries(&n) >= 1, "{what}: TCP never tried");
    }
    assert_blocks(k.addr).await;
    k.running.stop().await;
}

#[tokio::test]
async fn truncated_then_broken_tcp_fails_over_to_the_next_upstream() {
    let fake = truncating_fake().await;
    let good = Fake::udp(|q, _| vec![now(wire(&reply(q, GOOD)))]).await;
    let k = start_kidsafe(&[fake.addr, good.addr], NXDOMAIN_MODE, "").await;
    let cases = ALL_TCP.iter().enumerate().map(|(i, kind)| {
        let addr = k.addr;
        async move {
            let n = format!("tcp{i}.faults.test.");
            (*kind, n.clone(), ask(addr, &n, RecordType::A).await)
        }
    });
    for (kind, n, (m, took)) in join_all(cases).await {
        let what = format!("{kind:?}");
        match kind {
            Tcp::Good => {
                assert_answer(&m, GOOD_TCP, &what);
                assert_eq!(good.queries(&n, RecordType::A), 0, "{what}");
            }
            _ => {
                assert_answer(&m, GOOD, &what);
                assert_eq!(good.queries(&n, RecordType::A), 1, "{what}");
                // A stalled connection costs the first server's slice of the budget.
                assert!(took < BUDGET, "{what}: {took:?}");
            }
        }
    }
    k.running.stop().await;
}

// ---------------------------------------------------------------------------------------
// 6. Replies from the wrong source
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn replies_from_another_address_or_port_are_not_accepted() {
    // `port-only` / `addr-only`: the reply (right ID and question, SPOOF) comes from another
    // port / another address, to every copy. `…-then`: that, then the honest reply GOOD from
    // the queried socket 100 ms later.
    let fake = Fake::udp(|q, _| {
        let l = label(q);
        let (via, mode) = match l.split_once('-') {
            Some(("port", mode)) => (Via::OtherPort, mode.to_owned()),
            Some(("addr", mode)) => (Via::OtherAddr, mode.to_owned()),
            _ => return vec![now(wire(&reply(q, GOOD)))],
        };
        let mut outs = vec![Out {
            after: Duration::ZERO,
            bytes: wire(&reply(q, SPOOF)),
            via,
        }];
        if mode == "then" {
            outs.push(at(100, wire(&reply(q, GOOD))));
        }
        outs
    })
    .await;
    let k = start_kidsafe(&[fake.addr], NXDOMAIN_MODE, "").await;
    let addr = k.addr;
    let fake = &fake;
    let cases = ["port-only", "addr-only", "port-then", "addr-then"].map(|l| async move {
        let n = format!("{l}.faults.test.");
        let (m, took) = ask(addr, &n, RecordType::A).await;
        assert!(!a_records(&m).contains(&SPOOF), "{l}: {m:?}");
        if l.ends_with("then") {
            assert_answer(&m, GOOD, l);
        } else {
            assert_unreachable(&m, took, l);
        }
        // Not cached from the wrong source either.
        let (m, took) = ask(addr, &n, RecordType::A).await;
        assert!(!a_records(&m).contains(&SPOOF), "{l}, again: {m:?}");
        if l.ends_with("then") {
            assert_answer(&m, GOOD, l);
            assert_eq!(fake.queries(&n, RecordType::A), 1, "{l}");
        } else {
            assert_unreachable(&m, took, l);
            assert_eq!(fake.queries(&n, RecordType::A), 2, "{l}");
        }
    });
    join_all(cases).await;
    k.running.stop().await;
}

// ---------------------------------------------------------------------------------------
// Other failures
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upstream_servfail_or_refused_moves_on_to_the_next_server() {
    let failing = Fake::udp(|q, _| {
        let mut r = reply(q, SPOOF);
        r.answers.clear();
        r.metadata.response_code = if label(q) == "refused" {
            ResponseCode::Refused
        } else {
            ResponseCode::ServFail
        };
        vec![now(wire(&r))]
    })
    .await;
    let good = Fake::udp(|q, _| vec![now(wire(&reply(q, GOOD)))]).await;
    let both = start_kidsafe(&[failing.addr, good.addr], NXDOMAIN_MODE, "").await;
    let alone = start_kidsafe(&[failing.addr], NXDOMAIN_MODE, "").await;
    for (l, code) in [
        ("servfail", ResponseCode::ServFail),
        ("refused", ResponseCode::Refused),
    ] {
        let n = format!("{l}.faults.test.");
        let (m, took) = ask(both.addr, &n, RecordType::A).await;
        assert_answer(&m, GOOD, l);
        assert!(took < Duration::from_millis(300), "{l}: {took:?}");
        // With no other server, the upstream's own failure is relayed, at once.
        let (m, took) = ask(alone.addr, &n, RecordType::A).await;
        assert_eq!(m.metadata.response_code, code, "{l}");
        assert!(m.answers.is_empty());
        assert!(took < Duration::from_millis(300), "{l}: {took:?}");
        // Not cached: asked upstream again.
        let before = failing.queries(&n, RecordType::A);
        let _ = ask(alone.addr, &n, RecordType::A).await;
        assert_eq!(failing.queries(&n, RecordType::A), before + 1, "{l}");
    }
    both.running.stop().await;
    alone.running.stop().await;
}

/// FORMERR to `q`: the bare header (no question, no OPT) as old servers send it, or with
/// the question echoed; with an OPT when `opt` (a server that knows EDNS).
fn formerr(q: &Message, echo: bool, opt: bool) -> Vec<u8> {
    if !echo && !opt {
        let mut h = header(q, 0, 0);
        h[3] = 0x81; // RA, RCODE 1
        return h;
    }
    let mut r = reply(q, SPOOF);
    r.answers.clear();
    r.metadata.response_code = ResponseCode::FormErr;
    if !echo {
        r.queries.clear();
    }
    if opt {
        r.edns = Some(hickory_proto::op::Edns::new());
    }
    wire(&r)
}

#[tokio::test]
async fn an_upstream_that_rejects_edns_is_asked_again_without_it() {
    // An old server: FORMERR to any query with an OPT record. "always" rejects the plain
    // query too; "knows" answers FORMERR with an OPT (it speaks EDNS and objects to
    // something else, so dropping EDNS is not the cure).
    let legacy = Fake::udp(|q, _| {
        let with_edns = q.edns.is_some();
        let out = match label(q).as_str() {
            "bare" if with_edns => formerr(q, false, false),
            "echo" if with_edns => formerr(q, true, false),
            "always" => formerr(q, true, false),
            "knows" if with_edns => formerr(q, true, true),
            _ => wire(&reply(q, GOOD)),
        };
        vec![now(out)]
    })
    .await;
    let good = Fake::udp(|q, _| vec![now(wire(&reply(q, GOOD2)))]).await;
    let alone = start_kidsafe(&[legacy.addr], NXDOMAIN_MODE, "").await;
    let both = start_kidsafe(&[legacy.addr, good.addr], NXDOMAIN_MODE, "").await;
    let asked = |n: &str, edns: bool| {
        let n = name(n);
        let seen = legacy.udp_seen.lock().unwrap();
        seen.iter()
            .filter(|m| m.queries[0].name() == &n && m.edns.is_some() == edns)
            .count()
    };

    for l in ["bare", "echo"] {
        let n = format!("{l}.faults.test.");
        let (m, took) = ask(alone.addr, &n, RecordType::A).await;
        assert_answer(&m, GOOD, l);
        assert!(took < Duration::from_millis(300), "{l}: {took:?}");
        // The client asked with EDNS and gets EDNS back, whatever the upstream spoke.
        assert!(m.edns.is_some(), "{l}");
        assert_eq!((asked(&n, true), asked(&n, false)), (1, 1), "{l}");
        // The answer got without EDNS is cached like any other.
        let (m, _) = ask(alone.addr, &n, RecordType::A).await;
        assert_answer(&m, GOOD, l);
        assert_eq!((asked(&n, true), asked(&n, false)), (1, 1), "{l}: cached");
    }

    // FORMERR to the plain query too, or FORMERR from a server that speaks EDNS: that
    // server failed the query. It is never relayed (the client's query was well formed);
    // the next server answers, or with none left, SERVFAIL at once.
    for l in ["always", "knows"] {
        let n = format!("{l}.faults.test.");
        let (m, took) = ask(alone.addr, &n, RecordType::A).await;
        assert_ne!(m.metadata.response_code, ResponseCode::FormErr, "{l}");
        assert_unreachable(&m, took, l);
        assert!(took < Duration::from_millis(300), "{l}: {took:?}");
        let (m, took) = ask(both.addr, &n, RecordType::A).await;
        assert_answer(&m, GOOD2, l);
        assert!(took < Duration::from_millis(300), "{l}: {took:?}");
    }
    assert_eq!(asked("knows.faults.test.", false), 0, "EDNS kept");
    assert_eq!(asked("always.faults.test.", false), 2);
    assert_blocks(alone.addr).await;
    alone.running.stop().await;
    both.running.stop().await;
}

// ---------------------------------------------------------------------------------------
// The log while upstream is down
// ---------------------------------------------------------------------------------------

/// A free port on 127.0.0.1 for UDP and TCP both (so `serve` can be told it up front).
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `kidsafe-dns serve` (the real binary, its real log) with two dead upstreams, one that
/// refuses (ICMP port unreachable) and one that never answers, gets 60 queries in a burst:
/// every one gets SERVFAIL, but the log gets at most two WARN lines about it (the first
/// failure at once, the rest as a summary at shutdown), each naming both servers and what
/// they did, and the counts add up to the 60 queries. Each server's failures are counted
/// in `/metrics` by server and reason. (It used to be one WARN per query, naming only the
/// last server tried.)
#[tokio::test]
async fn a_burst_of_upstream_failures_is_summarised_in_the_log_naming_every_server() {
    let refusing = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    }; // closed again: queries to it are refused
    let (silent, _silent) = silent_upstream().await;
    let dir = list_dir();
    let (port, admin) = (free_port(), free_port());
    let config = dir.path().join("k.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\n[upstream]\nservers = [\"{refusing}\", \"{silent}\"]\ntimeout_ms = 400\n[blocking]\n{NXDOMAIN_MODE}\n{STANDARD_LISTS}\n[admin]\nlisten = [\"127.0.0.1:{admin}\"]\n"
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    /// Killed if the test fails before its own SIGTERM.
    struct Serving(std::process::Child);
    impl Drop for Serving {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Serving(
        std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let started = Instant::now();
    while raw_udp(
        addr,
        &query_msg("bad.test.", RecordType::A, false)
            .to_vec()
            .unwrap(),
    )
    .await
    .is_none()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never answered"
        );
    }

    let replies = join_all((0..60).map(|i| async move {
        let n = format!("n{i}.down.test.");
        let m = raw_udp(addr, &query_msg(&n, RecordType::A, true).to_vec().unwrap()).await;
        (n, m)
    }))
    .await;
    for (n, m) in replies {
        let m = m.unwrap_or_else(|| panic!("{n}: no answer"));
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{n}");
    }

    kidsafe_dns::feed::http::install_crypto_provider();
    let scrape = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures = |server: SocketAddr, reason: &str| -> f64 {
        scrape
            .lines()
            .filter(|l| l.starts_with("kidsafe_upstream_server_failures_total{"))
            .filter(|l| l.contains(&format!("server=\"{server}\"")))
            .filter(|l| l.contains(&format!("reason=\"{reason}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(failures(refusing, "network"), 60.0, "{scrape}");
    assert_eq!(failures(silent, "timeout"), 60.0, "{scrape}");

    std::process::Command::new("kill")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(child.0.wait().unwrap().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let warns: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("upstream"))
        .collect();
    assert!(
        (1..=2).contains(&warns.len()),
        "{} upstream WARN lines:\n{log}",
        warns.len()
    );
    let mut total = 0;
    for line in &warns {
        assert!(line.contains("no upstream answered"), "{line}");
        assert!(line.contains(&format!("{refusing}: failed ")), "{line}");
        assert!(line.to_lowercase().contains("connection refused"), "{line}");
        assert!(line.contains(&format!("{silent}: failed ")), "{line}");
        assert!(line.contains("no answer within"), "{line}");
        let n = line
            .split("failed_queries=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no failed_queries in {line}"));
        total += n;
    }
    assert_eq!(total, 60, "{log}");
}
