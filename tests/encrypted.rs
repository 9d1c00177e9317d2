//! DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484) end to end: a certificate made at
//! test time (rcgen, SANs `localhost` and 127.0.0.1), real TLS clients (tokio-rustls,
//! reqwest over HTTP/2, and `kdig`/`curl` where installed), the test lists and the
//! in-process upstream of `tests/common`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use data_encoding::BASE64URL_NOPAD;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const ALLOWED_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const DNS_MESSAGE: &str = "application/dns-message";

/// A self-signed certificate for `localhost` and 127.0.0.1: `cert.pem` and `key.pem` in
/// `dir` (the certificate is its own root, so `cert.pem` is also the clients' CA file).
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
    cert.der().clone()
}

fn config(upstream: SocketAddr, server_extra: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
dot_listen = ["127.0.0.1:0"]
doh_listen = ["127.0.0.1:0"]
tls_cert = "cert.pem"
tls_key = "key.pem"
shutdown_grace_ms = 1000
{server_extra}
{}
"#,
        upstream_and_lists(upstream)
    )
}

/// kidsafe-dns with DoT and DoH on ephemeral ports, and the certificate it serves.
async fn start_tls(upstream: SocketAddr, server_extra: &str) -> (Kidsafe, CertificateDer<'static>) {
    let dir = list_dir();
    let cert = write_cert(dir.path());
    let k = start_from_text(dir, &config(upstream, server_extra), None).await;
    assert_eq!(k.running.dot_addrs.len(), 1);
    assert_eq!(k.running.doh_addrs.len(), 1);
    (k, cert)
}

/// A rustls client config (ring) trusting only `root`, announcing `alpn`.
fn client_tls(root: &CertificateDer<'static>, alpn: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

async fn dot_connect(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = TlsConnector::from(Arc::new(client_tls(root, b"dot")));
    let server = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(3), connector.connect(server, tcp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
}

/// Writes every query (2-byte length framing) in one write — pipelined — then reads as
/// many replies, in the order they arrive.
async fn dot_exchange(stream: &mut TlsStream<TcpStream>, queries: &[Message]) -> Vec<Message> {
    let out: Vec<u8> = queries.iter().flat_map(framed_msg).collect();
    stream.write_all(&out).await.unwrap();
    stream.flush().await.unwrap();
    let mut replies = Vec::new();
    for _ in queries {
        let read = async {
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await?;
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut body).await?;
            std::io::Result::Ok(body)
        };
        let body = tokio::time::timeout(Duration::from_secs(3), read)
            .await
            .expect("DoT reply in time")
            .expect("DoT reply");
        replies.push(Message::from_vec(&body).unwrap());
    }
    replies
}

async fn dot_query(addr: SocketAddr, root: &CertificateDer<'static>, n: &str) -> Message {
    let mut s = dot_connect(addr, root).await.expect("DoT handshake");
    let q = query_msg(n, RecordType::A, true);
    let r = dot_exchange(&mut s, std::slice::from_ref(&q))
        .await
        .remove(0);
    assert_eq!(r.metadata.id, q.metadata.id);
    r
}

fn assert_sinkholed(m: &Message, n: &str) {
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "{n}: {m:?}"
    );
    assert!(m.answers.is_empty(), "{n}");
    assert_eq!(ede(m).map(|e| e.0), Some(15), "{n}: EDE 15 (Blocked)");
}

fn assert_forwarded(m: &Message, n: &str) {
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{n}: {m:?}"
    );
    assert_eq!(a_records(m), [ALLOWED_IP], "{n}");
    assert!(ede(m).is_none(), "{n}");
}

