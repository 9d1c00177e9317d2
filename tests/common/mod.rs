//! Test harness: a real authoritative upstream (hickory-server, in process, on loopback),
//! a real kidsafe-dns started through `app::start` on ephemeral ports, and real clients.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::{A, CNAME, SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use kidsafe_dns::app::{self, Running};
use kidsafe_dns::config;
use tokio::net::{TcpListener, UdpSocket};

pub fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

/// What the fake upstream knows.
#[derive(Clone, Default)]
pub struct Zone {
    records: HashMap<(Name, RecordType), Vec<Record>>,
}

impl Zone {
    /// The standard test zone.
    pub fn standard() -> Zone {
        let mut z = Zone::default();
        let a = |n: &str, ip: [u8; 4]| {
            Record::from_rdata(name(n), 3600, RData::A(A(Ipv4Addr::from(ip))))
        };
        z.add(a("allowed.test.", [192, 0, 2, 10]));
        z.add(a("safe.bad.test.", [192, 0, 2, 20]));
        z.add(a("www.safe.bad.test.", [192, 0, 2, 21]));
        z.add(a("tracker.bad.test.", [192, 0, 2, 66]));
        z.add(a("bad.test.", [192, 0, 2, 99]));
        z.add(a("www.bad.test.", [192, 0, 2, 99]));
        z.add(a("innocent.test.", [192, 0, 2, 30]));
        // Listed names exist upstream too, so a test sees the difference a block makes.
        z.add(a("xn--bcher-kva.example.", [192, 0, 2, 40]));
        z.add(a("www.xn--bcher-kva.example.", [192, 0, 2, 40]));
        z.add(a("casino.example.", [192, 0, 2, 41]));
        z.add(a("games.test.", [192, 0, 2, 42]));
        z.add(Record::from_rdata(
            name("short.test."),
            1,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 43))),
        ));
        z.add(a("www.google.com.", [142, 250, 0, 1]));
        z.add(a("forcesafesearch.google.com.", [216, 239, 38, 120]));
        z.add(a("restrict.youtube.com.", [216, 239, 38, 120]));
        // CNAME cloaking: an innocent-looking name aliased into a blocked one.
        let cloak = Record::from_rdata(
            name("cloak.test."),
            300,
            RData::CNAME(CNAME(name("tracker.bad.test."))),
        );
        z.records.insert(
            (name("cloak.test."), RecordType::A),
            vec![cloak, a("tracker.bad.test.", [192, 0, 2, 66])],
        );
        // A big answer: more than 1232 bytes of TXT.
        let big: Vec<Record> = (0..40)
            .map(|i| {
                Record::from_rdata(
                    name("big.test."),
                    60,
                    RData::TXT(TXT::new(vec![format!("{i:02}-{}", "x".repeat(60))])),
                )
            })
            .collect();
        z.records
            .insert((name("big.test."), RecordType::TXT), big.clone());
        // The same behind a CNAME: two RRsets, the second too big for 512 bytes.
        let alias = Record::from_rdata(
            name("alias-big.test."),
            60,
            RData::CNAME(CNAME(name("big.test."))),
        );
        z.records.insert(
            (name("alias-big.test."), RecordType::TXT),
            std::iter::once(alias).chain(big).collect(),
        );
        z.add(a("secure.test.", [192, 0, 2, 50]));
        z
    }

    /// Sets the answer to `(n, t)` queries to `records` (a CNAME chain, say).
    pub fn set(&mut self, n: &str, t: RecordType, records: Vec<Record>) {
        self.records.insert((name(n), t), records);
    }

    pub fn add(&mut self, r: Record) {
        self.records
            .entry((r.name.clone(), r.record_type()))
            .or_default()
            .push(r);
    }

    pub fn soa() -> Record {
        Record::from_rdata(
            name("test."),
            900,
            RData::SOA(SOA::new(
                name("ns.test."),
                name("admin.test."),
                42,
                3600,
                600,
                86400,
                900,
            )),
        )
    }
}

/// Per query an upstream got: its name, and its OPT's option codes (`None` without OPT).
pub type SeenOptions = Arc<std::sync::Mutex<Vec<(Name, Option<Vec<u16>>)>>>;

