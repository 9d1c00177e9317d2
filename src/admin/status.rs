//! `GET /v1/status` and the console's status page: the node in one reading, from live
//! data. The serving list (serial, entries, when it was swapped in); each source's status
//! file and the compile stage's (entries, versions, last success, last refusal and the
//! refusals counted per guard: the same reading as `kidsafe-dns status`,
//! [`crate::feed::status`]); each upstream server's health ([`crate::upstream::health`])
//! and whether an upstream answers the way `/readyz` decides it; and the node itself
//! (version, uptime, node id, listeners, profiles, queries since the start).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Admin;
use crate::feed::state::PipelineState;
use crate::feed::status::SourceStatus;
use crate::upstream::health::ServerHealth;

/// Everything the status page shows.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The list serving now.
    pub serving: Serving,
    /// The compile stage: installs, its last refusal, refusals per guard.
    pub pipeline: PipelineState,
    /// Every configured source, in config order.
    pub sources: Vec<SourceStatus>,
    /// The upstream servers.
    pub upstream: Upstream,
    /// This process.
    pub node: Node,
}

/// The serving compiled list.
#[derive(Clone, Debug, Serialize)]
pub struct Serving {
    /// Its manifest serial (each compile gets a larger one).
    pub serial: u64,
    /// Its rules.
    pub entries: u64,
    /// When it was compiled.
    pub built_at_unix: u64,
    /// When this process swapped it in.
    pub loaded_at_unix: u64,
    /// Lists swapped in since the start.
    pub loads: u64,
}

/// Whether upstream answers, and each server.
#[derive(Clone, Debug, Serialize)]
pub struct Upstream {
    /// What `/readyz` says: an upstream answered in the last 30 s, or answers a probe now.
    pub reachable: bool,
    /// Each configured server, in the order they are tried.
    pub servers: Vec<UpstreamServer>,
}

/// One upstream server.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamServer {
    /// As configured: `9.9.9.9:53`, `tls://9.9.9.9:853#dns.quad9.net`.
    pub server: String,
    /// Answering or failing, last answer, recent failures.
    pub health: ServerHealth,
}

/// This process.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// The program's version.
    pub version: &'static str,
    /// When it started (Unix seconds).
    pub started_unix: u64,
    /// Seconds since.
    pub uptime_secs: u64,
    /// `reports.forward_to`'s node id, on an edge.
    pub node_id: Option<String>,
    /// What it listens on: (`udp+tcp`, `dot`, `doh`, `admin`, `console`, `blockpage`,
    /// `xfr`), address), as configured.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// Profiles (config file's and stored); `None` when the store could not be read.
    pub profiles: Option<u64>,
    /// Queries since the start.
    pub queries: Totals,
}

/// Queries counted since the start (the `/metrics` counters, all groups together).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Received, over every transport.
    pub received: u64,
    /// Answered after admission (every verdict).
    pub answered: u64,
    /// Of those, blocked (listed, CNAME to a listed name, or the profile's own deny).
    pub blocked: u64,
    /// Of those, SERVFAIL (no upstream answered).
    pub servfail: u64,
    /// Refused before policy (not allowed, rate limited).
    pub refused: u64,
}

impl Admin {
    /// Whether an upstream answers, as `/readyz` decides: one answered in the last 30 s,
    /// or one answers a probe now (which can take the upstream timeout).
    pub async fn upstream_reachable(&self) -> bool {
        let recent = self
            .metrics
            .since_upstream_answer()
            .is_some_and(|d| d < super::RECENT_UPSTREAM);
        recent || self.resolver.probe().await
    }

