//! The cache in front of the forwarder: fresh hits are answered from memory, misses for
//! the same question are coalesced into one upstream query, popular entries are refreshed
//! shortly before they expire, and an expired entry can stand in when upstream fails
//! (serve-stale, RFC 8767).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use hickory_proto::op::{Message, Query, ResponseCode};

use crate::metrics::{Metrics, UpstreamFailure};

use crate::upstream::cache::{CacheKey, Cached, ResponseCache};
use crate::upstream::failures::{FailureLog, SUMMARY_EVERY, Summary};
use crate::upstream::forwarder::{Attempt, Forwarder, QueryFlags, UpstreamError};
use crate::upstream::health::Health;

/// An upstream answer and whether it came from an expired cache entry.
#[derive(Debug)]
pub struct Resolved {
    /// The reply as the upstream sent it (TTLs lowered by the time it spent in cache).
    pub message: Message,
    /// True for a serve-stale answer (the client gets EDE 3 "Stale Answer").
    pub stale: bool,
}

/// Forwarder plus optional cache.
#[derive(Clone, Debug)]
pub struct Resolver {
    /// Shared by every clone; a config reload stores a new one ([`Resolver::set_forwarder`]).
    forwarder: Arc<ArcSwap<Forwarder>>,
    cache: Option<ResponseCache>,
    prefetch: bool,
    metrics: Option<Arc<Metrics>>,
    /// Client queries that failed upstream, written to the log as summaries.
    failures: Arc<FailureLog>,
    /// How each server is doing (the operator's status page).
    health: Arc<Health>,
}

impl Resolver {
    /// Resolves through `forwarder`, with `cache` in front when given.
    pub fn new(forwarder: Forwarder, cache: Option<ResponseCache>, prefetch: bool) -> Self {
        Resolver {
            forwarder: Arc::new(ArcSwap::from_pointee(forwarder)),
            cache,
            prefetch,
            metrics: None,
            failures: Arc::default(),
            health: Arc::default(),
        }
    }

    /// How each upstream server is doing: every exchange this resolver (and its clones)
    /// made is noted there.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Counts cache misses, stale answers and upstream times and failures into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Sends every upstream query from now on to `forwarder` (new servers, timeout); queries
    /// already asking finish with the one they started with.
    pub fn set_forwarder(&self, forwarder: Forwarder) {
        self.forwarder.store(Arc::new(forwarder));
    }

    /// Whether an upstream answers at all: asks for the root's NS (any RCODE counts as
    /// an answer), bypassing the cache.
    pub async fn probe(&self) -> bool {
        let query = Query::query(
            hickory_proto::rr::Name::root(),
            hickory_proto::rr::RecordType::NS,
        );
        self.forward(&query, QueryFlags::default()).await.is_ok()
    }

    /// One upstream exchange, timed and counted (and each server that failed it), and
    /// noted in [`Resolver::health`].
    async fn forward(&self, query: &Query, flags: QueryFlags) -> Result<Message, UpstreamError> {
        let start = Instant::now();
        let mut failed = Vec::new();
        let forwarder = self.forwarder.load_full();
        let result = forwarder.forward_noting(query, flags, &mut failed).await;
        let now = Instant::now();
        let failed: &[Attempt] = match &result {
            Ok((answered, _)) => {
                if let Some(server) = answered {
                    self.health.answered(*server, now);
                }
                if let Some(m) = &self.metrics {
                    m.upstream_answered(start.elapsed());
                }
                &failed
            }
            Err(error) => {
                if let Some(m) = &self.metrics {
                    m.upstream_failed(UpstreamFailure::Unreachable);
                }
                match error {
                    UpstreamError::Unanswered(attempts) => attempts,
                    UpstreamError::Encode(_) => &failed,
                }
            }
        };
        for a in failed {
            if let Some(m) = &self.metrics {
                m.upstream_server_failed(a.server, a.failure.kind());
            }
            // A server not asked (the time budget was spent before its turn) did nothing.
            if !matches!(a.failure, crate::upstream::forwarder::Failure::NotAsked) {
                self.health.failed(a.server, a.failure.to_string(), now);
            }
        }
        result.map(|(_, reply)| reply)
    }

