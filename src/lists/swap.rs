//! The serving blocklist, replaced live: load and validate off the async threads, then one
//! pointer store. Queries that already hold the old `Arc` finish on it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::now_unix;
use crate::lists::load::{Blocklist, LoadError};
use crate::lists::manifest;

/// The blocklist every query reads, and where it comes from.
#[derive(Debug)]
pub struct LiveBlocklist {
    current: ArcSwap<Blocklist>,
    path: PathBuf,
    /// When the serving list was swapped in (Unix seconds), for metrics.
    loaded_at: AtomicU64,
    /// Times the compiled file was read again (each [`LiveBlocklist::reload`]), for metrics.
    loads: AtomicU64,
}

/// What a reload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// A new list is serving; its serial.
    Swapped(u64),
    /// The file on disk is the list already serving.
    Unchanged(u64),
}

impl LiveBlocklist {
    /// Wraps an already loaded list that came from `path`.
    pub fn new(list: Blocklist, path: PathBuf) -> Self {
        LiveBlocklist {
            current: ArcSwap::from_pointee(list),
            path,
            loaded_at: AtomicU64::new(now_unix()),
            loads: AtomicU64::new(0),
        }
    }

    /// When the serving list was loaded or swapped in, in Unix seconds.
    pub fn loaded_at(&self) -> u64 {
        self.loaded_at.load(Ordering::Relaxed)
    }

    /// How many times the compiled file was read again since start (successful or not):
    /// a reload that finds the same list counts too. Idle, it stays put.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// The list serving now; hold the `Arc` for the whole query so a swap cannot change the
    /// verdict half way.
    pub fn current(&self) -> Arc<Blocklist> {
        self.current.load_full()
    }

    /// Where the compiled list is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the compiled file again on a blocking thread and swaps it in if it is valid and
    /// different from the serving one.
    ///
    /// # Errors
    /// The file failed to load or validate; the old list keeps serving.
    pub async fn reload(&self) -> Result<Reloaded, LoadError> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || Blocklist::open(&path))
            .await
            .map_err(|e| LoadError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(e),
            })??;
        let old = self.current.load();
        if old.manifest() == loaded.manifest() {
            return Ok(Reloaded::Unchanged(old.manifest().serial));
        }
        let serial = loaded.manifest().serial;
        self.current.store(Arc::new(loaded));
        self.loaded_at.store(now_unix(), Ordering::Relaxed);
        Ok(Reloaded::Swapped(serial))
    }

    /// Reloads, logging the outcome; used by the watcher and SIGHUP. False when the new
    /// file was refused.
    pub async fn reload_logged(&self, why: &str) -> bool {
        match self.reload().await {
            Ok(Reloaded::Swapped(serial)) => {
                let list = self.current();
                tracing::info!(why, serial, entries = list.len(), "blocklist swapped in");
                true
            }
            Ok(Reloaded::Unchanged(serial)) => {
                tracing::debug!(why, serial, "blocklist unchanged");
                true
            }
            Err(error) => {
                tracing::error!(why, %error, "new blocklist rejected, the old one keeps serving");
                false
            }
        }
    }

    /// True when the manifest on disk describes the list serving now: reading it (a few
    /// hundred bytes) spares reading and verifying the whole list again.
    fn manifest_on_disk_is_serving(&self) -> bool {
        std::fs::read(manifest::path_for(&self.path))
            .ok()
            .and_then(|b| serde_json::from_slice::<manifest::Manifest>(&b).ok())
            .is_some_and(|m| &m == self.current.load().manifest())
    }

    /// Watches the compiled file's directory and reloads when its manifest changes, until
    /// `stop` is cancelled. Only the manifest is watched: it is renamed into place last, so
    /// when it changes the FST and filter it describes are already there (reacting to the
    /// FST's own rename could load a new FST against the old manifest and then miss the
    /// manifest's event). Bursts are coalesced into one reload after `settle`; a reload
    /// that fails (files copied in by hand in another order) is retried once a little later.
    ///
    /// # Errors
    /// The watcher could not be set up (e.g. the directory does not exist).
    pub fn spawn_watcher(
        self: &Arc<Self>,
        settle: Duration,
        stop: CancellationToken,
    ) -> notify::Result<tokio::task::JoinHandle<()>> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let watched = [manifest::path_for(&self.path)];
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event
                    && changes_content(&event.kind)
                    && event
                        .paths
                        .iter()
                        .any(|p| watched.iter().any(|w| p.ends_with(w) || w.ends_with(p)))
                {
                    let _ = tx.send(());
                }
            })?;
        let dir = match self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d.to_owned(),
            None => PathBuf::from("."),
        };
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let me = Arc::clone(self);
        Ok(tokio::spawn(async move {
            let _watcher = watcher; // dropped (and unwatched) when the task ends
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    got = rx.recv() => if got.is_none() { break },
                }
                // Coalesce the burst, then reload once, unless the manifest on disk is
                // the one serving (e.g. the pipeline installed it and swapped already).
                tokio::time::sleep(settle).await;
                while rx.try_recv().is_ok() {}
                if me.manifest_on_disk_is_serving() {
                    continue;
                }
                if !me.reload_logged("file changed").await {
                    tokio::time::sleep(settle * 5).await;
                    while rx.try_recv().is_ok() {}
                    me.reload_logged("file changed (retry)").await;
                }
            }
        }))
    }
}

/// True for events that can change a file's content or put another file in its place:
/// created, written, renamed, closed after writing. Opening or reading a file (as every
/// reload does with the manifest), and metadata changes, are not changes: reacting to
/// them made each reload trigger the next.
fn changes_content(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    match kind {
        EventKind::Create(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::changes_content;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, EventKind, MetadataKind, ModifyKind,
        RemoveKind, RenameMode,
    };

    #[test]
    fn only_real_changes_trigger_a_reload() {
        let yes = [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ];
        let no = [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Read),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            EventKind::Remove(RemoveKind::File),
        ];
        for k in yes {
            assert!(changes_content(&k), "{k:?}");
        }
        for k in no {
            assert!(!changes_content(&k), "{k:?}");
        }
    }
}