    /// The node's status now (see [`Status`]). Reads the feed status files and the
    /// profile store on a blocking thread.
    pub async fn status(&self) -> Status {
        let reachable = self.upstream_reachable().await;
        let config = self.config.load_full();
        let list = self.lists.current();
        let manifest = list.manifest().clone();
        let serving = Serving {
            serial: manifest.serial,
            entries: list.len() as u64,
            built_at_unix: manifest.built_at_unix,
            loaded_at_unix: self.lists.loaded_at(),
            loads: self.lists.loads(),
        };
        let now = Instant::now();
        let health = self.resolver.health();
        let servers = config
            .upstream
            .servers
            .iter()
            .map(|e| UpstreamServer {
                server: e.to_string(),
                health: health.of(e.addr(), now),
            })
            .collect();
        let (refused, limited) = self.policy.load().refusals();
        let mut queries = totals(&self.metrics.render());
        queries.refused = refused + limited;
        let (read_config, profiles) = (config.clone(), self.profiles());
        let files = tokio::task::spawn_blocking(move || {
            let lists = &read_config.lists;
            let sources = crate::feed::status::sources(lists, Some(&manifest));
            let pipeline = crate::feed::status::pipeline(lists);
            let count = profiles.lock().ok().and_then(|s| s.count().ok());
            (sources, pipeline, count)
        })
        .await;
        let (sources, pipeline, profiles) = files.unwrap_or_default();
        let uptime = self.started.0.elapsed().as_secs();
        Status {
            serving,
            pipeline,
            sources,
            upstream: Upstream { reachable, servers },
            node: Node {
                version: env!("CARGO_PKG_VERSION"),
                started_unix: self.started.1,
                uptime_secs: uptime,
                node_id: config.reports.forward.as_ref().map(|f| f.node_id.clone()),
                listeners: listeners(&config),
                profiles,
                queries,
            },
        }
    }
}

/// Every configured listener, by what it serves.
fn listeners(config: &crate::config::Config) -> Vec<(&'static str, SocketAddr)> {
    let mut out: Vec<(&'static str, SocketAddr)> = Vec::new();
    let mut add = |kind, addrs: &[SocketAddr]| out.extend(addrs.iter().map(|a| (kind, *a)));
    add("udp+tcp", &config.server.listen);
    if let Some(tls) = &config.server.tls {
        add("dot", &tls.dot_listen);
        add("doh", &tls.doh_listen);
    }
    if let Some(a) = &config.admin {
        add("admin", &a.listen);
    }
    if let Some(c) = &config.console {
        add("console", &c.listen);
    }
    if let Some(b) = &config.blockpage {
        add("blockpage", &b.listen);
    }
    if let Some(p) = &config.publish {
        add("xfr", &p.xfr_listen);
    }
    out
}

/// The query totals in a Prometheus text exposition (the resolver's own counters are
/// write-only handles; their rendering is where the totals can be read).
fn totals(text: &str) -> Totals {
    let mut t = Totals::default();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let n = value as u64;
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        match name {
            "kidsafe_queries_total" => t.received += n,
            "kidsafe_answers_total" => {
                t.answered += n;
                let verdict = labels
                    .split(',')
                    .find_map(|l| l.trim_end_matches('}').strip_prefix("verdict="))
                    .map(|v| v.trim_matches('"'));
                match verdict {
                    Some("blocked" | "blocked_cname" | "filtered") => t.blocked += n,
                    Some("servfail") => t.servfail += n,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    t
}

/// `GET /v1/status`: [`Status`] as JSON.
pub async fn get(State(admin): State<Arc<Admin>>) -> Response {
    Json(admin.status().await).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_every_group_and_protocol() {
        let text = "\
# TYPE kidsafe_queries_total counter
kidsafe_queries_total{protocol=\"udp\",qtype=\"A\"} 7
kidsafe_queries_total{protocol=\"tcp\",qtype=\"AAAA\"} 3
kidsafe_answers_total{group=\"default\",verdict=\"allowed\"} 4
kidsafe_answers_total{group=\"kids\",verdict=\"blocked\"} 2
kidsafe_answers_total{group=\"kids\",verdict=\"filtered\"} 1
kidsafe_answers_total{group=\"kids\",verdict=\"servfail\"} 1
kidsafe_answers_total_other{verdict=\"blocked\"} 99
kidsafe_blocked_total{group=\"kids\",category=\"adult\"} 2
";
        let t = totals(text);
        assert_eq!(
            t,
            Totals {
                received: 10,
                answered: 8,
                blocked: 3,
                servfail: 1,
                refused: 0
            }
        );
    }
}
