//! Who is asking → which profile, end to end with real clients over real sockets: `dig`
//! with a router's device MAC option (dnsmasq `--add-mac`, 65001 and 65073) and an EDNS
//! Client Subnet from a trusted forwarder (127.0.0.2) and from anyone else (127.0.0.1), DoH
//! with the ClientID in the path (reqwest over HTTP/2) and in the TLS server name, DoT with
//! the ClientID in the server name (rustls, and `kdig +tls-sni` where installed); the
//! identity options never reach upstream (the test upstream records what it got), and
//! every bad input is answered with its reason checked.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::dig::{dig, dig_profile};
use common::*;
use data_encoding::BASE64URL_NOPAD;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const DNS_MESSAGE: &str = "application/dns-message";

/// `games.test` is denied by every profile but `default`; the EDE text names the one that
/// decided. 127.0.0.2 and 127.0.0.3 are trusted forwarders; 127.0.0.3 is also the `lan`
/// profile's address.
fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
dot_listen = ["127.0.0.1:0"]
doh_listen = ["127.0.0.1:0"]
tls_cert = "cert.pem"
tls_key = "key.pem"
shutdown_grace_ms = 1000
trusted_forwarders = ["127.0.0.2/32", "127.0.0.3"]
ecs_from_trusted = true
client_id_domain = "dns.test"
{}
[cache]
max_entries = 0
[admin]
listen = ["127.0.0.1:0"]
[[groups]]
name = "tablet"
client_ids = ["kid-tablet"]
deny = ["games.test"]
[[groups]]
name = "phone"
macs = ["aa:bb:cc:dd:ee:ff"]
deny = ["games.test"]
[[groups]]
name = "school"
clients = ["10.9.0.0/16"]
deny = ["games.test"]
[[groups]]
name = "lan"
clients = ["127.0.0.3/32"]
deny = ["games.test"]
[[groups]]
name = "default"
"#,
        upstream_and_lists(upstream)
    )
}

/// A certificate for `localhost`, `dns.test` and `*.dns.test` (its own root).
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let names = ["localhost", "dns.test", "*.dns.test"].map(str::to_owned);
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.to_vec()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
    cert.der().clone()
}

async fn start(upstream: SocketAddr) -> (Kidsafe, CertificateDer<'static>) {
    let dir = list_dir();
    let cert = write_cert(dir.path());
    let k = start_from_text(dir, &config(upstream), None).await;
    (k, cert)
}

/// The profile named in the EDE of a sinkholed reply (`None`: not sinkholed).
fn profile(m: &Message) -> Option<String> {
    let (code, text) = ede(m)?;
    assert_eq!(code, 17, "the deny list decided: {text}");
    let group = text.split("(profile ").nth(1)?.trim_end_matches(')');
    Some(group.to_owned())
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

fn metric(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0)
}