/// A DoH client: HTTP/2 only (ALPN h2), trusting only `root`, with `localhost` pinned to
/// the server's address.
fn doh_client(root: &CertificateDer<'static>, doh: SocketAddr) -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls(root, b"h2"))
        .resolve("localhost", doh)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn doh_url(doh: SocketAddr) -> String {
    format!("https://localhost:{}/dns-query", doh.port())
}

/// A DoH query message: ID 0, as RFC 8484 §4.1 recommends (cache friendly).
fn doh_msg(n: &str) -> Message {
    let mut q = query_msg(n, RecordType::A, true);
    q.metadata.id = 0;
    q
}

/// Checks an RFC 8484 reply (200, HTTP/2, application/dns-message) and decodes it.
async fn doh_reply(r: reqwest::Response) -> Message {
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(ctype, DNS_MESSAGE);
    let body = r.bytes().await.unwrap();
    Message::from_vec(&body).expect("the body is a DNS message")
}

async fn doh_get(client: &reqwest::Client, doh: SocketAddr, n: &str) -> Message {
    let q = doh_msg(n).to_vec().unwrap();
    let url = format!("{}?dns={}", doh_url(doh), BASE64URL_NOPAD.encode(&q));
    let r = client
        .get(url)
        .header("accept", DNS_MESSAGE)
        .send()
        .await
        .expect("DoH GET");
    doh_reply(r).await
}

async fn doh_post(client: &reqwest::Client, doh: SocketAddr, n: &str) -> Message {
    let q = doh_msg(n).to_vec().unwrap();
    let r = client
        .post(doh_url(doh))
        .header("content-type", DNS_MESSAGE)
        .header("accept", DNS_MESSAGE)
        .body(q)
        .send()
        .await
        .expect("DoH POST");
    doh_reply(r).await
}

fn on_path(tool: &str) -> bool {
    std::process::Command::new("which")
        .arg(tool)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn dot_sinkholes_blocked_names_forwards_allowed_and_answers_pipelined_queries() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, cert) = start_tls(up.addr, "").await;
    let dot = k.running.dot_addrs[0];

    // The handshake negotiates the DoT ALPN.
    let s = dot_connect(dot, &cert).await.expect("DoT handshake");
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"dot"[..]));
    drop(s);

    for n in ["bad.test.", "www.bad.test.", "casino.example."] {
        assert_sinkholed(&dot_query(dot, &cert, n).await, n);
    }
    assert_forwarded(
        &dot_query(dot, &cert, "allowed.test.").await,
        "allowed.test.",
    );

    // Two queries written back to back on one connection: both answered, each when ready
    // (the block may overtake the miss; clients match by ID, RFC 7766 §6.2.1.1).
    let mut s = dot_connect(dot, &cert).await.unwrap();
    let queries = [
        query_msg("innocent.test.", RecordType::A, true),
        query_msg("casino.example.", RecordType::A, true),
    ];
    let replies = dot_exchange(&mut s, &queries).await;
    let reply_to = |q: &Message| {
        replies
            .iter()
            .find(|r| r.metadata.id == q.metadata.id)
            .unwrap_or_else(|| panic!("no reply to {:?}", q.queries))
    };
    let miss = reply_to(&queries[0]);
    assert_eq!(miss.queries[0].name(), &name("innocent.test."));
    assert_eq!(a_records(miss), [Ipv4Addr::new(192, 0, 2, 30)]);
    assert_sinkholed(reply_to(&queries[1]), "casino.example.");
    // The connection stays usable after the pipelined pair.
    let more = dot_exchange(&mut s, &[query_msg("allowed.test.", RecordType::A, true)]).await;
    assert_forwarded(&more[0], "allowed.test.");
    drop(s);
    assert_eq!(
        up.queries_for("bad.test.") + up.queries_for("casino.example."),
        0
    );

    // kdig, a DoT client we did not write.
    if on_path("kdig") {
        let ca = k.dir.path().join("cert.pem");
        let kdig = |n: &'static str| {
            tokio::process::Command::new("kdig")
                .arg("@127.0.0.1")
                .args(["-p", &dot.port().to_string()])
                .arg("+tls")
                .arg(format!("+tls-ca={}", ca.display()))
                .arg("+tls-hostname=localhost")
                .args(["+timeout=3", "+retry=0", n])
                .output()
        };
        let out = kdig("bad.test").await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kdig: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("status: NXDOMAIN"), "kdig bad.test:\n{text}");
        assert!(text.contains("TLS"), "kdig used TLS:\n{text}");
        let out = kdig("allowed.test").await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("status: NOERROR"),
            "kdig allowed.test:\n{text}"
        );
        assert!(text.contains("192.0.2.10"), "kdig allowed.test:\n{text}");
    } else {
        println!("NOTE: kdig not on PATH, skipping the kdig +tls check (CI installs knot)");
    }
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn doh_get_and_post_sinkhole_blocked_names_and_forward_allowed() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, cert) = start_tls(up.addr, "").await;
    let doh = k.running.doh_addrs[0];
    let client = doh_client(&cert, doh);

    for n in ["bad.test.", "casino.example."] {
        assert_sinkholed(&doh_post(&client, doh, n).await, n);
    }
    assert_forwarded(
        &doh_post(&client, doh, "allowed.test.").await,
        "allowed.test.",
    );
    for n in ["www.bad.test.", "casino.example."] {
        assert_sinkholed(&doh_get(&client, doh, n).await, n);
    }
    assert_forwarded(
        &doh_get(&client, doh, "allowed.test.").await,
        "allowed.test.",
    );
    assert_eq!(
        up.queries_for("bad.test.") + up.queries_for("casino.example."),
        0
    );
    // A GET answer may be cached by HTTP caches, never longer than its smallest TTL: for
    // a cache hit (written on bytes), a forwarded name and a block (the sinkhole's TTL).
    for n in ["allowed.test.", "bad.test."] {
        let q = BASE64URL_NOPAD.encode(&doh_msg(n).to_vec().unwrap());
        let r = client
            .get(format!("{}?dns={q}", doh_url(doh)))
            .send()
            .await
            .unwrap();
        let max_age = r.headers()["cache-control"].to_str().unwrap().to_owned();
        let max_age: u32 = max_age.strip_prefix("max-age=").unwrap().parse().unwrap();
        let reply = doh_reply(r).await;
        let smallest = reply
            .answers
            .iter()
            .chain(&reply.authorities)
            .map(|r| r.ttl)
            .min();
        assert_eq!(Some(max_age), smallest, "{n}: {reply:?}");
        if n == "allowed.test." {
            assert_forwarded(&reply, "allowed.test. (no Accept header)");
        }
    }

    curl_check(&k, doh).await;
    k.running.stop().await;
    up.stop().await;
}

