//! Prometheus metrics, rendered by the admin API at `/metrics`.
//!
//! Each resolver owns its registry (a `PrometheusRecorder` that is not installed as the
//! process-wide recorder), so two resolvers in one process, as in the tests, count apart.
//! Handles for the per-query counters are registered up front, or on first use for the
//! per-group ones, so counting a query is an atomic add, not a registry lookup: the hot
//! path stays as fast as without metrics.
//!
//! What is counted never says who asked what: there is no client label anywhere.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bypass::Kind;
use hickory_proto::rr::RecordType;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// How a query arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Plain DNS over UDP.
    Udp,
    /// Plain DNS over TCP.
    Tcp,
    /// DNS over TLS (RFC 7858).
    Dot,
    /// DNS over HTTPS (RFC 8484).
    Doh,
}

impl Protocol {
    const ALL: [Protocol; 4] = [Protocol::Udp, Protocol::Tcp, Protocol::Dot, Protocol::Doh];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Dot => "dot",
            Protocol::Doh => "doh",
        }
    }
}

/// What an admitted query was answered with, one per query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Relayed from upstream or the cache.
    Allowed,
    /// Sinkholed: the name is on the shared list.
    Blocked,
    /// Sinkholed: the upstream answer's CNAME chain leads to a listed name.
    BlockedCname,
    /// Sinkholed by the group's own deny list.
    Filtered,
    /// Answered with a SafeSearch CNAME.
    SafeSearch,
    /// SERVFAIL: no upstream answered.
    ServFail,
    /// FORMERR or NOTIMP: not a query we answer.
    Error,
}

impl Verdict {
    const COUNT: usize = 7;

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Blocked => "blocked",
            Verdict::BlockedCname => "blocked_cname",
            Verdict::Filtered => "filtered",
            Verdict::SafeSearch => "safesearch",
            Verdict::ServFail => "servfail",
            Verdict::Error => "error",
        }
    }
}

/// Query types with a label of their own; the rest count as `other`.
const QTYPES: [RecordType; 12] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::HTTPS,
    RecordType::SVCB,
    RecordType::CNAME,
    RecordType::MX,
    RecordType::TXT,
    RecordType::PTR,
    RecordType::NS,
    RecordType::SOA,
    RecordType::SRV,
    RecordType::ANY,
];
/// `QTYPES` plus `other` plus `none` (no single question).
const QTYPE_SLOTS: usize = QTYPES.len() + 2;

/// Upstream failures, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No upstream answered in time (the client got SERVFAIL or a stale answer).
    Unreachable,
}

/// Upstream answer times, in seconds: loopback caches answer in well under a millisecond,
/// a cold recursive lookup takes up to seconds.
const UPSTREAM_BUCKETS: [f64; 12] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

const QUERIES: &str = "kidsafe_queries_total";
const ANSWERS: &str = "kidsafe_answers_total";
const BLOCKED: &str = "kidsafe_blocked_total";
const SERVICE_BLOCKS: &str = "kidsafe_service_blocks_total";
const BYPASS_ATTEMPTS: &str = "kidsafe_bypass_attempts_total";
/// Refused queries (closed resolver, rate limit), set from the policy's own counters.
pub const REFUSED: &str = "kidsafe_refused_total";
const UPSTREAM_SECONDS: &str = "kidsafe_upstream_duration_seconds";
const UPSTREAM_ERRORS: &str = "kidsafe_upstream_errors_total";
const UPSTREAM_SERVER_FAILURES: &str = "kidsafe_upstream_server_failures_total";
const CACHE: &str = "kidsafe_cache_lookups_total";

/// The resolver's metrics.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// `[protocol][qtype slot]`.
    queries: Vec<Counter>,
    /// Per group: one slot per [`Verdict`], registered on first use.
    answers: Vec<[OnceLock<Counter>; Verdict::COUNT]>,
    /// Per group: one slot per category bit, registered on first use.
    blocked: Vec<[OnceLock<Counter>; 32]>,
    /// Per group: one slot per bypass kind ([`Kind::ALL`]), registered on first use.
    bypass: Vec<[OnceLock<Counter>; 4]>,
    group_names: Vec<String>,
    upstream_seconds: Histogram,
    upstream_unreachable: Counter,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_stale: Counter,
    /// TCP, DoT and DoH connections open now.
    pub tcp_connections: Gauge,
    /// TCP/DoT/DoH connections closed at once because `server.tcp_max_connections` were open.
    pub tcp_rejected: Counter,
    /// Query log events dropped because the writer fell behind.
    pub querylog_dropped: Counter,
    /// Datagrams and connections from a `server.proxy_protocol_from` balancer dropped for
    /// want of a valid PROXY v2 header.
    pub proxy_invalid: Counter,
    /// Identities a query carried that were ignored ([`crate::server::identity`]).
    pub identity: IdentityCounters,
    /// When an upstream last answered (Unix milliseconds; 0 = never), for `/readyz`.
    last_upstream_answer: AtomicU64,
    /// Per blocked service (catalog ids: a bounded set), registered on first use.
    services: std::sync::RwLock<std::collections::HashMap<String, Counter>>,
    /// Each profile's counts for today and this week (not exported to Prometheus: a
    /// label per profile would make a national fleet's series unbounded).
    pub activity: crate::activity::Activity,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("groups", &self.group_names)
            .finish_non_exhaustive()
    }
}

