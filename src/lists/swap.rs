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

use crate::lists::load::{Blocklist, LoadError};
use crate::lists::manifest;

/// The blocklist every query reads, and where it comes from.
#[derive(Debug)]
pub struct LiveBlocklist {
    current: ArcSwap<Blocklist>,
    path: PathBuf,
    /// When the serving list was swapped in (Unix seconds), for metrics.
    loaded_at: AtomicU64,
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
            loaded_at: AtomicU64::new(crate::feed::state::now_unix()),
        }
    }

    /// When the serving list was loaded or swapped in, in Unix seconds.
    pub fn loaded_at(&self) -> u64 {
        self.loaded_at.load(Ordering::Relaxed)
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
        self.loaded_at
            .store(crate::feed::state::now_unix(), Ordering::Relaxed);
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
                // Coalesce the burst, then reload once.
                tokio::time::sleep(settle).await;
                while rx.try_recv().is_ok() {}
                if !me.reload_logged("file changed").await {
                    tokio::time::sleep(settle * 5).await;
                    while rx.try_recv().is_ok() {}
                    me.reload_logged("file changed (retry)").await;
                }
            }
        }))
    }
}
