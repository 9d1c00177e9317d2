//! The durable store behind the public "report a harmful site" feature.
//!
//! Anyone may send a name they think should be blocked together with a category (and an
//! optional note); reviewers list the reports and mark them accepted or rejected. Reports
//! live in one SQLite database (WAL, `synchronous=FULL`, schema versioned with
//! `PRAGMA user_version`), so an acknowledged report survives a crash or a restart.
//!
//! * Names go through [`normalize`], the spelling the block lists use: `Bücher.Example.`,
//!   `bücher.example` and `xn--bcher-kva.example` are one report.
//! * Reports are deduplicated on (normalized name, category): a repeat bumps `count` and
//!   `last_seen`. Notes go to a child table: the first note is always kept, then up to
//!   [`MAX_NOTES`] distinct notes in all; later ones are dropped (the count still goes up).
//! * **Privacy: nothing about the reporter is stored.** No IP address, user agent, account or
//!   per-report timestamp trail: only the name, the category, the count, the first and last
//!   time it was reported, and the notes the reporters chose to write.
//! * Reviewers' decisions ([`ReportStore::decide`]: accepted or rejected, with a note) set
//!   the report's status and are kept as an audit trail, each with its time.
//! * Per-source rate limiting is not done here; the HTTP layer does it around
//!   [`ReportStore::submit`].
//!
//! The API is blocking: give the store its own thread, or call it from `spawn_blocking`
//! behind a `Mutex` ([`ReportStore`] is `Send`, not `Sync`). Several stores (connections)
//! may share one file; writes are serialized by SQLite.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::lists::normalize::{Reject, normalize};

/// Longest note, in characters (Unicode scalar values), after cleaning.
pub const MAX_NOTE_CHARS: usize = 1000;
/// Most distinct notes kept per report (the first one included).
pub const MAX_NOTES: usize = 20;
/// Longest category name, in bytes.
pub const MAX_CATEGORY_LEN: usize = 64;
/// Reports returned by [`ReportStore::list`] when the query gives no limit.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Most reports one [`ReportStore::list`] call returns, whatever the query asks for.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Schema version stored in `PRAGMA user_version`: 1 had the reports and their notes, 2
/// adds the reviewers' decisions.
const SCHEMA_VERSION: i64 = 2;
/// `PRAGMA application_id` marking the file as a kidsafe-dns report store ("KSDR").
const APPLICATION_ID: i64 = 0x4b53_4452;
/// How long a write waits for another connection's write transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Raw name input longer than this is rejected before normalization (a name is at most 253
/// octets; this leaves room for U-labels, which are longer than their A-labels in bytes).
const MAX_NAME_INPUT: usize = 1024;
/// Raw note input longer than this (in bytes) is rejected before cleaning.
const MAX_NOTE_INPUT: usize = 16 * MAX_NOTE_CHARS;

const SCHEMA_V1: &str = "
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

/// Why a report operation failed.
///
/// [`Invalid`](Self::Invalid) is the caller's fault (HTTP 400) and
/// [`NotFound`](Self::NotFound) names a report that does not exist (HTTP 404); the others are
/// storage failures (HTTP 500). The storage variants name the database path: log them, but
/// do not echo them to public clients.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A field of the request is invalid. Safe to show to the client.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field: `name`, `category` or `note`.
        field: &'static str,
        /// What is wrong with it, in plain words.
        reason: String,
    },
    /// No report has this id.
    #[error("no report with id {id}")]
    NotFound {
        /// The id asked for.
        id: i64,
    },
    /// The directory holding the database could not be created.
    #[error("report store {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not a report store: not an SQLite database, another
    /// application's database, or a schema newer than this build understands.
    #[error("report store {}: {reason}", path.display())]
    NotAReportStore {
        /// The database file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// SQLite failed (I/O error, disk full, locked for longer than the busy timeout...).
    #[error("report store {}: {source}", path.display())]
    Storage {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
}

impl ReportError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ReportError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Whether the caller is at fault ([`Invalid`](Self::Invalid) or
    /// [`NotFound`](Self::NotFound)) rather than the storage.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            ReportError::Invalid { .. } | ReportError::NotFound { .. }
        )
    }
}

/// A reviewer's verdict on a report. Serialized in lowercase (`"open"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not reviewed yet (every new report).
    Open,
    /// A reviewer agreed the name belongs in the category.
    Accepted,
    /// A reviewer disagreed.
    Rejected,
}

impl Status {
    /// The lowercase name, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Status::Open),
            "accepted" => Ok(Status::Accepted),
            "rejected" => Ok(Status::Rejected),
            _ => Err(ReportError::invalid(
                "status",
                format!("unknown status {s:?}; expected open, accepted or rejected"),
            )),
        }
    }
}

/// A report as submitted by the public, before validation.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NewReport {
    /// The host name, in any case, with or without a trailing dot, U-labels or A-labels.
    /// Surrounding whitespace is ignored. IP addresses and URLs are rejected.
    pub name: String,
    /// The category the reporter thinks it belongs to: 1 to [`MAX_CATEGORY_LEN`] printable
    /// ASCII characters, compared case-sensitively (as the configured categories are).
    pub category: String,
    /// Free text, at most [`MAX_NOTE_CHARS`] characters once cleaned: control characters
    /// (newlines and tabs included) become spaces, bidirectional formatting characters are
    /// removed, surrounding whitespace is trimmed; a note left empty counts as none.
    #[serde(default)]
    pub note: Option<String>,
}

