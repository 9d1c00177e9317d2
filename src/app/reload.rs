//! Live config reload: SIGHUP, `POST /v1/reload` and an edit of the config file reread the
//! whole file, check it, build what serves from it and swap that in; queries in flight
//! finish with what they started with.
//!
//! What applies live: the client groups and their policies (categories, own allow/deny
//! lists, SafeSearch, schedules, blocking mode and TTLs), allowed clients, rate limits and
//! the refuse action (one new [`Policy`], swapped whole), the upstream servers, their TLS
//! CA and the timeout, the cache's TTL clamps, and `[admin]`'s tokens, portals and report
//! quotas. The listeners and everything else read once at start (see [`restart_keys`])
//! keep their old values: the rest of the reload applies, and a warning names those keys
//! ("restart needed"), in the log and in the API's answer, on every reload until a restart.
//!
//! An invalid file (bad TOML, an unknown key, a bad CIDR, a list or SafeSearch file that
//! cannot be built) changes nothing: the error names file, line and key, is logged, is the
//! API's answer (422), is counted (`kidsafe_config_reloads_total{result="invalid"}`) and is
//! written to `config-reload.json` in the state directory for `kidsafe-dns status`.
//!
//! After the config, a reload still asks the feed pipeline to recompile changed list
//! sources and groups' lists, as before (the pipeline stays the one writer of the lists; it
//! also compiles the own lists of groups a reload adds or changes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::build::{StartError, build_policy_with};
use super::profiles::{snapshot, with_profiles};
use crate::admin::{Admin, ReloadFailed};
use crate::config::Config;
use crate::feed::pipeline::{GroupList, Pipeline};
use crate::metrics::Metrics;
use crate::policy::decide::{Clock, Policy};
use crate::profiles::{ProfileStore, ProfilesSnapshot};
use crate::upstream::Forwarder;
use crate::upstream::resolve::Resolver;

/// How long the profile follower waits after a change for the rest of a burst (a bulk
/// upload, a script creating a profile then its identities) before rebuilding once.
const PROFILE_SETTLE: Duration = Duration::from_millis(20);

/// How long the file watcher waits after a change for the rest of an editor's writes.
const SETTLE: Duration = Duration::from_millis(200);

/// What a config reload swaps, and what it counts.
pub struct Reloader {
    path: PathBuf,
    clock: Clock,
    /// The config the resolver started with: what the restart-only keys are compared to.
    started: Config,
    /// The config last applied; the lock also makes reloads take turns.
    current: tokio::sync::Mutex<Config>,
    policy: Arc<ArcSwap<Policy>>,
    resolver: Resolver,
    pipeline: Pipeline,
    admin: Option<Arc<Admin>>,
    metrics: Arc<Metrics>,
    ok: AtomicU64,
    invalid: AtomicU64,
    /// The stored profiles, served as client groups beside the config file's.
    profiles: Option<Arc<std::sync::Mutex<ProfileStore>>>,
    /// The profiles snapshot last applied: what a config reload keeps serving when the
    /// store cannot be read.
    applied_profiles: std::sync::Mutex<Arc<ProfilesSnapshot>>,
    /// Profile changes applied and refused since start.
    profile_counts: [AtomicU64; 2],
}

/// The parts of the running resolver a reload swaps.
pub struct Parts {
    /// The policy every transport, the block page and the admin API read.
    pub policy: Arc<ArcSwap<Policy>>,
    /// The resolver (its forwarder and cache are shared by every clone).
    pub resolver: Resolver,
    /// The feed pipeline (groups' own lists, the list reload after the config).
    pub pipeline: Pipeline,
    /// The admin API, when there is one (`[admin]` settings).
    pub admin: Option<Arc<Admin>>,
    /// Where reloads are counted.
    pub metrics: Arc<Metrics>,
    /// The profile store, and the snapshot the starting policy was built with.
    pub profiles: Option<(Arc<std::sync::Mutex<ProfileStore>>, ProfilesSnapshot)>,
}

/// A reload that applied.
#[derive(Clone, Debug)]
pub struct Applied {
    /// The config file.
    pub file: PathBuf,
    /// Keys that changed but need a restart; the rest applied.
    pub restart_needed: Vec<String>,
}

