//! The compile stage every update goes through: coalesce a burst of changes, compile the
//! sources (with the new candidate copies in place of the stored ones) into a staging
//! file beside `lists.compiled`, check it against the serving list, validate it, then
//! commit the candidates, install the staging files over the compiled ones (FST, filter,
//! manifest last) and swap the new list in.
//!
//! Nothing reaches `lists.compiled` that did not pass every check, so the file watcher in
//! [`crate::lists::swap`] and a restart only ever see good lists.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::now_unix;
use crate::feed::guard::{Guard, Refusal, check_shrink};
use crate::feed::guard::{check_rejects, inspect};
use crate::feed::install::{
    build_group, group_needs_compile, install, needs_compile, record_path_sources, remove_staging,
    staging_path,
};
use crate::feed::spec::ListsConfig;
use crate::feed::state::{StateStore, write_atomic};
use crate::lists::compile::CompileError;
use crate::lists::compile::{InlineRules, ListSource, compile};
use crate::lists::load::Blocklist;
use crate::lists::manifest::{self, Manifest, SourceRecord};
use crate::lists::source::SourceError;
use crate::lists::swap::{LiveBlocklist, Reloaded};
use crate::policy::GroupConfig;

/// How long the compile stage waits after the first change for others to join it.
pub const SETTLE: Duration = Duration::from_millis(150);

/// A new list that is serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// Its manifest serial.
    pub serial: u64,
    /// Its entries.
    pub entries: u64,
    /// What the candidate contributed (format, entries, rejects, SHA-256); `None` when it
    /// was stored without a compile (at start, before anything serves).
    pub record: Option<SourceRecord>,
}

/// Verdicts of one compile: per candidate, and for the list as a whole.
/// `Ok(None)`: every candidate was refused and nothing else asked for a compile.
type Verdicts = (HashMap<usize, Refusal>, Result<Option<Manifest>, Refusal>);

/// Per-candidate refusals, and the installed list (if any) or why the whole compile failed.
type Outcome = (
    HashMap<usize, Refusal>,
    Result<Option<(Installed, Manifest)>, Refusal>,
);

enum Request {
    /// Source `index` has a new copy at `file`, waiting for the verdict.
    Candidate {
        index: usize,
        file: PathBuf,
        done: oneshot::Sender<Result<Installed, Refusal>>,
    },
    /// A `path` source changed on disk.
    Rebuild { why: String },
    /// SIGHUP, `POST /v1/reload` or the start: recompile what changed (the list and,
    /// with `groups`, the groups' own lists), or load a compiled list dropped in.
    Reload {
        why: String,
        force: bool,
        groups: bool,
        done: Option<oneshot::Sender<ReloadReport>>,
    },
}

/// A group's own list, which the pipeline recompiles on a reload.
#[derive(Clone, Debug)]
pub struct GroupList {
    /// The group as configured.
    pub group: GroupConfig,
    /// Its serving list.
    pub live: Arc<LiveBlocklist>,
}

/// What a reload did, for the log and the `POST /v1/reload` reply.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReloadReport {
    /// Serial of the list serving after the reload.
    pub serial: u64,
    /// Its entries.
    pub entries: u64,
    /// `recompiled` (sources had changed), `reloaded` (a compiled list was dropped in),
    /// `unchanged`, or `refused` (a guard kept the list serving; see `refused`).
    pub list: &'static str,
    /// Why the new list was refused: `guard: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The groups' own lists (only those a group has).
    pub groups: Vec<GroupReport>,
}

/// What a reload did to one group's own list.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GroupReport {
    /// The group's name.
    pub group: String,
    /// Serial of its list serving after the reload.
    pub serial: u64,
    /// Its entries.
    pub entries: u64,
    /// `recompiled`, `unchanged` or `refused`.
    pub list: &'static str,
    /// Why the new list was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl ReloadReport {
    /// True when a guard refused the list or a group's list.
    pub fn any_refused(&self) -> bool {
        self.refused.is_some() || self.groups.iter().any(|g| g.refused.is_some())
    }
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
            Request::Reload {
                why, force, groups, ..
            } => f
                .debug_struct("Reload")
                .field("why", why)
                .field("force", force)
                .field("groups", groups)
                .finish(),
        }
    }
}

struct Ctx {
    lists: ListsConfig,
    /// `None` before anything serves (the first fetch at start): candidates are then only
    /// stored, and the start-up compile picks them up.
    live: Option<Arc<LiveBlocklist>>,
    store: Arc<StateStore>,
    groups: Vec<GroupList>,
}