/// What upstream saw of the identity options (8, 65001, 65073) in every query: nothing.
fn assert_upstream_saw_no_identity(up: &Upstream) {
    let seen = up.options.lock().unwrap();
    assert!(!seen.is_empty(), "upstream was asked");
    for (name, codes) in seen.iter() {
        let codes = codes.as_deref().unwrap_or_default();
        assert!(
            !codes.iter().any(|c| matches!(c, 8 | 65001 | 65073)),
            "{name} reached upstream with options {codes:?}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_mac_from_a_trusted_forwarder_chooses_the_profile() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, _) = start(up.addr).await;
    let mac = "+ednsopt=65001:aabbccddeeff";
    // From the trusted forwarder, over UDP (the fast path reads the option in place) and TCP.
    for extra in [&[][..], &["+tcp"][..]] {
        let args: Vec<&str> = [mac, "games.test"].iter().chain(extra).copied().collect();
        let text = dig(k.addr, "127.0.0.2", &args).await;
        assert_eq!(dig_profile(&text), "phone", "{text}");
        // Our reply does not echo the device's MAC.
        assert!(!text.contains("OPT=65001"), "the MAC is not echoed: {text}");
    }
    // dnsmasq --add-mac=text and --add-mac=base64: option 65073.
    let text_form = format!("+ednsopt=65073:{}", hex(b"aa:bb:cc:dd:ee:ff"));
    let text = dig(k.addr, "127.0.0.2", &[&text_form, "games.test"]).await;
    assert_eq!(dig_profile(&text), "phone", "{text}");
    let b64 = format!("+ednsopt=65073:{}", hex(b"qrvM3e7/"));
    let text = dig(k.addr, "127.0.0.2", &[&b64, "games.test"]).await;
    assert_eq!(dig_profile(&text), "phone", "{text}");
    // MAC wins over the address: 127.0.0.3 is `lan`, its device with the MAC is `phone`.
    let text = dig(k.addr, "127.0.0.3", &["games.test"]).await;
    assert_eq!(dig_profile(&text), "lan", "{text}");
    let text = dig(k.addr, "127.0.0.3", &[mac, "games.test"]).await;
    assert_eq!(dig_profile(&text), "phone", "{text}");
    let allowed = dig(k.addr, "127.0.0.2", &[mac, "allowed.test"]).await;
    assert_eq!(dig_profile(&allowed), "forwarded", "{allowed}");

    // From anyone else the option is ignored (and counted).
    let before = metrics(&k).await;
    let text = dig(k.addr, "127.0.0.1", &[mac, "games.test"]).await;
    assert_eq!(dig_profile(&text), "forwarded", "untrusted: {text}");
    let text = dig(k.addr, "127.0.0.1", &[&text_form, "games.test", "+tcp"]).await;
    assert_eq!(dig_profile(&text), "forwarded", "untrusted: {text}");
    // A MAC option of the wrong length from the trusted forwarder: ignored, counted.
    let text = dig(
        k.addr,
        "127.0.0.2",
        &["+ednsopt=65001:aabbccddee", "games.test"],
    )
    .await;
    assert_eq!(dig_profile(&text), "forwarded", "5 bytes: {text}");
    let junk = format!("+ednsopt=65073:{}", hex(b"not a mac"));
    let text = dig(k.addr, "127.0.0.2", &[&junk, "games.test"]).await;
    assert_eq!(dig_profile(&text), "forwarded", "text junk: {text}");
    let after = metrics(&k).await;
    let untrusted = "kidsafe_identity_untrusted_total{kind=\"mac\"}";
    let invalid = "kidsafe_identity_invalid_total{kind=\"mac\"}";
    assert_eq!(metric(&after, untrusted) - metric(&before, untrusted), 2);
    assert_eq!(metric(&after, invalid) - metric(&before, invalid), 2);

    assert_upstream_saw_no_identity(&up);
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_subnet_from_a_trusted_forwarder_chooses_by_cidr_only() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, _) = start(up.addr).await;
    let ecs = "+subnet=10.9.1.0/24";
    let text = dig(k.addr, "127.0.0.2", &[ecs, "games.test"]).await;
    assert_eq!(dig_profile(&text), "school", "{text}");
    let text = dig(k.addr, "127.0.0.2", &[ecs, "games.test", "+tcp"]).await;
    assert_eq!(dig_profile(&text), "school", "{text}");
    // A MAC is more specific than the subnet.
    let text = dig(
        k.addr,
        "127.0.0.2",
        &[ecs, "+ednsopt=65001:aabbccddeeff", "games.test"],
    )
    .await;
    assert_eq!(dig_profile(&text), "phone", "{text}");
    // The subnet replaces the forwarder's address in the choice: 127.0.0.3 is `lan`, a
    // subnet outside every group is `default`.
    let text = dig(k.addr, "127.0.0.3", &["+subnet=192.0.2.0/24", "games.test"]).await;
    assert_eq!(dig_profile(&text), "forwarded", "{text}");
    // Forwarded with the subnet: upstream does not see it.
    let text = dig(k.addr, "127.0.0.2", &[ecs, "allowed.test"]).await;
    assert_eq!(dig_profile(&text), "forwarded", "{text}");

    let before = metrics(&k).await;
    let text = dig(k.addr, "127.0.0.1", &[ecs, "games.test"]).await;
    assert_eq!(dig_profile(&text), "forwarded", "untrusted: {text}");
    let after = metrics(&k).await;
    let untrusted = "kidsafe_identity_untrusted_total{kind=\"ecs\"}";
    assert_eq!(metric(&after, untrusted) - metric(&before, untrusted), 1);
    assert_upstream_saw_no_identity(&up);
    k.running.stop().await;
    up.stop().await;
}

/// A query for `n` with an OPT whose RDATA is `options` (raw).
fn with_options(n: &str, options: &[u8]) -> Vec<u8> {
    let mut bytes = query_msg(n, RecordType::A, false).to_vec().unwrap();
    bytes[11] = 1; // ARCOUNT
    bytes.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&u16::try_from(options.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(options);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_options_are_answered_with_their_reason() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, _) = start(up.addr).await;
    // A MAC option that runs past the OPT's data: the fast path leaves it to the decoder,
    // which drops it; no device is known, the query is answered.
    let overrun = with_options("games.test.", &[0xfd, 0xe9, 0, 6, 0xaa, 0xbb]);
    let r = raw_udp_from("127.0.0.2", k.addr, &overrun).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{r:?}");
    assert_eq!(profile(&r), None);
    // An unknown option with junk: none of ours, answered as usual.
    let unknown = with_options("games.test.", &[0xfd, 0xea, 0, 3, 1, 2, 3]);
    let r = raw_udp_from("127.0.0.2", k.addr, &unknown).await.unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{r:?}");
    assert_eq!(profile(&r), None);
    // A MAC option of 7 bytes and an empty one from the trusted forwarder: not a MAC.
    for data in [
        &[0xfd, 0xe9, 0, 7, 1, 2, 3, 4, 5, 6, 7][..],
        &[0xfd, 0xe9, 0, 0],
    ] {
        let r = raw_udp_from("127.0.0.2", k.addr, &with_options("games.test.", data))
            .await
            .unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{r:?}");
        assert_eq!(profile(&r), None);
    }
    // Two options, the good MAC last: the device is known.
    let both = [
        &[0xfd, 0xea, 0, 1, 9][..],
        &[0xfd, 0xe9, 0, 6, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
    ]
    .concat();
    let r = raw_udp_from("127.0.0.2", k.addr, &with_options("games.test.", &both))
        .await
        .unwrap();
    assert_eq!(profile(&r).as_deref(), Some("phone"), "{r:?}");
    let text = metrics(&k).await;
    assert_eq!(
        metric(&text, "kidsafe_identity_invalid_total{kind=\"mac\"}"),
        2,
        "{text}"
    );
    k.running.stop().await;
    up.stop().await;
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

/// One DoT query for `n` with TLS server name `sni`.
async fn dot_query(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    sni: &str,
    n: &str,
) -> Message {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let connector = TlsConnector::from(Arc::new(client_tls(root, b"dot")));
    let server = ServerName::try_from(sni.to_owned()).unwrap();
    let mut s = tokio::time::timeout(Duration::from_secs(3), connector.connect(server, tcp))
        .await
        .unwrap()
        .expect("DoT handshake");
    s.write_all(&framed_msg(&query_msg(n, RecordType::A, true)))
        .await
        .unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut body).await.unwrap();
    Message::from_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_server_name_carries_the_client_id() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, cert) = start(up.addr).await;
    let dot = k.running.dot_addrs[0];
    let r = dot_query(dot, &cert, "kid-tablet.dns.test", "games.test.").await;
    assert_eq!(profile(&r).as_deref(), Some("tablet"), "{r:?}");
    let r = dot_query(dot, &cert, "KID-Tablet.dns.test", "games.test.").await;
    assert_eq!(
        profile(&r).as_deref(),
        Some("tablet"),
        "case-insensitive: {r:?}"
    );
    // The domain itself, an unknown ClientID: `default`, nothing counted.
    for sni in ["dns.test", "someone.dns.test"] {
        let r = dot_query(dot, &cert, sni, "games.test.").await;
        assert_eq!(profile(&r), None, "{sni}: {r:?}");
    }
    // A name not under the domain: no ClientID, counted.
    let r = dot_query(dot, &cert, "localhost", "games.test.").await;
    assert_eq!(profile(&r), None);
    let text = metrics(&k).await;
    assert_eq!(
        metric(&text, "kidsafe_identity_sni_other_total"),
        1,
        "{text}"
    );

    // kdig, a DoT client we did not write, sending the server name.
    if which("kdig") {
        let ca = k.dir.path().join("cert.pem");
        let out = tokio::process::Command::new("kdig")
            .arg("@127.0.0.1")
            .args(["-p", &dot.port().to_string()])
            .arg("+tls")
            .arg(format!("+tls-ca={}", ca.display()))
            .arg("+tls-hostname=kid-tablet.dns.test")
            .arg("+tls-sni=kid-tablet.dns.test")
            .args(["+timeout=3", "+retry=0", "games.test"])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("status: NXDOMAIN"), "kdig:\n{text}");
        assert!(text.contains("profile tablet"), "kdig:\n{text}");
    } else {
        println!("NOTE: kdig not on PATH, skipping kdig +tls-sni (CI installs knot-dnsutils)");
    }
    k.running.stop().await;
    up.stop().await;
}

