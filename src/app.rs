//! Wiring: config → compiled list (built first when there is none) → loaded list behind an
//! `ArcSwap` → the feed pipeline (the one writer of the compiled lists: sources changed
//! since the last compile, feeds, SIGHUP and the API all go through it) → server, watcher
//! and signal handlers, all stopped by one token.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::blockpage::{self, BlockPage};
use crate::config::Config;
use crate::feed::install::open_or_build;
use crate::feed::pipeline::{GroupList, Pipeline, SETTLE};
use crate::feed::state::StateStore;
use crate::lists::load::Blocklist;
use crate::lists::swap::LiveBlocklist;
use crate::metrics::Metrics;
use crate::policy::decide::{Clock, Policy, system_clock};
use crate::querylog::QueryLog;
use crate::server::{self, Handler};
use crate::shutdown::Drain;
use crate::upstream::Forwarder;
use crate::upstream::cache::ResponseCache;
use crate::upstream::resolve::Resolver;

mod build;
mod console;
#[cfg(test)]
mod policy_tests;
mod profiles;
pub mod reload;

pub use build::{StartError, build_policy, build_policy_with};
pub use profiles::{serving_config, with_profiles};

/// Time the socket tasks get to send the last queued answers before the listeners close.
const FLUSH_BEFORE_CLOSE: Duration = Duration::from_millis(100);

/// A started resolver.
pub struct Running {
    /// The addresses actually bound (real ports when 0 was configured).
    pub addrs: Vec<SocketAddrs>,
    /// The block page's bound addresses (empty when disabled).
    pub blockpage_addrs: Vec<SocketAddrs>,
    /// DNS-over-TLS addresses (empty when not configured).
    pub dot_addrs: Vec<SocketAddrs>,
    /// DNS-over-HTTPS addresses (empty when not configured).
    pub doh_addrs: Vec<SocketAddrs>,
    /// Admin API addresses (empty without `[admin]`).
    pub admin_addrs: Vec<SocketAddrs>,
    /// Web console addresses (empty without `[console]`).
    pub console_addrs: Vec<SocketAddrs>,
    /// The serving blocklist (to inspect or reload).
    pub lists: Arc<LiveBlocklist>,
    /// Cancel to shut down gracefully.
    pub shutdown: CancellationToken,
    /// The list feeds (`None` without sources).
    pub feeds: Option<crate::feed::Feeds>,
    /// A central's published lists (`[publish]`), for the RPZ primary
    /// (`Arc<dyn PublishedLists>` by coercion).
    pub published: Option<Arc<crate::publish::PublishedStore>>,
    task: JoinHandle<()>,
    _stop_on_drop: tokio_util::sync::DropGuard,
}

/// Alias kept short for the field above.
pub type SocketAddrs = std::net::SocketAddr;

impl Running {
    /// Waits until the server has shut down (after [`Running::shutdown`] is cancelled).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Starts a graceful shutdown and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }
}

pub use crate::feed::install::needs_compile;

/// Where the compiled own list of `group` lives: beside the main compiled list.
pub fn group_list_path(config: &Config, group: &str) -> std::path::PathBuf {
    crate::feed::install::group_list_path(&config.lists.compiled, group)
}

/// The request handler `config` describes, without sockets, feeds or signal handlers:
/// compiles the list if there is none yet, loads it and builds the policy (for the fuzzer,
/// and to embed the decision path elsewhere). Queries that need upstream go to
/// `upstream.servers` when finished inside a tokio runtime.
///
/// # Errors
/// [`StartError`] for a list that cannot be compiled or loaded, or a bad policy.
pub fn offline_handler(config: &Config) -> Result<Handler, StartError> {
    let (list, _) = crate::feed::install::open_or_build(&config.lists, None)?;
    let path = config.lists.compiled.clone();
    let lists = Arc::new(LiveBlocklist::new(list, path));
    let policy = Arc::new(ArcSwap::from_pointee(build_policy(
        config,
        system_clock(),
        None,
    )?));
    // No prefetch: it spawns tasks, and this handler may live outside a runtime.
    let parts = assemble(config, lists, policy, Arc::new(Drain::default()), false)?;
    Ok(parts.handler)
}

/// What [`check_config`] verified.
#[derive(Debug)]
pub struct Checked {
    /// Entries in the compiled list the configured sources give (or in the compiled list
    /// on disk, when no source is configured or it is up to date).
    pub entries: u64,
    /// Whether the lists were compiled for the check (into a scratch directory).
    pub compiled: bool,
    /// Client groups, `default` included.
    pub groups: usize,
}

