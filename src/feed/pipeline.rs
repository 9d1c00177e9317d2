//! The compile stage every update goes through: coalesce a burst of changes, compile the
//! sources (with the new candidate copies in place of the stored ones) into a staging
//! file beside `lists.compiled`, check it against the serving list, validate it, then
//! commit the candidates, install the staging files over the compiled ones (FST, filter,
//! manifest last) and swap the new list in.
//!
//! Nothing reaches `lists.compiled` that did not pass every check, so the file watcher in
//! [`crate::lists::swap`] and a restart only ever see good lists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::ListsConfig;
use crate::feed::guard::{Guard, Refusal, check_shrink};
use crate::feed::state::{StateStore, now_unix, sync_parent, write_atomic};
use crate::lists::compile::{InlineRules, ListSource, compile};
use crate::lists::load::Blocklist;
use crate::lists::manifest::{self, Manifest};
use crate::lists::swap::{LiveBlocklist, Reloaded};

/// How long the compile stage waits after the first change for others to join it.
pub const SETTLE: Duration = Duration::from_millis(150);

/// Held by anything that writes `lists.compiled`, so two compiles never interleave their
/// renames.
pub fn compile_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A new list that is serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    /// Its manifest serial.
    pub serial: u64,
    /// Its entries.
    pub entries: u64,
}

enum Request {
    /// Source `index` has a new copy at `file`, waiting for the verdict.
    Candidate {
        index: usize,
        file: PathBuf,
        done: oneshot::Sender<Result<Installed, Refusal>>,
    },
    /// A `path` source changed on disk.
    Rebuild { why: String },
}

/// Handle to the compile stage.
#[derive(Clone, Debug)]
pub struct Pipeline {
    tx: mpsc::UnboundedSender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Candidate { index, file, .. } => f
                .debug_struct("Candidate")
                .field("index", index)
                .field("file", file)
                .finish(),
            Request::Rebuild { why } => f.debug_struct("Rebuild").field("why", why).finish(),
        }
    }
}

struct Ctx {
    lists: ListsConfig,
    /// `None` before anything serves (the first fetch at start): candidates are then only
    /// stored, and the start-up compile picks them up.
    live: Option<Arc<LiveBlocklist>>,
    store: Arc<StateStore>,
}

impl Pipeline {
    /// Starts the compile stage; it runs until `stop` is cancelled. Without a `live` list
    /// (before the resolver serves) accepted candidates are stored but not compiled.
    pub fn spawn(
        lists: ListsConfig,
        live: Option<Arc<LiveBlocklist>>,
        store: Arc<StateStore>,
        settle: Duration,
        stop: CancellationToken,
    ) -> Pipeline {
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(Ctx { lists, live, store });
        tokio::spawn(run(ctx, rx, settle, stop));
        Pipeline { tx }
    }

    /// Offers source `index`'s new copy at `file`; resolves once it is serving or refused.
    /// The file is moved to the source's stored copy on success and removed on refusal.
    pub async fn submit(&self, index: usize, file: PathBuf) -> Result<Installed, Refusal> {
        let (done, verdict) = oneshot::channel();
        let stopped = || Refusal::new(Guard::Compile, "the resolver is shutting down");
        self.tx
            .send(Request::Candidate {
                index,
                file: file.clone(),
                done,
            })
            .map_err(|_| stopped())?;
        let result = verdict.await.unwrap_or_else(|_| Err(stopped()));
        if result.is_err() {
            let _ = std::fs::remove_file(&file);
        }
        result
    }

    /// Asks for a recompile of the current sources (a `path` source changed).
    pub fn rebuild(&self, why: impl Into<String>) {
        let _ = self.tx.send(Request::Rebuild { why: why.into() });
    }
}

async fn run(
    ctx: Arc<Ctx>,
    mut rx: mpsc::UnboundedReceiver<Request>,
    settle: Duration,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => break,
            got = rx.recv() => match got { Some(r) => r, None => break },
        };
        // Coalesce: whatever arrives while we settle goes into the same compile.
        tokio::time::sleep(settle).await;
        let mut batch = vec![first];
        while let Ok(r) = rx.try_recv() {
            batch.push(r);
        }
        let mut candidates = HashMap::new();
        let mut waiters = Vec::new();
        let mut whys = Vec::new();
        for request in batch {
            match request {
                Request::Candidate { index, file, done } => {
                    candidates.insert(index, file);
                    waiters.push(done);
                }
                Request::Rebuild { why } => whys.push(why),
            }
        }
        let result = build_and_swap(&ctx, candidates, &whys).await;
        for done in waiters {
            let _ = done.send(result.clone());
        }
    }
}

async fn build_and_swap(
    ctx: &Arc<Ctx>,
    candidates: HashMap<usize, PathBuf>,
    whys: &[String],
) -> Result<Installed, Refusal> {
    let Some(live) = ctx.live.clone() else {
        return store_only(&ctx.lists, &candidates);
    };
    let started = Instant::now();
    let names: Vec<&str> = candidates
        .keys()
        .filter_map(|i| ctx.lists.feeds.sources.get(*i))
        .map(|s| s.name.as_str())
        .collect();
    let names = names.join(",");
    let (c, l) = (ctx.clone(), live.clone());
    let built = tokio::task::spawn_blocking(move || build(&c, &l, &candidates))
        .await
        .unwrap_or_else(|e| {
            Err(Refusal::new(
                Guard::Compile,
                format!("compile panicked: {e}"),
            ))
        });
    let result = match built {
        Ok(manifest) => match live.reload().await {
            Ok(Reloaded::Swapped(serial) | Reloaded::Unchanged(serial)) => {
                record_path_sources(ctx, &manifest);
                Ok(Installed {
                    serial,
                    entries: manifest.entries,
                })
            }
            Err(e) => Err(Refusal::new(
                Guard::Compile,
                format!("the installed list did not load: {e}"),
            )),
        },
        Err(refusal) => Err(refusal),
    };
    match &result {
        Ok(installed) => {
            tracing::info!(
                sources = %names,
                changed_files = whys.len(),
                serial = installed.serial,
                entries = installed.entries,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "new blocklist compiled and serving"
            );
            ctx.store.update_pipeline(|p| {
                p.last_install_unix = Some(now_unix());
                p.serial = Some(installed.serial);
                p.entries = Some(installed.entries);
                p.installs += 1;
            });
        }
        Err(refusal) => {
            tracing::error!(
                sources = %names,
                guard = refusal.guard.as_str(),
                error = %refusal.message,
                "recompile refused; the current list keeps serving"
            );
            ctx.store.pipeline_refused(refusal);
        }
    }
    result
}

