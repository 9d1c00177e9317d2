//! The TOML file, mirrored one to one by serde structs. Unknown keys are errors, so a typo
//! (`tll = 300`) is caught instead of silently ignored.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::answer::BlockingMode;
use crate::lists::parse::Format;
use crate::policy::RefuseAction;
use crate::querylog::ClientPrivacy;

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
    /// `[[groups]]`: per-client policies.
    #[serde(default)]
    pub groups: Vec<toml::Spanned<RawGroup>>,
    /// `[safesearch]`
    #[serde(default)]
    pub safesearch: Option<RawSafeSearch>,
    /// `[services]`
    #[serde(default)]
    pub services: Option<RawServices>,
    /// `[blockpage]`
    #[serde(default)]
    pub blockpage: Option<RawBlockpage>,
    /// `[cache]`
    #[serde(default)]
    pub cache: RawCache,
    /// `[admin]`: metrics and the admin API; absent = off.
    #[serde(default)]
    pub admin: Option<toml::Spanned<RawAdmin>>,
    /// `[querylog]`: the optional privacy-preserving log of blocked queries.
    #[serde(default)]
    pub querylog: Option<RawQueryLog>,
    /// `[subscribers]`: the ISP's subscriber line → profile map; absent = off.
    #[serde(default)]
    pub subscribers: Option<toml::Spanned<RawSubscribers>>,
    /// `[store]`: where profiles live; absent = the SQLite file in `lists.state_dir`.
    #[serde(default)]
    pub store: Option<RawStore>,
    /// `[reports]`: contacts, forwarding to a central, edges' tokens; absent = local
    /// reports only, no contacts.
    #[serde(default)]
    pub reports: Option<toml::Spanned<RawReports>>,
    /// `[console]`: the web console; absent = off.
    #[serde(default)]
    pub console: Option<toml::Spanned<RawConsole>>,
    /// `[publish]`: this resolver is a central and publishes its reviewers' decisions.
    #[serde(default)]
    pub publish: Option<toml::Spanned<RawPublish>>,
}

/// `[reports]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReports {
    /// Keep a contact the reporter typed (default false).
    #[serde(default)]
    pub allow_contact: bool,
    /// The central's intake URL: forward every report there.
    #[serde(default)]
    pub forward_to: Option<toml::Spanned<String>>,
    /// The bearer token the central knows this edge by (first line of the file).
    #[serde(default)]
    pub token_file: Option<toml::Spanned<PathBuf>>,
    /// An extra CA (PEM) for the central's TLS certificate.
    #[serde(default)]
    pub ca_file: Option<toml::Spanned<PathBuf>>,
    /// This edge's name at the central (default: the host name).
    #[serde(default)]
    pub node_id: Option<toml::Spanned<String>>,
    /// Longest wait between delivery retries (default "30s").
    #[serde(default)]
    pub retry_max: Option<toml::Spanned<String>>,
    /// Reports per delivery (default 500, at most 1000).
    #[serde(default)]
    pub batch_max: Option<toml::Spanned<usize>>,
    /// The edges allowed to deliver reports here: `[{ node = "edge-1", token_file = "..." }]`.
    #[serde(default)]
    pub edges: Vec<toml::Spanned<RawEdge>>,
}

/// One of `reports.edges`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEdge {
    /// Its node id.
    pub node: toml::Spanned<String>,
    /// The file holding its token (first line).
    pub token_file: toml::Spanned<PathBuf>,
}

/// `[console]`: the web console for parents, teachers and reviewers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// HTTP(S) listen addresses.
    #[serde(default = "default_console_listen")]
    pub listen: toml::Spanned<Vec<SocketAddr>>,
    /// Serve HTTPS with the DoT/DoH certificate (`server.tls_cert`, `server.tls_key`).
    #[serde(default)]
    pub tls: Option<toml::Spanned<bool>>,
}

fn default_console_listen() -> toml::Spanned<Vec<SocketAddr>> {
    toml::Spanned::new(0..0, vec![SocketAddr::from(([127, 0, 0, 1], 8080))])
}

/// `[publish]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    /// The minisign secret key (unencrypted, `minisign -G -W`) the HTTP feed is signed with.
    pub minisign_key_file: toml::Spanned<PathBuf>,
    /// The RPZ primary's addresses (UDP and TCP).
    #[serde(default)]
    pub xfr_listen: Vec<SocketAddr>,
    /// Secondaries sent a NOTIFY when a list changes.
    #[serde(default)]
    pub notify: Vec<SocketAddr>,
    /// TSIG key transfers must be signed with.
    #[serde(default)]
    pub tsig_key: Option<toml::Spanned<RawTsig>>,
    /// Who may transfer (addresses or prefixes).
    #[serde(default)]
    pub xfr_allow: Vec<toml::Spanned<String>>,
    /// Zones are `<list>.<zone_suffix>` (default `rpz.kidsafe.`).
    #[serde(default)]
    pub zone_suffix: Option<toml::Spanned<String>>,
    /// Changes kept per list for IXFR (default 1000).
    #[serde(default)]
    pub journal_keep: Option<toml::Spanned<i64>>,
}