/// Everything [`start`] checks short of binding sockets, without touching the serving
/// files: the lists compile (into a scratch directory, when they would be compiled at
/// start) or the compiled list loads, every group's own lists compile, the SafeSearch
/// data loads, the DoT/DoH certificate and key are usable, and TLS to the upstreams can be
/// set up. Feeds not fetched yet are left out, as at start.
///
/// # Errors
/// The first [`StartError`] `serve` would stop with.
pub fn check_config(config: &Config) -> Result<Checked, StartError> {
    use crate::feed::install;
    let scratch = tempfile::Builder::new()
        .prefix("kidsafe-dns-check-")
        .tempdir()
        .map_err(StartError::Listen)?;
    let mut trial = config.clone();
    // Group lists are compiled beside the main list: into the scratch directory too.
    trial.lists.compiled = scratch.path().join("check.fst");
    let fetched_later = config.lists.available_sources().is_empty();
    let (entries, compiled) = if install::needs_compile(&config.lists) && !fetched_later {
        // The same build and guards as at start, into the scratch directory.
        let manifest = install::build_list(
            "the compiled list",
            &config.lists.available_sources(),
            &crate::lists::compile::InlineRules::default(),
            &trial.lists.compiled,
            install::Against::list(None, &config.lists, false),
        )
        .map_err(install::OpenError::Build)?;
        (manifest.entries, true)
    } else if config.lists.compiled.exists() {
        (Blocklist::open(&config.lists.compiled)?.len() as u64, false)
    } else if config.lists.sources.is_empty() {
        let nothing = install::OpenError::NothingToServe(config.lists.compiled.clone());
        return Err(StartError::Open(nothing));
    } else {
        // Only feeds, none fetched yet: `serve` downloads them first.
        (0, false)
    };
    let policy = build_policy(&trial, system_clock(), Some(scratch.path()))?;
    if let Some(t) = &config.server.tls {
        if !t.dot_listen.is_empty() {
            server::tls::server_config(&t.cert, &t.key, b"dot")
                .map_err(server::ListenError::Tls)?;
        }
        if !t.doh_listen.is_empty() {
            server::tls::server_config(&t.cert, &t.key, b"h2").map_err(server::ListenError::Tls)?;
        }
    }
    Forwarder::new(
        &config.upstream.servers,
        config.upstream.timeout,
        config.upstream.tls_ca.as_deref(),
    )?;
    if let Some(publish) = &config.publish {
        // `serve` starts with a bad key (the feed answers 503 and says why); the check
        // names it.
        crate::publish::feed::load_key(&publish.minisign_key_file)
            .map_err(|why| StartError::Publish(format!("publish.minisign_key_file: {why}")))?;
    }
    Ok(Checked {
        entries,
        compiled,
        groups: policy.groups().len(),
    })
}

/// The query path over a loaded list and policy.
struct Assembled {
    handler: Handler,
    /// The handler's resolver (cache + forwarder), for `/readyz`.
    resolver: Resolver,
    metrics: Arc<Metrics>,
}

/// Metrics for the policy's groups, the resolver (cache, forwarder) and the handler.
fn assemble(
    config: &Config,
    lists: Arc<LiveBlocklist>,
    policy: Arc<ArcSwap<Policy>>,
    drain: Arc<Drain>,
    prefetch: bool,
) -> Result<Assembled, StartError> {
    let names: Vec<String> = policy
        .load()
        .groups()
        .iter()
        .map(|g| g.name.clone())
        .collect();
    let metrics = Arc::new(Metrics::new(&names));
    let upstream = &config.upstream;
    let forwarder = Forwarder::new(
        &upstream.servers,
        upstream.timeout,
        upstream.tls_ca.as_deref(),
    )?;
    let cache = config
        .cache
        .as_ref()
        .map(|c| ResponseCache::new(c.cache.clone()));
    let resolver = Resolver::new(forwarder, cache, prefetch).with_metrics(metrics.clone());
    let handler = Handler::new(
        lists,
        resolver.clone(),
        policy,
        drain,
        config.policy.safesearch_ttl,
        metrics.clone(),
    )
    .with_chaos(server::ChaosAnswers {
        version: config.server.chaos_version.clone(),
        identity: config.server.chaos_identity.clone(),
    })
    .with_identity(server::identity::Identify::new(&config.server.identity));
    Ok(Assembled {
        handler,
        resolver,
        metrics,
    })
}

