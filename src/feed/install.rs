//! Compiling a whole list into place: the first list (when nothing serves yet) and the
//! groups' own lists. The steps are the pipeline's: compile into a staging file beside the
//! target, check it against the list it replaces (the shrink guard, unless `force`),
//! validate it by loading it, then rename it into place (manifest last). Once the resolver
//! serves, only the [`crate::feed::pipeline`] task calls these, so nothing else writes
//! `lists.compiled` or a group's list.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::clock::now_unix;
use crate::feed::guard::{Guard, Refusal, check_shrink};
use crate::feed::spec::ListsConfig;
use crate::feed::state::{StateStore, sync_parent, write_atomic};
use crate::lists::compile::{CompileError, InlineRules, ListSource, compile};
use crate::lists::load::Blocklist;
use crate::lists::manifest::{self, Manifest};
use crate::lists::parse::Format;
use crate::lists::rule::Rule;
use crate::policy::GroupConfig;

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `path` in a form that does not depend on the working directory or on `..` steps, so
/// the same file reached from another directory compares equal; the path as given when
/// it cannot be resolved (a file that is gone).
pub fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// The manifest beside the compiled list `compiled`, if it reads.
pub fn read_manifest(compiled: &Path) -> Option<Manifest> {
    std::fs::read(manifest::path_for(compiled))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
}

/// True when there are sources to compile from and the compiled list is missing or
/// unreadable, was built from other sources than the configured ones (a list added, removed
/// or moved to another category), or is older than one of them. Source paths are compared
/// canonically: the same files named from another working directory are the same sources.
/// Other config edits (threads, modes, ...) do not force a recompile.
pub fn needs_compile(lists: &ListsConfig) -> bool {
    if lists.sources.is_empty() {
        return false;
    }
    let compiled = &lists.compiled;
    let Some(built) = modified(&manifest::path_for(compiled)).min(modified(compiled)) else {
        return true;
    };
    let Some(manifest) = read_manifest(compiled) else {
        return true;
    };
    let available = lists.available_sources();
    let configured = available.iter().map(|s| (&s.category, canonical(&s.path)));
    let built_from = manifest
        .sources
        .iter()
        .map(|s| (&s.category, canonical(&s.path)));
    if !configured.eq(built_from) {
        return true;
    }
    available
        .iter()
        .any(|s| modified(&s.path).is_none_or(|m| m > built))
}

/// What a whole-list build checks the new list against.
#[derive(Clone, Copy, Debug)]
pub struct Against {
    /// Entries and serial of the list it replaces (`None`: nothing to replace).
    pub serving: Option<(u64, u64)>,
    /// `lists.min_keep_ratio`.
    pub min_keep: f64,
    /// Past the shrink guard (`lists.force`, or `force` asked for with the reload).
    pub force: bool,
}

impl Against {
    /// Checked against `list` (when there is one) with the guards of `lists`.
    pub fn list(serving: Option<&Blocklist>, lists: &ListsConfig, force: bool) -> Self {
        Against {
            serving: serving.map(|l| (l.len() as u64, l.manifest().serial)),
            min_keep: lists.feeds.min_keep_ratio,
            force: force || lists.feeds.force,
        }
    }
}

