//! Live list feeds: lists that come from outside and replace the serving list while the
//! resolver runs.
//!
//! Fetchers (they only fetch and check):
//! - [`http`]: HTTP(S) list download with conditional GET, a size cap and optional
//!   minisign signature verification;
//! - [`xfr`]: RPZ secondary: AXFR/IXFR client (with TSIG), SOA polling and NOTIFY helpers.
//!
//! Around them, one task per source ([`poll`] for `url`, [`secondary`] for `rpz`, [`watch`]
//! for `path` files) hands each new copy to [`candidate`], whose [`guard`]s judge it alone,
//! then to the [`pipeline`], which compiles it with the other sources, checks the result
//! against the serving list, installs it and swaps it in. [`state`] keeps the last good
//! copies and each source's status in `lists.state_dir`; [`status`] prints them.
//!
//! Beside the lists, [`subscribers`] feeds the ISP's subscriber map
//! ([`crate::subscribers`]) with the same HTTP client and signature check.

pub mod candidate;
pub mod guard;
pub mod http;
pub mod install;
pub mod notify;
pub mod pipeline;
pub mod poll;
pub mod secondary;
pub mod spec;
pub mod state;
pub mod status;
pub mod subscribers;
pub mod watch;
pub mod xfr;
pub mod zonefile;

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::feed::candidate::FeedCtx;
use crate::feed::notify::NotifyRouter;
use crate::feed::pipeline::Pipeline;
use crate::feed::spec::{ListsConfig, SourceKind};
use crate::feed::state::StateStore;
use crate::lists::manifest;

/// The running feeds of a resolver.
#[derive(Debug)]
pub struct Feeds {
    /// Routes NOTIFY messages to the RPZ sources. The resolver's request handler can pass
    /// opcode NOTIFY queries to [`NotifyRouter::handle`] to accept them on the DNS port.
    pub notify: Arc<NotifyRouter>,
    /// The bound `notify_listen` addresses.
    pub notify_addrs: Vec<SocketAddr>,
    pipeline: Pipeline,
}

impl Feeds {
    /// Asks for a recompile of the current sources.
    pub fn rebuild(&self, why: &str) {
        self.pipeline.rebuild(why);
    }
}

/// Starts a task per source of `lists`, the `path` watcher and the NOTIFY listeners, all
/// stopped by `stop`, each handing its updates to `pipeline` (the one writer of the
/// compiled list). `None` when the config has no sources.
pub async fn spawn(
    lists: &ListsConfig,
    pipeline: Pipeline,
    store: Arc<StateStore>,
    stop: CancellationToken,
) -> Option<Feeds> {
    if lists.feeds.sources.is_empty() {
        return None;
    }
    let ctx = Arc::new(FeedCtx {
        lists: lists.clone(),
        store,
        pipeline: pipeline.clone(),
    });
    let mut router = NotifyRouter::default();
    let mut listen: Vec<SocketAddr> = Vec::new();
    let mut files = Vec::new();
    for (index, spec) in lists.feeds.sources.iter().enumerate() {
        match &spec.kind {
            SourceKind::Path(p) => files.push(p.clone()),
            SourceKind::Url(feed) => {
                tokio::spawn(poll::run(ctx.clone(), index, feed.clone(), stop.clone()));
            }
            SourceKind::Rpz(feed) => {
                let trigger = Arc::new(Notify::new());
                if let Ok(zone) = Name::from_ascii(&feed.zone) {
                    router.add(&spec.name, zone, feed.primary.ip(), trigger.clone());
                }
                if let Some(addr) = feed.notify_listen.filter(|a| !listen.contains(a)) {
                    listen.push(addr);
                }
                let run = secondary::run(ctx.clone(), index, feed.clone(), trigger, stop.clone());
                tokio::spawn(run);
            }
        }
    }
    if lists.watch
        && let Err(error) = watch::spawn(files, pipeline.clone(), stop.clone())
    {
        tracing::warn!(%error, "cannot watch the list files; reload with SIGHUP");
    }
    let router = Arc::new(router);
    let mut notify_addrs = Vec::new();
    for addr in listen {
        match notify::listen(addr, router.clone(), stop.clone()).await {
            Ok(bound) => {
                tracing::info!(addr = %bound, "listening for NOTIFY from RPZ primaries");
                notify_addrs.push(bound);
            }
            Err(error) => {
                tracing::error!(%addr, %error, "cannot listen for NOTIFY; zones follow their SOA refresh timer only");
            }
        }
    }
    Some(Feeds {
        notify: router,
        notify_addrs,
        pipeline,
    })
}

/// At start, when there is no compiled list to serve yet: fetch every feed that has no
/// stored copy once (in parallel, each within its timeout), so the first compile has them.
/// With a compiled list on disk this returns at once: it serves while the feeds catch up.
pub async fn bootstrap(lists: &ListsConfig) {
    let feeds = &lists.feeds;
    let missing: Vec<usize> = feeds
        .sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_feed() && !s.list_path(&feeds.state_dir).exists())
        .map(|(i, _)| i)
        .collect();
    let servable = lists.compiled.exists() && manifest::path_for(&lists.compiled).exists();
    if missing.is_empty() || servable {
        return;
    }
    tracing::info!(
        feeds = missing.len(),
        "no compiled list yet: fetching the feeds before the first compile"
    );
    let store = Arc::new(StateStore::load(feeds));
    let stop = CancellationToken::new();
    let pipeline = Pipeline::spawn(
        lists.clone(),
        None,
        store.clone(),
        Vec::new(),
        std::time::Duration::ZERO,
        stop.clone(),
    );
    let ctx = Arc::new(FeedCtx {
        lists: lists.clone(),
        store,
        pipeline,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for index in missing {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let Some(spec) = ctx.spec(index).cloned() else {
                return;
            };
            match &spec.kind {
                SourceKind::Url(feed) => {
                    if let Some(http) = poll::client(&ctx, &spec, feed) {
                        poll::poll(&ctx, index, &spec, &http).await;
                    }
                }
                SourceKind::Rpz(feed) => secondary::first_transfer(&ctx, index, feed).await,
                SourceKind::Path(_) => {}
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    stop.cancel();
}