/// Binds an HTTP listener on each of `addrs`; an error names `what` and the address.
async fn bind_http(
    addrs: &[std::net::SocketAddr],
    what: &str,
) -> std::io::Result<(Vec<tokio::net::TcpListener>, Vec<SocketAddrs>)> {
    let mut listeners = Vec::with_capacity(addrs.len());
    let mut bound = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| server::listener::bind_error(*addr, what, &e))?;
        bound.push(l.local_addr()?);
        listeners.push(l);
    }
    Ok((listeners, bound))
}

/// Starts the resolver described by `config` and returns once it is answering.
///
/// # Errors
/// [`StartError`].
pub async fn start(config: Config) -> Result<Running, StartError> {
    start_with_clock(config, system_clock()).await
}

/// [`start`] with the wall clock schedules are judged by (tests move it).
///
/// # Errors
/// [`StartError`].
pub async fn start_with_clock(config: Config, clock: Clock) -> Result<Running, StartError> {
    crate::feed::bootstrap(&config.lists).await;
    let store = Arc::new(StateStore::load(&config.lists.feeds));
    let path = config.lists.compiled.clone();
    let (lists_cfg, st) = (config.lists.clone(), store.clone());
    let (list, _) = tokio::task::spawn_blocking(move || open_or_build(&lists_cfg, Some(&st)))
        .await
        .map_err(|e| StartError::Listen(std::io::Error::other(e)))??;
    tracing::info!(
        serial = list.manifest().serial,
        entries = list.len(),
        path = %path.display(),
        "blocklist loaded"
    );
    let lists = Arc::new(LiveBlocklist::new(list, path));
    let shutdown = CancellationToken::new();
    // The UDP receive threads outlive the caller's runtime unless told: dropping the
    // `Running` (or failing to start) stops them like a shutdown does.
    let stop_on_drop = shutdown.clone().drop_guard();
    if config.lists.watch
        && let Err(error) = lists.spawn_watcher(Duration::from_millis(200), shutdown.clone())
    {
        tracing::warn!(%error, "cannot watch the compiled list; reload with SIGHUP");
    }

    let drain = Arc::new(Drain::default());
    // The stored profiles serve from the first answer: the policy is built with them.
    let (cfg, serving) = (config.clone(), lists.current());
    let (profiles, snapshot) = tokio::task::spawn_blocking(move || {
        let store = profiles::open_store(&cfg, &serving)?;
        let snapshot = profiles::full_snapshot(&store)?;
        Ok::<_, crate::profiles::ProfileError>((store, snapshot))
    })
    .await
    .map_err(|e| StartError::Listen(std::io::Error::other(e)))?
    .map_err(crate::admin::AdminError::from)?;
    let profile_store = Arc::new(std::sync::Mutex::new(profiles));
    let changes = profile_store.lock().map(|s| s.subscribe()).ok();
    let serving = profiles::with_profiles(&config, &snapshot);
    let start_clock = clock.clone();
    let cfg = serving.clone();
    let policy = tokio::task::spawn_blocking(move || build_policy(&cfg, start_clock, None))
        .await
        .map_err(|e| StartError::Listen(std::io::Error::other(e)))??;
    // The subscriber map serves before the first query: the compiled map from the last
    // run, then the source file read once (a URL is fetched in the background).
    let subscribers = match &config.subscribers {
        Some(settings) => {
            let live = crate::subscribers::SubscriberSource::new();
            crate::feed::subscribers::start(settings, &live, shutdown.clone()).await;
            Some(live)
        }
        None => None,
    };
    let policy = policy
        .with_subscribers(subscribers)
        .with_subscriber_overlay(&snapshot.subscribers);
    // Exceptions and pauses are read per query from the store's live set: every policy
    // built from here on (reloads carry it over) reads the same one.
    let exceptions = Arc::new(crate::exceptions::ExceptionStore::open(
        &config
            .lists
            .feeds
            .state_dir
            .join(crate::exceptions::store::FILE_NAME),
        clock.clone(),
    )?);
    let policy = Arc::new(policy.with_exceptions(exceptions.live()));

    // The one writer of the compiled lists from here on: feeds, the `path` watcher,
    // SIGHUP and the API all hand it their work, and its guards judge all of it.
    let groups = serving
        .policy
        .groups
        .iter()
        .zip(policy.groups())
        .filter_map(|(group, live)| {
            let live = live.own.clone()?;
            Some(GroupList {
                group: group.clone(),
                live,
            })
        })
        .collect();
    let pipeline = Pipeline::spawn(
        config.lists.clone(),
        Some(lists.clone()),
        store.clone(),
        groups,
        SETTLE,
        shutdown.clone(),
    );
    if needs_compile(&config.lists) {
        // Sources changed while the resolver was down: the same guards as a live update.
        let why = "sources changed since the last compile";
        if let Some(report) = pipeline.reload(why, false, false).await
            && report.refused.is_none()
        {
            tracing::info!(
                serial = report.serial,
                entries = report.entries,
                "lists compiled"
            );
        }
    }
    let feeds = crate::feed::spawn(&config.lists, pipeline.clone(), store, shutdown.clone()).await;
    // Reloads share the refusal counters, so the log follows them too.
    policy.spawn_refusal_log(shutdown.clone());
    let policy = Arc::new(ArcSwap::new(policy));
    let prefetch = config.cache.as_ref().is_some_and(|c| c.prefetch);
    let Assembled {
        handler,
        resolver: admin_resolver,
        metrics,
    } = assemble(
        &config,
        lists.clone(),
        policy.clone(),
        drain.clone(),
        prefetch,
    )?;
    admin_resolver.spawn_failure_log(shutdown.clone());
    let handler = handler.with_querylog(match &config.querylog {
        Some(q) => Some(QueryLog::start(q, metrics.clone())?),
        None => None,
    });
    let listening = server::start(handler, &config.server, shutdown.clone())?;
    let (addrs, dot_addrs, doh_addrs) = (
        listening.dns.clone(),
        listening.dot.clone(),
        listening.doh.clone(),
    );

    // Reports: the block page's forms and the admin API take them through one desk; with
    // `[reports] forward_to` it spools them and delivers them to the central.
    let desk = Arc::new(
        crate::admin::open_desk(&config, lists.clone()).map_err(crate::admin::AdminError::from)?,
    );
    desk.spawn(shutdown.clone())
        .map_err(crate::admin::AdminError::from)?;

    let blockpage_addrs = match &config.blockpage {
        Some(bp) => {
            let (listeners, addrs) = bind_http(&bp.listen, "block page").await?;
            let forms = blockpage::forms::Forms {
                desk: desk.clone(),
                csrf: blockpage::csrf::Csrf::new(),
                limiter: crate::admin::limit::ReportLimiter::new(
                    config.admin.as_ref().map_or(10, |a| a.reports_per_hour),
                ),
            };
            let page = BlockPage::new(lists.clone(), policy.clone(), bp.review_url.clone())
                .with_forms(forms);
            blockpage::spawn(listeners, page, shutdown.clone());
            tracing::info!(?addrs, "block page listening");
            addrs
        }
        None => Vec::new(),
    };

    let published = match &config.publish {
        Some(settings) => Some(open_published(&config, settings, &lists).await?),
        None => None,
    };
    // A central's RPZ primary serves the same published lists (AXFR/IXFR/NOTIFY).
    let mut rpz_stats = None;
    if let (Some(settings), Some((store, _))) = (&config.publish, &published)
        && !settings.xfr_listen.is_empty()
    {
        let lists: Arc<dyn crate::publish::PublishedLists> = store.clone();
        let primary = crate::publish::rpz::serve(settings, lists, shutdown.clone())
            .await
            .map_err(|e| StartError::Publish(e.to_string()))?;
        tracing::info!(addrs = ?primary.addrs, "RPZ primary listening");
        rpz_stats = Some(primary.stats);
    }
    // The admin API's stores serve the console too: built when either is configured.
    let admin_addrs = if config.admin.is_some() || config.console.is_some() {
        let admin = crate::admin::Admin::new(
            lists.clone(),
            policy.clone(),
            metrics.clone(),
            admin_resolver.clone(),
            config.clone(),
            pipeline.clone(),
            profile_store.clone(),
            desk.clone(),
        )?
        .with_exceptions(exceptions);
        let admin = match rpz_stats {
            Some(stats) => admin.with_rpz_stats(stats),
            None => admin,
        };
        let admin = Arc::new(match &published {
            Some((store, feed)) => admin.with_publish(store.clone(), feed.clone()),
            None => admin,
        });
        let (listeners, addrs) = match &config.admin {
            Some(a) => {
                let (listeners, addrs) = bind_http(&a.listen, "admin API").await?;
                tracing::info!(?addrs, "admin API listening");
                (listeners, addrs)
            }
            None => (Vec::new(), Vec::new()),
        };
        (addrs, Some((listeners, admin)))
    } else {
        (Vec::new(), None)
    };
    let (admin_addrs, admin) = admin_addrs;
    let reloader = reload::Reloader::new(
        config.clone(),
        clock,
        reload::Parts {
            policy: policy.clone(),
            resolver: admin_resolver,
            pipeline: pipeline.clone(),
            admin: admin.as_ref().map(|(_, a)| a.clone()),
            metrics: metrics.clone(),
            profiles: Some((profile_store, snapshot)),
        },
    );
    if let Some(changes) = changes {
        reload::spawn_profile_follower(reloader.clone(), changes, shutdown.clone());
    }
    let mut console_addrs = Vec::new();
    if let Some((listeners, admin)) = admin {
        admin.set_reloader(reloader.for_admin());
        if let Some(settings) = &config.console {
            console_addrs = console::start(
                &config,
                settings,
                admin.clone(),
                &doh_addrs,
                shutdown.clone(),
            )
            .await?;
        }
        if config.admin.is_some() {
            crate::admin::spawn(listeners, admin, shutdown.clone());
        }
    }
    if let Err(error) = reload::spawn_watcher(reloader.clone(), shutdown.clone()) {
        tracing::warn!(%error, "cannot watch the config file; reload with SIGHUP or the API");
    }
    let token = shutdown.clone();
    let grace = config.server.shutdown_grace;
    let task = tokio::spawn(async move {
        let hup = reload::spawn_sighup(reloader, token.clone());
        token.cancelled().await;
        let left = drain.close_and_wait(grace).await;
        tracing::info!(unfinished = left, "draining done, closing listeners");
        // The last answers may still be in the transports' tasks on their way to the
        // socket; closing at once could drop them with it. Give them a beat.
        tokio::time::sleep(FLUSH_BEFORE_CLOSE).await;
        if let Some(h) = hup {
            h.abort();
        }
    });
    Ok(Running {
        addrs,
        blockpage_addrs,
        dot_addrs,
        doh_addrs,
        admin_addrs,
        console_addrs,
        lists,
        shutdown,
        feeds,
        published: published.map(|(store, _)| store),
        task,
        _stop_on_drop: stop_on_drop,
    })
}