/// An authoritative server for [`Zone`], counting the queries it gets per name.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<std::sync::Mutex<Vec<Name>>>,
    /// Per query received: the EDNS option codes of its OPT (`None` without an OPT).
    pub options: SeenOptions,
    server: Server<UpstreamHandler>,
}

struct UpstreamHandler {
    zone: Zone,
    seen: Arc<std::sync::Mutex<Vec<Name>>>,
    options: SeenOptions,
}

#[async_trait::async_trait]
impl RequestHandler for UpstreamHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let info = request.request_info().unwrap();
        let q = info.query.original().clone();
        self.seen.lock().unwrap().push(q.name().clone());
        let codes = request.edns.as_ref().map(|e| {
            e.options()
                .options
                .iter()
                .map(|(code, _)| u16::from(*code))
                .collect()
        });
        self.options.lock().unwrap().push((q.name().clone(), codes));
        let mut md = Metadata::response_from_request(&request.metadata);
        md.authoritative = true;
        md.recursion_available = true;
        // As a validating resolver would for a signed zone: AD to a query that set AD or DO
        // (RFC 6840 §5.7), for names under secure.test.
        let asked_ad = request.metadata.authentic_data
            || request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        md.authentic_data = asked_ad && name("secure.test.").zone_of(q.name());
        let mut edns = Edns::new();
        edns.set_max_payload(
            request
                .edns
                .as_ref()
                .map_or(512, |e| e.max_payload())
                .max(512),
        );
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if request.edns.is_some() {
            builder.edns(&edns);
        }
        let key = (q.name().clone(), q.query_type());
        let soa = Zone::soa();
        let result = match self.zone.records.get(&key) {
            Some(records) => {
                let msg = builder.build(md, records.iter(), [].iter(), [].iter(), [].iter());
                response.send_response(msg).await
            }
            None => {
                let exists = self.zone.records.keys().any(|(n, _)| n == q.name());
                md.response_code = if exists {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                let msg = builder.build(md, [].iter(), [&soa], [].iter(), [].iter());
                response.send_response(msg).await
            }
        };
        result.unwrap_or_else(|_| {
            Header {
                metadata: Metadata::response_from_request(&request.metadata),
                counts: Default::default(),
            }
            .into()
        })
    }
}

impl Upstream {
    pub async fn start(zone: Zone) -> Upstream {
        // The UDP port's number may be taken for TCP by another process: try another.
        let mut attempt = 0;
        let (udp, addr, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, addr, tcp),
                Err(e) if attempt < 20 => {
                    attempt += 1;
                    eprintln!("upstream: TCP {addr} taken ({e}), trying another port");
                }
                Err(e) => panic!("no free port pair for the test upstream: {e}"),
            }
        };
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let options = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut server = Server::new(UpstreamHandler {
            zone,
            seen: seen.clone(),
            options: options.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 16);
        Upstream {
            addr,
            seen,
            options,
            server,
        }
    }

    pub fn queries_for(&self, n: &str) -> usize {
        let n = name(n);
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|x| **x == n)
            .count()
    }

    pub async fn stop(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}

/// A UDP socket that reads queries and never answers: an upstream that is "up" but dead.
pub async fn silent_upstream() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while s.recv_from(&mut buf).await.is_ok() {}
    });
    (addr, h)
}

/// Test lists written to a temp dir.
pub const ADULT: &str = "# adult test list\nbad.test\nporn.example\nBÜCHER.example\n";
pub const GAMBLING: &str = "||casino.example^\n||bad.test^\n";
pub const ALLOW: &str = "safe.bad.test\n";

/// A running kidsafe-dns with its temp dir.
pub struct Kidsafe {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub running: Running,
}

impl Kidsafe {
    pub fn compiled(&self) -> PathBuf {
        self.dir.path().join("var/blocklist.fst")
    }
}

/// Writes the test lists and a config into a temp dir and starts kidsafe-dns.
pub async fn start_kidsafe(upstreams: &[SocketAddr], blocking: &str, extra_lists: &str) -> Kidsafe {
    start_kidsafe_on(&["127.0.0.1:0"], upstreams, blocking, extra_lists).await
}