/// Compiles `sources` and `inline` into `target` through a staging file: refused (and
/// `target` left as it is) when a source cannot be read, when the result is under
/// `min_keep` of the list it replaces (unless forced), or when it does not load. `what`
/// names the list in a refusal.
///
/// # Errors
/// The [`Refusal`] of the guard that failed.
pub fn build_list(
    what: &str,
    sources: &[ListSource],
    inline: &InlineRules,
    target: &Path,
    against: Against,
) -> Result<Manifest, Refusal> {
    let staging = staging_path(target);
    let failed = |guard: Guard, message: String| {
        remove_staging(&staging);
        Refusal::new(guard, format!("{what}: {message}"))
    };
    let mut manifest = compile(sources, inline, &staging, &mut |_| {}).map_err(|e| {
        let guard = match e {
            CompileError::Source(_) => Guard::Unreadable,
            _ => Guard::Compile,
        };
        failed(guard, e.to_string())
    })?;
    check_shrink(
        what,
        manifest.entries,
        against.serving.map(|(entries, _)| entries),
        against.min_keep,
        against.force,
    )
    .inspect_err(|_| remove_staging(&staging))?;
    drop(Blocklist::open(&staging).map_err(|e| {
        failed(
            Guard::Compile,
            format!("the new list failed validation: {e}"),
        )
    })?);
    // Serials keep rising across replacements, whatever the staging file held before.
    let old_serial = against
        .serving
        .map(|(_, s)| s)
        .into_iter()
        .chain(read_manifest(target).map(|m| m.serial))
        .max();
    if let Some(old) = old_serial.filter(|old| *old >= manifest.serial) {
        manifest.serial = old + 1;
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| failed(Guard::Compile, e.to_string()))?;
        write_atomic(&manifest::path_for(&staging), &json, true)
            .map_err(|e| failed(Guard::Compile, e.to_string()))?;
    }
    install(&staging, target).map_err(|e| failed(Guard::Compile, e.to_string()))?;
    Ok(manifest)
}

/// The serving list at `lists.compiled`, compiled first (guards: readable sources, a valid
/// result) when there is none that loads and there are sources to build it from. Path
/// sources' status files then say when they were compiled. Returns the list and whether
/// it was built.
///
/// # Errors
/// No list and nothing to build one from, or the build was refused.
pub fn open_or_build(
    lists: &ListsConfig,
    store: Option<&StateStore>,
) -> Result<(Blocklist, Option<Manifest>), OpenError> {
    let path = &lists.compiled;
    match Blocklist::open(path) {
        Ok(list) => return Ok((list, None)),
        Err(error) if lists.available_sources().is_empty() => {
            return Err(if path.exists() {
                OpenError::Load(error)
            } else {
                OpenError::NothingToServe(path.clone())
            });
        }
        Err(error) if path.exists() => {
            tracing::warn!(%error, "the compiled list does not load: compiling it again");
        }
        Err(_) => {}
    }
    let against = Against::list(None, lists, false);
    let sources = lists.available_sources();
    let manifest = build_list(
        "the compiled list",
        &sources,
        &InlineRules::default(),
        path,
        against,
    )
    .map_err(OpenError::Build)?;
    if let Some(store) = store {
        record_path_sources(lists, store, &manifest);
        store.update_pipeline(|p| {
            p.last_install_unix = Some(now_unix());
            p.serial = Some(manifest.serial);
            p.entries = Some(manifest.entries);
            p.installs += 1;
        });
    }
    let list = Blocklist::open(path).map_err(OpenError::Load)?;
    Ok((list, Some(manifest)))
}

/// Why [`open_or_build`] has no list.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// No sources configured and no compiled list present.
    #[error("no compiled list at {} and no [[lists.source]] to build one from", .0.display())]
    NothingToServe(PathBuf),
    /// Compiling the configured sources was refused.
    #[error("compiling the lists failed: {0}")]
    Build(Refusal),
    /// The compiled list does not load.
    #[error("loading the compiled list failed: {0}")]
    Load(#[from] crate::lists::load::LoadError),
}

