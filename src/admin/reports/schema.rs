//! The database file: whether it is ours, per-connection settings (WAL, FULL sync) and
//! the schema with its migrations.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::ReportStore;
use super::error::{ReportError, storage};
use crate::sqlite_file;

/// Schema version stored in `PRAGMA user_version`: 1 had the reports and their notes, 2
/// adds the reviewers' decisions, 3 the report's kind (deduplication on name, kind and
/// category), reporters' contacts and the idempotency keys of edges' deliveries, 4 the
/// indexes behind the reviewer's "most reported" and "recently reported" orders, 5 their
/// twins within one category (the console's category filter). The
/// application id, the busy timeout and the open settings are [`sqlite_file::REPORTS`]'s.
pub(super) const SCHEMA_VERSION: i64 = sqlite_file::REPORTS.version;

pub(super) const SCHEMA_V1: &str = "
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'accepted', 'rejected')),
    UNIQUE (name, category)
);
CREATE INDEX reports_status ON reports (status, id);
CREATE TABLE report_notes (
    id          INTEGER PRIMARY KEY,
    report_id   INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    note        TEXT    NOT NULL,
    added       INTEGER NOT NULL,
    UNIQUE (report_id, note)
);
";

/// Version 2: reviewers' decisions, an append-only audit trail.
const SCHEMA_V2: &str = "
CREATE TABLE report_decisions (
    id          INTEGER PRIMARY KEY,
    report_id   INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    status      TEXT    NOT NULL CHECK (status IN ('accepted', 'rejected')),
    note        TEXT,
    decided_at  INTEGER NOT NULL
);
CREATE INDEX report_decisions_report ON report_decisions (report_id, id);
";

/// Version 3: `kind` joins the unique key, so `reports` is rebuilt (SQLite cannot change a
/// table's constraints in place): the documented 12-step procedure, run with foreign keys
/// off (see [`ReportStore::migrate`]) so that dropping the old table does not cascade to
/// the notes and decisions; the new table takes the old ids, so they still point to it.
const SCHEMA_V3: &str = "
CREATE TABLE reports_v3 (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL DEFAULT 'harmful' CHECK (kind IN ('harmful', 'mistake')),
    category    TEXT    NOT NULL,
    count       INTEGER NOT NULL DEFAULT 1,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'accepted', 'rejected')),
    UNIQUE (name, kind, category)
);
INSERT INTO reports_v3 (id, name, kind, category, count, first_seen, last_seen, status)
    SELECT id, name, 'harmful', category, count, first_seen, last_seen, status FROM reports;
DROP TABLE reports;
ALTER TABLE reports_v3 RENAME TO reports;
CREATE INDEX reports_status ON reports (status, id);
CREATE TABLE report_contacts (
    id          INTEGER PRIMARY KEY,
    report_id   INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    contact     TEXT    NOT NULL,
    added       INTEGER NOT NULL,
    UNIQUE (report_id, contact)
);
-- Deliveries from edges: one row per report key, so a redelivery counts nothing.
-- Kept KEY_RETENTION (7 days) after it was received.
CREATE TABLE report_keys (
    key         TEXT    PRIMARY KEY,
    report_id   INTEGER REFERENCES reports (id) ON DELETE SET NULL,
    node        TEXT    NOT NULL,
    serial      INTEGER,
    received    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX report_keys_received ON report_keys (received);
";

/// Version 4: the reviewer's sorted queues (`list_sorted` by count or last seen, within a
/// status) are index scans, not a sort of every report (50,000 open reports: ~27 ms a
/// page, 58 ms at offset 25,000, before).
const SCHEMA_V4: &str = "
CREATE INDEX reports_status_count ON reports (status, count, id);
CREATE INDEX reports_status_last_seen ON reports (status, last_seen, id);
";

/// Version 5: the reviewer's queue filtered by category. Each order within a status and a
/// category is an index walk; every status of one category walks `reports_category` by id
/// (the sorted orders sort that category's reports only).
const SCHEMA_V5: &str = "
CREATE INDEX reports_category ON reports (category, id);
CREATE INDEX reports_status_category ON reports (status, category, id);
CREATE INDEX reports_status_category_count ON reports (status, category, count, id);
CREATE INDEX reports_status_category_last_seen ON reports (status, category, last_seen, id);
";

impl ReportStore {
    /// Per-connection settings, once the file is known to be ours (or empty): nothing is
    /// written to a file that is not a report store.
    pub(super) fn configure(&self) -> Result<(), ReportError> {
        sqlite_file::configure(&self.path, &self.conn, &sqlite_file::REPORTS)
            .map_err(|e| refused(&self.path, e))?;
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// Creates the schema in an empty database, or brings an older one up to date. Immediate transaction, and the identity
    /// checked again inside it: two processes opening a new file at once create the schema
    /// once.
    pub(super) fn migrate(&mut self) -> Result<(), ReportError> {
        let path = self.path.clone();
        // Rebuilding `reports` (version 3) must not cascade; foreign keys cannot be
        // switched inside a transaction, so off here and back on after it.
        self.conn
            .pragma_update(None, "foreign_keys", false)
            .map_err(|e| storage(&path, e))?;
        let migrated = self.migrate_in_transaction();
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(|e| storage(&path, e))?;
        migrated
    }

    fn migrate_in_transaction(&mut self) -> Result<(), ReportError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(&path, e))?;
        let version = check_identity(&path, &tx)?;
        if version == 0 {
            tx.execute_batch(SCHEMA_V1).map_err(|e| storage(&path, e))?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2).map_err(|e| storage(&path, e))?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_V3).map_err(|e| storage(&path, e))?;
            // The rebuild kept every id; a dangling reference would mean it did not.
            let dangling: i64 = tx
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })
                .map_err(|e| storage(&path, e))?;
            if dangling > 0 {
                return Err(ReportError::NotAReportStore {
                    path: path.clone(),
                    reason: format!(
                        "{dangling} rows point to missing reports; the upgrade to schema 3 \
                         was not applied"
                    ),
                });
            }
        }
        if version < 4 {
            tx.execute_batch(SCHEMA_V4).map_err(|e| storage(&path, e))?;
        }
        if version < 5 {
            tx.execute_batch(SCHEMA_V5).map_err(|e| storage(&path, e))?;
        }
        if version < SCHEMA_VERSION {
            sqlite_file::stamp(&tx, &sqlite_file::REPORTS).map_err(|e| storage(&path, e))?;
        }
        tx.commit().map_err(|e| storage(&path, e))
    }
}

/// The schema version of the database behind `conn` ([`sqlite_file::identity`]): 0 for an
/// empty database (to be created), 1 to [`SCHEMA_VERSION`] for a report store. Read-only.
///
/// # Errors
/// [`ReportError::NotAReportStore`] for a file that is not a report store.
fn check_identity(path: &Path, conn: &Connection) -> Result<i64, ReportError> {
    sqlite_file::identity(conn, &sqlite_file::REPORTS).map_err(|e| refused(path, e))
}

/// A [`sqlite_file::Refusal`] as this store's error.
fn refused(path: &Path, e: sqlite_file::Refusal) -> ReportError {
    match e {
        sqlite_file::Refusal::NotOurs(reason) => ReportError::NotAReportStore {
            path: path.to_owned(),
            reason,
        },
        sqlite_file::Refusal::Sqlite(e) => storage(path, e),
    }
}
