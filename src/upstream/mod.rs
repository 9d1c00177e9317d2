//! Upstream: where allowed names are resolved.
//!
//! [`forwarder`] sends the client's question to the configured resolvers and returns their
//! reply message whole (RCODE, answer, authority with its SOA, AD bit, TTLs), because a
//! filtering forwarder must be transparent: hickory's `TokioResolver::lookup` would drop the
//! authority section and hide the RCODE. A server is plain DNS or DNS over TLS
//! ([`endpoint`], [`tls`]). When none answers, [`failures`] keeps the log to one summary
//! line per interval; [`health`] keeps how each server is doing for the status page.

pub mod cache;
pub mod endpoint;
pub mod failures;
pub mod forwarder;
pub mod health;
pub mod resolve;
pub mod tls;

pub use endpoint::Endpoint;
pub use forwarder::{Forwarder, UpstreamError};
