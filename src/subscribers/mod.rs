//! The ISP subscriber map: millions of subscriber lines (an address or a prefix) → the
//! profile id each line is sold with, answered in one search per query.
//!
//! - [`parse`]: the source format, `<address-or-prefix> <profile-id>` per line (`#`
//!   comments; a comma or whitespace between the fields); bad lines located and counted;
//! - [`flatten`]: longest-prefix match flattened into non-overlapping sorted ranges;
//! - [`format`], [`compile`], [`map`]: the compiled file (header, profile id table,
//!   IPv4 ranges behind a /16 index, IPv6 ranges), written by rename and memory-mapped
//!   by [`SubscriberMap::open`], which checks it before any lookup;
//! - [`live`]: [`SubscriberSource`], the serving map behind an `ArcSwap`, and its counters;
//! - the feed that writes it (a polled file or a signed download, its guards, the swap)
//!   is `crate::feed::subscribers`, with the other feeds;
//! - [`settings`]: `[subscribers]`, as the config validated it.
//!
//! This module is a leaf (it imports nothing of ours): it knows profile ids, not groups. The policy turns an id into
//! a group (`crate::policy::decide::Policy::choose`).
//!
//! ```
//! use kidsafe_dns::subscribers::{compile, parse, SubscriberMap};
//! let rows = parse::parse(b"198.51.100.0/24 p1\n198.51.100.7 p2\n").rows;
//! let map = SubscriberMap::from_vec(compile::compile(&rows).unwrap().bytes).unwrap();
//! assert_eq!(map.lookup("198.51.100.7".parse().unwrap()), Some("p2"));
//! assert_eq!(map.lookup("198.51.100.8".parse().unwrap()), Some("p1"));
//! assert_eq!(map.lookup("198.51.101.1".parse().unwrap()), None);
//! ```

pub mod compile;
pub mod flatten;
pub mod format;
pub mod live;
pub mod map;
pub mod parse;
pub mod settings;

pub use live::{Refused, SubscriberSource};
pub use map::SubscriberMap;
pub use settings::{SubscriberOrigin, SubscribersConfig};

#[cfg(test)]
mod tests;
