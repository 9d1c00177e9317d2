//! One compile: the sources with the candidates in place of their stored copies, each
//! candidate judged on its own (unreadable, rejects, shrink), then the list as a whole
//! (shrink, validation), the commit of the candidates, the install over `lists.compiled`
//! and the swap. Before anything serves, candidates are only checked and stored.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::{Ctx, Installed};
use crate::clock::now_unix;
use crate::feed::guard::{Guard, Refusal, check_shrink};
use crate::feed::guard::{check_rejects, inspect};
use crate::feed::install::{install, record_path_sources, remove_staging, staging_path};
use crate::feed::spec::ListsConfig;
use crate::feed::state::write_atomic;
use crate::lists::compile::CompileError;
use crate::lists::compile::{InlineRules, ListSource, compile};
use crate::lists::load::Blocklist;
use crate::lists::manifest::{self, Manifest};
use crate::lists::source::SourceError;
use crate::lists::swap::{LiveBlocklist, Reloaded};

/// Verdicts of one compile: per candidate, and for the list as a whole.
/// `Ok(None)`: every candidate was refused and nothing else asked for a compile.
type Verdicts = (HashMap<usize, Refusal>, Result<Option<Manifest>, Refusal>);

/// Per-candidate refusals, and the installed list (if any) or why the whole compile failed.
type Outcome = (
    HashMap<usize, Refusal>,
    Result<Option<(Installed, Manifest)>, Refusal>,
);

/// Compiles with `candidates` in place (and, with `whys`, for the sources that changed),
/// installs and swaps in the result, and logs and records the outcome. Without a serving
/// list the candidates are only stored.
pub(super) async fn build_and_swap(
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
