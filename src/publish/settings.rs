//! The `[publish]` table: how a central publishes its lists.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::feed::xfr::TsigKey;

/// `[publish]`: present on a central.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishConfig {
    /// The minisign secret key every published HTTP list is signed with. Missing or
    /// unreadable: nothing is published (never unsigned).
    pub minisign_key_file: PathBuf,
    /// The RPZ primary's addresses (UDP and TCP); empty: no RPZ.
    pub xfr_listen: Vec<SocketAddr>,
    /// Secondaries told (DNS NOTIFY) when a list changes.
    pub notify: Vec<SocketAddr>,
    /// TSIG key a secondary must sign its transfer requests with (`None`: any address in
    /// `xfr_allow` may transfer unsigned).
    pub tsig_key: Option<TsigKey>,
    /// Who may transfer (prefixes); empty: anyone with the TSIG key (or anyone at all when
    /// no key is set: only for loopback tests).
    pub xfr_allow: Vec<ipnet::IpNet>,
    /// Zone names are `<list>.<zone_suffix>`, e.g. `gambling.rpz.kidsafe.` (default
    /// `rpz.kidsafe.`).
    pub zone_suffix: String,
    /// Journal changes kept per list for IXFR (older requests get a full transfer).
    pub journal_keep: usize,
}