async fn curl_check(k: &Kidsafe, doh: SocketAddr) {
    // curl, an HTTP/2 client we did not write, with the command line a user would type.
    if on_path("curl") {
        let dir = k.dir.path();
        std::fs::write(dir.join("q.bin"), doh_msg("bad.test.").to_vec().unwrap()).unwrap();
        let port = doh.port();
        let out = tokio::process::Command::new("curl")
            .current_dir(dir)
            .args(["-sS", "--http2", "--cacert", "cert.pem"])
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .args(["-H", "content-type: application/dns-message"])
            .args(["--data-binary", "@q.bin", "-o", "a.bin"])
            .args(["-w", "%{http_code} %{http_version} %{content_type}"])
            .arg(format!("https://localhost:{port}/dns-query"))
            .output()
            .await
            .unwrap();
        let status = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl: {status} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(status, "200 2 application/dns-message");
        let reply = Message::from_vec(&std::fs::read(dir.join("a.bin")).unwrap()).unwrap();
        assert_sinkholed(&reply, "bad.test. (curl)");
    } else {
        println!("NOTE: curl not on PATH, skipping the curl DoH check");
    }
}

#[tokio::test]
async fn bad_clients_are_turned_away_and_the_server_keeps_answering() {
    let up = Upstream::start(Zone::standard()).await;
    // A short idle time: it is also the TLS handshake deadline.
    let (k, cert) = start_tls(up.addr, "tcp_idle_ms = 1000").await;
    let (dot, doh) = (k.running.dot_addrs[0], k.running.doh_addrs[0]);

    // Plain DNS over TCP to the DoT port: not a ClientHello, the server hangs up (a TLS
    // alert at most, never a DNS answer), well before the idle time.
    let mut plain = TcpStream::connect(dot).await.unwrap();
    let q = query_msg("allowed.test.", RecordType::A, false);
    plain.write_all(&framed_msg(&q)).await.unwrap();
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), plain.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "a plain TCP client on the DoT port is closed");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "closed at once, not at idle"
    );
    assert!(
        got.first().is_none_or(|&b| b == 0x15),
        "nothing but a TLS alert comes back: {got:02x?}"
    );

    // A TCP client that says nothing on the DoT port: closed at the handshake deadline.
    let mut silent = TcpStream::connect(dot).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(4), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a silent client is closed: {read:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the deadline"
    );

    // A TLS client that does not trust the certificate fails the handshake, on both ports.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let untrusted = other.cert.der().clone();
    let err = dot_connect(dot, &untrusted)
        .await
        .expect_err("untrusted DoT");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "a certificate error: {err}"
    );
    let r = doh_client(&untrusted, doh)
        .post(doh_url(doh))
        .header("content-type", DNS_MESSAGE)
        .body(doh_msg("allowed.test.").to_vec().unwrap())
        .send()
        .await;
    assert!(r.is_err(), "untrusted DoH: {r:?}");

    // DoH GET with a `dns` parameter that is not base64url, or not a DNS message: 4xx.
    let client = doh_client(&cert, doh);
    for garbage in ["%%%not-base64%%%", "!!", "AAAA", ""] {
        let r = client
            .get(format!("{}?dns={garbage}", doh_url(doh)))
            .header("accept", DNS_MESSAGE)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DoH GET dns={garbage}: {e:?}"));
        assert!(r.status().is_client_error(), "dns={garbage}: {r:?}");
    }
    // No `dns` parameter at all; a POST of another content type; another path.
    let r = client.get(doh_url(doh)).send().await.unwrap();
    assert_eq!(r.status(), 400, "no dns parameter: {r:?}");
    let r = client
        .post(doh_url(doh))
        .header("content-type", "text/plain")
        .body("bad.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "{r:?}");
    let r = client
        .get(format!("https://localhost:{}/other", doh.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "{r:?}");

    // After all that, both still answer.
    let client = doh_client(&cert, doh);
    assert_sinkholed(&dot_query(dot, &cert, "bad.test.").await, "bad.test. (DoT)");
    assert_forwarded(
        &dot_query(dot, &cert, "allowed.test.").await,
        "allowed.test.",
    );
    assert_sinkholed(
        &doh_post(&client, doh, "bad.test.").await,
        "bad.test. (DoH)",
    );
    assert_forwarded(
        &doh_get(&client, doh, "allowed.test.").await,
        "allowed.test.",
    );
    // And plain DNS too.
    let m = raw_udp(
        k.addr,
        &query_msg("bad.test.", RecordType::A, true)
            .to_vec()
            .unwrap(),
    )
    .await
    .expect("UDP answer");
    assert_sinkholed(&m, "bad.test. (UDP)");
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test]
async fn dot_without_a_certificate_is_a_config_error() {
    let dir = list_dir();
    let text = config("127.0.0.1:53".parse().unwrap(), "")
        .replace("tls_cert = \"cert.pem\"\n", "")
        .replace("tls_key = \"key.pem\"\n", "")
        .replace("doh_listen = [\"127.0.0.1:0\"]\n", "");
    let path = dir.path().join("kidsafe.toml");
    std::fs::write(&path, text).unwrap();
    let err = kidsafe_dns::config::load(&path).expect_err("dot_listen needs a certificate");
    let msg = err.to_string();
    assert!(msg.contains("server.tls_cert"), "{msg}");
}

#[tokio::test]
async fn a_certificate_file_that_is_not_pem_stops_the_start_naming_the_file() {
    let dir = list_dir();
    write_cert(dir.path());
    let bogus = dir.path().join("cert.pem");
    std::fs::write(&bogus, "this is not a certificate\n").unwrap();
    let path = dir.path().join("kidsafe.toml");
    std::fs::write(&path, config("127.0.0.1:53".parse().unwrap(), "")).unwrap();
    let cfg = kidsafe_dns::config::load(&path).unwrap();
    let Err(err) = kidsafe_dns::app::start(cfg).await else {
        panic!("started with a certificate that is not PEM");
    };
    let msg = err.to_string();
    assert!(msg.contains(&bogus.display().to_string()), "{msg}");
}

/// Metrics of `k` (it must have an `[admin]` listener) as text.
async fn metrics(k: &Kidsafe) -> String {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::get(format!("http://{}/metrics", k.running.admin_addrs[0]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `line` starts (`name{labels}`), 0 when absent.
fn sample(text: &str, line: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// kidsafe-dns forwarding only to `server` (an `upstream.servers` entry) with `tls_ca`.
async fn forwarding_to(server: &str, tls_ca: Option<&Path>) -> Result<Kidsafe, String> {
    let ca = tls_ca.map_or(String::new(), |p| format!("tls_ca = \"{}\"", p.display()));
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{server}"]
{ca}
timeout_ms = 1000
[blocking]
mode = "nxdomain"
{STANDARD_LISTS}
"#
    );
    let dir = list_dir();
    let path = dir.path().join("kidsafe.toml");
    std::fs::write(&path, text).unwrap();
    let cfg = kidsafe_dns::config::load(&path).map_err(|e| e.to_string())?;
    let running = kidsafe_dns::app::start(cfg)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Kidsafe {
        addr: running.addrs[0],
        dir,
        running,
    })
}

#[tokio::test]
async fn a_dot_upstream_is_asked_over_tls_on_a_kept_connection() {
    let up = Upstream::start(Zone::standard()).await;
    // The DoT server is another kidsafe-dns, in front of the plain test upstream; it closes
    // connections idle for 500 ms and has an admin listener to count them.
    let (front, _) = start_tls(
        up.addr,
        "tcp_idle_ms = 500\n[admin]\nlisten = [\"127.0.0.1:0\"]",
    )
    .await;
    let dot = front.running.dot_addrs[0];
    let ca = front.dir.path().join("cert.pem");
    let k = forwarding_to(&format!("tls://{dot}#localhost"), Some(&ca))
        .await
        .unwrap();

    // Twenty misses in a row: each answered through TLS, all on one kept connection.
    let mut client = udp_client(k.addr);
    for i in 0..20 {
        let name = format!("n{i}.allowed.test.");
        let m = query(&mut client, &name, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{name}");
    }
    let m = query(&mut client, "allowed.test.", RecordType::A).await;
    assert_eq!(a_records(&m), [ALLOWED_IP]);
    let seen = metrics(&front).await;
    let asked = sample(&seen, "kidsafe_queries_total{protocol=\"dot\",qtype=\"A\"}");
    assert_eq!(asked, 21.0, "the DoT server saw every miss");
    assert_eq!(
        sample(&seen, "kidsafe_tcp_connections"),
        1.0,
        "one kept connection"
    );
    // 100 misses at once: every one answered, on at most 64 connections.
    let burst = (0..100).map(|i| {
        let q = query_msg(&format!("b{i}.allowed.test."), RecordType::A, true);
        let addr = k.addr;
        tokio::spawn(async move { raw_udp(addr, &q.to_vec().unwrap()).await })
    });
    for reply in futures_util::future::join_all(burst).await {
        let m = reply.unwrap().expect("a burst query answered");
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    let seen = metrics(&front).await;
    assert_eq!(
        sample(&seen, "kidsafe_queries_total{protocol=\"dot\",qtype=\"A\"}"),
        121.0
    );
    let open = sample(&seen, "kidsafe_tcp_connections");
    println!("after a burst of 100 misses: {open} TLS connections open");
    assert!((1.0..=64.0).contains(&open), "{open} connections open");
    // Blocked names never leave: nothing more reaches the DoT server.
    let m = query(&mut client, "www.bad.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ede(&m).map(|e| e.0), Some(15));

    // The server closes the kept connection while it idles; the next miss opens another.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let m = query(&mut client, "innocent.test.", RecordType::A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "after idle close"
    );
    let seen = metrics(&front).await;
    assert_eq!(
        sample(&seen, "kidsafe_queries_total{protocol=\"dot\",qtype=\"A\"}"),
        122.0
    );
    k.running.stop().await;

    // A certificate that is not for the configured name: SERVFAIL (EDE 22), never clear
    // text, and the DoT server is never asked.
    let wrong = forwarding_to(&format!("tls://{dot}#resolver.example"), Some(&ca))
        .await
        .unwrap();
    let mut client = udp_client(wrong.addr);
    let m = query(&mut client, "games.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(ede(&m).map(|e| e.0), Some(22));
    wrong.running.stop().await;
    // Without tls_ca the test certificate chains to nothing in the system store.
    match forwarding_to(&format!("tls://{dot}#localhost"), None).await {
        Ok(system) => {
            let mut client = udp_client(system.addr);
            let m = query(&mut client, "games.test.", RecordType::A).await;
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
            system.running.stop().await;
        }
        Err(e) => assert!(e.contains("no trusted root certificates"), "{e}"),
    }
    let seen = metrics(&front).await;
    assert_eq!(
        sample(&seen, "kidsafe_queries_total{protocol=\"dot\",qtype=\"A\"}"),
        122.0,
        "an unverified server was asked"
    );
    assert!(up.queries_for("games.test.") == 0);

    // A CA file that is not PEM stops the start, naming it.
    let junk = front.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = forwarding_to(&format!("tls://{dot}#localhost"), Some(&junk))
        .await
        .err()
        .expect("a junk CA file is refused");
    assert!(
        e.contains("upstream.tls_ca") && e.contains("junk.pem"),
        "{e}"
    );
    front.running.stop().await;
    up.stop().await;
}
