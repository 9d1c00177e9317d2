//! The TOML file, mirrored one to one by serde structs. Unknown keys are errors, so a typo
//! (`tll = 300`) is caught instead of silently ignored.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::lists::parse::Format;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`
    pub server: RawServer,
    /// `[upstream]`
    pub upstream: RawUpstream,
    /// `[blocking]`
    #[serde(default)]
    pub blocking: RawBlocking,
    /// `[lists]`
    pub lists: RawLists,
}

/// `[server]`: where to listen.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Addresses to answer on, UDP and TCP each.
    pub listen: toml::Spanned<Vec<SocketAddr>>,
    /// Idle TCP connections are closed after this long.
    #[serde(default = "default_tcp_idle_ms")]
    pub tcp_idle_ms: u64,
    /// On SIGTERM, how long in-flight queries get to finish.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// Worker threads answering queries; 0 = one per CPU core.
    #[serde(default)]
    pub threads: usize,
}

/// `[upstream]`: where allowed names are resolved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Upstream resolvers, tried in order.
    pub servers: toml::Spanned<Vec<SocketAddr>>,
    /// Total time a query may wait for upstream before SERVFAIL.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: toml::Spanned<u64>,
}

/// How blocked names are answered.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlockingMode {
    /// NXDOMAIN with an SOA.
    #[default]
    Nxdomain,
    /// A 0.0.0.0 / AAAA ::.
    Null,
    /// A/AAAA of a block page.
    Ip,
}

/// `[blocking]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlocking {
    /// nxdomain | null | ip
    #[serde(default = "default_mode")]
    pub mode: toml::Spanned<BlockingMode>,
    /// TTL of sinkhole answers and their negative-caching SOA.
    #[serde(default = "default_block_ttl")]
    pub ttl: u32,
    /// Block page IPv4 address (mode = "ip").
    pub ipv4: Option<Ipv4Addr>,
    /// Block page IPv6 address (mode = "ip").
    pub ipv6: Option<Ipv6Addr>,
}

impl Default for RawBlocking {
    fn default() -> Self {
        RawBlocking {
            mode: default_mode(),
            ttl: default_block_ttl(),
            ipv4: None,
            ipv6: None,
        }
    }
}

/// `[lists]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLists {
    /// Where the compiled FST lives (its manifest goes beside it).
    pub compiled: PathBuf,
    /// Block lists, one category each.
    #[serde(default)]
    pub source: Vec<RawSource>,
    /// Allowlists.
    #[serde(default)]
    pub allow: Vec<RawAllow>,
    /// Watch the compiled file and swap in changes (default on).
    #[serde(default = "default_true")]
    pub watch: bool,
}

/// `[[lists.source]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Category name (adult, gambling, ...).
    pub category: String,
    /// List file, plain or gzip.
    pub path: PathBuf,
    /// auto | domains | hosts | adblock | rpz
    #[serde(default, deserialize_with = "format_from_str")]
    pub format: Format,
}

/// `[[lists.allow]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    /// List file, plain or gzip.
    pub path: PathBuf,
    /// auto | domains | hosts | adblock | rpz
    #[serde(default, deserialize_with = "format_from_str")]
    pub format: Format,
}

fn format_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Format, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn default_mode() -> toml::Spanned<BlockingMode> {
    toml::Spanned::new(0..0, BlockingMode::Nxdomain)
}
fn default_tcp_idle_ms() -> u64 {
    10_000
}
fn default_shutdown_grace_ms() -> u64 {
    5_000
}
fn default_timeout_ms() -> toml::Spanned<u64> {
    toml::Spanned::new(0..0, 2_000)
}
fn default_block_ttl() -> u32 {
    300
}
fn default_true() -> bool {
    true
}
