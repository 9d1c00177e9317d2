//! [`PublishedStore`]: the published lists in SQLite (`state_dir/published.sqlite`), the
//! one implementation of [`PublishedLists`].
//!
//! One file (WAL, `synchronous=FULL`, schema versioned with `PRAGMA user_version`) holds
//! the lists' names, one serial counter shared by every list, the journal of changes the
//! RPZ primary's IXFR reads, and every reviewer decision (who, when, why, and its revert).
//! A decision is one transaction: its audit row, its entry and its journal row commit
//! together, and [`PublishedLists::subscribe`] fires after the commit.
//!
//! Two connections: one writes (decisions), one reads (snapshots, journal), so a
//! transfer of a million names does not hold up a reviewer (WAL lets them run at once).
//!
//! # Layout
//! - this file: opening, the lists, and the [`PublishedLists`] reads;
//! - `decide`: accept, reject, revert, and the bulk import for benchmarks;
//! - `schema`, `error`.

pub mod decide;
mod error;
mod schema;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::watch;

pub use decide::DecisionRecord;
pub use error::StoreError;
use error::storage;

use super::lists::{Change, PublishError, PublishedLists};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "published.sqlite";

/// The published lists.
pub struct PublishedStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    journal_keep: usize,
    store_id: String,
    changed: watch::Sender<u32>,
}

impl std::fmt::Debug for PublishedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedStore")
            .field("path", &self.path)
            .field("journal_keep", &self.journal_keep)
            .finish_non_exhaustive()
    }
}

