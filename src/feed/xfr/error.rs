//! Why a SOA query or a transfer failed, with what to check.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::tsig::TSIG_FUDGE;

/// Why a SOA query or a transfer failed. Every variant names the primary and
/// the zone, and its message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum XfrError {
    /// The configured TSIG key cannot be used.
    #[error("TSIG key {key:?} is unusable: {reason}")]
    InvalidKey {
        /// The key's configured name.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Connecting, sending or receiving failed.
    #[error(
        "cannot talk to primary {primary} for zone {zone}: {source} (check the primary's address and port, and that it accepts UDP and TCP from this host)"
    )]
    Io {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer before the deadline.
    #[error(
        "primary {primary} did not complete the {what} for zone {zone} within {timeout:?} (check reachability; raise the timeout for a large zone)"
    )]
    Timeout {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// "SOA query" or "zone transfer".
        what: &'static str,
        /// The deadline given.
        timeout: Duration,
    },
    /// The primary answered with an error RCODE.
    #[error(
        "primary {primary} answered {rcode} to {query} {zone}{}: {}",
        tsig_error.as_ref().map(|e| format!(" (TSIG error {e})")).unwrap_or_default(),
        rcode_hint(*rcode)
    )]
    Rcode {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The query type (SOA, AXFR, IXFR).
        query: RecordType,
        /// The RCODE received.
        rcode: ResponseCode,
        /// The TSIG error field of the (unsigned) answer, if any.
        tsig_error: Option<String>,
    },
    /// An answer failed TSIG verification, or was unsigned although a key is
    /// configured.
    #[error(
        "TSIG check of the answer from {primary} for zone {zone} failed: {reason} (both sides must use the same key name, algorithm and secret, and clocks must agree within {TSIG_FUDGE} s)"
    )]
    Tsig {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// What failed.
        reason: String,
    },
    /// The primary does not serve the zone authoritatively.
    #[error(
        "{primary} is not authoritative for zone {zone} (check the zone name and that this primary serves it)"
    )]
    NotAuthoritative {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
    },
    /// The primary's serial is older than ours (RFC 1982).
    #[error(
        "primary {primary} has serial {primary_serial} for zone {zone}, older than the {have} we hold: the zone was reset or replaced on the primary; drop the local copy and transfer without a serial (AXFR)"
    )]
    SerialBehind {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The serial we asked from.
        have: u32,
        /// The primary's serial.
        primary_serial: u32,
    },
    /// The transfer exceeds [`MAX_XFR_RECORDS`](super::MAX_XFR_RECORDS).
    #[error(
        "zone {zone} from {primary} has more than {limit} records: refusing it as a broken or hostile transfer"
    )]
    TooLarge {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// The limit.
        limit: usize,
    },
    /// The answer violates the protocol (wrong question, framing, SOA
    /// sequence, out-of-zone data, ...).
    #[error("invalid answer from primary {primary} for zone {zone}: {reason}")]
    Malformed {
        /// The primary's address.
        primary: SocketAddr,
        /// The zone, as an absolute name.
        zone: String,
        /// What was wrong.
        reason: String,
    },
}

fn rcode_hint(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::Refused => {
            "check that the primary allows transfers/queries from this host (ACL) and the TSIG key"
        }
        ResponseCode::NotAuth => {
            "the primary rejected the TSIG key: check key name, algorithm and secret, and the clocks"
        }
        ResponseCode::NotImp | ResponseCode::FormErr => "the primary does not support this request",
        ResponseCode::ServFail => {
            "the primary cannot serve the zone right now (not loaded or expired)"
        }
        ResponseCode::NXDomain => "check the zone name",
        _ => "check the primary's logs",
    }
}