/// What `kidsafe-dns status` reads: `config-reload.json` in the state directory.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReloadState {
    /// Reloads that applied since start.
    pub ok: u64,
    /// Reloads refused (invalid config) since start.
    pub invalid: u64,
    /// When the last reload applied (Unix seconds).
    pub last_success_unix: Option<u64>,
    /// When the last reload was refused (Unix seconds), and why.
    pub last_error_unix: Option<u64>,
    /// The last refused reload's error (file, line, key).
    pub last_error: Option<String>,
    /// Keys the last applied reload could not change without a restart.
    pub restart_needed: Vec<String>,
}

impl Reloader {
    /// A reloader for the resolver started from `config` (read from `config.path`).
    pub fn new(config: Config, clock: Clock, parts: Parts) -> Arc<Reloader> {
        let (profiles, first) = match parts.profiles {
            Some((store, snap)) => (Some(store), snap),
            None => (None, ProfilesSnapshot::default()),
        };
        let me = Reloader {
            profiles,
            applied_profiles: std::sync::Mutex::new(Arc::new(first)),
            profile_counts: Default::default(),
            path: config.path.clone(),
            clock,
            started: config.clone(),
            current: tokio::sync::Mutex::new(config),
            policy: parts.policy,
            resolver: parts.resolver,
            pipeline: parts.pipeline,
            admin: parts.admin,
            metrics: parts.metrics,
            ok: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
        };
        me.count(None);
        me.count_profiles(None);
        Arc::new(me)
    }

    /// Rebuilds the policy with the profile store's current snapshot (the follower
    /// calls it after each change) and swaps it in; the config file's part stays as last
    /// applied. A policy that cannot be built (a profile's list refused) keeps the one
    /// serving; that is logged and counted.
    pub async fn reload_profiles(&self) {
        let current = self.current.lock().await;
        match self.install(&current).await {
            Ok(generation) => {
                tracing::info!(generation, "profile changes applied");
                self.count_profiles(Some(true));
            }
            Err(error) => {
                tracing::error!(%error, "profile changes not applied; the policy before keeps serving");
                self.count_profiles(Some(false));
            }
        }
    }

    /// Rereads the config file and applies it (see the module doc). `Err` is the error
    /// (file, line, key); the config before keeps serving.
    pub async fn reload_config(&self, why: &str) -> Result<Applied, String> {
        let mut current = self.current.lock().await;
        let result = self.apply(why).await;
        match result {
            Ok((config, applied)) => {
                *current = config;
                if applied.restart_needed.is_empty() {
                    tracing::info!(file = %self.path.display(), %why, "config reloaded");
                } else {
                    tracing::warn!(
                        file = %self.path.display(),
                        %why,
                        restart_needed = %applied.restart_needed.join(", "),
                        "config reloaded, except keys that need a restart (they keep their old values)"
                    );
                }
                self.record(&current, Ok(&applied));
                Ok(applied)
            }
            Err(error) => {
                tracing::error!(%why, %error, "config reload refused; the config before keeps serving");
                self.record(&current, Err(&error));
                Err(error)
            }
        }
    }

    /// The config reload, then the list reload as before (SIGHUP, the file watcher).
    /// `false` when the resolver is shutting down.
    pub async fn reload_all(&self, why: &str) -> bool {
        let _ = self.reload_config(why).await;
        self.pipeline.reload(why, false, true).await.is_some()
    }

    /// What `POST /v1/reload` runs first ([`Admin::set_reloader`]).
    pub fn for_admin(self: &Arc<Self>) -> crate::admin::ConfigReload {
        let me = Arc::clone(self);
        Arc::new(move || -> crate::admin::ReloadFuture {
            let me = Arc::clone(&me);
            Box::pin(async move {
                match me.reload_config("API").await {
                    Ok(applied) => Ok(report(Ok(&applied), &me.path)),
                    Err(error) => Err(ReloadFailed {
                        report: report(Err(&error), &me.path),
                        error,
                    }),
                }
            })
        })
    }

