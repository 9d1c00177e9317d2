//! [`ReportStore`]: one SQLite connection and the SQL behind submit, list, get and decide.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};

use super::error::{ReportError, storage};
use super::filter::{Filter, where_clause};
use super::validate::{clean_contact, clean_note, validate_category, validate_name};
use super::{
    DEFAULT_LIST_LIMIT, Decision, Kind, ListQuery, MAX_LIST_LIMIT, MAX_NOTES, NewDecision,
    NewReport, Report, Status, Submitted,
};

/// The report database: one SQLite connection.
pub struct ReportStore {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    categories: Option<Vec<String>>,
}

/// A report that passed validation: what is written.
#[derive(Clone, Debug)]
pub(super) struct Clean {
    pub(super) name: String,
    pub(super) kind: Kind,
    pub(super) category: String,
    pub(super) note: Option<String>,
    pub(super) contact: Option<String>,
}

impl Clean {
    /// Back to the wire form (normalized), for forwarding onwards.
    pub(super) fn to_report(&self) -> NewReport {
        NewReport {
            name: self.name.clone(),
            kind: self.kind,
            category: self.category.clone(),
            note: self.note.clone(),
            contact: self.contact.clone(),
        }
    }
}

/// Counts `report` at `now` inside `tx`: a new row or one more on the existing (name,
/// kind, category), with its note and contact kept while there is room. Returns the
/// report's id and count.
pub(super) fn record(tx: &Connection, report: &Clean, now: i64) -> rusqlite::Result<(i64, i64)> {
    let (id, count): (i64, i64) = tx
        .prepare_cached(
            "INSERT INTO reports (name, kind, category, count, first_seen, last_seen)
             VALUES (?1, ?2, ?3, 1, ?4, ?4)
             ON CONFLICT (name, kind, category) DO UPDATE
             SET count = count + 1, last_seen = max(last_seen, excluded.last_seen)
             RETURNING id, count",
        )?
        .query_row(
            params![report.name, report.kind.as_str(), report.category, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    if let Some(note) = &report.note {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO report_notes (report_id, note, added)
             SELECT ?1, ?2, ?3
             WHERE (SELECT count(*) FROM report_notes WHERE report_id = ?1) < ?4",
        )?
        .execute(params![id, note, now, MAX_NOTES as i64])?;
    }
    if let Some(contact) = &report.contact {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO report_contacts (report_id, contact, added)
             SELECT ?1, ?2, ?3
             WHERE (SELECT count(*) FROM report_contacts WHERE report_id = ?1) < ?4",
        )?
        .execute(params![id, contact, now, MAX_NOTES as i64])?;
    }
    Ok((id, count))
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
        let clean = self.clean(report)?;
        let now = unix_seconds(now);
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(path, e))?;
        let (id, count) = record(&tx, &clean, now).map_err(|e| storage(path, e))?;
        tx.commit().map_err(|e| storage(path, e))?;
        Ok(Submitted {
            id,
            name: clean.name,
            kind: clean.kind,
            category: clean.category,
            count: count as u64,
            new: count == 1,
        })
    }

    /// `report` validated and cleaned, or why not (the field named).
    pub(super) fn clean(&self, report: &NewReport) -> Result<Clean, ReportError> {
        let name = validate_name(&report.name)?;
        let category = match (report.kind, report.category.as_str()) {
            (Kind::Harmful, "") => {
                return Err(ReportError::invalid(
                    "category",
                    "a harmful-site report needs a category",
                ));
            }
            (Kind::Mistake, "") => String::new(),
            (_, c) => validate_category(c, self.categories.as_deref())?.to_owned(),
        };
        let note = report
            .note
            .as_deref()
            .map(clean_note)
            .transpose()?
            .flatten();
        let contact = report
            .contact
            .as_deref()
            .map(clean_contact)
            .transpose()?
            .flatten();
        Ok(Clean {
            name,
            kind: report.kind,
            category,
            note,
            contact,
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
        // Equalities only (no `?1 IS NULL OR ...`), so that each combination is an index
        // range scan (rowid, `reports_status`, `reports_category` or
        // `reports_status_category`) and a deep page costs no more than the first.
        let filter = Filter {
            status: query.status,
            category: query.category.as_deref(),
        };
        let (mut conditions, mut values) = filter.conditions();
        conditions.push("id < ?");
        values.push(Value::Integer(query.after_id.unwrap_or(i64::MAX)));
        values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT id, name, category, count, first_seen, last_seen, status, kind
             FROM reports {} ORDER BY id DESC LIMIT ?",
            where_clause(&conditions)
        );
        let mut reports: Vec<Report> = tx
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_map(params_from_iter(values), report_row)?
                    .collect()
            })
            .map_err(|e| self.storage(e))?;
        for report in &mut reports {
            report.notes = notes(&tx, report.id).map_err(|e| self.storage(e))?;
            report.decisions = decisions(&tx, report.id).map_err(|e| self.storage(e))?;
            report.contacts = contacts(&tx, report.id).map_err(|e| self.storage(e))?;
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
                "SELECT id, name, category, count, first_seen, last_seen, status, kind
                 FROM reports WHERE id = ?1",
            )
            .and_then(|mut st| st.query_row([id], report_row).optional())
            .map_err(|e| self.storage(e))?;
        let report = match report {
            Some(mut report) => {
                report.notes = notes(&tx, id).map_err(|e| self.storage(e))?;
                report.decisions = decisions(&tx, id).map_err(|e| self.storage(e))?;
                report.contacts = contacts(&tx, id).map_err(|e| self.storage(e))?;
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

    pub(super) fn storage(&self, source: rusqlite::Error) -> ReportError {
        storage(&self.path, source)
    }
}

/// A `reports` row (notes still empty).
fn report_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Report> {
    let status: String = row.get(6)?;
    let status = status.parse::<Status>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let kind: String = row.get(7)?;
    let kind = kind.parse::<Kind>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(Report {
        id: row.get(0)?,
        name: row.get(1)?,
        kind,
        category: row.get(2)?,
        notes: Vec::new(),
        count: row.get::<_, i64>(3)?.max(0) as u64,
        first_seen: row.get::<_, i64>(4)?.max(0) as u64,
        last_seen: row.get::<_, i64>(5)?.max(0) as u64,
        status,
        contacts: Vec::new(),
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

/// A report's contacts, oldest first.
fn contacts(conn: &Connection, report_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st = conn
        .prepare_cached("SELECT contact FROM report_contacts WHERE report_id = ?1 ORDER BY id")?;
    st.query_map([report_id], |r| r.get(0))?.collect()
}

/// A report's notes, oldest first.
fn notes(conn: &Connection, report_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut st =
        conn.prepare_cached("SELECT note FROM report_notes WHERE report_id = ?1 ORDER BY id")?;
    st.query_map([report_id], |r| r.get(0))?.collect()
}

/// Seconds since the Unix epoch; times before it count as 0.
pub(super) fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
