//! Wiring: config → compiled list (compiling it first if the sources are newer) → loaded
//! list behind an `ArcSwap` → server, watcher and signal handlers, all stopped by one token.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::blockpage::{self, BlockPage};
use crate::config::{Config, GroupConfig};
use crate::lists::compile::ListSource;
use crate::lists::compile::{CompileError, InlineRules, compile};
use crate::lists::load::{Blocklist, LoadError};
use crate::lists::manifest::{self, Manifest};
use crate::lists::parse::Format;
use crate::lists::rule::Rule;
use crate::lists::swap::LiveBlocklist;
use crate::metrics::Metrics;
use crate::policy::decide::{Clock, GroupParts, Policy, system_clock};
use crate::policy::safesearch::{SafeSearch, SafeSearchError, YouTubeMode};
use crate::querylog::QueryLog;
use crate::server::{self, Handler};
use crate::shutdown::Drain;
use crate::upstream::Forwarder;
use crate::upstream::cache::ResponseCache;
use crate::upstream::resolve::Resolver;

/// Time the socket tasks get to send the last queued answers before the listeners close.
const FLUSH_BEFORE_CLOSE: Duration = Duration::from_millis(100);

/// Why the resolver could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Compiling the configured lists failed.
    #[error("compiling the lists failed: {0}")]
    Compile(#[from] CompileError),
    /// The compiled list could not be loaded.
    #[error("loading the compiled list failed: {0}")]
    Load(#[from] LoadError),
    /// No sources configured and no compiled list present.
    #[error("no compiled list at {} and no [[lists.source]] to build one from", .0.display())]
    NothingToServe(std::path::PathBuf),
    /// A listen address could not be bound.
    #[error("{0}")]
    Listen(#[from] std::io::Error),
    /// A group's own list could not be compiled.
    #[error("group `{group}`: {source}")]
    GroupList {
        /// The group.
        group: String,
        /// What failed.
        #[source]
        source: CompileError,
    },
    /// The SafeSearch data could not be read.
    #[error("SafeSearch data: {0}")]
    SafeSearch(#[from] SafeSearchError),
    /// Two groups claim the same network.
    #[error("client groups: {0}")]
    Groups(#[from] crate::policy::groups::GroupError),
    /// The admin API's report store could not be opened.
    #[error("{0}")]
    Reports(#[from] crate::admin::reports::ReportError),
    /// A DNS, DoT or DoH listener could not start.
    #[error("{0}")]
    Server(#[from] server::ListenError),
    /// TLS to the upstream resolvers cannot be set up.
    #[error("{0}")]
    UpstreamTls(#[from] crate::upstream::tls::TlsClientError),
}

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
    /// The serving blocklist (to inspect or reload).
    pub lists: Arc<LiveBlocklist>,
    /// Cancel to shut down gracefully.
    pub shutdown: CancellationToken,
    /// The list feeds (`None` without sources).
    pub feeds: Option<crate::feed::Feeds>,
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

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// True when there are sources to compile from and the compiled list is missing or
/// unreadable, was built from other sources than the configured ones (a list added, removed
/// or moved to another category), or is older than one of them. Other config edits
/// (threads, modes, ...) do not force a recompile.
pub fn needs_compile(config: &Config) -> bool {
    if config.lists.sources.is_empty() {
        return false;
    }
    let compiled = &config.lists.compiled;
    let manifest_path = manifest::path_for(compiled);
    let Some(built) = modified(&manifest_path).min(modified(compiled)) else {
        return true;
    };
    let Some(manifest) = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
    else {
        return true;
    };
    let available = config.lists.available_sources();
    let configured = available.iter().map(|s| (&s.category, &s.path));
    let built_from = manifest.sources.iter().map(|s| (&s.category, &s.path));
    if !configured.eq(built_from) {
        return true;
    }
    available
        .iter()
        .any(|s| modified(&s.path).is_none_or(|m| m > built))
}

/// Compiles the configured sources into `lists.compiled`, logging a summary per source.
///
/// # Errors
/// [`CompileError`]; the previous compiled file stays as it was.
pub fn compile_configured(config: &Config) -> Result<Manifest, CompileError> {
    let _lock = crate::feed::pipeline::compile_lock();
    compile(
        &config.lists.available_sources(),
        &InlineRules::default(),
        &config.lists.compiled,
        &mut |p| {
            if let crate::lists::compile::Progress::SourceDone(src, report) = p {
                tracing::info!(
                    path = %src.path.display(),
                    category = src.category.as_deref().unwrap_or("allow"),
                    format = %report.parse.format,
                    accepted = report.parse.accepted,
                    rejected = report.parse.rejected.values().sum::<u64>(),
                    unsupported = report.parse.unsupported,
                    "list read"
                );
            }
        },
    )
}

/// Compiles when needed, off the async threads. A failed compile with a compiled list
/// already on disk is logged and the old list is used: a broken source must not take
/// filtering down.
async fn refresh_compiled(config: &Config) -> Result<(), StartError> {
    if !needs_compile(config) {
        return Ok(());
    }
    let cfg = config.clone();
    let result = tokio::task::spawn_blocking(move || compile_configured(&cfg))
        .await
        .map_err(|e| StartError::Listen(std::io::Error::other(e)))?;
    match result {
        Ok(m) => {
            tracing::info!(serial = m.serial, entries = m.entries, "lists compiled");
            Ok(())
        }
        Err(error) if config.lists.compiled.exists() => {
            tracing::error!(%error, "recompiling failed, serving the previous compiled list");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Where the compiled own list of `group` lives: beside the main compiled list.
pub fn group_list_path(config: &Config, group: &str) -> std::path::PathBuf {
    let safe: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = config.lists.compiled.as_os_str().to_owned();
    name.push(format!(".group-{safe}"));
    name.into()
}

/// Compiles a group's own allow/deny entries (inline and files) into its FST.
///
/// # Errors
/// A file that cannot be read; the group is named by the caller.
pub fn compile_group(config: &Config, group: &GroupConfig) -> Result<Manifest, CompileError> {
    let mut sources: Vec<ListSource> = group
        .deny_paths
        .iter()
        .map(|p| ListSource {
            category: Some("deny".into()),
            path: p.clone(),
            format: Format::Auto,
        })
        .collect();
    sources.extend(group.allow_paths.iter().map(|p| ListSource {
        category: None,
        path: p.clone(),
        format: Format::Auto,
    }));
    let mut inline = InlineRules::default();
    for name in &group.deny {
        if let Ok(n) = crate::lists::normalize::normalize(name) {
            inline
                .rules
                .push((Some("deny".into()), Rule::block(n.into_owned())));
        }
    }
    for name in &group.allow {
        if let Ok(n) = crate::lists::normalize::normalize(name) {
            inline.rules.push((None, Rule::allow(n.into_owned())));
        }
    }
    compile(
        &sources,
        &inline,
        &group_list_path(config, &group.name),
        &mut |_| {},
    )
}

/// Builds the per-client policy: compiles and loads each group's own list, loads SafeSearch
/// data once per YouTube mode.
pub fn build_policy(config: &Config, clock: Clock) -> Result<Policy, StartError> {
    let mut safesearch: Vec<(YouTubeMode, Arc<SafeSearch>)> = Vec::new();
    let mut parts = Vec::with_capacity(config.policy.groups.len());
    for group in &config.policy.groups {
        let own = if group.has_own_lists() {
            compile_group(config, group).map_err(|source| StartError::GroupList {
                group: group.name.clone(),
                source,
            })?;
            let path = group_list_path(config, &group.name);
            let list = Blocklist::open(&path)?;
            Some(Arc::new(LiveBlocklist::new(list, path)))
        } else {
            None
        };
        let ss = if group.safesearch {
            match safesearch.iter().find(|(m, _)| *m == group.youtube) {
                Some((_, s)) => Some(s.clone()),
                None => {
                    let s = Arc::new(match &config.policy.safesearch_dir {
                        Some(dir) => SafeSearch::load(dir, group.youtube)?,
                        None => SafeSearch::builtin(group.youtube)?,
                    });
                    safesearch.push((group.youtube, s.clone()));
                    Some(s)
                }
            }
        } else {
            None
        };
        parts.push(GroupParts {
            own,
            safesearch: ss,
        });
    }
    Ok(Policy::new(&config.policy, &config.blocking, parts, clock)?)
}

/// The request handler `config` describes, without sockets, feeds or signal handlers:
/// compiles the list if needed, loads it and builds the policy (for the fuzzer, and to
/// embed the decision path elsewhere). Queries that need upstream go to
/// `upstream.servers` when finished inside a tokio runtime.
///
/// # Errors
/// [`StartError`] for a list that cannot be compiled or loaded, or a bad policy.
pub fn offline_handler(config: &Config) -> Result<Handler, StartError> {
    if needs_compile(config) {
        compile_configured(config)?;
    }
    let path = config.lists.compiled.clone();
    let lists = Arc::new(LiveBlocklist::new(Blocklist::open(&path)?, path));
    let policy = Arc::new(build_policy(config, system_clock())?);
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
    let scratch = tempfile::Builder::new()
        .prefix("kidsafe-dns-check-")
        .tempdir()
        .map_err(StartError::Listen)?;
    let mut trial = config.clone();
    // Group lists are compiled beside the main list: into the scratch directory too.
    trial.lists.compiled = scratch.path().join("check.fst");
    let fetched_later = config.lists.available_sources().is_empty();
    let (entries, compiled) = if needs_compile(config) && !fetched_later {
        (compile_configured(&trial)?.entries, true)
    } else if config.lists.compiled.exists() {
        (Blocklist::open(&config.lists.compiled)?.len() as u64, false)
    } else if config.lists.sources.is_empty() {
        return Err(StartError::NothingToServe(config.lists.compiled.clone()));
    } else {
        // Only feeds, none fetched yet: `serve` downloads them first.
        (0, false)
    };
    let policy = build_policy(&trial, system_clock())?;
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
    policy: Arc<Policy>,
    drain: Arc<Drain>,
    prefetch: bool,
) -> Result<Assembled, StartError> {
    let names: Vec<String> = policy.groups().iter().map(|g| g.name.clone()).collect();
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
    });
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
    crate::feed::bootstrap(&config).await;
    refresh_compiled(&config).await?;
    let path = config.lists.compiled.clone();
    if !path.exists() {
        return Err(StartError::NothingToServe(path));
    }
    let p = path.clone();
    let list = tokio::task::spawn_blocking(move || Blocklist::open(&p))
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

    let feeds = crate::feed::spawn(&config, lists.clone(), shutdown.clone()).await;

    let drain = Arc::new(Drain::default());
    let cfg = config.clone();
    let policy = tokio::task::spawn_blocking(move || build_policy(&cfg, clock))
        .await
        .map_err(|e| StartError::Listen(std::io::Error::other(e)))??;
    let policy = Arc::new(policy);
    policy.spawn_refusal_log(shutdown.clone());
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

    let blockpage_addrs = match &config.blockpage {
        Some(bp) => {
            let (listeners, addrs) = bind_http(&bp.listen, "block page").await?;
            let page = BlockPage::new(lists.clone(), policy.clone(), bp.review_url.clone());
            blockpage::spawn(listeners, page, shutdown.clone());
            tracing::info!(?addrs, "block page listening");
            addrs
        }
        None => Vec::new(),
    };

    let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(4);
    let admin_addrs = match &config.admin {
        Some(a) => {
            let (listeners, addrs) = bind_http(&a.listen, "admin API").await?;
            let admin = crate::admin::Admin::new(
                lists.clone(),
                policy.clone(),
                metrics.clone(),
                admin_resolver,
                config.clone(),
                reload_tx,
            )?;
            crate::admin::spawn(listeners, admin, shutdown.clone());
            tracing::info!(?addrs, "admin API listening");
            addrs
        }
        None => Vec::new(),
    };
    let token = shutdown.clone();
    let grace = config.server.shutdown_grace;
    let hup_lists = lists.clone();
    let hup_policy = policy.clone();
    let hup_config = config.clone();
    let task = tokio::spawn(async move {
        let hup = spawn_reloader(hup_config, hup_lists, hup_policy, reload_rx, token.clone());
        token.cancelled().await;
        let left = drain.close_and_wait(grace).await;
        tracing::info!(unfinished = left, "draining done, closing listeners");
        // The last answers are queued in hickory's socket tasks, which flush them on their
        // next poll; cancelling at once could drop them with the socket. Give them a beat.
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
        lists,
        shutdown,
        feeds,
        task,
        _stop_on_drop: stop_on_drop,
    })
}

/// SIGHUP or `POST /v1/reload`: recompile if a source changed, then reload the compiled
/// list and the groups' own lists.
fn spawn_reloader(
    config: Config,
    lists: Arc<LiveBlocklist>,
    policy: Arc<Policy>,
    mut api: tokio::sync::mpsc::Receiver<crate::admin::ReloadRequest>,
    stop: CancellationToken,
) -> Option<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).ok()?;
    Some(tokio::spawn(async move {
        // Without [admin] the sender is gone at once: stop polling the channel then.
        let mut api_open = true;
        loop {
            let reply = tokio::select! {
                _ = stop.cancelled() => break,
                got = hup.recv() => if got.is_none() { break } else { None },
                req = api.recv(), if api_open => match req {
                    Some(r) => Some(r),
                    None => {
                        api_open = false;
                        continue;
                    }
                },
            };
            tracing::info!(api = reply.is_some(), "reload: refreshing lists");
            if let Err(error) = refresh_compiled(&config).await {
                tracing::error!(%error, "SIGHUP refresh failed");
            }
            lists.reload_logged("reload").await;
            // Groups' own lists: recompile (they are small) and swap.
            for (group, live) in config.policy.groups.iter().zip(policy.groups()) {
                let Some(own) = &live.own else { continue };
                let (cfg, g) = (config.clone(), group.clone());
                match tokio::task::spawn_blocking(move || compile_group(&cfg, &g)).await {
                    Ok(Ok(_)) => {
                        own.reload_logged("reload").await;
                    }
                    Ok(Err(error)) => {
                        tracing::error!(group = %group.name, %error, "group list recompile failed")
                    }
                    Err(error) => tracing::error!(%error, "group list recompile panicked"),
                }
            }
            if let Some(reply) = reply {
                let list = lists.current();
                let _ = reply.send(crate::admin::ReloadDone {
                    serial: list.manifest().serial,
                    entries: list.len() as u64,
                });
            }
        }
    }))
}

/// Resolves when SIGTERM or Ctrl-C arrives.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
    }
}
