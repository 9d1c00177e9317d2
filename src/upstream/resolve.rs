//! The cache in front of the forwarder: fresh hits are answered from memory, misses for
//! the same question are coalesced into one upstream query, popular entries are refreshed
//! shortly before they expire, and an expired entry can stand in when upstream fails
//! (serve-stale, RFC 8767).

use std::sync::Arc;

use hickory_proto::op::{Message, Query, ResponseCode};

use crate::upstream::cache::{CacheKey, Cached, ResponseCache};
use crate::upstream::forwarder::{Forwarder, QueryFlags, UpstreamError};

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
    forwarder: Forwarder,
    cache: Option<ResponseCache>,
    prefetch: bool,
}

impl Resolver {
    /// Resolves through `forwarder`, with `cache` in front when given.
    pub fn new(forwarder: Forwarder, cache: Option<ResponseCache>, prefetch: bool) -> Self {
        Resolver {
            forwarder,
            cache,
            prefetch,
        }
    }

    /// The cache, if enabled.
    pub fn cache(&self) -> Option<&ResponseCache> {
        self.cache.as_ref()
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
                .forwarder
                .forward(query, flags)
                .await
                .map(fresh)
                .map_err(Arc::new);
        };
        let key =
            CacheKey::new(query, flags.dnssec_ok).with_checking_disabled(flags.checking_disabled);
        match cache.get(&key) {
            Cached::Fresh { message, prefetch } => {
                if prefetch && self.prefetch {
                    let (me, key, query) = (self.clone(), key.clone(), query.clone());
                    tokio::spawn(async move {
                        if let Some(cache) = &me.cache {
                            let _ = fetch(cache, &me.forwarder, &key, &query, flags).await;
                        }
                    });
                }
                Ok(fresh(message))
            }
            Cached::Stale(old) => match fetch(cache, &self.forwarder, &key, query, flags).await {
                Ok(m) if m.metadata.response_code != ResponseCode::ServFail => Ok(fresh(m)),
                _ => Ok(Resolved {
                    message: old,
                    stale: true,
                }),
            },
            Cached::Miss => fetch(cache, &self.forwarder, &key, query, flags)
                .await
                .map(fresh),
        }
    }
}

/// One upstream query per key at a time; the result is cached when cacheable.
async fn fetch(
    cache: &ResponseCache,
    forwarder: &Forwarder,
    key: &CacheKey,
    query: &Query,
    flags: QueryFlags,
) -> Result<Message, Arc<UpstreamError>> {
    cache
        .fetch_coalesced(key, || {
            let (forwarder, query) = (forwarder.clone(), query.clone());
            async move { forwarder.forward(&query, flags).await.map_err(Arc::new) }
        })
        .await
}
