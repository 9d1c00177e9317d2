//! Arbitrary bytes as a DNS request, through the path UDP takes (`src/server/fastpath.rs`
//! for plain queries, then `src/server/wire.rs`, which TCP, DoT and DoH share →
//! `Handler::decide` and `Handler::answer` → the policy, the matcher, the sinkhole, the
//! cache), and the reply
//! encoded as UDP and as TCP would send it.
//!
//! The first byte picks the client address (so the groups, the allow list and the rate
//! limiter all see traffic), the rest is the packet. Queries that would wait on upstream
//! are dropped: the fuzzer stays off the network.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use hickory_proto::op::{Message, MessageType};
use kidsafe_dns::metrics::Protocol;
use kidsafe_dns::dns::request::Request;
use kidsafe_dns::server::handler::Reply;
use kidsafe_dns::server::{Handler, fastpath, wire};
use libfuzzer_sys::fuzz_target;

/// A handler over the shipped sample lists, with groups, SafeSearch, an allow list of
/// clients and a rate limit, built once.
fn handler() -> &'static Handler {
    static HANDLER: OnceLock<Handler> = OnceLock::new();
    HANDLER.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = std::env::temp_dir().join(format!("kidsafe-fuzz-request-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let b = root.join("blocklists");
        let text = format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
allow_clients = ["10.0.0.0/8", "192.168.0.0/16"]
rate_limit_qps = 1000
[upstream]
servers = ["127.0.0.1:9"]
timeout_ms = 10
[lists]
compiled = "{dir}/list.fst"
[[lists.source]]
category = "adult"
path = "{b}/adult.txt"
[[lists.source]]
category = "gambling"
path = "{b}/gambling.adblock.txt"
[[lists.source]]
category = "drugs"
path = "{b}/drugs.rpz"
[[lists.allow]]
path = "{b}/allow.txt"
[[groups]]
name = "kids"
clients = ["10.0.0.0/24"]
safesearch = true
deny = ["games.example"]
mode = "null"
[[groups]]
name = "default"
categories = ["adult"]
[safesearch]
dir = "{b}/safesearch"
"#,
            dir = dir.display(),
            b = b.display()
        );
        let path = dir.join("fuzz.toml");
        std::fs::write(&path, text).expect("config");
        let config = kidsafe_dns::config::load(&path).expect("fuzz config loads");
        kidsafe_dns::app::offline_handler(&config).expect("handler")
    })
}

fn client(selector: u8) -> IpAddr {
    match selector % 4 {
        0 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, selector)), // kids
        1 => IpAddr::V4(Ipv4Addr::new(192, 168, 1, selector)), // default
        2 => IpAddr::V4(Ipv4Addr::new(203, 0, 113, selector)), // not allowed
        _ => "::ffff:10.0.0.7".parse().expect("v6"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let handler = handler();
    let client = kidsafe_dns::policy::Client::from_addr(client(selector));
    // As the UDP loop does: the fast path for plain queries first (a blocked name is
    // written straight into `out`), the general path for the rest.
    let mut decided = None;
    if let Some(request) = Request::parse(packet) {
        let mut out = Vec::new();
        match fastpath::answer(handler, &request, &client, &mut out) {
            None => {
                let decoded = kidsafe_dns_fuzz::strict_reply(&out);
                let asked = Message::from_vec(packet).expect("the fast path only takes valid queries");
                assert_eq!(decoded.edns.is_some(), asked.edns.is_some(), "OPT iff the query had one");
                assert_eq!(
                    decoded.metadata.id,
                    u16::from_be_bytes([packet[0], packet[1]])
                );
                assert_eq!(decoded.metadata.message_type, MessageType::Response);
                assert_eq!(decoded.queries.len(), 1);
                return;
            }
            Some(decision) => decided = Some(decision),
        }
    }
    let reply = match wire::answer(handler, packet, &client, Protocol::Udp, decided) {
        Reply::Now(reply) => reply,
        Reply::Silent | Reply::Upstream(_) => return,
    };
    // A reply answers the request's ID and is a response.
    assert!(packet.len() >= 12, "a reply to fewer than 12 bytes");
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    assert_eq!(reply.metadata.id, id);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    for max in [wire::udp_limit(&reply), u16::MAX] {
        let mut out = Vec::new();
        kidsafe_dns::dns::encode::encode(&mut out, &reply, max);
        assert!(
            out.len() >= 12 && out.len() <= usize::from(max),
            "{} bytes for max {max}",
            out.len()
        );
        // What we send decodes again, strictly (no byte after the counted records), with
        // the same ID, and keeps the OPT record when the query had one (RFC 6891 §7, even
        // when truncated).
        let decoded = kidsafe_dns_fuzz::strict_reply(&out);
        assert_eq!(decoded.metadata.id, id);
        if let Ok(asked) = Message::from_vec(packet)
            && asked.edns.is_some()
        {
            assert!(decoded.edns.is_some(), "the query's OPT was answered without one");
        }
    }
});