impl PublishedStore {
    /// Opens (or creates) the store at `path`, keeping `journal_keep` changes per list.
    ///
    /// # Errors
    /// The directory cannot be created, the file is not a published store (left
    /// untouched), or SQLite fails.
    pub fn open(path: &Path, journal_keep: usize) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let mut writer = Connection::open(path).map_err(|e| storage(path, e))?;
        schema::configure(path, &writer)?;
        schema::migrate(path, &mut writer)?;
        let reader = Connection::open(path).map_err(|e| storage(path, e))?;
        schema::configure(path, &reader)?;
        let (store_id, serial): (String, u32) = writer
            .query_row(
                "SELECT (SELECT value FROM meta WHERE key = 'store_id'),
                        (SELECT value FROM meta WHERE key = 'serial')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| storage(path, e))?;
        Ok(PublishedStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            journal_keep: journal_keep.max(1),
            store_id,
            changed: watch::channel(serial).0,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A random id made when the file was created: with a serial, it names one state of
    /// one list for good (the HTTP feed's ETag).
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Makes sure every list in `lists` may be published (a new one starts empty at the
    /// current serial); lists already known are kept, whatever `lists` says, so a category
    /// dropped from the config keeps its names and serial.
    ///
    /// # Errors
    /// A name that is not a list name (empty, over 64 bytes, or other than ASCII letters,
    /// digits, `-` and `_`); SQLite failing.
    pub fn ensure_lists<S: AsRef<str>>(&self, lists: &[S]) -> Result<(), StoreError> {
        let mut conn = self.write()?;
        let tx = conn.transaction().map_err(|e| self.storage(e))?;
        for list in lists {
            let list = list.as_ref();
            if !valid_list_name(list) {
                return Err(StoreError::UnknownList(list.to_owned()));
            }
            tx.execute(
                "INSERT OR IGNORE INTO lists (name, serial)
                 SELECT ?1, value FROM meta WHERE key = 'serial'",
                [list],
            )
            .map_err(|e| self.storage(e))?;
        }
        tx.commit().map_err(|e| self.storage(e))
    }

    /// Which lists hold `name` or a name above it (publishing a name covers its
    /// subdomains), sorted.
    ///
    /// # Errors
    /// SQLite failing.
    pub fn lists_covering(&self, name: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.read()?;
        // Per list, so each probe is a primary-key lookup (entries are keyed by list
        // first); there are a handful of lists.
        let lists: Vec<String> = conn
            .prepare_cached("SELECT name FROM lists")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.storage(e))?;
        let mut st = conn
            .prepare_cached("SELECT 1 FROM entries WHERE list = ?1 AND name = ?2")
            .map_err(|e| self.storage(e))?;
        let mut found = Vec::new();
        for list in lists {
            let mut rest = name;
            loop {
                if st
                    .exists(params![list, rest])
                    .map_err(|e| self.storage(e))?
                {
                    found.push(list);
                    break;
                }
                match rest.split_once('.') {
                    Some((_, parent)) if !parent.is_empty() => rest = parent,
                    _ => break,
                }
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// A list's serial, `None` for an unknown list.
    ///
    /// # Errors
    /// SQLite failing.
    pub fn serial(&self, list: &str) -> Result<Option<u32>, StoreError> {
        let conn = self.read()?;
        conn.prepare_cached("SELECT serial FROM lists WHERE name = ?1")
            .and_then(|mut st| st.query_row([list], |r| r.get(0)).optional())
            .map_err(|e| self.storage(e))
    }

    fn write(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.writer.lock().map_err(|_| self.poisoned())
    }

    fn read(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.reader.lock().map_err(|_| self.poisoned())
    }

    fn poisoned(&self) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source: std::io::Error::other("a thread panicked while using the store"),
        }
    }

    fn storage(&self, e: rusqlite::Error) -> StoreError {
        storage(&self.path, e)
    }

    /// Tells the subscribers about `serial` (after a commit).
    fn announce(&self, serial: u32) {
        self.changed.send_replace(serial);
    }
}

/// A list name as categories are spelled: ASCII letters, digits, `-`, `_`; 1 to 64 bytes
/// (it becomes a URL path segment and a DNS label).
pub fn valid_list_name(list: &str) -> bool {
    (1..=63).contains(&list.len())
        && list
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PublishedLists for PublishedStore {
    fn lists(&self) -> Result<Vec<(String, u32)>, PublishError> {
        let conn = self.read()?;
        let lists = conn
            .prepare_cached("SELECT name, serial FROM lists ORDER BY name")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(|e| self.storage(e))?;
        Ok(lists)
    }

    fn snapshot(&self, list: &str) -> Result<(u32, Vec<String>), PublishError> {
        let mut conn = self.read()?;
        // One read transaction: the serial and the names are of the same state.
        let tx = conn.transaction().map_err(|e| self.storage(e))?;
        let serial: u32 = tx
            .prepare_cached("SELECT serial FROM lists WHERE name = ?1")
            .and_then(|mut st| st.query_row([list], |r| r.get(0)).optional())
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| PublishError::UnknownList(list.to_owned()))?;
        let names = tx
            .prepare_cached("SELECT name FROM entries WHERE list = ?1 ORDER BY name")
            .and_then(|mut st| st.query_map([list], |r| r.get(0))?.collect())
            .map_err(|e| self.storage(e))?;
        tx.finish().map_err(|e| self.storage(e))?;
        Ok((serial, names))
    }

    fn changes_since(&self, list: &str, from: u32) -> Result<Option<Vec<Change>>, PublishError> {
        let mut conn = self.read()?;
        let tx = conn.transaction().map_err(|e| self.storage(e))?;
        let (serial, pruned_through): (u32, u32) = tx
            .prepare_cached("SELECT serial, pruned_through FROM lists WHERE name = ?1")
            .and_then(|mut st| {
                st.query_row([list], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| PublishError::UnknownList(list.to_owned()))?;
        if from == serial {
            return Ok(Some(Vec::new()));
        }
        // A serial from the future (another store, a rebuilt one), or one the journal no
        // longer reaches: the caller sends the whole list.
        if from > serial || from < pruned_through {
            return Ok(None);
        }
        let changes = tx
            .prepare_cached(
                "SELECT serial, name, added FROM journal
                 WHERE list = ?1 AND serial > ?2 ORDER BY serial",
            )
            .and_then(|mut st| {
                st.query_map(params![list, from], |r| {
                    Ok(Change {
                        serial: r.get(0)?,
                        list: list.to_owned(),
                        name: r.get(1)?,
                        added: r.get(2)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| self.storage(e))?;
        tx.finish().map_err(|e| self.storage(e))?;
        Ok(Some(changes))
    }

    fn subscribe(&self) -> watch::Receiver<u32> {
        self.changed.subscribe()
    }
}