    /// Reads, checks and builds `self.path`'s config and swaps it in; the new config and
    /// what applied, or the error.
    async fn apply(&self, why: &str) -> Result<(Config, Applied), String> {
        tracing::info!(file = %self.path.display(), %why, "reloading the config");
        let path = self.path.clone();
        let new = tokio::task::spawn_blocking(move || crate::config::load(&path))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut restart_needed = restart_keys(&self.started, &new);
        let up = &new.upstream;
        let forwarder = Forwarder::new(&up.servers, up.timeout, up.tls_ca.as_deref())
            .map_err(|e| format!("{}: upstream: {e}", self.path.display()))?;
        self.install(&new).await?;
        self.resolver.set_forwarder(forwarder);
        if let (Some(cache), Some(settings)) = (self.resolver.cache(), &new.cache) {
            // Size and serve-stale changes are in `restart_needed` already.
            let _ = cache.set_ttls(&settings.cache);
        }
        if let Some(admin) = &self.admin {
            admin.apply(&new);
        }
        restart_needed.sort();
        restart_needed.dedup();
        let applied = Applied {
            file: self.path.clone(),
            restart_needed,
        };
        Ok((new, applied))
    }

    /// Builds the policy of config `file` plus the stored profiles (a fresh snapshot; the
    /// last applied when the store cannot be read) and swaps it in, with the groups' own
    /// lists compiled by the pipeline. The store's generation that applied, or the error.
    async fn install(&self, file: &Config) -> Result<u64, String> {
        let snap = match &self.profiles {
            Some(store) => match snapshot(store).await {
                Ok(snap) => Arc::new(snap),
                Err(error) => {
                    tracing::error!(%error, "cannot read the profile store; serving the profiles read before");
                    self.last_profiles()
                }
            },
            None => self.last_profiles(),
        };
        let serving = with_profiles(file, &snap);
        let groups = serving.policy.groups.clone();
        let shutting_down = || "the resolver is shutting down".to_owned();
        let lives = self
            .pipeline
            .regroup(groups.clone())
            .await
            .ok_or_else(shutting_down)?
            .map_err(|(group, refusal)| {
                format!("{}: group `{group}`: {refusal}", self.path.display())
            })?;
        let (clock, own) = (self.clock.clone(), lives.clone());
        let built = tokio::task::spawn_blocking(move || {
            let mut own = own.into_iter();
            build_policy_with(&serving, clock, |_| {
                Ok::<_, StartError>(own.next().flatten())
            })
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{}: {e}", self.path.display()))?;
        // Everything is built: swap. A query already decided keeps the policy it holds.
        let old = self.policy.load();
        let policy = built
            .counting_on_from(&old)
            .with_subscribers(old.subscribers().cloned())
            .with_subscriber_overlay(&snap.subscribers);
        self.policy.store(Arc::new(policy));
        let lists = groups
            .into_iter()
            .zip(lives)
            .filter_map(|(group, live)| Some(GroupList { group, live: live? }))
            .collect();
        self.pipeline.set_groups(lists);
        let generation = snap.generation;
        if let Ok(mut last) = self.applied_profiles.lock() {
            *last = snap;
        }
        Ok(generation)
    }

    /// The profiles snapshot last applied.
    fn last_profiles(&self) -> Arc<ProfilesSnapshot> {
        match self.applied_profiles.lock() {
            Ok(last) => Arc::clone(&last),
            Err(_) => Arc::default(),
        }
    }

    /// Counts a profile change applied or refused (`None`: none yet) in the metrics.
    fn count_profiles(&self, result: Option<bool>) {
        if let Some(ok) = result {
            self.profile_counts[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
        }
        let total = "kidsafe_profile_changes_applied_total";
        for (i, result) in ["ok", "failed"].into_iter().enumerate() {
            let n = self.profile_counts[i].load(Ordering::Relaxed);
            self.metrics.counter_total(total, &[("result", result)], n);
        }
        let generation = self.last_profiles().generation;
        self.metrics
            .gauge("kidsafe_profiles_generation", &[], generation as f64);
    }

    /// Counts a reload (`None`: none yet, so the series exist from the start) in the
    /// metrics.
    fn count(&self, result: Option<bool>) {
        match result {
            Some(true) => self.ok.fetch_add(1, Ordering::Relaxed),
            Some(false) => self.invalid.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        let m = &self.metrics;
        let total = "kidsafe_config_reloads_total";
        m.counter_total(total, &[("result", "ok")], self.ok.load(Ordering::Relaxed));
        let invalid = self.invalid.load(Ordering::Relaxed);
        m.counter_total(total, &[("result", "invalid")], invalid);
        if result == Some(true) {
            let now = crate::clock::now_unix() as f64;
            m.gauge(
                "kidsafe_config_last_reload_success_timestamp_seconds",
                &[],
                now,
            );
        }
        let failing = if result == Some(false) { 1.0 } else { 0.0 };
        if result.is_some() {
            m.gauge("kidsafe_config_last_reload_failed", &[], failing);
        }
    }

    /// Counts the outcome and writes it for `status`.
    fn record(&self, config: &Config, result: Result<&Applied, &String>) {
        self.count(Some(result.is_ok()));
        let path = state_path(config);
        let mut state: ReloadState = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        state.ok = self.ok.load(Ordering::Relaxed);
        state.invalid = self.invalid.load(Ordering::Relaxed);
        let now = crate::clock::now_unix();
        match result {
            Ok(applied) => {
                state.last_success_unix = Some(now);
                state.restart_needed = applied.restart_needed.clone();
            }
            Err(error) => {
                state.last_error_unix = Some(now);
                state.last_error = Some(error.clone());
            }
        }
        let write = serde_json::to_vec_pretty(&state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&path, bytes));
        if let Err(error) = write {
            tracing::warn!(path = %path.display(), %error, "cannot write the config reload state");
        }
    }
}

/// Whether the cache is on in both or neither, and only its TTL clamps may differ (they
/// apply live).
fn cache_sized_only(old: &Config, new: &Config) -> bool {
    match (&old.cache, &new.cache) {
        (Some(a), Some(b)) => {
            a.prefetch == b.prefetch
                && a.cache.max_entries == b.cache.max_entries
                && a.cache.serve_stale == b.cache.serve_stale
                && a.cache.stale_max == b.cache.stale_max
        }
        (None, None) => true,
        _ => false,
    }
}

/// The JSON `POST /v1/reload` reports under `"config"`.
fn report(result: Result<&Applied, &String>, file: &Path) -> serde_json::Value {
    match result {
        Ok(applied) if applied.restart_needed.is_empty() => json!({
            "result": "ok",
            "file": file.display().to_string(),
            "restart_needed": [],
        }),
        Ok(applied) => json!({
            "result": "ok",
            "file": file.display().to_string(),
            "restart_needed": applied.restart_needed,
            "warning": format!(
                "applied, except {}: a restart is needed for those (they keep their old values)",
                applied.restart_needed.join(", ")
            ),
        }),
        Err(error) => json!({
            "result": "invalid",
            "file": file.display().to_string(),
            "error": error,
        }),
    }
}

/// The keys that changed from `started` to `new` but are read once at start, so only a
/// restart applies them: the listeners (DNS, DoT/DoH and their certificate, block page,
/// admin API), threads, TCP limits, PROXY protocol peers, CHAOS answers, the shutdown
/// grace, `[lists]` (sources, feeds, the compiled path: feeds are scheduled at start),
/// the query log, SafeSearch's CNAME TTL, and the cache's size and serve-stale settings.
pub fn restart_keys(started: &Config, new: &Config) -> Vec<String> {
    // The settings types are compared by their `Debug` text: it shows every field.
    fn differs<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") != format!("{b:?}")
    }
    let (a, b) = (&started.server, &new.server);
    let mut keys: Vec<&str> = Vec::new();
    let mut check = |changed: bool, key| {
        if changed {
            keys.push(key);
        }
    };
    check(differs(&a.listen, &b.listen), "server.listen");
    check(differs(&a.tcp_idle, &b.tcp_idle), "server.tcp_idle_ms");
    check(
        differs(&a.shutdown_grace, &b.shutdown_grace),
        "server.shutdown_grace_ms",
    );
    check(a.threads != b.threads, "server.threads");
    check(
        a.tcp_max_connections != b.tcp_max_connections,
        "server.tcp_max_connections",
    );
    check(differs(&a.tls, &b.tls), "server.tls (DoT/DoH listeners)");
    check(
        differs(&a.proxy_protocol_from, &b.proxy_protocol_from),
        "server.proxy_protocol_from",
    );
    check(
        a.chaos_version != b.chaos_version || a.chaos_identity != b.chaos_identity,
        "server.chaos_*",
    );
    check(a.ddr_name != b.ddr_name, "server.ddr_name");
    check(differs(&started.lists, &new.lists), "lists");
    check(differs(&started.blockpage, &new.blockpage), "blockpage");
    let admin_listen = |c: &Config| c.admin.as_ref().map(|a| a.listen.clone());
    check(
        differs(&admin_listen(started), &admin_listen(new)),
        "admin.listen",
    );
    check(differs(&started.querylog, &new.querylog), "querylog");
    check(
        differs(&started.subscribers, &new.subscribers),
        "subscribers",
    );
    check(
        started.policy.safesearch_ttl != new.policy.safesearch_ttl,
        "safesearch_ttl",
    );
    check(!cache_sized_only(started, new), "cache");
    keys.into_iter().map(str::to_owned).collect()
}

/// Where the outcome of the last reloads is kept for `status`.
pub fn state_path(config: &Config) -> PathBuf {
    config.lists.feeds.state_dir.join("config-reload.json")
}

/// The `status` lines about config reloads (empty when none happened); `now` is the
/// current Unix time.
pub fn status_text(config: &Config, now: u64) -> String {
    let Some(state) = std::fs::read(state_path(config))
        .ok()
        .and_then(|b| serde_json::from_slice::<ReloadState>(&b).ok())
    else {
        return String::new();
    };
    let ago = |t: Option<u64>| match t {
        Some(t) => format!("{}s ago", now.saturating_sub(t)),
        None => "never".to_owned(),
    };
    let mut out = format!(
        "config reloads: {} applied (last {}), {} refused (last {})\n",
        state.ok,
        ago(state.last_success_unix),
        state.invalid,
        ago(state.last_error_unix)
    );
    if let Some(error) = &state.last_error
        && state.last_error_unix > state.last_success_unix
    {
        out.push_str(&format!(
            "  last reload refused, the config before keeps serving: {error}\n"
        ));
    }
    if !state.restart_needed.is_empty() {
        out.push_str(&format!(
            "  restart needed for: {}\n",
            state.restart_needed.join(", ")
        ));
    }
    out
}

/// SIGHUP: the config reload, then the list reload ([`Reloader::reload_all`]).
pub fn spawn_sighup(reloader: Arc<Reloader>, stop: CancellationToken) -> Option<JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).ok()?;
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                got = hup.recv() => if got.is_none() { break },
            }
            tracing::info!("SIGHUP: reloading the config and the lists");
            if !reloader.reload_all("SIGHUP").await {
                break;
            }
        }
    }))
}