/// What [`ReportStore::submit`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// The report's id (the same for every repeat of a name and category).
    pub id: i64,
    /// The normalized name.
    pub name: String,
    /// The category.
    pub category: String,
    /// How many times it has been reported, this time included.
    pub count: u64,
    /// Whether this created the report (`count == 1`).
    pub new: bool,
}

/// A stored report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Stable id, increasing with creation time.
    pub id: i64,
    /// The normalized name.
    pub name: String,
    /// The category.
    pub category: String,
    /// The distinct notes, oldest first: the first note ever sent, then up to
    /// [`MAX_NOTES`] in all.
    pub notes: Vec<String>,
    /// How many times it has been reported.
    pub count: u64,
    /// When it was first reported, in seconds since the Unix epoch.
    pub first_seen: u64,
    /// When it was last reported, in seconds since the Unix epoch.
    pub last_seen: u64,
    /// The reviewers' verdict.
    pub status: Status,
    /// Every decision recorded on it, oldest first (the last one set `status`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// A reviewer's decision as sent to [`ReportStore::decide`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDecision {
    /// `accepted` or `rejected`.
    pub status: Status,
    /// Why, for the record: cleaned like a report's note (at most [`MAX_NOTE_CHARS`]).
    #[serde(default)]
    pub note: Option<String>,
}

/// A recorded decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `accepted` or `rejected`.
    pub status: Status,
    /// The reviewer's note, if any.
    pub note: Option<String>,
    /// When it was recorded, in seconds since the Unix epoch.
    pub decided_at: u64,
}

/// Which reports [`ReportStore::list`] returns.
///
/// Reports come newest first (by id, i.e. by when they were first reported; a repeat does
/// not move a report up). Page with `after_id`: pass the id of the last report of the
/// previous page to get the reports listed after it (those with smaller ids). Deserializable
/// so it can be taken straight from a query string (`?status=open&limit=50&after_id=120`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ListQuery {
    /// Only reports with this status; all of them when `None`.
    #[serde(default)]
    pub status: Option<Status>,
    /// How many reports at most: [`DEFAULT_LIST_LIMIT`] when `None`, capped at
    /// [`MAX_LIST_LIMIT`].
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only reports listed after this one (with a smaller id).
    #[serde(default)]
    pub after_id: Option<i64>,
}

/// The report database: one SQLite connection.
pub struct ReportStore {
    conn: Connection,
    path: PathBuf,
    categories: Option<Vec<String>>,
}

impl fmt::Debug for ReportStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportStore")
            .field("path", &self.path)
            .field("categories", &self.categories)
            .finish_non_exhaustive()
    }
}