/// `[subscribers]`: exactly one of `path`, `url`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubscribers {
    /// The source file (`<address-or-prefix> <profile-id>` per line), polled.
    pub path: Option<toml::Spanned<PathBuf>>,
    /// The source's URL (http or https), fetched every `refresh`.
    pub url: Option<toml::Spanned<String>>,
    /// minisign public key (`RW...`) the `url` source must be signed with.
    pub pubkey: Option<toml::Spanned<String>>,
    /// How often the source is looked at again (default 60s).
    pub refresh: Option<toml::Spanned<String>>,
    /// Bound on one download (default 120s).
    pub timeout: Option<toml::Spanned<String>>,
    /// Largest `url` body accepted, in bytes (default 512 MiB).
    pub max_bytes: Option<u64>,
}

/// `[store]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `postgres://user@host/db`: the fleet's shared profile database.
    #[serde(default)]
    pub url: Option<toml::Spanned<String>>,
}

/// `[admin]`: Prometheus metrics and the admin HTTP API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// HTTP listen addresses.
    #[serde(default = "default_admin_listen")]
    pub listen: toml::Spanned<Vec<SocketAddr>>,
    /// Bearer token required on every request but /healthz and /readyz.
    #[serde(default)]
    pub token: Option<toml::Spanned<String>>,
    /// A file holding the token (first line), instead of `token`.
    #[serde(default)]
    pub token_file: Option<toml::Spanned<PathBuf>>,
    /// Reports accepted per hour from one source address.
    #[serde(default = "default_reports_per_hour")]
    pub reports_per_hour: u32,
    /// Report portals by address: networks whose reports (posted for many people) count
    /// against `portal_reports_per_hour` instead.
    #[serde(default)]
    pub portal_clients: Vec<toml::Spanned<String>>,
    /// A bearer token that marks a report as the portal's from any address, and lets it
    /// post reports (only) when `token` protects the API.
    #[serde(default)]
    pub portal_token: Option<toml::Spanned<String>>,
    /// A file holding the portal token (first line), instead of `portal_token`.
    #[serde(default)]
    pub portal_token_file: Option<toml::Spanned<PathBuf>>,
    /// Reports accepted per hour from one portal.
    #[serde(default = "default_portal_reports_per_hour")]
    pub portal_reports_per_hour: u32,
    /// `/v1/check` answers without the token (listed / not listed / under review).
    #[serde(default)]
    pub public_check: bool,
    /// Public checks per hour from one address.
    #[serde(default = "default_public_check_per_hour")]
    pub public_check_per_hour: u32,
    /// Requests per hour from one address to the public feed (`/v1/published/...`).
    #[serde(default = "default_feed_requests_per_hour")]
    pub feed_requests_per_hour: u32,
}

fn default_public_check_per_hour() -> u32 {
    600
}

fn default_feed_requests_per_hour() -> u32 {
    3600
}

fn default_admin_listen() -> toml::Spanned<Vec<SocketAddr>> {
    toml::Spanned::new(0..0, vec![SocketAddr::from(([127, 0, 0, 1], 9153))])
}

fn default_reports_per_hour() -> u32 {
    10
}

fn default_portal_reports_per_hour() -> u32 {
    1000
}

/// `[querylog]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQueryLog {
    /// Off unless set.
    #[serde(default)]
    pub enabled: bool,
    /// JSON-lines file; default `querylog.jsonl` in `lists.state_dir`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Rotate when the file reaches this size.
    #[serde(default = "default_querylog_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`.1` newest).
    #[serde(default = "default_querylog_keep")]
    pub keep: u32,
    /// How the client address is written: truncate (/24, /56), hash (salted, salt
    /// rotated daily) or omit.
    #[serde(default)]
    pub client: ClientPrivacy,
}

fn default_querylog_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_querylog_keep() -> u32 {
    5
}