/// Before anything serves: the candidates become the stored copies, nothing is compiled.
fn store_only(
    lists: &ListsConfig,
    candidates: &HashMap<usize, PathBuf>,
) -> Result<Installed, Refusal> {
    for (i, file) in candidates {
        if let Some(source) = lists.sources.get(*i) {
            std::fs::rename(file, &source.path).map_err(|e| {
                Refusal::new(
                    Guard::Compile,
                    format!(
                        "cannot store {} as {}: {e}",
                        file.display(),
                        source.path.display()
                    ),
                )
            })?;
        }
    }
    Ok(Installed {
        serial: 0,
        entries: 0,
    })
}

/// `path` sources have no task of their own: their status follows each install.
fn record_path_sources(ctx: &Ctx, manifest: &Manifest) {
    for (spec, source) in ctx.lists.feeds.sources.iter().zip(&ctx.lists.sources) {
        if spec.is_feed() {
            continue;
        }
        let Some(rec) = manifest.sources.iter().find(|r| r.path == source.path) else {
            continue;
        };
        ctx.store.update(&spec.name, |s| {
            let now = now_unix();
            if s.sha256.as_deref() != Some(rec.sha256.as_str()) {
                s.updates += 1;
                s.last_success_unix = Some(now);
            }
            s.last_check_unix = Some(now);
            s.sha256 = Some(rec.sha256.clone());
            s.entries = Some(rec.accepted);
            s.rejected = Some(rec.rejected.values().sum());
        });
    }
}

/// Where the next list is built: beside the compiled one (same file system, so the
/// install is a rename), under a name the compiled file's watcher ignores.
pub fn staging_path(compiled: &Path) -> PathBuf {
    let mut name = compiled.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

fn remove_staging(staging: &Path) {
    for p in [
        staging.to_owned(),
        manifest::bloom_path_for(staging),
        manifest::path_for(staging),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

fn build(
    ctx: &Ctx,
    live: &LiveBlocklist,
    candidates: &HashMap<usize, PathBuf>,
) -> Result<Manifest, Refusal> {
    let _lock = compile_lock();
    let feeds = &ctx.lists.feeds;
    let mut inputs = Vec::new();
    let mut canonical = Vec::new();
    for (i, (source, spec)) in ctx.lists.sources.iter().zip(&feeds.sources).enumerate() {
        let path = candidates
            .get(&i)
            .cloned()
            .unwrap_or_else(|| source.path.clone());
        if spec.is_feed() && !path.exists() {
            continue; // never fetched yet: compiled in once it arrives
        }
        inputs.push(ListSource {
            path,
            ..source.clone()
        });
        canonical.push(source.path.clone());
    }
    let staging = staging_path(&ctx.lists.compiled);
    let failed = |message: String| {
        remove_staging(&staging);
        Refusal::new(Guard::Compile, message)
    };
    let mut manifest = compile(&inputs, &InlineRules::default(), &staging, &mut |_| {})
        .map_err(|e| failed(e.to_string()))?;
    let serving = live.current();
    check_shrink(
        "the compiled list",
        manifest.entries,
        Some(serving.len() as u64),
        feeds.min_keep_ratio,
        feeds.force,
    )
    .inspect_err(|_| remove_staging(&staging))?;
    drop(
        Blocklist::open(&staging)
            .map_err(|e| failed(format!("the new list failed validation: {e}")))?,
    );
    // Commit point: the candidates become the stored copies, then the list is installed.
    for (i, file) in candidates {
        if let Some(source) = ctx.lists.sources.get(*i) {
            std::fs::rename(file, &source.path).map_err(|e| {
                failed(format!(
                    "cannot store {} as {}: {e}",
                    file.display(),
                    source.path.display()
                ))
            })?;
        }
    }
    // The manifest names the stored copies (not the candidates) and keeps serials rising.
    manifest.serial = manifest.serial.max(serving.manifest().serial + 1);
    for (record, path) in manifest.sources.iter_mut().zip(canonical) {
        record.path = path;
    }
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| failed(e.to_string()))?;
    let staged_manifest = manifest::path_for(&staging);
    write_atomic(&staged_manifest, &json, true).map_err(|e| failed(e.to_string()))?;
    install(&staging, &ctx.lists.compiled).map_err(|e| failed(e.to_string()))?;
    Ok(manifest)
}

/// Renames the staging FST, filter and manifest over the compiled ones, manifest last: it
/// is the commit record a loader checks the others against.
fn install(staging: &Path, compiled: &Path) -> std::io::Result<()> {
    std::fs::rename(staging, compiled)?;
    std::fs::rename(
        manifest::bloom_path_for(staging),
        manifest::bloom_path_for(compiled),
    )?;
    std::fs::rename(manifest::path_for(staging), manifest::path_for(compiled))?;
    sync_parent(compiled);
    Ok(())
}
