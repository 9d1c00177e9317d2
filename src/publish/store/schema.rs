//! The published store's file: whether it is ours, per-connection settings (WAL, FULL
//! sync) and the schema with its migrations.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::error::{StoreError, storage};
use crate::sqlite_file;

// Schema version 1 (`sqlite_file::PUBLISHED.version`) has the lists, their entries, the
// serial counter, the journal of changes and the decisions; the application id and the open
// settings are `sqlite_file::PUBLISHED`'s too.

/// Version 1.
///
/// - `meta`: the serial counter (`serial`, shared by every list) and the store's random
///   id (`store_id`, part of the HTTP feed's ETag, so a rebuilt store's serials never
///   match an edge's old ETag).
/// - `lists`: every list that may be published, with its serial and `pruned_through`,
///   the newest serial of its changes dropped from the journal (`changes_since` cannot
///   answer from before it).
/// - `entries`: the published names (normalized), clustered by list and name, so a
///   snapshot is one ordered range scan.
/// - `journal`: one row per change (serial, time, list, name, added or removed, the
///   decision it came from, who, why), pruned to `journal_keep` per list.
/// - `decisions`: every reviewer decision (the audit trail, never pruned); at most one
///   per report is active (not reverted).
const SCHEMA_V1: &str = "
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  ANY NOT NULL
) WITHOUT ROWID;
CREATE TABLE lists (
    name            TEXT PRIMARY KEY,
    serial          INTEGER NOT NULL,
    pruned_through  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE entries (
    list  TEXT NOT NULL,
    name  TEXT NOT NULL,
    PRIMARY KEY (list, name)
) WITHOUT ROWID;
CREATE TABLE journal (
    serial       INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    list         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    added        INTEGER NOT NULL CHECK (added IN (0, 1)),
    decision_id  INTEGER,
    actor        TEXT    NOT NULL,
    reason       TEXT
);
CREATE INDEX journal_list ON journal (list, serial);
CREATE TABLE decisions (
    id             INTEGER PRIMARY KEY,
    report_id      INTEGER NOT NULL,
    decision       TEXT    NOT NULL CHECK (decision IN ('accept', 'reject')),
    list           TEXT,
    name           TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    note           TEXT,
    at             INTEGER NOT NULL,
    serial         INTEGER,
    reverted_at    INTEGER,
    reverted_by    TEXT,
    revert_note    TEXT,
    revert_serial  INTEGER
);
CREATE UNIQUE INDEX decisions_active ON decisions (report_id) WHERE reverted_at IS NULL;
CREATE INDEX decisions_entry ON decisions (list, name)
    WHERE reverted_at IS NULL AND decision = 'accept';
INSERT INTO meta (key, value) VALUES ('serial', 1);
";

/// Per-connection settings, once the file is known to be ours (or empty):
/// [`sqlite_file::configure`] (FULL: a decision acknowledged to the reviewer, and maybe
/// already transferred to an edge, must survive a power loss; decisions come at human
/// speed).
pub(super) fn configure(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let version = sqlite_file::configure(path, conn, &sqlite_file::PUBLISHED)
        .map_err(|e| refused(path, e))?;
    // A file stamped with the id published stores shared with profile stores before
    // they had their own: stamped again (the marker table showed it is ours).
    let app_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| storage(path, e))?;
    if version > 0 && app_id != sqlite_file::PUBLISHED.application_id {
        conn.pragma_update(
            None,
            "application_id",
            sqlite_file::PUBLISHED.application_id,
        )
        .map_err(|e| storage(path, e))?;
    }
    Ok(())
}

/// Creates the schema in an empty database (with a new store id), or checks an existing one.
pub(super) fn migrate(path: &Path, conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| storage(path, e))?;
    let version = check_identity(path, &tx)?;
    if version == 0 {
        tx.execute_batch(SCHEMA_V1).map_err(|e| storage(path, e))?;
        let id: u64 = rand::random();
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('store_id', ?1)",
            [format!("{id:016x}")],
        )
        .map_err(|e| storage(path, e))?;
        sqlite_file::stamp(&tx, &sqlite_file::PUBLISHED).map_err(|e| storage(path, e))?;
    }
    tx.commit().map_err(|e| storage(path, e))
}

/// 0 for an empty database, else its schema version; an error for a file that is not
/// ours ([`sqlite_file::identity`]).
fn check_identity(path: &Path, conn: &Connection) -> Result<i64, StoreError> {
    sqlite_file::identity(conn, &sqlite_file::PUBLISHED).map_err(|e| refused(path, e))
}

/// A [`sqlite_file::Refusal`] as this store's error.
fn refused(path: &Path, e: sqlite_file::Refusal) -> StoreError {
    match e {
        sqlite_file::Refusal::NotOurs(reason) => StoreError::NotOurs {
            path: path.to_owned(),
            reason,
        },
        sqlite_file::Refusal::Sqlite(e) => storage(path, e),
    }
}