/// `[cache]`: the response cache for forwarded answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCache {
    /// Entries kept (0 turns the cache off).
    pub max_entries: u64,
    /// TTLs below this are raised to it.
    pub min_ttl: u32,
    /// TTLs above this are lowered to it.
    pub max_ttl: u32,
    /// Cap on negative (NXDOMAIN/NODATA) caching.
    pub negative_max_ttl: u32,
    /// Answer from an expired entry when upstream fails (RFC 8767).
    pub serve_stale: bool,
    /// How long past expiry an entry may still be served stale.
    pub stale_max_s: u64,
    /// Refresh popular entries shortly before they expire.
    pub prefetch: bool,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            max_entries: 100_000,
            min_ttl: 0,
            max_ttl: 86_400,
            negative_max_ttl: 3_600,
            serve_stale: false,
            stale_max_s: 86_400,
            prefetch: true,
        }
    }
}

/// `[[groups]]`: a set of clients (by CIDR) with its own policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    /// Group name; `default` (without `clients`) covers everyone else.
    pub name: toml::Spanned<String>,
    /// Client networks (IPv4/IPv6 CIDRs or single addresses).
    #[serde(default)]
    pub clients: Vec<toml::Spanned<String>>,
    /// ClientIDs of the group's devices (DoH `/dns-query/{id}`, TLS name
    /// `{id}.{server.client_id_domain}`).
    #[serde(default)]
    pub client_ids: Vec<toml::Spanned<String>>,
    /// MAC addresses of the group's devices (`aa:bb:cc:dd:ee:ff`), as trusted forwarders
    /// send them (dnsmasq `--add-mac`).
    #[serde(default)]
    pub macs: Vec<toml::Spanned<String>>,
    /// Blocklist categories that apply; absent = all.
    pub categories: Option<Vec<toml::Spanned<String>>>,
    /// The group's own allowed domains (inline).
    #[serde(default)]
    pub allow: Vec<String>,
    /// The group's own allowlist files.
    #[serde(default)]
    pub allow_paths: Vec<PathBuf>,
    /// The group's own blocked domains (inline).
    #[serde(default)]
    pub deny: Vec<String>,
    /// The group's own blocklist files.
    #[serde(default)]
    pub deny_paths: Vec<PathBuf>,
    /// Rewrite search engines to their SafeSearch / restricted hosts.
    #[serde(default)]
    pub safesearch: bool,
    /// YouTube restriction when `safesearch = true`: strict | moderate.
    #[serde(default)]
    pub youtube: crate::policy::safesearch::YouTubeMode,
    /// Override `blocking.mode` for this group.
    pub mode: Option<toml::Spanned<BlockingMode>>,
    /// Extra categories during a time window (school hours).
    pub schedule: Option<toml::Spanned<RawSchedule>>,
    /// Blocked services by catalog id (`tiktok`).
    #[serde(default)]
    pub services: Vec<toml::Spanned<String>>,
    /// Blocked service groups (`games`): every catalog service of the group.
    #[serde(default)]
    pub service_groups: Vec<toml::Spanned<String>>,
    /// Block the ways around the filter (browser DoH canary, iCloud Private Relay, public
    /// DoH resolvers, VPNs); absent = on for a group that filters anything.
    #[serde(default)]
    pub bypass_protection: Option<bool>,
    /// Block search engines whose SafeSearch cannot be forced.
    #[serde(default)]
    pub block_unsafe_search: bool,
    /// Several windows (`[[groups.schedules]]`), each blocking or allowing.
    #[serde(default)]
    pub schedules: Vec<toml::Spanned<RawWindow>>,
}

/// `[[groups.schedules]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Days the window opens: mon, tue, ...
    pub days: Vec<String>,
    /// "HH:MM"
    pub start: String,
    /// "HH:MM" (earlier than start = overnight)
    pub end: String,
    /// IANA zone, e.g. "Europe/Paris".
    pub timezone: String,
    /// Local dates the window does not open: `2027-04-30`, `2027-02-14..2027-02-20`.
    #[serde(default)]
    pub except: Vec<String>,
    /// `block` (default) or `allow`.
    #[serde(default = "default_block")]
    pub action: String,
    /// Categories a block window adds.
    #[serde(default)]
    pub categories: Vec<toml::Spanned<String>>,
    /// Services the window blocks or allows.
    #[serde(default)]
    pub services: Vec<toml::Spanned<String>>,
    /// Service groups the window blocks or allows.
    #[serde(default)]
    pub service_groups: Vec<toml::Spanned<String>>,
}

fn default_block() -> String {
    "block".into()
}

/// `[services]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServices {
    /// Folder of catalog files (`*.toml`) merged over the built-in catalog: an entry with a
    /// built-in id replaces it, a new id adds a service.
    #[serde(default)]
    pub dir: Option<PathBuf>,
}