/// A central's published store (`state_dir/published.sqlite`, every configured category
/// and the allowlist publishable) and its signed feed; the signing key is tried now, so a
/// missing one is logged at start (publishing waits for it, never unsigned).
async fn open_published(
    config: &Config,
    settings: &crate::publish::PublishConfig,
    lists: &LiveBlocklist,
) -> Result<
    (
        Arc<crate::publish::PublishedStore>,
        Arc<crate::publish::SignedFeed>,
    ),
    StartError,
> {
    use crate::publish::{ALLOW_LIST, PublishedStore, SignedFeed, store::FILE_NAME};
    let path = config.lists.feeds.state_dir.join(FILE_NAME);
    let mut names = crate::admin::categories(config, &lists.current());
    names.push(ALLOW_LIST.to_owned());
    let keep = settings.journal_keep;
    let store = tokio::task::spawn_blocking(move || {
        let store = PublishedStore::open(&path, keep)?;
        store.ensure_lists(&names)?;
        Ok::<_, crate::publish::StoreError>(store)
    })
    .await
    .map_err(|e| StartError::Listen(std::io::Error::other(e)))?
    .map_err(|e| StartError::Publish(e.to_string()))?;
    let store = Arc::new(store);
    let feed = Arc::new(SignedFeed::new(
        store.clone(),
        settings.minisign_key_file.clone(),
        store.store_id().to_owned(),
    ));
    feed.check_key();
    tracing::info!(path = %store.path().display(), "published lists open");
    Ok((store, feed))
}

/// SIGTERM and SIGINT, caught from the moment this is made.
///
/// Made before [`start`] opens the sockets: a stop signal that arrives once the resolver
/// answers must be a graceful stop, not the default action (CI saw exit status 143 when the
/// handler was installed only after the first answers went out).
pub struct ShutdownSignal {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    /// Installs the handlers now (inside a tokio runtime).
    pub fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves when SIGTERM or Ctrl-C arrives.
    pub async fn wait(mut self) {
        let term = async {
            match self.term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let int = async {
            match self.int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = term => tracing::info!("SIGTERM: shutting down"),
            _ = int => tracing::info!("interrupted: shutting down"),
        }
    }
}