impl ReportStore {
    /// Opens the store at `path`, creating the parent directory and the database if missing.
    ///
    /// # Errors
    /// [`ReportError::Io`] if the directory cannot be created,
    /// [`ReportError::NotAReportStore`] if the file is not an SQLite database, belongs to
    /// another application or has a newer schema (the file is left untouched), and
    /// [`ReportError::Storage`] for other SQLite failures.
    pub fn open(path: &Path) -> Result<Self, ReportError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| storage(path, e))?;
        let mut store = ReportStore {
            conn,
            path: path.to_owned(),
            categories: None,
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Restricts the categories [`submit`](Self::submit) accepts to `categories` (typically
    /// the configured ones; call again after a config reload), or lifts the restriction with
    /// `None` (the default: any well-formed category is accepted and the caller checks).
    pub fn set_categories(&mut self, categories: Option<Vec<String>>) {
        self.categories = categories;
    }

    /// Records a report made at `now`.
    ///
    /// A first report of (normalized name, category) creates a row with status
    /// [`Status::Open`]; a repeat increments its count and moves `last_seen` forward, keeps
    /// its status, and adds the note if it is new and fewer than [`MAX_NOTES`] are kept. The
    /// report is committed (and synced to disk) when this returns `Ok`.
    ///
    /// # Errors
    /// [`ReportError::Invalid`] naming the field for bad input (nothing is written),
    /// [`ReportError::Storage`] if SQLite fails.
    pub fn submit(
        &mut self,
        report: &NewReport,
        now: SystemTime,
    ) -> Result<Submitted, ReportError> {
        let name = validate_name(&report.name)?;
        let category = validate_category(&report.category, self.categories.as_deref())?;
        let note = report
            .note
            .as_deref()
            .map(clean_note)
            .transpose()?
            .flatten();
        let now = unix_seconds(now);

        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(path, e))?;
        let (id, count): (i64, i64) = tx
            .prepare_cached(
                "INSERT INTO reports (name, category, count, first_seen, last_seen)
                 VALUES (?1, ?2, 1, ?3, ?3)
                 ON CONFLICT (name, category) DO UPDATE
                 SET count = count + 1, last_seen = max(last_seen, excluded.last_seen)
                 RETURNING id, count",
            )
            .and_then(|mut st| {
                st.query_row(params![name, category, now], |r| Ok((r.get(0)?, r.get(1)?)))
            })
            .map_err(|e| storage(path, e))?;
        if let Some(note) = &note {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO report_notes (report_id, note, added)
                 SELECT ?1, ?2, ?3
                 WHERE (SELECT count(*) FROM report_notes WHERE report_id = ?1) < ?4",
            )
            .and_then(|mut st| st.execute(params![id, note, now, MAX_NOTES as i64]))
            .map_err(|e| storage(path, e))?;
        }
        tx.commit().map_err(|e| storage(path, e))?;

        Ok(Submitted {
            id,
            name,
            category: category.to_owned(),
            count: count as u64,
            new: count == 1,
        })
    }

    /// Reports matching `query`, newest first (see [`ListQuery`]), with their notes.
    ///
    /// # Errors
    /// [`ReportError::Storage`] if SQLite fails.
    pub fn list(&self, query: &ListQuery) -> Result<Vec<Report>, ReportError> {
        let limit = query
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .min(MAX_LIST_LIMIT);
        // One read transaction: the reports and their notes come from the same snapshot.
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.storage(e))?;
        // Two statements rather than `?1 IS NULL OR ...`, so that both are index range
        // scans (rowid, or `reports_status`) and a deep page costs no more than the first.
        let before = query.after_id.unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut reports: Vec<Report> = match query.status {
            None => tx
                .prepare_cached(
                    "SELECT id, name, category, count, first_seen, last_seen, status
                     FROM reports WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
                )
                .and_then(|mut st| st.query_map(params![before, limit], report_row)?.collect()),
            Some(status) => tx
                .prepare_cached(
                    "SELECT id, name, category, count, first_seen, last_seen, status
                     FROM reports WHERE status = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                )
                .and_then(|mut st| {
                    st.query_map(params![status.as_str(), before, limit], report_row)?
                        .collect()
                }),
        }
        .map_err(|e| self.storage(e))?;
        for report in &mut reports {
            report.notes = notes(&tx, report.id).map_err(|e| self.storage(e))?;
            report.decisions = decisions(&tx, report.id).map_err(|e| self.storage(e))?;
        }
        tx.finish().map_err(|e| self.storage(e))?;
        Ok(reports)
    }

    /// The report with this id, if there is one.
    ///
    /// # Errors
    /// [`ReportError::Storage`] if SQLite fails.
    pub fn get(&self, id: i64) -> Result<Option<Report>, ReportError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.storage(e))?;
        let report = tx
            .prepare_cached(
                "SELECT id, name, category, count, first_seen, last_seen, status
                 FROM reports WHERE id = ?1",
            )
            .and_then(|mut st| st.query_row([id], report_row).optional())
            .map_err(|e| self.storage(e))?;
        let report = match report {
            Some(mut report) => {
                report.notes = notes(&tx, id).map_err(|e| self.storage(e))?;
                report.decisions = decisions(&tx, id).map_err(|e| self.storage(e))?;
                Some(report)
            }
            None => None,
        };
        tx.finish().map_err(|e| self.storage(e))?;
        Ok(report)
    }

    /// Sets a report's status (a reviewer's verdict, or back to open).
    ///
    /// # Errors
    /// [`ReportError::NotFound`] if no report has this id, [`ReportError::Storage`] if
    /// SQLite fails.
    pub fn set_status(&mut self, id: i64, status: Status) -> Result<(), ReportError> {
        let changed = self
            .conn
            .prepare_cached("UPDATE reports SET status = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, status.as_str()]))
            .map_err(|e| self.storage(e))?;
        if changed == 0 {
            return Err(ReportError::NotFound { id });
        }
        Ok(())
    }

    /// Records a reviewer's decision on report `id` at `now`: sets its status and appends
    /// the decision (status, cleaned note, time) to its audit trail, in one transaction.
    /// Returns the report as it now stands.
    ///
    /// # Errors
    /// [`ReportError::Invalid`] for a status other than accepted or rejected, or a bad
    /// note, and [`ReportError::NotFound`] for an unknown id (nothing is written either
    /// way); [`ReportError::Storage`] if SQLite fails.
    pub fn decide(
        &mut self,
        id: i64,
        decision: &NewDecision,
        now: SystemTime,
    ) -> Result<Report, ReportError> {
        if decision.status == Status::Open {
            return Err(ReportError::invalid(
                "status",
                "a decision is \"accepted\" or \"rejected\"",
            ));
        }
        let note = decision
            .note
            .as_deref()
            .map(clean_note)
            .transpose()?
            .flatten();
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(path, e))?;
        let changed = tx
            .prepare_cached("UPDATE reports SET status = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, decision.status.as_str()]))
            .map_err(|e| storage(path, e))?;
        if changed == 0 {
            // Dropping the transaction rolls it back (there was nothing to undo).
            return Err(ReportError::NotFound { id });
        }
        tx.prepare_cached(
            "INSERT INTO report_decisions (report_id, status, note, decided_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| {
            st.execute(params![
                id,
                decision.status.as_str(),
                note,
                unix_seconds(now)
            ])
        })
        .map_err(|e| storage(path, e))?;
        tx.commit().map_err(|e| storage(path, e))?;
        self.get(id)?.ok_or(ReportError::NotFound { id })
    }

    /// Per-connection settings, once the file is known to be ours (or empty): nothing is
    /// written to a file that is not a report store.
    fn configure(&self) -> Result<(), ReportError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.storage(e))?;
        // The first read of the file header: where a file that is not a database is caught.
        check_identity(&self.path, &self.conn)?;
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| self.storage(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some file systems (network mounts) cannot do WAL; the rollback journal is just
            // as durable, only readers and the writer block each other.
            tracing::warn!(path = %self.path.display(), %mode, "report store: WAL unavailable");
        }
        // FULL, not NORMAL: in WAL mode NORMAL syncs only at checkpoints, so a power loss or
        // OS crash can roll back transactions that were already committed, i.e. reports we
        // acknowledged to the reporter. FULL syncs the WAL on every commit. Reports arrive
        // at human speed (and rate-limited), so one fsync per report costs nothing that
        // matters.
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.storage(e))?;
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(|e| self.storage(e))?;
        Ok(())
    }

    /// Creates the schema in an empty database, or brings an older one up to date. Immediate transaction, and the identity
    /// checked again inside it: two processes opening a new file at once create the schema
    /// once.
    fn migrate(&mut self) -> Result<(), ReportError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(&path, e))?;
        let version = check_identity(&path, &tx)?;
        if version == 0 {
            tx.execute_batch(SCHEMA_V1).map_err(|e| storage(&path, e))?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(|e| storage(&path, e))?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2).map_err(|e| storage(&path, e))?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(|e| storage(&path, e))?;
        }
        tx.commit().map_err(|e| storage(&path, e))
    }

    fn storage(&self, source: rusqlite::Error) -> ReportError {
        storage(&self.path, source)
    }
}

