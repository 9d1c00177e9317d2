//! Per-client policy building blocks, independent of the DNS server glue.
//!
//! Each module answers one question the request handler asks about a query:
//!
//! - [`access`]: may this client use the resolver at all (closed resolver, RFC 5358)?
//! - [`ratelimit`]: is this client over its query rate?
//! - [`client`]: who is asking (ClientID, MAC address, address)?
//! - [`groups`]: which policy group (by source CIDR) does this client belong to?
//! - [`schedule`]: is a time-based policy (e.g. school hours) in force right now?
//! - [`windows`]: a profile's several windows (block or allow, with holidays off);
//! - [`safesearch`]: should this name be answered with a SafeSearch CNAME instead?
//! - [`subscribers`]: which profile does the ISP's subscriber line (API edits, then the
//!   feed's map) give this address?
//!
//! [`decide`] puts them together in order of precedence; [`settings`] holds the validated
//! configuration they are built from ([`PolicyConfig`], one [`GroupConfig`] per group).

pub mod access;
pub mod client;
pub mod decide;
pub mod groups;
pub mod ratelimit;
pub mod safesearch;
pub mod schedule;
pub mod settings;
pub mod subscribers;
pub mod windows;

pub use client::Client;
pub use settings::{CONFIG_ID_PREFIX, GroupConfig, PolicyConfig, RateLimitConfig, RefuseAction};
