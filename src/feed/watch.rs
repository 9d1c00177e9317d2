//! `path` sources are watched: a change to one of the files asks the pipeline for a
//! recompile (which coalesces a burst, e.g. an editor's write + rename, into one).

use std::collections::BTreeSet;
use std::path::PathBuf;

use notify::{RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use crate::feed::pipeline::Pipeline;

/// Watches the directories of `files` until `stop`, sending each relevant event to
/// `pipeline` as a rebuild request.
///
/// # Errors
/// The watcher could not be set up (a directory that does not exist, no inotify).
pub fn spawn(
    files: Vec<PathBuf>,
    pipeline: Pipeline,
    stop: CancellationToken,
) -> notify::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .map(|f| match f.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_owned(),
            None => PathBuf::from("."),
        })
        .collect();
    let names: Vec<(PathBuf, std::ffi::OsString)> = files
        .iter()
        .filter_map(|f| Some((f.clone(), f.file_name()?.to_owned())))
        .collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        // Match on the file name: the watcher may report paths in another form (relative
        // vs absolute, symlinked directories) than the config has them.
        let hit = event.paths.iter().find_map(|p| {
            names
                .iter()
                .find(|(_, n)| p.file_name() == Some(n.as_os_str()))
                .map(|(f, _)| f)
        });
        if let Some(file) = hit {
            pipeline.rebuild(format!("{} changed", file.display()));
        }
    })?;
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        let _watcher = watcher; // unwatched when dropped
        stop.cancelled().await;
    });
    Ok(())
}
