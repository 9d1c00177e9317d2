//! The DNS wire, once: constants every layer shares, the size-limited encoder whose
//! truncation rules every transport follows ([`encode`]), the zero-copy request view
//! ([`request`]), TCP length framing ([`frame`]) and asking one server one question over
//! UDP or a stream ([`exchange`], on the reused connected sockets of [`sockets`]), and a
//! reply's smallest TTL read from its bytes ([`ttl`], DoH's `max-age`).
//!
//! Server, upstream and feed code take these from here instead of each writing its own.

pub mod encode;
pub mod exchange;
pub mod frame;
pub mod request;
pub mod sockets;
pub mod ttl;

/// The UDP payload size we advertise and accept at most (the DNS Flag Day 2020 value):
/// replies to clients are capped at it, and upstream is offered it.
pub const EDNS_PAYLOAD: u16 = 1232;

/// The largest UDP reply without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;

/// DNS header length (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;

/// The OPT pseudo-record's TYPE (RFC 6891 §6.1.2).
pub const TYPE_OPT: u16 = 41;

/// CLASS IN.
pub const CLASS_IN: u16 = 1;

/// Whether `qtype` is a meta-type that is never a question to look up: OPT (41), and
/// 128..=254 (TKEY, TSIG, IXFR, AXFR, MAILB, MAILA and the unassigned rest; RFC 6895
/// §3.1). ANY (255) is a real question. The fast path leaves these to the general
/// path, whose protocol rules answer them.
pub fn is_meta_qtype(qtype: u16) -> bool {
    qtype == 41 || (128..=254).contains(&qtype)
}