/// As [`start_kidsafe`], listening on `listen`.
pub async fn start_kidsafe_on(
    listen: &[&str],
    upstreams: &[SocketAddr],
    blocking: &str,
    extra_lists: &str,
) -> Kidsafe {
    let listen: Vec<String> = listen.iter().map(|a| format!("\"{a}\"")).collect();
    let dir = list_dir();
    let servers: Vec<String> = upstreams.iter().map(|a| format!("\"{a}\"")).collect();
    let text = format!(
        r#"
[server]
listen = [{listen}]
shutdown_grace_ms = 3000
[upstream]
servers = [{}]
timeout_ms = 1000
[blocking]
{blocking}
{STANDARD_LISTS}
{extra_lists}
"#,
        servers.join(", "),
        listen = listen.join(", ")
    );
    start_from_text(dir, &text, None).await
}

/// The `[lists]` section for the files [`list_dir`] writes: the adult and gambling
/// sources and the allow list, compiled to `var/blocklist.fst`.
pub const STANDARD_LISTS: &str = r#"[lists]
compiled = "var/blocklist.fst"
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "gambling"
path = "gambling.txt"
[[lists.allow]]
path = "allow.txt"
"#;

/// The sections most test configs share after their own `[server]`: one upstream with a
/// 1 s budget, NXDOMAIN blocking (TTL 120) and [`STANDARD_LISTS`].
pub fn upstream_and_lists(upstream: SocketAddr) -> String {
    format!(
        r#"[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[blocking]
mode = "nxdomain"
ttl = 120
{STANDARD_LISTS}"#
    )
}

/// A TCP/DoT frame: the two-byte length, then the message bytes.
pub fn framed(bytes: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// `m` encoded and framed for TCP/DoT.
pub fn framed_msg(m: &Message) -> Vec<u8> {
    framed(&m.to_vec().unwrap())
}

/// Writes the test lists into a new temp dir (for a config written by the caller).
pub fn list_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("adult.txt"), ADULT).unwrap();
    std::fs::write(dir.path().join("gambling.txt"), GAMBLING).unwrap();
    std::fs::write(dir.path().join("allow.txt"), ALLOW).unwrap();
    dir
}

/// Starts kidsafe-dns from config `text` written into `dir`, with an optional test clock.
pub async fn start_from_text(
    dir: tempfile::TempDir,
    text: &str,
    clock: Option<kidsafe_dns::policy::decide::Clock>,
) -> Kidsafe {
    let path = dir.path().join("kidsafe.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = config::load(&path).unwrap();
    let running = match clock {
        Some(c) => app::start_with_clock(cfg, c).await.unwrap(),
        None => app::start(cfg).await.unwrap(),
    };
    Kidsafe {
        addr: running.addrs[0],
        dir,
        running,
    }
}

/// Sends `msg` over UDP from source address `from` (e.g. 127.0.0.2: each loopback address
/// is a different client) and returns the reply.
pub async fn raw_udp_from(from: &str, addr: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let s = UdpSocket::bind((from, 0)).await.unwrap();
    s.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buf[..n]).unwrap())
}

pub type DnsClient = Client<TokioRuntimeProvider>;

/// A hickory UDP client to `addr`.
pub fn udp_client(addr: SocketAddr) -> DnsClient {
    let conn = UdpClientStream::builder(addr, TokioRuntimeProvider::default())
        .with_timeout(Some(Duration::from_secs(3)))
        .build();
    let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(conn);
    tokio::spawn(bg);
    client
}

/// A hickory TCP client to `addr`.
pub async fn tcp_client(addr: SocketAddr) -> DnsClient {
    let (fut, sender) = TcpClientStream::new(
        addr,
        None,
        Some(Duration::from_secs(3)),
        TokioRuntimeProvider::new(),
    );
    let stream = fut.await.unwrap();
    let (client, bg) = Client::<TokioRuntimeProvider>::new(stream, sender);
    tokio::spawn(bg);
    client
}