fn which(tool: &str) -> bool {
    std::process::Command::new("which")
        .arg(tool)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A DoH client (HTTP/2) trusting `root`, resolving `host` to `doh`, from `local`.
fn doh_client(
    root: &CertificateDer<'static>,
    host: &str,
    doh: SocketAddr,
    local: &str,
) -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls(root, b"h2"))
        .resolve(host, doh)
        .local_address(local.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn doh_get(client: &reqwest::Client, url: &str, q: &Message) -> reqwest::Response {
    let q = q.to_vec().unwrap();
    client
        .get(format!("{url}?dns={}", BASE64URL_NOPAD.encode(&q)))
        .header("accept", DNS_MESSAGE)
        .send()
        .await
        .expect("DoH GET")
}

async fn doh_ok(r: reqwest::Response) -> Message {
    assert_eq!(r.status(), 200, "{r:?}");
    Message::from_vec(&r.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doh_path_and_server_name_carry_the_client_id() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, cert) = start(up.addr).await;
    let doh = k.running.doh_addrs[0];
    let port = doh.port();
    let games = query_msg("games.test.", RecordType::A, true);
    let plain = doh_client(&cert, "localhost", doh, "127.0.0.1");
    let base = format!("https://localhost:{port}/dns-query");

    let r = doh_ok(doh_get(&plain, &format!("{base}/kid-tablet"), &games).await).await;
    assert_eq!(profile(&r).as_deref(), Some("tablet"), "{r:?}");
    // POST too.
    let r = plain
        .post(format!("{base}/kid-tablet"))
        .header("content-type", DNS_MESSAGE)
        .body(games.to_vec().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(profile(&doh_ok(r).await).as_deref(), Some("tablet"));
    // `/dns-query` keeps working, as `default`.
    let r = doh_ok(doh_get(&plain, &base, &games).await).await;
    assert_eq!(profile(&r), None, "{r:?}");
    // An invalid ClientID in the path: 400 saying why.
    for (path, why) in [
        ("/-kid", "start or end with '-'"),
        ("/kid_tablet", "'_'"),
        ("/a/b", "'/'"),
        (&format!("/{}", "a".repeat(64)), "at most 63"),
    ] {
        let r = doh_get(&plain, &format!("{base}{path}"), &games).await;
        assert_eq!(r.status(), 400, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("invalid ClientID") && body.contains(why),
            "{path}: {body}"
        );
    }
    let r = doh_get(
        &plain,
        &format!("https://localhost:{port}/dns-queryx"),
        &games,
    )
    .await;
    assert_eq!(r.status(), 404);

    // The ClientID in the TLS server name; the path's wins over it; and over a device MAC
    // from a trusted forwarder (127.0.0.2).
    let named = doh_client(&cert, "kid-tablet.dns.test", doh, "127.0.0.2");
    let url = format!("https://kid-tablet.dns.test:{port}/dns-query");
    let r = doh_ok(doh_get(&named, &url, &games).await).await;
    assert_eq!(profile(&r).as_deref(), Some("tablet"), "{r:?}");
    let mut with_mac = games.clone();
    if let Some(e) = with_mac.edns.as_mut() {
        e.options_mut()
            .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                65001,
                vec![0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff],
            ));
    }
    let r = doh_ok(doh_get(&named, &url, &with_mac).await).await;
    assert_eq!(profile(&r).as_deref(), Some("tablet"), "ClientID over MAC");
    let other = doh_client(&cert, "dns.test", doh, "127.0.0.2");
    let url = format!("https://dns.test:{port}/dns-query");
    let r = doh_ok(doh_get(&other, &url, &with_mac).await).await;
    assert_eq!(
        profile(&r).as_deref(),
        Some("phone"),
        "the MAC without a ClientID"
    );
    k.running.stop().await;
    up.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_profile_that_decides() {
    let up = Upstream::start(Zone::standard()).await;
    let (k, _) = start(up.addr).await;
    let admin = k.running.admin_addrs[0];
    kidsafe_dns::feed::http::install_crypto_provider();
    let get = |query: &str| {
        let url = format!("http://{admin}/v1/check?name=games.test{query}");
        async move { reqwest::get(url).await.unwrap() }
    };
    for (query, group, by) in [
        ("&client_id=kid-tablet", "tablet", "client_id"),
        ("&mac=AA:BB:CC:DD:EE:FF", "phone", "mac"),
        ("&client=127.0.0.3&mac=aa:bb:cc:dd:ee:ff", "phone", "mac"),
        ("&client=127.0.0.3", "lan", "address"),
        ("&client=192.0.2.1", "default", "default"),
    ] {
        let r = get(query).await;
        assert_eq!(r.status(), 200, "{query}");
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["profile"]["group"], group, "{query}: {v}");
        assert_eq!(v["profile"]["chosen_by"], by, "{query}: {v}");
    }
    let v: serde_json::Value = serde_json::from_str(&get("").await.text().await.unwrap()).unwrap();
    assert!(v.get("profile").is_none(), "{v}");
    let r = get("&client_id=-x").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("client_id"));

    // The CLI: `check --config --client-id`.
    let bin = env!("CARGO_BIN_EXE_kidsafe-dns");
    let config = k.dir.path().join("kidsafe.toml");
    let out = std::process::Command::new(bin)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .args(["--client-id", "kid-tablet", "games.test"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("profile tablet (by client_id)"), "{text}");
    let out = std::process::Command::new(bin)
        .arg("check")
        .arg("--config")
        .arg(&config)
        .args(["--client", "127.0.0.3", "games.test"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("profile lan (by address)"), "{text}");
    k.running.stop().await;
    up.stop().await;
}

#[test]
fn bad_identity_config_names_file_line_and_key() {
    let base = |groups: &str, server: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:53\"]\n{server}\n[upstream]\nservers = [\"9.9.9.9:53\"]\n[lists]\ncompiled = \"x.fst\"\n{groups}"
        )
    };
    let err = |text: String| {
        kidsafe_dns::config::parse(&text, Path::new("k.toml"))
            .unwrap_err()
            .to_string()
    };
    let e = err(base(
        "[[groups]]\nname = \"a\"\nmacs = [\"aa:bb:cc:dd:ee\"]\n",
        "",
    ));
    assert!(
        e.starts_with("k.toml:10:") && e.contains("groups.a.macs") && e.contains("aa:bb:cc:dd:ee"),
        "{e}"
    );
    let e = err(base(
        "[[groups]]\nname = \"a\"\nclient_ids = [\"kid_tablet\"]\n",
        "",
    ));
    assert!(
        e.contains("k.toml:10:") && e.contains("groups.a.client_ids"),
        "{e}"
    );
    assert!(e.contains("'_'"), "{e}");
    let e = err(base(
        "[[groups]]\nname = \"a\"\nclient_ids = [\"-kid\"]\n",
        "",
    ));
    assert!(e.contains("start or end"), "{e}");
    let e = err(base(
        "[[groups]]\nname = \"a\"\nclient_ids = [\"kid\"]\n[[groups]]\nname = \"b\"\nclient_ids = [\"KID\"]\n",
        "",
    ));
    assert!(
        e.contains("k.toml:13:") && e.contains("group `a`") && e.contains("group `b`"),
        "{e}"
    );
    let e = err(base(
        "[[groups]]\nname = \"a\"\nmacs = [\"aa:bb:cc:dd:ee:ff\"]\n[[groups]]\nname = \"b\"\nmacs = [\"AA-BB-CC-DD-EE-FF\"]\n",
        "",
    ));
    assert!(e.contains("group `a`") && e.contains("group `b`"), "{e}");
    let e = err(base(
        "[[groups]]\nname = \"default\"\nmacs = [\"aa:bb:cc:dd:ee:ff\"]\n",
        "",
    ));
    assert!(e.contains("groups.default.macs"), "{e}");
    let e = err(base("", "trusted_forwarders = [\"nonsense\"]"));
    assert!(
        e.contains("k.toml:3:") && e.contains("server.trusted_forwarders"),
        "{e}"
    );
    let e = err(base("", "ecs_from_trusted = true"));
    assert!(e.contains("server.ecs_from_trusted"), "{e}");
    let e = err(base("", "client_id_domain = \"bad domain\""));
    assert!(e.contains("server.client_id_domain"), "{e}");
    // A group by ClientID or MAC alone needs no CIDR.
    let ok = base(
        "[[groups]]\nname = \"a\"\nclient_ids = [\"kid\"]\n[[groups]]\nname = \"b\"\nmacs = [\"aa:bb:cc:dd:ee:ff\"]\n",
        "trusted_forwarders = [\"192.168.1.1\"]\nclient_id_domain = \"dns.example.vn.\"",
    );
    let c = kidsafe_dns::config::parse(&ok, Path::new("k.toml")).unwrap();
    assert_eq!(
        c.server.identity.client_id_domain.as_deref(),
        Some("dns.example.vn")
    );
}
