//! The protocol's corners, as a strict client sees them: truncation (RFC 6891 §7, RFC 2181
//! §9), EDNS versions (RFC 6891 §6.1.3), the AD bit (RFC 6840 §5.7), meta classes and
//! types, CHAOS identity queries, TSIG (RFC 8945 §5.2) and the cosmetic bits. Every reply
//! is decoded strictly: no byte may follow the last counted record.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

async fn setup(extra_server: &str) -> (Upstream, Kidsafe) {
    let upstream = Upstream::start(Zone::standard()).await;
    let dir = list_dir();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n{extra_server}\n{}",
        upstream_and_lists(upstream.addr)
    );
    let k = start_from_text(dir, &text, None).await;
    (upstream, k)
}

fn with_edns(mut m: Message, payload: u16, dnssec_ok: bool) -> Message {
    let mut e = Edns::new();
    e.set_max_payload(payload);
    e.set_dnssec_ok(dnssec_ok);
    m.set_edns(e);
    m
}

/// Whether dig is installed; CI installs it and sets `KIDSAFE_REQUIRE_DIG=1`, so there a
/// missing dig fails the test instead of skipping it.
fn have_dig() -> bool {
    let found = Command::new("dig").arg("-v").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("KIDSAFE_REQUIRE_DIG").is_none(),
            "KIDSAFE_REQUIRE_DIG is set but dig is not installed"
        );
        eprintln!("SKIPPED: dig not installed (apt-get install bind9-dnsutils)");
    }
    found
}

async fn ask(addr: SocketAddr, m: &Message) -> Message {
    strict_udp(addr, &m.to_vec().unwrap())
        .await
        .expect("a reply")
        .0
}

#[tokio::test]
async fn truncated_udp_replies_keep_opt_and_whole_rrsets_only() {
    let (_up, k) = setup("").await;
    // One RRset of 40 TXT records (~2.6 KB) at bufsize 512: none of it fits.
    let q = with_edns(query_msg("big.test", RecordType::TXT, false), 512, true);
    let (reply, len) = strict_udp(k.addr, &q.to_vec().unwrap()).await.unwrap();
    assert!(len <= 512, "{len} bytes for a 512-byte buffer");
    assert!(reply.metadata.truncation, "TC=1");
    assert!(reply.edns.is_some(), "the OPT record is kept (RFC 6891 §7)");
    assert!(reply.answers.is_empty(), "no partial RRset: {reply:?}");
    // Two RRsets (CNAME, then the big TXT set): the CNAME fits and stays; the TXT set
    // goes whole.
    let q = with_edns(
        query_msg("alias-big.test", RecordType::TXT, false),
        512,
        false,
    );
    let reply = ask(k.addr, &q).await;
    assert!(reply.metadata.truncation);
    assert!(reply.edns.is_some());
    let types: Vec<RecordType> = reply.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, vec![RecordType::CNAME], "whole RRsets only");
    // At 1232 (our maximum) the same: a prefix of whole RRsets, TC, OPT.
    let q = with_edns(
        query_msg("alias-big.test", RecordType::TXT, false),
        4096,
        false,
    );
    let (reply, len) = strict_udp(k.addr, &q.to_vec().unwrap()).await.unwrap();
    assert!(len <= 1232, "{len}");
    assert!(reply.metadata.truncation && reply.edns.is_some());
    assert!(reply.answers.len() == 1 || reply.answers.len() == 41);
    // Without EDNS: 512 bytes, no OPT invented.
    let q = query_msg("big.test", RecordType::TXT, false);
    let (reply, len) = strict_udp(k.addr, &q.to_vec().unwrap()).await.unwrap();
    assert!(len <= 512);
    assert!(reply.metadata.truncation && reply.edns.is_none() && reply.answers.is_empty());
    // Over TCP the whole answer comes back.
    let mut tcp = tcp_client(k.addr).await;
    let whole = query(&mut tcp, "alias-big.test", RecordType::TXT).await;
    assert_eq!(whole.answers.len(), 41);
    assert!(!whole.metadata.truncation);
}

#[tokio::test]
async fn dig_sees_no_extra_bytes_in_a_truncated_reply() {
    if !have_dig() {
        return;
    }
    let (_up, k) = setup("").await;
    let port = k.addr.port().to_string();
    // A DNSSEC query at bufsize 512 (dig also sends a cookie and AD), and a plain one
    // whose CNAME fits but whose TXT RRset does not.
    for (flag, name, answers) in [
        ("+dnssec", "big.test", 0),
        ("+nodnssec", "alias-big.test", 1),
    ] {
        // tokio's Command: the test upstream runs on this runtime and must keep answering.
        let out = tokio::process::Command::new("dig")
            .args([flag, "+bufsize=512", "+ignore", "+tries=1", "+time=3"])
            .args(["-p", &port, "@127.0.0.1", name, "TXT"])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("extra bytes"), "{text}");
        assert!(!text.contains("malformed"), "{text}");
        assert!(text.contains("flags: qr tc"), "{text}");
        assert!(text.contains(&format!("ANSWER: {answers},")), "{text}");
        assert!(text.contains("OPT PSEUDOSECTION"), "{text}");
    }
}