    /// Notes a client query that got SERVFAIL because of `error`. The log gets a WARN
    /// line for the first such query after a quiet spell and then at most one summary
    /// per [`SUMMARY_EVERY`] (written by [`Resolver::spawn_failure_log`]), naming every
    /// server and its last error, instead of a line per query.
    pub fn note_failure(&self, error: &UpstreamError) {
        if let Some(summary) = self.failures.record(error, Instant::now()) {
            warn_summary(&summary);
        }
    }

    /// Writes the tail of a streak of failures: checks every [`SUMMARY_EVERY`] for
    /// failures not yet written, and writes what is left when `stop` is cancelled.
    pub fn spawn_failure_log(&self, stop: tokio_util::sync::CancellationToken) {
        let failures = Arc::clone(&self.failures);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SUMMARY_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Some(summary) = failures.flush(Instant::now(), false) {
                    warn_summary(&summary);
                }
            }
            if let Some(summary) = failures.flush(Instant::now(), true) {
                warn_summary(&summary);
            }
        });
    }

    /// The cache, if enabled.
    pub fn cache(&self) -> Option<&ResponseCache> {
        self.cache.as_ref()
    }

    /// A fresh cache hit for `query`, without waiting (a background refresh is started when
    /// the entry is due for prefetch). `None`: a miss or an expired entry, ask
    /// [`Resolver::resolve`]. Must be called within a tokio runtime.
    pub fn cached(&self, query: &Query, flags: QueryFlags) -> Option<Resolved> {
        let cache = self.cache.as_ref()?;
        let key = key_of(query, flags);
        match cache.get(&key) {
            Cached::Fresh { message, prefetch } => {
                self.maybe_prefetch(prefetch, key, query, flags);
                Some(Resolved {
                    message,
                    stale: false,
                })
            }
            Cached::Stale(_) | Cached::Miss => None,
        }
    }

    /// Refreshes `key` in the background when the cache asked for it and prefetch is on.
    fn maybe_prefetch(&self, due: bool, key: CacheKey, query: &Query, flags: QueryFlags) {
        if !(due && self.prefetch) {
            return;
        }
        let (me, query) = (self.clone(), query.clone());
        tokio::spawn(async move {
            if let Some(cache) = &me.cache {
                let _ = me.fetch(cache, &key, &query, flags).await;
            }
        });
    }

    /// The upstream reply for `query`.
    ///
    /// # Errors
    /// No upstream answered and nothing (not even a stale entry) can stand in.
    pub async fn resolve(
        &self,
        query: &Query,
        flags: QueryFlags,
    ) -> Result<Resolved, Arc<UpstreamError>> {
        let fresh = |message| Resolved {
            message,
            stale: false,
        };
        let Some(cache) = &self.cache else {
            return self
                .forward(query, flags)
                .await
                .map(fresh)
                .map_err(Arc::new);
        };
        let key = key_of(query, flags);
        match cache.get(&key) {
            Cached::Fresh { message, prefetch } => {
                self.maybe_prefetch(prefetch, key, query, flags);
                Ok(fresh(message))
            }
            Cached::Stale(old) => match self.fetch(cache, &key, query, flags).await {
                Ok(m) if m.metadata.response_code != ResponseCode::ServFail => Ok(fresh(m)),
                _ => {
                    if let Some(m) = &self.metrics {
                        m.cache_stale();
                    }
                    Ok(Resolved {
                        message: old,
                        stale: true,
                    })
                }
            },
            Cached::Miss => {
                if let Some(m) = &self.metrics {
                    m.cache(false);
                }
                self.fetch(cache, &key, query, flags).await.map(fresh)
            }
        }
    }
}

fn warn_summary(summary: &Summary) {
    tracing::warn!(failed_queries = summary.queries, "{summary}");
}

fn key_of(query: &Query, flags: QueryFlags) -> CacheKey {
    CacheKey::new(query, flags.dnssec_ok).with_checking_disabled(flags.checking_disabled)
}

impl Resolver {
    /// One upstream query per key at a time; the result is cached when cacheable.
    async fn fetch(
        &self,
        cache: &ResponseCache,
        key: &CacheKey,
        query: &Query,
        flags: QueryFlags,
    ) -> Result<Message, Arc<UpstreamError>> {
        cache
            .fetch_coalesced(key, || {
                let (me, query) = (self.clone(), query.clone());
                async move { me.forward(&query, flags).await.map_err(Arc::new) }
            })
            .await
    }
}