const IDENTITY_UNTRUSTED: &str = "kidsafe_identity_untrusted_total";
const IDENTITY_INVALID: &str = "kidsafe_identity_invalid_total";
const IDENTITY_SNI_OTHER: &str = "kidsafe_identity_sni_other_total";

/// Identities ignored, by kind; none of them says which client.
#[derive(Clone)]
pub struct IdentityCounters {
    /// A device MAC option (65001, 65073) from a sender not in `server.trusted_forwarders`.
    pub untrusted_mac: Counter,
    /// A Client Subnet from an untrusted sender, with `server.ecs_from_trusted` on.
    pub untrusted_ecs: Counter,
    /// A device MAC option from a trusted forwarder that is not a MAC address.
    pub invalid_mac: Counter,
    /// A Client Subnet from a trusted forwarder that names no address.
    pub invalid_ecs: Counter,
    /// A TLS server name under `server.client_id_domain` whose first label is not a
    /// ClientID (or that has more labels).
    pub invalid_sni: Counter,
    /// A TLS server name not under `server.client_id_domain`.
    pub sni_other: Counter,
}

impl IdentityCounters {
    fn new(recorder: &PrometheusRecorder) -> Self {
        let kind = |name: &'static str, kind: &'static str| {
            counter(recorder, name, vec![Label::new("kind", kind)])
        };
        IdentityCounters {
            untrusted_mac: kind(IDENTITY_UNTRUSTED, "mac"),
            untrusted_ecs: kind(IDENTITY_UNTRUSTED, "ecs"),
            invalid_mac: kind(IDENTITY_INVALID, "mac"),
            invalid_ecs: kind(IDENTITY_INVALID, "ecs"),
            invalid_sni: kind(IDENTITY_INVALID, "sni"),
            sni_other: counter(recorder, IDENTITY_SNI_OTHER, Vec::new()),
        }
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl Metrics {
    /// A registry for a resolver whose client groups are `groups` (in policy order).
    pub fn new(groups: &[String]) -> Self {
        let builder = PrometheusBuilder::new();
        // Only fails for an empty bucket list.
        let builder = builder
            .set_buckets_for_metric(Matcher::Full(UPSTREAM_SECONDS.into()), &UPSTREAM_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        let mut queries = Vec::with_capacity(Protocol::ALL.len() * QTYPE_SLOTS);
        for p in Protocol::ALL {
            let qtypes = QTYPES.iter().map(|t| t.to_string());
            for t in qtypes.chain(["other".into(), "none".into()]) {
                let labels = vec![Label::new("protocol", p.as_str()), Label::new("qtype", t)];
                queries.push(counter(&recorder, QUERIES, labels));
            }
        }
        let cache =
            |result: &'static str| counter(&recorder, CACHE, vec![Label::new("result", result)]);
        let (cache_hits, cache_misses, cache_stale) = (cache("hit"), cache("miss"), cache("stale"));
        let unreachable = vec![Label::new("kind", "unreachable")];
        Metrics {
            queries,
            answers: groups.iter().map(|_| Default::default()).collect(),
            blocked: groups
                .iter()
                .map(|_| std::array::from_fn(|_| OnceLock::new()))
                .collect(),
            bypass: groups.iter().map(|_| Default::default()).collect(),
            group_names: groups.to_vec(),
            upstream_seconds: recorder
                .register_histogram(&Key::from_name(UPSTREAM_SECONDS), &METADATA),
            upstream_unreachable: counter(&recorder, UPSTREAM_ERRORS, unreachable),
            cache_hits,
            cache_misses,
            cache_stale,
            tcp_connections: recorder
                .register_gauge(&Key::from_name("kidsafe_tcp_connections"), &METADATA),
            tcp_rejected: counter(&recorder, "kidsafe_tcp_rejected_total", Vec::new()),
            querylog_dropped: counter(&recorder, "kidsafe_querylog_dropped_total", Vec::new()),
            proxy_invalid: counter(&recorder, "kidsafe_proxy_invalid_total", Vec::new()),
            identity: IdentityCounters::new(&recorder),
            last_upstream_answer: AtomicU64::new(0),
            services: Default::default(),
            activity: Default::default(),
            recorder,
            handle,
        }
    }

    /// One query received over `protocol`, with question type `qtype` (`None`: not exactly
    /// one question).
    pub fn query(&self, protocol: Protocol, qtype: Option<RecordType>) {
        let slot = match qtype {
            None => QTYPE_SLOTS - 1,
            Some(t) => QTYPES.iter().position(|&q| q == t).unwrap_or(QTYPES.len()),
        };
        let p = Protocol::ALL
            .iter()
            .position(|&x| x == protocol)
            .unwrap_or(0);
        if let Some(c) = self.queries.get(p * QTYPE_SLOTS + slot) {
            c.increment(1);
        }
    }

    /// The answer an admitted query from client group `group` (index into the groups given
    /// to [`Metrics::new`]) got.
    pub fn answer(&self, group: usize, verdict: Verdict) {
        let Some(slots) = self.answers.get(group) else {
            return;
        };
        let i = verdict as usize;
        let c = slots[i].get_or_init(|| {
            let labels = vec![
                Label::new("group", self.group_name(group)),
                Label::new("verdict", verdict.as_str()),
            ];
            counter(&self.recorder, ANSWERS, labels)
        });
        c.increment(1);
    }

    /// A blocked answer in these categories (`bits` from the list, `name_of` naming a bit).
    pub fn blocked(&self, group: usize, bits: u32, name_of: impl Fn(u32) -> Option<String>) {
        let Some(slots) = self.blocked.get(group) else {
            return;
        };
        let mut rest = bits;
        while rest != 0 {
            let bit = rest.trailing_zeros();
            rest &= rest - 1;
            let c = slots[bit as usize].get_or_init(|| {
                let category = name_of(bit).unwrap_or_else(|| format!("bit{bit}"));
                let labels = vec![
                    Label::new("group", self.group_name(group)),
                    Label::new("category", category),
                ];
                counter(&self.recorder, BLOCKED, labels)
            });
            c.increment(1);
        }
    }

    /// A name blocked as part of `service` (a catalog id).
    pub fn service_blocked(&self, service: &str) {
        // A poisoned lock only means a panic elsewhere mid-insert: the map is still whole.
        let read = self.services.read().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = read.get(service) {
            c.increment(1);
            return;
        }
        drop(read);
        let mut write = self.services.write().unwrap_or_else(|e| e.into_inner());
        write
            .entry(service.to_owned())
            .or_insert_with(|| {
                let labels = vec![Label::new("service", service.to_owned())];
                counter(&self.recorder, SERVICE_BLOCKS, labels)
            })
            .increment(1);
    }

    /// A blocked attempt of client group `group` to get around the filter, of `kind`:
    /// counted per profile, never per device.
    pub fn bypass_attempt(&self, group: usize, kind: Kind) {
        let Some(slots) = self.bypass.get(group) else {
            return;
        };
        let Some(i) = Kind::ALL.iter().position(|&k| k == kind) else {
            return;
        };
        let c = slots[i].get_or_init(|| {
            let labels = vec![
                Label::new("profile", self.group_name(group)),
                Label::new("kind", kind.as_str()),
            ];
            counter(&self.recorder, BYPASS_ATTEMPTS, labels)
        });
        c.increment(1);
    }

    fn group_name(&self, group: usize) -> String {
        self.group_names.get(group).cloned().unwrap_or_default()
    }

    /// An upstream exchange that got an answer after `took`.
    pub fn upstream_answered(&self, took: Duration) {
        self.upstream_seconds.record(took.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.last_upstream_answer.store(now, Ordering::Relaxed);
    }

    /// How long ago an upstream last answered; `None` if none ever did.
    pub fn since_upstream_answer(&self) -> Option<Duration> {
        let at = self.last_upstream_answer.load(Ordering::Relaxed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        (at > 0).then(|| now.saturating_sub(Duration::from_millis(at)))
    }

    /// An upstream failure.
    pub fn upstream_failed(&self, why: UpstreamFailure) {
        match why {
            UpstreamFailure::Unreachable => self.upstream_unreachable.increment(1),
        }
    }

    /// Upstream `server` did not give a usable reply to one query, for reason `kind`
    /// (a fixed name: `timeout`, `network`, `servfail`, …). Registered on use: failures
    /// are not the hot path.
    pub fn upstream_server_failed(&self, server: SocketAddr, kind: &'static str) {
        let labels = vec![
            Label::new("server", server.to_string()),
            Label::new("reason", kind),
        ];
        counter(&self.recorder, UPSTREAM_SERVER_FAILURES, labels).increment(1);
    }

    /// A cache lookup: a fresh hit, or a miss that went upstream.
    pub fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.increment(1);
        } else {
            self.cache_misses.increment(1);
        }
    }

    /// An expired entry served because upstream failed (serve-stale).
    pub fn cache_stale(&self) {
        self.cache_stale.increment(1);
    }

    /// Sets a gauge (registered on first use; cheap enough for once per scrape).
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let labels: Vec<Label> = labels
            .iter()
            .map(|&(k, v)| Label::new(k, v.to_owned()))
            .collect();
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
            .set(value);
    }

    /// Sets a counter kept elsewhere (e.g. in the feed state files) to its current total.
    pub fn counter_total(&self, name: &'static str, labels: &[(&'static str, &str)], total: u64) {
        let labels: Vec<Label> = labels
            .iter()
            .map(|&(k, v)| Label::new(k, v.to_owned()))
            .collect();
        counter(&self.recorder, name, labels).absolute(total);
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram samples into their buckets; call every few seconds.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

fn counter(recorder: &PrometheusRecorder, name: &'static str, labels: Vec<Label>) -> Counter {
    recorder.register_counter(&Key::from_parts(name, labels), &METADATA)
}

fn describe(recorder: &PrometheusRecorder) {
    let help: [(&'static str, &'static str); 22] = [
        (
            BYPASS_ATTEMPTS,
            "Blocked attempts to get around the filter, by profile and kind (canary, relay, resolver, vpn).",
        ),
        (
            SERVICE_BLOCKS,
            "Answers blocked as part of a blocked service (catalog id), all groups together.",
        ),
        (QUERIES, "Queries received, by protocol and question type."),
        (
            ANSWERS,
            "Answers to admitted queries, by client group and verdict.",
        ),
        (
            BLOCKED,
            "Blocked answers, by client group and list category.",
        ),
        (
            REFUSED,
            "Queries refused before policy: not allowed or rate limited.",
        ),
        (
            UPSTREAM_SECONDS,
            "Time upstream took to answer a forwarded query.",
        ),
        (UPSTREAM_ERRORS, "Forwarded queries no upstream answered."),
        (
            UPSTREAM_SERVER_FAILURES,
            "Queries an upstream server did not answer usably, by server and reason.",
        ),
        (CACHE, "Response cache lookups, by result."),
        ("kidsafe_tcp_connections", "TCP/DoT/DoH connections open."),
        (
            "kidsafe_tcp_rejected_total",
            "TCP/DoT/DoH connections refused at the limit.",
        ),
        (
            "kidsafe_querylog_dropped_total",
            "Query log events dropped (writer behind).",
        ),
        (
            "kidsafe_proxy_invalid_total",
            "Datagrams and connections from a PROXY protocol balancer without a valid header.",
        ),
        (
            IDENTITY_UNTRUSTED,
            "Device MAC or Client Subnet options ignored: the sender is not a trusted forwarder.",
        ),
        (
            IDENTITY_INVALID,
            "Identities ignored as malformed (MAC option, Client Subnet, ClientID in a TLS name).",
        ),
        (
            IDENTITY_SNI_OTHER,
            "TLS connections whose server name is not under server.client_id_domain.",
        ),
        (
            "kidsafe_list_serial",
            "Serial of the serving compiled blocklist.",
        ),
        (
            "kidsafe_list_entries",
            "Rules in the serving compiled blocklist.",
        ),
        (
            "kidsafe_list_swapped_timestamp_seconds",
            "When the serving list was loaded.",
        ),
        (
            "kidsafe_feed_refused_total",
            "Feed updates refused, by source and guard.",
        ),
        (
            "kidsafe_feed_last_success_timestamp_seconds",
            "Last accepted feed update.",
        ),
    ];
    for (name, text) in help {
        recorder.describe_counter(KeyName::from(name), None, SharedString::from(text));
    }
}