/// `[groups.schedule]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// Days the window opens: mon, tue, ...
    pub days: Vec<String>,
    /// "HH:MM"
    pub start: String,
    /// "HH:MM" (earlier than start = overnight)
    pub end: String,
    /// IANA zone, e.g. "Asia/Ho_Chi_Minh".
    pub timezone: String,
    /// Categories added while the window is open.
    pub categories: Vec<toml::Spanned<String>>,
}

/// `[safesearch]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSafeSearch {
    /// Folder with google.txt, youtube.txt, bing.txt, duckduckgo.txt, replacing the lists
    /// built into the binary; absent = the built-in lists.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// TTL of the synthesized CNAME.
    #[serde(default = "default_safesearch_ttl")]
    pub ttl: u32,
}

/// `[blockpage]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBlockpage {
    /// HTTP listen addresses for the block page.
    pub listen: Vec<std::net::SocketAddr>,
    /// Where to ask for a review (shown on the page).
    #[serde(default)]
    pub review_url: Option<String>,
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
    /// UDP receive threads per listen address, and async workers (TCP, DoT, DoH, admin);
    /// 0 = one per CPU core.
    #[serde(default)]
    pub threads: usize,
    /// Who may query (CIDRs); absent = loopback, RFC 1918, CGNAT, link-local and ULA.
    pub allow_clients: Option<Vec<toml::Spanned<String>>>,
    /// Load balancers (CIDRs) whose datagrams and connections start with a PROXY protocol
    /// v2 header naming the real client (dnsdist `useProxyProtocol`); empty = none.
    #[serde(default)]
    pub proxy_protocol_from: Vec<toml::Spanned<String>>,
    /// Home routers and forwarders (CIDRs) whose queries' device MAC (EDNS options 65001
    /// and 65073, dnsmasq `--add-mac`) and Client Subnet are believed; empty = none.
    #[serde(default)]
    pub trusted_forwarders: Vec<toml::Spanned<String>>,
    /// Choose profiles by the EDNS Client Subnet of trusted forwarders' queries.
    #[serde(default)]
    pub ecs_from_trusted: bool,
    /// The domain under which TLS server names carry a ClientID
    /// (`kid-tablet.dns.example.vn` for `dns.example.vn`); absent = none read.
    pub client_id_domain: Option<toml::Spanned<String>>,
    /// The public name of our DoT/DoH endpoints (the certificate's name), which DDR
    /// (`_dns.resolver.arpa`) answers with; absent = `client_id_domain`, else NODATA.
    pub ddr_name: Option<toml::Spanned<String>>,
    /// TXT answer to `version.bind` (class CH); absent = REFUSED.
    pub chaos_version: Option<String>,
    /// TXT answer to `hostname.bind` / `id.server` (class CH); absent = REFUSED.
    pub chaos_identity: Option<String>,
    /// Queries per second per client address (/64 for IPv6); 0 = no limit.
    #[serde(default)]
    pub rate_limit_qps: u32,
    /// Burst above the rate; default 2 × qps.
    #[serde(default)]
    pub rate_limit_burst: u32,
    /// Client addresses tracked by the limiter (memory bound, 32 bytes each).
    #[serde(default = "default_rate_limit_clients")]
    pub rate_limit_clients: usize,
    /// What an over-limit or refused client gets: refuse (REFUSED + EDE) or drop (silence).
    #[serde(default)]
    pub refuse_action: RefuseAction,
    /// Open TCP + DoT + DoH connections at most; more are closed as they arrive.
    #[serde(default = "default_tcp_max_connections")]
    pub tcp_max_connections: usize,
    /// DNS-over-TLS listen addresses (port 853).
    #[serde(default = "no_addresses")]
    pub dot_listen: toml::Spanned<Vec<SocketAddr>>,
    /// DNS-over-HTTPS listen addresses (port 443, path /dns-query).
    #[serde(default = "no_addresses")]
    pub doh_listen: toml::Spanned<Vec<SocketAddr>>,
    /// PEM certificate chain for DoT and DoH.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for DoT and DoH.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

fn no_addresses() -> toml::Spanned<Vec<SocketAddr>> {
    toml::Spanned::new(0..0, Vec::new())
}

fn default_tcp_max_connections() -> usize {
    1024
}