impl Pipeline {
    /// Starts the compile stage; it runs until `stop` is cancelled. Without a `live` list
    /// (before the resolver serves) accepted candidates are stored but not compiled.
    /// `groups` are the groups' own lists, recompiled on a reload.
    pub fn spawn(
        lists: ListsConfig,
        live: Option<Arc<LiveBlocklist>>,
        store: Arc<StateStore>,
        groups: Vec<GroupList>,
        settle: Duration,
        stop: CancellationToken,
    ) -> Pipeline {
        let (tx, rx) = mpsc::unbounded_channel();
        let ctx = Arc::new(Ctx {
            lists,
            live,
            store,
            groups,
        });
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

    /// Recompiles the list if its sources changed since the last compile (or loads a
    /// compiled list dropped in), and with `groups` the groups' own lists whose files
    /// changed; every new list passes the guards, the shrink guard only skipped with
    /// `force` (or `lists.force`). Resolves with what it did; `None` when the resolver is
    /// shutting down.
    pub async fn reload(
        &self,
        why: impl Into<String>,
        force: bool,
        groups: bool,
    ) -> Option<ReloadReport> {
        let (done, report) = oneshot::channel();
        let request = Request::Reload {
            why: why.into(),
            force,
            groups,
            done: Some(done),
        };
        self.tx.send(request).ok()?;
        report.await.ok()
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
        let mut reloads = Vec::new();
        let (mut force, mut groups) = (false, false);
        for request in batch {
            match request {
                Request::Candidate { index, file, done } => {
                    candidates.insert(index, file);
                    waiters.push((index, done));
                }
                Request::Rebuild { why } => whys.push(why),
                Request::Reload {
                    why,
                    force: f,
                    groups: g,
                    done,
                } => {
                    if needs_compile(&ctx.lists) {
                        whys.push(why);
                    }
                    force |= f;
                    groups |= g;
                    reloads.extend(done);
                }
            }
        }
        let (mut refused, result) = if candidates.is_empty() && whys.is_empty() {
            (HashMap::new(), Ok(None))
        } else {
            build_and_swap(&ctx, candidates, &whys, force).await
        };
        if !reloads.is_empty() || groups {
            let mut report = reload_report(&ctx, &result, whys.is_empty()).await;
            if groups {
                report.groups = reload_groups(&ctx, force).await;
            }
            for done in reloads {
                let _ = done.send(report.clone());
            }
        }
        for (index, done) in waiters {
            let verdict = match (refused.remove(&index), &result) {
                (Some(own), _) => Err(own),
                (None, Ok(Some((installed, manifest)))) => Ok(Installed {
                    record: record_of(&ctx.lists, manifest, index),
                    ..installed.clone()
                }),
                (None, Ok(None)) => Err(Refusal::new(Guard::Compile, "nothing was compiled")),
                (None, Err(refusal)) => Err(refusal.clone()),
            };
            let _ = done.send(verdict);
        }
    }
}

/// What source `index` contributed to `manifest`.
fn record_of(lists: &ListsConfig, manifest: &Manifest, index: usize) -> Option<SourceRecord> {
    let path = &lists.sources.get(index)?.path;
    manifest.sources.iter().find(|r| &r.path == path).cloned()
}

/// The main list's part of a reload: what the compile did, or, when nothing needed
/// compiling (`load_only`), the outcome of loading the compiled file again (a list dropped
/// in by a central `kidsafe-dns compile`).
async fn reload_report(
    ctx: &Ctx,
    result: &Result<Option<(Installed, Manifest)>, Refusal>,
    load_only: bool,
) -> ReloadReport {
    let mut report = ReloadReport {
        serial: 0,
        entries: 0,
        list: "unchanged",
        refused: None,
        groups: Vec::new(),
    };
    let Some(live) = &ctx.live else {
        return report;
    };
    match result {
        Ok(Some(_)) => report.list = "recompiled",
        Ok(None) if load_only => {
            if let Ok(Reloaded::Swapped(_)) = live.reload().await {
                report.list = "reloaded";
            }
        }
        Ok(None) => {}
        Err(refusal) => {
            report.list = "refused";
            report.refused = Some(refusal.to_string());
        }
    }
    let list = live.current();
    report.serial = list.manifest().serial;
    report.entries = list.len() as u64;
    if report.list != "refused" {
        tracing::info!(
            list = report.list,
            serial = report.serial,
            entries = report.entries,
            "reload: the main list"
        );
    }
    report
}

/// Recompiles the groups' own lists whose files changed, each through the guards, and
/// swaps each in; logged with the group's name.
async fn reload_groups(ctx: &Ctx, force: bool) -> Vec<GroupReport> {
    let mut reports = Vec::with_capacity(ctx.groups.len());
    for g in &ctx.groups {
        let name = g.group.name.clone();
        let target = g.live.path().to_owned();
        let mut list = "unchanged";
        let mut refused = None;
        if group_needs_compile(&g.group, &target) {
            let (lists, group, live) = (ctx.lists.clone(), g.group.clone(), g.live.clone());
            let built = tokio::task::spawn_blocking(move || {
                build_group(&lists, &group, &target, Some(&live.current()), force)
            })
            .await
            .unwrap_or_else(|e| Err(Refusal::new(Guard::Compile, format!("panicked: {e}"))));
            match built {
                Ok(_) => match g.live.reload().await {
                    Ok(_) => list = "recompiled",
                    Err(e) => {
                        refused = Some(Refusal::new(Guard::Compile, e.to_string()).to_string())
                    }
                },
                Err(refusal) => refused = Some(refusal.to_string()),
            }
        }
        let serving = g.live.current();
        match &refused {
            Some(error) => {
                list = "refused";
                tracing::error!(group = %name, %error, "group list refused; its current list keeps serving");
            }
            None if list == "recompiled" => tracing::info!(
                group = %name,
                serial = serving.manifest().serial,
                entries = serving.len(),
                "group list recompiled and swapped in"
            ),
            None => {}
        }
        reports.push(GroupReport {
            group: name,
            serial: serving.manifest().serial,
            entries: serving.len() as u64,
            list,
            refused,
        });
    }
    reports
}

async fn build_and_swap(
    ctx: &Arc<Ctx>,
    candidates: HashMap<usize, PathBuf>,
    whys: &[String],
    force: bool,
) -> Outcome {
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
    let (c, l, rebuild) = (ctx.clone(), live.clone(), !whys.is_empty());
    let (refused, built) =
        tokio::task::spawn_blocking(move || build(&c, &l, candidates, rebuild, force))
            .await
            .unwrap_or_else(|e| {
                let r = Refusal::new(Guard::Compile, format!("compile panicked: {e}"));
                (HashMap::new(), Err(r))
            });
    let result = match built {
        Ok(None) => return (refused, Ok(None)),
        Ok(Some(manifest)) => match live.reload().await {
            Ok(Reloaded::Swapped(serial) | Reloaded::Unchanged(serial)) => {
                record_path_sources(&ctx.lists, &ctx.store, &manifest);
                let installed = Installed {
                    serial,
                    entries: manifest.entries,
                    record: None,
                };
                Ok(Some((installed, manifest)))
            }
            Err(e) => Err(Refusal::new(
                Guard::Compile,
                format!("the installed list did not load: {e}"),
            )),
        },
        Err(refusal) => Err(refusal),
    };
    match &result {
        Ok(None) => {}
        Ok(Some((installed, _))) => {
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
    (refused, result)
}

/// Before anything serves: each candidate that reads (and passes the reject ratio)
/// becomes the stored copy; nothing is compiled, the start-up compile does that.
fn store_only(lists: &ListsConfig, candidates: &HashMap<usize, PathBuf>) -> Outcome {
    let mut refused = HashMap::new();
    let mut records = Vec::new();
    for (i, file) in candidates {
        let (Some(source), Some(spec)) = (lists.sources.get(*i), lists.feeds.sources.get(*i))
        else {
            continue;
        };
        let checked = inspect(file, spec.list_format()).and_then(|report| {
            check_rejects(
                report.parse.rejected_total(),
                report.parse.accepted,
                lists.feeds.max_reject_ratio,
            )?;
            std::fs::rename(file, &source.path).map_err(|e| {
                let (from, to) = (file.display(), source.path.display());
                Refusal::new(Guard::Compile, format!("cannot store {from} as {to}: {e}"))
            })?;
            Ok(report)
        });
        match checked {
            Ok(report) => records.push(crate::lists::compile::source_record(source, &report)),
            Err(refusal) => {
                refused.insert(*i, refusal);
            }
        }
    }
    // Only `sources` is read from this manifest (each candidate's record).
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        serial: 0,
        built_at_unix: 0,
        categories: Vec::new(),
        entries: 0,
        entries_per_category: Default::default(),
        allow_entries: 0,
        fst_bytes: 0,
        fst_crc32c: 0,
        bloom_bytes: 0,
        bloom_sha256: String::new(),
        sources: records,
    };
    let installed = Installed {
        serial: 0,
        entries: 0,
        record: None,
    };
    (refused, Ok(Some((installed, manifest))))
}

/// Compiles with the candidates in place; a candidate that is unreadable, has too many
/// rejects or shrank too much is refused on its own and the rest compiled again without
/// it. Then the list as a whole is checked, validated and installed.
fn build(
    ctx: &Ctx,
    live: &LiveBlocklist,
    mut candidates: HashMap<usize, PathBuf>,
    rebuild: bool,
    force: bool,
) -> Verdicts {
    let force = force || ctx.lists.feeds.force;
    let mut refused = HashMap::new();
    loop {
        match compile_staged(ctx, &candidates, force) {
            Err(Staged::Candidate(index, refusal)) => {
                if let Some(file) = candidates.remove(&index) {
                    let _ = std::fs::remove_file(file);
                }
                refused.insert(index, refusal);
                if candidates.is_empty() && !rebuild {
                    // Nothing new left: the serving list already is what would be built.
                    return (refused, Ok(None));
                }
            }
            Err(Staged::Whole(refusal)) => return (refused, Err(refusal)),
            Ok((manifest, canonical)) => {
                let result = install_checked(ctx, live, &candidates, manifest, canonical, force);
                return (refused, result.map(Some));
            }
        }
    }
}

/// Why a staged compile failed: one candidate's fault, or the whole list's.
enum Staged {
    Candidate(usize, Refusal),
    Whole(Refusal),
}

/// Compiles the sources (candidates in place of their stored copies) into the staging
/// file and checks each candidate's contribution.
fn compile_staged(
    ctx: &Ctx,
    candidates: &HashMap<usize, PathBuf>,
    force: bool,
) -> Result<(Manifest, Vec<PathBuf>), Staged> {
    let feeds = &ctx.lists.feeds;
    let mut inputs = Vec::new();
    let mut canonical = Vec::new();
    let mut owners = Vec::new();
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
        owners.push(i);
    }
    let staging = staging_path(&ctx.lists.compiled);
    let whole = |message: String| {
        remove_staging(&staging);
        Staged::Whole(Refusal::new(Guard::Compile, message))
    };
    let manifest = match compile(&inputs, &InlineRules::default(), &staging, &mut |_| {}) {
        Ok(m) => m,
        Err(CompileError::Source(e)) => {
            let path = match &e {
                SourceError::Open { path, .. }
                | SourceError::Read { path, .. }
                | SourceError::Empty { path, .. } => path,
            };
            let candidate = candidates.iter().find(|(_, f)| *f == path);
            return Err(match candidate {
                Some((i, _)) => {
                    Staged::Candidate(*i, Refusal::new(Guard::Unreadable, e.to_string()))
                }
                None => whole(e.to_string()),
            });
        }
        Err(e) => return Err(whole(e.to_string())),
    };
    for (record, index) in manifest.sources.iter().zip(&owners) {
        if !candidates.contains_key(index) {
            continue;
        }
        let Some(spec) = feeds.sources.get(*index) else {
            continue;
        };
        let previous = spec
            .list_path(&feeds.state_dir)
            .exists()
            .then(|| ctx.store.get(&spec.name).entries)
            .flatten();
        let judged = check_rejects(
            record.rejected.values().sum(),
            record.accepted,
            feeds.max_reject_ratio,
        )
        .and_then(|()| {
            check_shrink(
                &format!("source {}", spec.name),
                record.accepted,
                previous,
                feeds.min_keep_ratio,
                force,
            )
        });
        if let Err(refusal) = judged {
            remove_staging(&staging);
            return Err(Staged::Candidate(*index, refusal));
        }
    }
    Ok((manifest, canonical))
}

/// The list as a whole: not much smaller than the serving one, valid when loaded; then
/// the candidates are committed and the staging files installed.
fn install_checked(
    ctx: &Ctx,
    live: &LiveBlocklist,
    candidates: &HashMap<usize, PathBuf>,
    mut manifest: Manifest,
    canonical: Vec<PathBuf>,
    force: bool,
) -> Result<Manifest, Refusal> {
    let feeds = &ctx.lists.feeds;
    let staging = staging_path(&ctx.lists.compiled);
    let failed = |message: String| {
        remove_staging(&staging);
        Refusal::new(Guard::Compile, message)
    };
    let serving = live.current();
    check_shrink(
        "the compiled list",
        manifest.entries,
        Some(serving.len() as u64),
        feeds.min_keep_ratio,
        force,
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