#[tokio::test]
async fn edns_version_above_zero_gets_badvers_everywhere() {
    let (_up, k) = setup("").await;
    // Forwarded, blocked, and (after a plain query fills the cache) cached names alike.
    ask(k.addr, &query_msg("allowed.test", RecordType::A, true)).await;
    for n in ["allowed.test", "innocent.test", "bad.test", "www.bad.test"] {
        let mut q = query_msg(n, RecordType::A, true);
        if let Some(e) = q.edns.as_mut() {
            e.set_version(1);
        }
        let reply = ask(k.addr, &q).await;
        // 16 is BADVERS in an OPT (hickory names the shared value BADSIG).
        assert_eq!(u16::from(reply.metadata.response_code), 16, "{n}");
        let edns = reply.edns.as_ref().expect("BADVERS travels in an OPT");
        assert_eq!(edns.version(), 0, "we speak version 0");
        assert!(
            reply.answers.is_empty() && reply.authorities.is_empty(),
            "{n}"
        );
    }
}

#[tokio::test]
async fn ad_bit_is_returned_to_clients_that_set_ad_or_do() {
    let (_up, k) = setup("").await;
    for round in 0..2 {
        // Round 1 answers from the cache (and the UDP hit path).
        let mut q = query_msg("secure.test", RecordType::A, false);
        q.metadata.authentic_data = true;
        let reply = ask(k.addr, &q).await;
        assert!(
            reply.metadata.authentic_data,
            "AD without DO (round {round})"
        );
        let reply = ask(k.addr, &query_msg("secure.test", RecordType::A, false)).await;
        assert!(
            !reply.metadata.authentic_data,
            "no AD asked (round {round})"
        );
        let reply = ask(
            k.addr,
            &with_edns(query_msg("secure.test", RecordType::A, false), 1232, true),
        )
        .await;
        assert!(reply.metadata.authentic_data, "DO (round {round})");
    }
    // A name the upstream does not vouch for has no AD whatever the client asks.
    let mut q = query_msg("allowed.test", RecordType::A, false);
    q.metadata.authentic_data = true;
    assert!(!ask(k.addr, &q).await.metadata.authentic_data);
}

#[tokio::test]
async fn meta_classes_and_types_are_answered_locally() {
    // A silent upstream: anything forwarded would come back SERVFAIL after the timeout.
    let (silent, _h) = silent_upstream().await;
    let dir = list_dir();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n{}",
        upstream_and_lists(silent)
    );
    let k = start_from_text(dir, &text, None).await;
    let cases = [
        (
            "allowed.test",
            RecordType::A,
            DNSClass::NONE,
            ResponseCode::FormErr,
        ),
        (
            "allowed.test",
            RecordType::A,
            DNSClass::ANY,
            ResponseCode::NotImp,
        ),
        (
            "allowed.test",
            RecordType::A,
            DNSClass::HS,
            ResponseCode::Refused,
        ),
        (
            "allowed.test",
            RecordType::OPT,
            DNSClass::IN,
            ResponseCode::FormErr,
        ),
        (
            "allowed.test",
            RecordType::TSIG,
            DNSClass::IN,
            ResponseCode::FormErr,
        ),
        (
            "allowed.test",
            RecordType::Unknown(249),
            DNSClass::IN,
            ResponseCode::FormErr,
        ),
        (
            "allowed.test",
            RecordType::Unknown(200),
            DNSClass::IN,
            ResponseCode::FormErr,
        ),
        (
            "bad.test",
            RecordType::TSIG,
            DNSClass::IN,
            ResponseCode::FormErr,
        ),
        (
            "test",
            RecordType::AXFR,
            DNSClass::IN,
            ResponseCode::Refused,
        ),
        (
            "test",
            RecordType::IXFR,
            DNSClass::IN,
            ResponseCode::Refused,
        ),
    ];
    for (n, t, class, want) in cases {
        for edns in [false, true] {
            let mut q = Message::new(4242, MessageType::Query, OpCode::Query);
            q.metadata.recursion_desired = true;
            let mut question = Query::query(name(n), t);
            question.set_query_class(class);
            q.add_query(question);
            if edns {
                q = with_edns(q, 1232, false);
            }
            let started = std::time::Instant::now();
            let reply = ask(k.addr, &q).await;
            assert_eq!(
                reply.metadata.response_code, want,
                "{n} {t} {class} edns={edns}"
            );
            assert!(reply.answers.is_empty() && reply.authorities.is_empty());
            assert!(reply.metadata.recursion_available, "RA on {want}");
            // Not forwarded: the upstream timeout is 1 s.
            assert!(started.elapsed() < std::time::Duration::from_millis(900));
        }
    }
}