/// Watches the config file until `stop`: a change to its contents reloads as SIGHUP does
/// (a burst of writes, e.g. an editor's write and rename, settles into one reload).
///
/// # Errors
/// The watcher could not be set up (no inotify, the directory is gone).
pub fn spawn_watcher(reloader: Arc<Reloader>, stop: CancellationToken) -> notify::Result<()> {
    use notify::{RecursiveMode, Watcher};
    let path = reloader.path.clone();
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(d) => d.to_owned(),
        None => PathBuf::from("."),
    };
    let Some(name) = path.file_name().map(ToOwned::to_owned) else {
        return Ok(());
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name() == Some(name.as_os_str()))
        {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let mut seen = std::fs::read(&path).ok();
    tokio::spawn(async move {
        let _watcher = watcher; // unwatched when dropped
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                got = rx.recv() => if got.is_none() { break },
            }
            tokio::time::sleep(SETTLE).await;
            while rx.try_recv().is_ok() {}
            let now = tokio::fs::read(&path).await.ok();
            // Touched, or half-written and gone for a moment: nothing to reload.
            if now.is_none() || now == seen {
                continue;
            }
            seen = now;
            tracing::info!(file = %path.display(), "config file changed");
            if !reloader.reload_all("config file changed").await {
                break;
            }
        }
    });
    Ok(())
}

/// Follows the store until `stop`: after each change (a burst settles into one), the
/// reloader rebuilds the policy with the new snapshot.
pub fn spawn_profile_follower(
    reloader: Arc<Reloader>,
    mut changes: tokio::sync::watch::Receiver<u64>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break },
            }
            tokio::time::sleep(PROFILE_SETTLE).await;
            changes.borrow_and_update();
            reloader.reload_profiles().await;
        }
    })
}