/// `path` sources have no task of their own: their status follows each install of a list
/// that names them.
pub fn record_path_sources(lists: &ListsConfig, store: &StateStore, manifest: &Manifest) {
    for (spec, source) in lists.feeds.sources.iter().zip(&lists.sources) {
        if spec.is_feed() {
            continue;
        }
        let Some(rec) = manifest.sources.iter().find(|r| r.path == source.path) else {
            continue;
        };
        store.update(&spec.name, |s| {
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

/// Where the compiled own list of `group` lives: beside the main compiled list.
pub fn group_list_path(compiled: &Path, group: &str) -> PathBuf {
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
    let mut name = compiled.as_os_str().to_owned();
    name.push(format!(".group-{safe}"));
    name.into()
}

/// A group's own allow/deny entries (inline and files), as the compiler takes them.
pub fn group_sources(group: &GroupConfig) -> (Vec<ListSource>, InlineRules) {
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
    (sources, inline)
}

/// True when group's compiled list at `target` is missing or older than one of its files
/// (its inline entries only change with the config, i.e. at a restart).
pub fn group_needs_compile(group: &GroupConfig, target: &Path) -> bool {
    let Some(built) = modified(&manifest::path_for(target)).min(modified(target)) else {
        return true;
    };
    group
        .deny_paths
        .iter()
        .chain(&group.allow_paths)
        .any(|p| modified(p).is_none_or(|m| m > built))
}

/// Compiles `group`'s own list into `target`, checked against `serving` (the group's list
/// it replaces) with the guards of `lists`.
///
/// # Errors
/// The [`Refusal`] of the guard that failed, naming the group.
pub fn build_group(
    lists: &ListsConfig,
    group: &GroupConfig,
    target: &Path,
    serving: Option<&Blocklist>,
    force: bool,
) -> Result<Manifest, Refusal> {
    let (sources, inline) = group_sources(group);
    let what = format!("group `{}`'s own list", group.name);
    // The shrink guard is for files that may arrive cut short (a truncated download or a
    // half-written file). A group whose rules are all written in the config itself
    // (`deny = [...]`) shrinks only because its admin removed names: that is the change
    // asked for, so it is never refused.
    let force = force || sources.is_empty();
    build_list(
        &what,
        &sources,
        &inline,
        target,
        Against::list(serving, lists, force),
    )
}

/// Where the next list is built: beside the compiled one (same file system, so the
/// install is a rename), under a name the compiled file's watcher ignores.
pub fn staging_path(compiled: &Path) -> PathBuf {
    let mut name = compiled.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// Removes the staging files of a refused build.
pub fn remove_staging(staging: &Path) {
    for p in [
        staging.to_owned(),
        manifest::bloom_path_for(staging),
        manifest::path_for(staging),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

/// Renames the staging FST, filter and manifest over the compiled ones, manifest last: it
/// is the commit record a loader checks the others against.
pub fn install(staging: &Path, compiled: &Path) -> std::io::Result<()> {
    std::fs::rename(staging, compiled)?;
    std::fs::rename(
        manifest::bloom_path_for(staging),
        manifest::bloom_path_for(compiled),
    )?;
    std::fs::rename(manifest::path_for(staging), manifest::path_for(compiled))?;
    sync_parent(compiled);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_build_leaves_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("l.txt");
        let names: String = (0..100).map(|i| format!("n{i}.example\n")).collect();
        std::fs::write(&list, names).unwrap();
        let target = dir.path().join("out.fst");
        let src = [ListSource {
            category: Some("adult".into()),
            path: list.clone(),
            format: Format::Auto,
        }];
        let none = InlineRules::default();
        let open = Against {
            serving: None,
            min_keep: 0.5,
            force: false,
        };
        let first = build_list("t", &src, &none, &target, open).unwrap();
        assert_eq!(first.entries, 100);
        std::fs::write(&list, "n1.example\n").unwrap();
        let against = Against {
            serving: Some((100, first.serial)),
            ..open
        };
        let refused = build_list("t", &src, &none, &target, against).unwrap_err();
        assert_eq!(refused.guard, Guard::Shrink);
        assert_eq!(Blocklist::open(&target).unwrap().len(), 100);
        assert!(!staging_path(&target).exists());
        let forced = Against {
            force: true,
            ..against
        };
        let second = build_list("t", &src, &none, &target, forced).unwrap();
        assert_eq!(Blocklist::open(&target).unwrap().len(), 1);
        assert!(second.serial > first.serial);
    }
}