/// The schema version of the database behind `conn`: 0 for an empty database (to be
/// created), 1 to [`SCHEMA_VERSION`] for a report store. Read-only.
///
/// # Errors
/// [`ReportError::NotAReportStore`] for a file that is not an SQLite database, a database
/// with tables but no version (someone else's), another application's database, or a newer
/// schema.
fn check_identity(path: &Path, conn: &Connection) -> Result<i64, ReportError> {
    let not_ours = |reason: String| ReportError::NotAReportStore {
        path: path.to_owned(),
        reason,
    };
    let app_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| {
            if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
                not_ours("not an SQLite database (or encrypted, or corrupt)".to_owned())
            } else {
                storage(path, e)
            }
        })?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| storage(path, e))?;
    match version {
        0 => {
            let objects: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(|e| storage(path, e))?;
            if objects > 0 || app_id != 0 {
                return Err(not_ours(format!(
                    "an SQLite database with {objects} schema objects but no report store \
                     schema (application_id {app_id:#x}, user_version 0)"
                )));
            }
        }
        _ if app_id != APPLICATION_ID => {
            return Err(not_ours(format!(
                "an SQLite database of another application (application_id {app_id:#x}, \
                 user_version {version})"
            )));
        }
        1..=SCHEMA_VERSION => {}
        _ => {
            return Err(not_ours(format!(
                "schema version {version} is newer than this build supports ({SCHEMA_VERSION})"
            )));
        }
    }
    Ok(version)
}

fn storage(path: &Path, source: rusqlite::Error) -> ReportError {
    ReportError::Storage {
        path: path.to_owned(),
        source,
    }
}

/// A `reports` row (notes still empty).
fn report_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Report> {
    let status: String = row.get(6)?;
    let status = status.parse::<Status>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Report {
        id: row.get(0)?,
        name: row.get(1)?,
        category: row.get(2)?,
        notes: Vec::new(),
        count: row.get::<_, i64>(3)?.max(0) as u64,
        first_seen: row.get::<_, i64>(4)?.max(0) as u64,
        last_seen: row.get::<_, i64>(5)?.max(0) as u64,
        status,
        decisions: Vec::new(),
    })
}

/// A report's decisions, oldest first.
fn decisions(conn: &Connection, report_id: i64) -> rusqlite::Result<Vec<Decision>> {
    let mut st = conn.prepare_cached(
        "SELECT status, note, decided_at FROM report_decisions WHERE report_id = ?1 ORDER BY id",
    )?;
    st.query_map([report_id], |r| {
        let status: String = r.get(0)?;
        let status = status.parse::<Status>().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?;
        Ok(Decision {
            status,
            note: r.get(1)?,
            decided_at: r.get::<_, i64>(2)?.max(0) as u64,
        })
    })?
    .collect()
}

/// A report's notes, oldest first.
fn notes(conn: &Connection, report_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st =
        conn.prepare_cached("SELECT note FROM report_notes WHERE report_id = ?1 ORDER BY id")?;
    st.query_map([report_id], |r| r.get(0))?.collect()
}

/// Seconds since the Unix epoch; times before it count as 0.
fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The normalized name, or why it is not a host name we take reports for.
fn validate_name(raw: &str) -> Result<String, ReportError> {
    let raw = raw.trim();
    if raw.len() > MAX_NAME_INPUT {
        return Err(ReportError::invalid("name", "too long to be a host name"));
    }
    normalize(raw).map(|n| n.into_owned()).map_err(|reject| {
        let reason = match reject {
            Reject::EmptyName => "empty",
            Reject::EmptyLabel => "empty label (a leading dot or two dots in a row)",
            Reject::LabelTooLong => "a label is longer than 63 octets",
            Reject::NameTooLong => "longer than 253 octets",
            Reject::BadCharacter => {
                "only letters, digits, '-', '_' and '.' are allowed; \
                 send a host name such as www.example.com, not a URL"
            }
            Reject::IpAddress => "an IP address; send a host name",
            Reject::BadIdn => "not a valid internationalized domain name",
            other => other.as_str(),
        };
        ReportError::invalid("name", reason)
    })
}

