//! [`Spool`]: reports waiting for the central, in SQLite (WAL, `synchronous=FULL`), so a
//! report acknowledged to its reporter survives a crash, a power loss or a central that is
//! down for days.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior, params};

use crate::sqlite_file;

/// Its application id and schema version are [`sqlite_file::SPOOL`]'s.
const SCHEMA: &str = "
CREATE TABLE spool (
    id      INTEGER PRIMARY KEY,
    key     TEXT NOT NULL UNIQUE,
    report  TEXT NOT NULL
);
";

/// A report waiting for delivery: its idempotency key and the JSON object sent for it
/// (the key included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spooled {
    /// The idempotency key.
    pub key: String,
    /// The JSON object, as sent.
    pub json: String,
}

/// Why the spool failed.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The directory could not be created.
    #[error("report spool {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a spool (another database, or a newer schema).
    #[error("report spool {}: {reason}", path.display())]
    NotASpool {
        /// The file.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// SQLite failed.
    #[error("report spool {}: {source}", path.display())]
    Storage {
        /// The file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A thread panicked while holding the spool.
    #[error("report spool: poisoned by a panic")]
    Poisoned,
}

/// The spool database: one connection.
#[derive(Debug)]
pub struct Spool {
    conn: Connection,
    path: PathBuf,
}

impl Spool {
    /// Opens (or creates) the spool at `path`.
    ///
    /// # Errors
    /// [`SpoolError`]: the file cannot be created, is not a spool, or SQLite fails.
    pub fn open(path: &Path) -> Result<Self, SpoolError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SpoolError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| storage(path, e))?;
        let mut spool = Spool {
            conn,
            path: path.to_owned(),
        };
        spool.init()?;
        Ok(spool)
    }

    fn init(&mut self) -> Result<(), SpoolError> {
        let path = self.path.clone();
        let err = |e| storage(&path, e);
        // FULL (sqlite_file::configure): a report is acknowledged to its reporter once
        // spooled; in WAL mode NORMAL could lose it to a power cut.
        let version = sqlite_file::configure(&path, &self.conn, &sqlite_file::SPOOL).map_err(
            |e| match e {
                sqlite_file::Refusal::NotOurs(reason) => SpoolError::NotASpool {
                    path: path.clone(),
                    reason: format!("{reason}; move it away"),
                },
                sqlite_file::Refusal::Sqlite(e) => storage(&path, e),
            },
        )?;
        if version == 0 {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            tx.execute_batch(SCHEMA).map_err(err)?;
            sqlite_file::stamp(&tx, &sqlite_file::SPOOL).map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    /// Adds `reports` in one transaction (a key already spooled is kept once).
    ///
    /// # Errors
    /// [`SpoolError::Storage`]: nothing was added.
    pub fn push(&mut self, reports: &[Spooled]) -> Result<(), SpoolError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(path, e))?;
        {
            let mut st = tx
                .prepare_cached("INSERT OR IGNORE INTO spool (key, report) VALUES (?1, ?2)")
                .map_err(|e| storage(path, e))?;
            for r in reports {
                st.execute(params![r.key, r.json])
                    .map_err(|e| storage(path, e))?;
            }
        }
        tx.commit().map_err(|e| storage(path, e))
    }

    /// The oldest `max` reports with their row ids, oldest first.
    ///
    /// # Errors
    /// [`SpoolError::Storage`].
    pub fn oldest(&self, max: usize) -> Result<Vec<(i64, Spooled)>, SpoolError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached("SELECT id, key, report FROM spool ORDER BY id LIMIT ?1")
            .and_then(|mut st| {
                st.query_map([max], |r| {
                    Ok((
                        r.get(0)?,
                        Spooled {
                            key: r.get(1)?,
                            json: r.get(2)?,
                        },
                    ))
                })?
                .collect()
            })
            .map_err(|e| storage(&self.path, e))
    }

    /// Removes the rows `ids` (delivered), in one transaction.
    ///
    /// # Errors
    /// [`SpoolError::Storage`]: nothing was removed (they will be delivered again, and the
    /// central counts them once).
    pub fn remove(&mut self, ids: &[i64]) -> Result<(), SpoolError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(path, e))?;
        {
            let mut st = tx
                .prepare_cached("DELETE FROM spool WHERE id = ?1")
                .map_err(|e| storage(path, e))?;
            for id in ids {
                st.execute([id]).map_err(|e| storage(path, e))?;
            }
        }
        tx.commit().map_err(|e| storage(path, e))
    }

    /// Reports waiting.
    ///
    /// # Errors
    /// [`SpoolError::Storage`].
    pub fn len(&self) -> Result<u64, SpoolError> {
        self.conn
            .query_row("SELECT count(*) FROM spool", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| storage(&self.path, e))
    }

    /// Whether nothing is waiting.
    ///
    /// # Errors
    /// [`SpoolError::Storage`].
    pub fn is_empty(&self) -> Result<bool, SpoolError> {
        Ok(self.len()? == 0)
    }
}

fn storage(path: &Path, source: rusqlite::Error) -> SpoolError {
    SpoolError::Storage {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str) -> Spooled {
        Spooled {
            key: key.into(),
            json: format!("{{\"key\":\"{key}\"}}"),
        }
    }

    #[test]
    fn push_take_remove_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s/spool.sqlite");
        {
            let mut s = Spool::open(&path).unwrap();
            s.push(&[item("a"), item("b"), item("a")]).unwrap();
            assert_eq!(s.len().unwrap(), 2, "a key is spooled once");
        }
        let mut s = Spool::open(&path).unwrap();
        let rows = s.oldest(10).unwrap();
        assert_eq!(
            rows.iter().map(|(_, r)| r.key.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        s.remove(&[rows[0].0]).unwrap();
        assert_eq!(s.oldest(10).unwrap()[0].1, item("b"));
        let sync: i64 = s
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
    }

    #[test]
    fn another_database_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let err = Spool::open(&path).unwrap_err();
        assert!(matches!(err, SpoolError::NotASpool { .. }), "{err}");
    }
}
