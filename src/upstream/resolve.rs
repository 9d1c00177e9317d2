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
                let _ = fetch(cache, &me.forwarder, &key, &query, flags).await;
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
                .forwarder
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

fn key_of(query: &Query, flags: QueryFlags) -> CacheKey {
    CacheKey::new(query, flags.dnssec_ok).with_checking_disabled(flags.checking_disabled)
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
