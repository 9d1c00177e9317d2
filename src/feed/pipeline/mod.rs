//! The compile stage every update goes through: coalesce a burst of changes, compile the
//! sources (with the new candidate copies in place of the stored ones) into a staging
//! file beside `lists.compiled`, check it against the serving list, validate it, then
//! commit the candidates, install the staging files over the compiled ones (FST, filter,
//! manifest last) and swap the new list in.
//!
//! Nothing reaches `lists.compiled` that did not pass every check, so the file watcher in
//! [`crate::lists::swap`] and a restart only ever see good lists.
//!
//! # Layout
//! - this file: the [`Pipeline`] handle, its requests, and the loop that coalesces them
//!   into one compile and answers each waiter;
//! - `build`: one compile, candidates judged alone and the list as a whole, install and
//!   swap (or, before anything serves, storing the candidates);
//! - `reload`: the [`ReloadReport`] of a reload and the groups' own lists it recompiles.

mod build;
mod regroup;
mod reload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::feed::guard::{Guard, Refusal};
use crate::feed::install::needs_compile;
use crate::feed::spec::ListsConfig;
use crate::feed::state::StateStore;
use crate::lists::manifest::{Manifest, SourceRecord};
use crate::lists::swap::LiveBlocklist;
use crate::policy::GroupConfig;

use arc_swap::ArcSwap;
use build::build_and_swap;
pub use regroup::Regrouped;
use reload::{reload_groups, reload_report};

pub use reload::{GroupReport, ReloadReport};

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
    /// A config reload's new groups: build their own lists and recompile those from now on.
    Regroup {
        groups: Vec<GroupConfig>,
        done: oneshot::Sender<Regrouped>,
    },
    /// The groups' own lists to recompile on reloads from now on.
    SetGroups { groups: Vec<GroupList> },
}

/// A group's own list, which the pipeline recompiles on a reload.
#[derive(Clone, Debug)]
pub struct GroupList {
    /// The group as configured.
    pub group: GroupConfig,
    /// Its serving list.
    pub live: Arc<LiveBlocklist>,
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
            Request::SetGroups { groups } => f
                .debug_struct("SetGroups")
                .field("groups", &groups.len())
                .finish(),
            Request::Regroup { groups, .. } => f
                .debug_struct("Regroup")
                .field("groups", &groups.len())
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
    /// Replaced whole by a config reload ([`Pipeline::regroup`]).
    groups: ArcSwap<Vec<GroupList>>,
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
            groups: ArcSwap::from_pointee(groups),
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

    /// A config reload's client groups: compiles the own lists of those new or changed
    /// (through the guards) and keeps the serving lists of the others; per group, in
    /// order. `None` when the resolver is shutting down.
    pub async fn regroup(&self, groups: Vec<GroupConfig>) -> Option<Regrouped> {
        let (done, answer) = oneshot::channel();
        self.tx.send(Request::Regroup { groups, done }).ok()?;
        answer.await.ok()
    }

    /// The groups' own lists recompiled on reloads from now on (a config reload that
    /// applied, with the lists [`Pipeline::regroup`] gave).
    pub fn set_groups(&self, groups: Vec<GroupList>) {
        let _ = self.tx.send(Request::SetGroups { groups });
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
                Request::SetGroups { groups } => ctx.groups.store(Arc::new(groups)),
                Request::Regroup { groups, done } => {
                    let _ = done.send(regroup::regroup(&ctx, groups).await);
                }
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