/// Queries through a hickory client and returns the response message.
pub async fn query(client: &mut DnsClient, n: &str, t: RecordType) -> Message {
    let resp = client.query(name(n), DNSClass::IN, t).await.unwrap();
    resp.into_message()
}

/// Sends `msg` over raw UDP and returns the reply (for cases a client library hides:
/// no EDNS, truncation, garbage).
pub async fn raw_udp(addr: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let reply = udp_exchange(addr, bytes).await?;
    Some(Message::from_vec(&reply).unwrap())
}

/// Sends `bytes` over UDP from 127.0.0.1 and returns the reply's bytes (`None` after 3 s).
pub async fn udp_exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(3), s.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A query message; `edns` adds an OPT with a 1232-byte payload.
pub fn query_msg(n: &str, t: RecordType, edns: bool) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name(n), t));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m
}

fn rand_id() -> u16 {
    static N: AtomicUsize = AtomicUsize::new(1000);
    N.fetch_add(7, Ordering::Relaxed) as u16
}

/// The EDE (code, text) of a reply, if any.
pub fn ede(m: &Message) -> Option<(u16, String)> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let edns = m.edns.as_ref()?;
    match edns.option(EdnsCode::Unknown(15))? {
        EdnsOption::Unknown(_, data) if data.len() >= 2 => Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        )),
        _ => None,
    }
}

pub fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

pub mod admin_api;
pub mod blockpage;
pub mod browser;
pub mod central;
pub mod console;
pub mod dig;
pub mod shared_data;
pub mod tools;

/// `../shared/data` when the tests can read it ([`shared_data::shared_data`]).
///
/// # Panics
/// `KIDSAFE_REQUIRE_SHARED_DATA=1` and the folder is absent or unreadable.
pub fn data_dir() -> Option<PathBuf> {
    shared_data::shared_data()
}

/// An upstream that answers every A query with 192.0.2.77 after `delay`.
pub async fn slow_upstream(delay: Duration) -> SocketAddr {
    slow_upstream_counted(delay).await.0
}

/// [`slow_upstream`], also counting the distinct queries (by ID) it receives.
pub async fn slow_upstream_counted(delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let s = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = s.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        let mut ids = std::collections::HashSet::new();
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            // Count upstream queries, not datagrams: a retransmission keeps its ID.
            if ids.insert(q.metadata.id) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let s = s.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                r.metadata.recursion_available = true;
                r.add_queries(q.queries.clone());
                if let Some(qq) = q.queries.first() {
                    r.add_answer(Record::from_rdata(
                        qq.name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 77))),
                    ));
                }
                let _ = s.send_to(&r.to_vec().unwrap(), from).await;
            });
        }
    });
    (addr, count)
}

/// An upstream that loses the first copy of every query (as a lossy path or a rate-limiting
/// server would) and answers the retransmission with 192.0.2.88.
pub async fn lossy_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            counter.fetch_add(1, Ordering::SeqCst);
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if seen.insert(q.metadata.id) {
                continue; // first copy: lost
            }
            let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            r.add_queries(q.queries.clone());
            if let Some(qq) = q.queries.first() {
                r.add_answer(Record::from_rdata(
                    qq.name().clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 88))),
                ));
            }
            let _ = s.send_to(&r.to_vec().unwrap(), from).await;
        }
    });
    (addr, count)
}

/// Sends `bytes` over raw UDP and decodes the reply strictly: every byte must belong to a
/// counted record (no trailing bytes), as a strict client (dnspython, dig) demands.
pub async fn strict_udp(addr: SocketAddr, bytes: &[u8]) -> Option<(Message, usize)> {
    let reply = udp_exchange(addr, bytes).await?;
    Some((strict_decode(&reply), reply.len()))
}

/// Decodes `bytes` as one DNS message, panicking on any error or byte left over.
pub fn strict_decode(bytes: &[u8]) -> Message {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    let mut decoder = BinDecoder::new(bytes);
    let m = Message::read(&mut decoder).expect("reply decodes");
    assert_eq!(
        decoder.len(),
        0,
        "{} bytes after the last counted record",
        decoder.len()
    );
    m
}