#[tokio::test]
async fn chaos_identity_queries_are_ours_and_reveal_nothing_by_default() {
    let (up, k) = setup("").await;
    for n in [
        "version.bind",
        "hostname.bind",
        "id.server",
        "version.server",
        "bad.test",
    ] {
        let mut q = query_msg(n, RecordType::TXT, true);
        q.queries[0].set_query_class(DNSClass::CH);
        let reply = ask(k.addr, &q).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::Refused, "{n}");
        assert!(
            reply.answers.is_empty() && reply.authorities.is_empty(),
            "{n}: no IN SOA"
        );
        assert_eq!(up.queries_for(&format!("{n}.")), 0, "{n} never forwarded");
    }
    let (_up, k) = setup("chaos_version = \"kidsafe-dns\"\nchaos_identity = \"edge-7\"").await;
    for (n, want) in [("version.bind", "kidsafe-dns"), ("id.server", "edge-7")] {
        let mut q = query_msg(n, RecordType::TXT, false);
        q.queries[0].set_query_class(DNSClass::CH);
        let reply = ask(k.addr, &q).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        let [record] = reply.answers.as_slice() else {
            panic!("one TXT: {reply:?}")
        };
        assert_eq!(record.dns_class, DNSClass::CH);
        match &record.data {
            RData::TXT(txt) => assert_eq!(txt.to_string(), want),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_tsig_signed_query_gets_notauth_badkey() {
    let (up, k) = setup("").await;
    let mut q = query_msg("allowed.test", RecordType::A, true);
    let tsig = TSIG::new(
        TsigAlgorithm::HmacSha256,
        1_700_000_000,
        300,
        vec![7; 32],
        q.metadata.id,
        None,
        Vec::new(),
    );
    let mut record = Record::from_rdata(name("some-key."), 0, tsig);
    record.dns_class = DNSClass::ANY;
    q.signature = Some(Box::new(record));
    let reply = ask(k.addr, &q).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    assert!(reply.answers.is_empty());
    let sig = reply
        .signature
        .as_ref()
        .expect("an unsigned TSIG with the error");
    assert_eq!(sig.name, name("some-key."));
    assert_eq!(sig.data.error, Some(TsigError::BadKey));
    assert!(sig.data.mac.is_empty());
    assert_eq!(sig.data.time, 1_700_000_000);
    assert_eq!(up.queries_for("allowed.test."), 0);
}

#[tokio::test]
async fn dig_with_a_tsig_key_is_told_badkey() {
    if !have_dig() {
        return;
    }
    let (_up, k) = setup("").await;
    let out = Command::new("dig")
        .args([
            "-y",
            "hmac-sha256:some-key:c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
        ])
        .args(["+tries=1", "+time=3", "-p", &k.addr.port().to_string()])
        .args(["@127.0.0.1", "allowed.test", "A"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status: NOTAUTH"), "{text}");
    assert!(text.contains("BADKEY"), "{text}");
}

#[tokio::test]
async fn notimp_has_ra_and_a_cloaked_blocks_soa_is_owned_by_the_question() {
    let (_up, k) = setup("").await;
    let mut q = query_msg("allowed.test", RecordType::A, false);
    q.metadata.op_code = OpCode::Status;
    let reply = ask(k.addr, &q).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    assert!(reply.metadata.recursion_available);
    // cloak.test is a CNAME to tracker.bad.test (listed as bad.test): the SOA must not be
    // owned by bad.test, which is no ancestor of cloak.test.
    let reply = ask(k.addr, &query_msg("cloak.test", RecordType::A, true)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let [soa] = reply.authorities.as_slice() else {
        panic!("{reply:?}")
    };
    assert!(
        soa.name.zone_of(&name("cloak.test.")),
        "SOA owner {}",
        soa.name
    );
    // A direct block keeps the listed name as owner.
    let reply = ask(k.addr, &query_msg("www.bad.test", RecordType::A, true)).await;
    assert_eq!(reply.authorities[0].name, name("bad.test."));
}