/// `[upstream]`: where allowed names are resolved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Upstream resolvers, tried in order: `ip:port`, or `tls://ip:port#name` for DNS
    /// over TLS.
    pub servers: toml::Spanned<Vec<toml::Spanned<String>>>,
    /// PEM bundle of the CAs that TLS upstreams' certificates must chain to; absent = the
    /// system's root store.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Total time a query may wait for upstream before SERVFAIL.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: toml::Spanned<u64>,
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
    pub source: Vec<toml::Spanned<RawSource>>,
    /// Allowlists.
    #[serde(default)]
    pub allow: Vec<toml::Spanned<RawAllow>>,
    /// Watch the compiled file and the `path` sources, and swap in changes (default on).
    #[serde(default = "default_true")]
    pub watch: bool,
    /// Where feed downloads, zone snapshots and their status live (default: the compiled
    /// file's directory).
    pub state_dir: Option<PathBuf>,
    /// A download whose rejected entries exceed this share of its entries is refused.
    #[serde(default = "default_half")]
    pub max_reject_ratio: toml::Spanned<f64>,
    /// A new list with fewer entries than this share of the serving one is refused.
    #[serde(default = "default_half")]
    pub min_keep_ratio: toml::Spanned<f64>,
    /// Accept lists that shrink below `min_keep_ratio` (the other guards still apply).
    #[serde(default)]
    pub force: bool,
    /// Categories blocked for every group; nothing lets them through.
    #[serde(default)]
    pub mandatory: Vec<toml::Spanned<String>>,
}

/// `[[lists.source]]`: exactly one of `path`, `url`, `rpz`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Category name (adult, gambling, ...).
    pub category: String,
    /// Name in logs, status and state files (default: derived from category and origin).
    pub name: Option<String>,
    /// List file, plain or gzip.
    pub path: Option<PathBuf>,
    /// List URL (http or https), polled every `refresh`.
    pub url: Option<String>,
    /// RPZ zone transferred from a primary.
    pub rpz: Option<RawRpz>,
    /// Poll interval of a `url` (default 15m) or `rpz` (default: the zone's SOA refresh).
    pub refresh: Option<toml::Spanned<String>>,
    /// Bound on one download or transfer (default 60s).
    pub timeout: Option<toml::Spanned<String>>,
    /// minisign public key (`RW...`) the `url` list must be signed with.
    pub minisign_pubkey: Option<String>,
    /// Largest `url` body accepted, in bytes (default 64 MiB).
    pub max_bytes: Option<u64>,
    /// auto | domains | hosts | adblock | rpz
    #[serde(default, deserialize_with = "format_from_str")]
    pub format: Format,
}

/// `[[lists.allow]]`: exactly one of `path`, `url`, `rpz`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAllow {
    /// Name in logs, status and state files (default: derived from the origin).
    pub name: Option<String>,
    /// List file, plain or gzip.
    pub path: Option<PathBuf>,
    /// List URL (http or https), polled every `refresh`.
    pub url: Option<String>,
    /// RPZ zone transferred from a primary (a central's `allow.rpz.kidsafe.`): every
    /// trigger in it is allowed, whatever its action.
    pub rpz: Option<RawRpz>,
    /// Poll interval of a `url` (default 15m) or `rpz` (default: the zone's SOA refresh).
    pub refresh: Option<toml::Spanned<String>>,
    /// Bound on one download (default 60s).
    pub timeout: Option<toml::Spanned<String>>,
    /// minisign public key (`RW...`) the `url` list must be signed with.
    pub minisign_pubkey: Option<String>,
    /// Largest `url` body accepted, in bytes (default 64 MiB).
    pub max_bytes: Option<u64>,
    /// auto | domains | hosts | adblock | rpz
    #[serde(default, deserialize_with = "format_from_str")]
    pub format: Format,
}

/// `rpz = { primary = "192.0.2.53:53", zone = "kidsafe.rpz.", ... }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRpz {
    /// The primary's address.
    pub primary: SocketAddr,
    /// The zone to transfer.
    pub zone: String,
    /// TSIG key the primary requires for transfers.
    pub tsig_key: Option<RawTsig>,
    /// Where to listen for the primary's NOTIFY (UDP and TCP), e.g. "0.0.0.0:5300".
    pub notify_listen: Option<SocketAddr>,
}

/// `tsig_key = { name = "xfr-key.", algorithm = "hmac-sha256", secret = "base64" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsig {
    /// Key name, as on the primary.
    pub name: String,
    /// hmac-sha256 (default), hmac-sha384 or hmac-sha512.
    #[serde(default = "default_tsig_algorithm")]
    pub algorithm: String,
    /// The shared secret, base64.
    pub secret: String,
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
fn default_rate_limit_clients() -> usize {
    100_000
}
fn default_safesearch_ttl() -> u32 {
    300
}
fn default_true() -> bool {
    true
}
fn default_half() -> toml::Spanned<f64> {
    toml::Spanned::new(0..0, 0.5)
}
fn default_tsig_algorithm() -> String {
    "hmac-sha256".into()
}