/// The category, if well-formed (and one of `allowed`, when given).
fn validate_category<'a>(raw: &'a str, allowed: Option<&[String]>) -> Result<&'a str, ReportError> {
    if raw.is_empty() {
        return Err(ReportError::invalid("category", "empty"));
    }
    if raw.len() > MAX_CATEGORY_LEN {
        return Err(ReportError::invalid(
            "category",
            format!("longer than {MAX_CATEGORY_LEN} characters"),
        ));
    }
    if !raw.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        || raw.starts_with(' ')
        || raw.ends_with(' ')
    {
        return Err(ReportError::invalid(
            "category",
            "only printable ASCII characters are allowed, without leading or trailing spaces",
        ));
    }
    if let Some(allowed) = allowed
        && !allowed.iter().any(|c| c == raw)
    {
        return Err(ReportError::invalid(
            "category",
            format!(
                "unknown category {raw:?}; expected one of: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(raw)
}

/// Bidirectional formatting characters: they can make a note display as something other
/// than what it says ("Trojan Source"), so they are removed.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// The cleaned note, `None` if nothing is left, or why it is refused.
fn clean_note(raw: &str) -> Result<Option<String>, ReportError> {
    let too_long =
        || ReportError::invalid("note", format!("longer than {MAX_NOTE_CHARS} characters"));
    if raw.len() > MAX_NOTE_INPUT {
        return Err(too_long());
    }
    let cleaned: String = raw
        .chars()
        .filter(|&c| !is_bidi_control(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() > MAX_NOTE_CHARS {
        return Err(too_long());
    }
    Ok((!cleaned.is_empty()).then(|| cleaned.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn report(name: &str, category: &str, note: Option<&str>) -> NewReport {
        NewReport {
            name: name.to_owned(),
            category: category.to_owned(),
            note: note.map(str::to_owned),
        }
    }

    fn temp_store() -> (tempfile::TempDir, ReportStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ReportStore::open(&dir.path().join("reports.db")).unwrap();
        (dir, store)
    }

    fn all(store: &ReportStore) -> Vec<Report> {
        store
            .list(&ListQuery {
                limit: Some(MAX_LIST_LIMIT),
                ..ListQuery::default()
            })
            .unwrap()
    }

    fn invalid_field(err: ReportError) -> &'static str {
        match err {
            ReportError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn open_creates_parent_dir_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/reports.db");
        let store = ReportStore::open(&path).unwrap();
        assert!(path.is_file());
        assert_eq!(store.path(), path);
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = store
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        assert!(all(&store).is_empty());
    }

    #[test]
    fn submit_creates_a_report() {
        let (_dir, mut store) = temp_store();
        let s = store
            .submit(
                &report("Casino.Example.", "gambling", Some("slots")),
                at(100),
            )
            .unwrap();
        assert_eq!(
            s,
            Submitted {
                id: s.id,
                name: "casino.example".into(),
                category: "gambling".into(),
                count: 1,
                new: true,
            }
        );
        assert_eq!(
            store.get(s.id).unwrap().unwrap(),
            Report {
                id: s.id,
                name: "casino.example".into(),
                category: "gambling".into(),
                notes: vec!["slots".into()],
                count: 1,
                first_seen: 100,
                last_seen: 100,
                status: Status::Open,
                decisions: Vec::new(),
            }
        );
        assert_eq!(store.get(s.id + 1).unwrap(), None);
    }

    #[test]
    fn spellings_of_one_name_dedup_into_one_report() {
        let (_dir, mut store) = temp_store();
        let a = store
            .submit(&report("bücher.example", "adult", None), at(100))
            .unwrap();
        let b = store
            .submit(&report("  BÜCHER.Example.  ", "adult", None), at(200))
            .unwrap();
        let c = store
            .submit(&report("XN--BCHER-KVA.EXAMPLE.", "adult", None), at(150))
            .unwrap();
        assert_eq!(a.name, "xn--bcher-kva.example");
        assert!(a.new && !b.new && !c.new);
        assert_eq!((a.id, a.count), (b.id, 1));
        assert_eq!((b.count, c.count), (2, 3));
        let reports = all(&store);
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!((r.count, r.first_seen, r.last_seen), (3, 100, 200));
        assert!(r.notes.is_empty());
    }

    #[test]
    fn other_category_is_another_report() {
        let (_dir, mut store) = temp_store();
        let a = store
            .submit(&report("x.example", "adult", None), at(1))
            .unwrap();
        let b = store
            .submit(&report("x.example", "gambling", None), at(2))
            .unwrap();
        let c = store
            .submit(&report("x.example", "Adult", None), at(3))
            .unwrap();
        assert!(a.new && b.new && c.new, "categories are case-sensitive");
        assert_ne!(a.id, b.id);
        assert_eq!(all(&store).len(), 3);
    }

    #[test]
    fn notes_keep_the_first_then_distinct_ones_up_to_the_cap() {
        let (_dir, mut store) = temp_store();
        let mut id = 0;
        store
            .submit(&report("n.example", "adult", None), at(1))
            .unwrap();
        for (i, note) in ["first", "second", "first", "  second\n", "\u{202e}third"]
            .into_iter()
            .enumerate()
        {
            id = store
                .submit(&report("n.example", "adult", Some(note)), at(2 + i as u64))
                .unwrap()
                .id;
        }
        let r = store.get(id).unwrap().unwrap();
        assert_eq!(r.notes, ["first", "second", "third"]);
        assert_eq!(r.count, 6);

        for i in 0..2 * MAX_NOTES {
            store
                .submit(
                    &report("n.example", "adult", Some(&format!("note {i}"))),
                    at(10),
                )
                .unwrap();
        }
        let r = store.get(id).unwrap().unwrap();
        assert_eq!(r.notes.len(), MAX_NOTES);
        assert_eq!(r.notes[0], "first");
        assert_eq!(r.notes[MAX_NOTES - 1], format!("note {}", MAX_NOTES - 4));
        assert_eq!(r.count, 6 + 2 * MAX_NOTES as u64);
    }

    #[test]
    fn notes_are_cleaned() {
        assert_eq!(clean_note("  \t \n").unwrap(), None);
        assert_eq!(
            clean_note("line one\r\nline\ttwo\u{0}\u{7f}\u{85}end")
                .unwrap()
                .unwrap(),
            "line one  line two   end"
        );
        assert_eq!(
            clean_note("a\u{202e}b\u{2066}c\u{200f}").unwrap().unwrap(),
            "abc"
        );
        assert_eq!(
            clean_note("Grüße 😀").unwrap().unwrap(),
            "Grüße 😀",
            "non-ASCII text is kept"
        );
        let max = "é".repeat(MAX_NOTE_CHARS);
        assert_eq!(
            clean_note(&max).unwrap().unwrap(),
            max,
            "counted in characters"
        );
        assert_eq!(
            clean_note(&format!("\n{max}\n")).unwrap().unwrap(),
            max,
            "after trimming"
        );
    }

    #[test]
    fn reports_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.db");
        let (id, id2) = {
            let mut store = ReportStore::open(&path).unwrap();
            let id = store
                .submit(&report("p.example", "drugs", Some("why")), at(5))
                .unwrap()
                .id;
            let id2 = store
                .submit(&report("q.example", "drugs", None), at(6))
                .unwrap()
                .id;
            store.set_status(id2, Status::Rejected).unwrap();
            (id, id2)
        };
        let mut store = ReportStore::open(&path).unwrap();
        let again = store
            .submit(&report("P.EXAMPLE", "drugs", None), at(9))
            .unwrap();
        assert_eq!((again.id, again.count, again.new), (id, 2, false));
        let r = store.get(id).unwrap().unwrap();
        assert_eq!(
            (r.notes, r.first_seen, r.last_seen),
            (vec!["why".into()], 5, 9)
        );
        assert_eq!(store.get(id2).unwrap().unwrap().status, Status::Rejected);
        let new = store
            .submit(&report("r.example", "drugs", None), at(10))
            .unwrap();
        assert!(new.id > id2, "ids are not reused");
    }

    #[test]
    fn bad_names_are_rejected() {
        let (_dir, mut store) = temp_store();
        for name in [
            "",
            " ",
            ".",
            "a..example",
            "1.2.3.4",
            "::1",
            "[2001:db8::1]",
            "https://example.com/page",
            "*.example.com",
            "exa mple.com",
            "xn--zz.example",
            &"a".repeat(64),
            &format!("{}.example", "a.".repeat(130)),
            &"a".repeat(MAX_NAME_INPUT + 1),
        ] {
            let err = store
                .submit(&report(name, "adult", None), at(1))
                .unwrap_err();
            assert!(err.is_client_error());
            let msg = err.to_string();
            assert_eq!(invalid_field(err), "name", "{name:?}: {msg}");
        }
        let err = store
            .submit(&report("10.0.0.1", "adult", None), at(1))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid name: an IP address; send a host name"
        );
        assert!(all(&store).is_empty(), "nothing written");
    }

    #[test]
    fn bad_categories_are_rejected() {
        let (_dir, mut store) = temp_store();
        for category in [
            "",
            " adult",
            "adult ",
            "adu\nlt",
            "adült",
            "\u{0}",
            &"c".repeat(MAX_CATEGORY_LEN + 1),
        ] {
            let err = store
                .submit(&report("ok.example", category, None), at(1))
                .unwrap_err();
            assert_eq!(invalid_field(err), "category", "{category:?}");
        }
        assert!(
            store
                .submit(&report("ok.example", "self harm", None), at(1))
                .unwrap()
                .new
        );
        assert!(
            store
                .submit(
                    &report("ok.example", &"c".repeat(MAX_CATEGORY_LEN), None),
                    at(1)
                )
                .unwrap()
                .new
        );
    }

    #[test]
    fn configured_categories_restrict_submissions() {
        let (_dir, mut store) = temp_store();
        store.set_categories(Some(vec!["adult".into(), "gambling".into()]));
        let err = store
            .submit(&report("ok.example", "weapons", None), at(1))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid category: unknown category \"weapons\"; expected one of: adult, gambling"
        );
        assert!(
            store
                .submit(&report("ok.example", "gambling", None), at(1))
                .is_ok()
        );
        store.set_categories(None);
        assert!(
            store
                .submit(&report("ok.example", "weapons", None), at(1))
                .is_ok()
        );
    }

    #[test]
    fn bad_notes_are_rejected() {
        let (_dir, mut store) = temp_store();
        for note in [
            "x".repeat(MAX_NOTE_CHARS + 1),
            "é".repeat(MAX_NOTE_CHARS + 1),
            " ".repeat(MAX_NOTE_INPUT + 1),
        ] {
            let err = store
                .submit(&report("ok.example", "adult", Some(&note)), at(1))
                .unwrap_err();
            assert_eq!(invalid_field(err), "note");
        }
        assert!(all(&store).is_empty());
        let s = store
            .submit(&report("ok.example", "adult", Some("\n \t")), at(1))
            .unwrap();
        assert!(store.get(s.id).unwrap().unwrap().notes.is_empty());
    }

    #[test]
    fn garbage_file_is_an_error_naming_the_path_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.db");
        let garbage = "this is not a database\n".repeat(200);
        std::fs::write(&path, &garbage).unwrap();
        let err = ReportStore::open(&path).unwrap_err();
        assert!(
            matches!(err, ReportError::NotAReportStore { .. }),
            "{err:?}"
        );
        assert!(!err.is_client_error());
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("not an SQLite database"), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), garbage);
    }

    #[test]
    fn foreign_or_newer_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE reports (x); INSERT INTO reports VALUES (1);")
            .unwrap();
        let err = ReportStore::open(&foreign).unwrap_err();
        assert!(matches!(err, ReportError::NotAReportStore { .. }), "{err}");
        assert!(err.to_string().contains("foreign.db"), "{err}");
        let mode: String = Connection::open(&foreign)
            .unwrap()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "a foreign database is not switched to WAL");

        let newer = dir.path().join("newer.db");
        drop(ReportStore::open(&newer).unwrap());
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = ReportStore::open(&newer).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("schema version {} is newer", SCHEMA_VERSION + 1)),
            "{err}"
        );

        let dir_path = dir.path().join("a-directory");
        std::fs::create_dir(&dir_path).unwrap();
        let err = ReportStore::open(&dir_path).unwrap_err();
        assert!(err.to_string().contains("a-directory"), "{err}");
    }

    #[test]
    fn decisions_set_the_status_and_are_kept_with_their_time() {
        let (_dir, mut store) = temp_store();
        let id = store
            .submit(&report("bet.example", "gambling", None), at(10))
            .unwrap()
            .id;
        let decision = |status, note: Option<&str>| NewDecision {
            status,
            note: note.map(str::to_owned),
        };
        let r = store
            .decide(
                id,
                &decision(Status::Rejected, Some("a news site\n")),
                at(20),
            )
            .unwrap();
        assert_eq!(r.status, Status::Rejected);
        let r = store
            .decide(id, &decision(Status::Accepted, None), at(30))
            .unwrap();
        assert_eq!(r.status, Status::Accepted);
        assert_eq!(
            r.decisions,
            [
                Decision {
                    status: Status::Rejected,
                    note: Some("a news site".into()),
                    decided_at: 20,
                },
                Decision {
                    status: Status::Accepted,
                    note: None,
                    decided_at: 30,
                },
            ]
        );
        assert_eq!(all(&store)[0].decisions, r.decisions);

        // Refused decisions change nothing.
        let before = store.get(id).unwrap();
        let e = store
            .decide(id, &decision(Status::Open, Some("x")), at(40))
            .unwrap_err();
        assert_eq!(invalid_field(e), "status");
        let long = "x".repeat(MAX_NOTE_CHARS + 1);
        let e = store
            .decide(id, &decision(Status::Rejected, Some(&long)), at(40))
            .unwrap_err();
        assert_eq!(invalid_field(e), "note");
        let e = store
            .decide(id + 1, &decision(Status::Rejected, None), at(40))
            .unwrap_err();
        assert!(matches!(e, ReportError::NotFound { .. }), "{e}");
        assert_eq!(store.get(id).unwrap(), before);
    }

    #[test]
    fn a_version_1_store_is_upgraded_and_keeps_its_reports() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.pragma_update(None, "application_id", APPLICATION_ID)
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO reports (name, category, first_seen, last_seen) VALUES ('old.example', 'adult', 5, 5)",
                [],
            )
            .unwrap();
        }
        let mut store = ReportStore::open(&path).unwrap();
        let version: i64 = store
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let id = all(&store)[0].id;
        let decision = NewDecision {
            status: Status::Accepted,
            note: Some("listed".into()),
        };
        assert_eq!(
            store.decide(id, &decision, at(9)).unwrap().decisions.len(),
            1
        );
        drop(store);
        // Opening again does not migrate twice.
        assert_eq!(
            all(&ReportStore::open(&path).unwrap())[0].status,
            Status::Accepted
        );
    }

    #[test]
    fn empty_file_becomes_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.db");
        std::fs::write(&path, b"").unwrap();
        let mut store = ReportStore::open(&path).unwrap();
        assert!(
            store
                .submit(&report("e.example", "adult", None), at(1))
                .unwrap()
                .new
        );
    }

    #[test]
    fn list_pages_newest_first_and_filters_by_status() {
        let (_dir, mut store) = temp_store();
        let ids: Vec<i64> = (0..25)
            .map(|i| {
                store
                    .submit(&report(&format!("s{i}.example"), "adult", None), at(i))
                    .unwrap()
                    .id
            })
            .collect();
        // A repeat of the oldest does not move it up.
        store
            .submit(&report("s0.example", "adult", None), at(100))
            .unwrap();

        let mut seen = Vec::new();
        let mut after_id = None;
        loop {
            let page = store
                .list(&ListQuery {
                    limit: Some(10),
                    after_id,
                    ..ListQuery::default()
                })
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 10);
            after_id = page.last().map(|r| r.id);
            seen.extend(page.into_iter().map(|r| r.id));
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first);

        assert_eq!(store.list(&ListQuery::default()).unwrap().len(), 25);
        let zero = ListQuery {
            limit: Some(0),
            ..ListQuery::default()
        };
        assert!(store.list(&zero).unwrap().is_empty());

        store.set_status(ids[3], Status::Accepted).unwrap();
        store.set_status(ids[7], Status::Accepted).unwrap();
        store.set_status(ids[9], Status::Rejected).unwrap();
        let by_status = |status| {
            store
                .list(&ListQuery {
                    status: Some(status),
                    ..ListQuery::default()
                })
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(by_status(Status::Accepted), [ids[7], ids[3]]);
        assert_eq!(by_status(Status::Rejected), [ids[9]]);
        assert_eq!(by_status(Status::Open).len(), 22);

        let err = store.set_status(9999, Status::Accepted).unwrap_err();
        assert!(matches!(err, ReportError::NotFound { id: 9999 }));
        assert!(err.is_client_error());
    }

    #[test]
    fn list_limit_is_capped() {
        let (_dir, mut store) = temp_store();
        // Many commits: skip the fsyncs, durability is not what this test is about.
        store
            .conn
            .pragma_update(None, "synchronous", "OFF")
            .unwrap();
        for i in 0..MAX_LIST_LIMIT + 5 {
            store
                .submit(&report(&format!("c{i}.example"), "adult", None), at(1))
                .unwrap();
        }
        let q = |limit| ListQuery {
            limit,
            ..ListQuery::default()
        };
        assert_eq!(store.list(&q(None)).unwrap().len(), DEFAULT_LIST_LIMIT);
        assert_eq!(
            store.list(&q(Some(usize::MAX))).unwrap().len(),
            MAX_LIST_LIMIT
        );
    }

    #[test]
    fn repeat_keeps_status() {
        let (_dir, mut store) = temp_store();
        let s = store
            .submit(&report("k.example", "adult", None), at(1))
            .unwrap();
        store.set_status(s.id, Status::Rejected).unwrap();
        store
            .submit(&report("k.example", "adult", None), at(2))
            .unwrap();
        let r = store.get(s.id).unwrap().unwrap();
        assert_eq!((r.status, r.count), (Status::Rejected, 2));
    }

    #[test]
    fn two_connections_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.db");
        let mut a = ReportStore::open(&path).unwrap();
        let mut b = ReportStore::open(&path).unwrap();
        let first = a
            .submit(&report("t.example", "adult", Some("from a")), at(1))
            .unwrap();
        let second = b
            .submit(&report("T.example.", "adult", Some("from b")), at(2))
            .unwrap();
        assert_eq!((second.id, second.count, second.new), (first.id, 2, false));
        assert_eq!(
            a.get(first.id).unwrap().unwrap().notes,
            ["from a", "from b"]
        );

        // Writers on two threads, each with its own connection: every report counted.
        const PER_THREAD: u64 = 50;
        std::thread::scope(|s| {
            for store in [&mut a, &mut b] {
                s.spawn(move || {
                    for i in 0..PER_THREAD {
                        store
                            .submit(&report("busy.example", "adult", None), at(10 + i))
                            .unwrap();
                    }
                });
            }
        });
        let busy = all(&a)
            .into_iter()
            .find(|r| r.name == "busy.example")
            .unwrap();
        assert_eq!(busy.count, 2 * PER_THREAD);
        assert_eq!(all(&b), all(&a));
    }

    #[test]
    fn output_types_serialize_for_the_http_layer() {
        let r = Report {
            id: 7,
            name: "x.example".into(),
            category: "adult".into(),
            notes: vec!["n".into()],
            count: 2,
            first_seen: 1,
            last_seen: 3,
            status: Status::Accepted,
            decisions: Vec::new(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"id":7,"name":"x.example","category":"adult","notes":["n"],"count":2,"first_seen":1,"last_seen":3,"status":"accepted"}"#
        );
        let q: ListQuery =
            serde_json::from_str(r#"{"status":"open","limit":5,"after_id":9}"#).unwrap();
        assert_eq!(
            q,
            ListQuery {
                status: Some(Status::Open),
                limit: Some(5),
                after_id: Some(9),
            }
        );
        let n: NewReport =
            serde_json::from_str(r#"{"name":"x.example","category":"adult"}"#).unwrap();
        assert_eq!(n.note, None);
        assert_eq!("rejected".parse::<Status>().unwrap(), Status::Rejected);
        assert_eq!(
            invalid_field("Open".parse::<Status>().unwrap_err()),
            "status"
        );
    }
}
