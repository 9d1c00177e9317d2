//! Which reports a reviewer's listing holds: a status and a category, each an equality
//! (`status = ?`, `category = ?`), never `?1 IS NULL OR ...`, so that every order of
//! [`ReportStore::list`](super::ReportStore::list) and
//! [`ReportStore::list_sorted`](super::ReportStore::list_sorted) is a walk of one index
//! (`reports_status*`, `reports_category`; schema 4 and 5).

use rusqlite::types::Value;

use super::Status;

/// A listing's conditions: none, one or both.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Filter<'a> {
    /// Only reports with this status.
    pub(super) status: Option<Status>,
    /// Only reports in this category (as stored, compared exactly).
    pub(super) category: Option<&'a str>,
}

impl Filter<'_> {
    /// The conditions (each with one anonymous `?`) and their values, in order; more
    /// conditions and values can be pushed after them.
    pub(super) fn conditions(&self) -> (Vec<&'static str>, Vec<Value>) {
        let mut conditions = Vec::with_capacity(3);
        let mut values = Vec::with_capacity(4);
        if let Some(status) = self.status {
            conditions.push("status = ?");
            values.push(Value::Text(status.as_str().to_owned()));
        }
        if let Some(category) = self.category {
            conditions.push("category = ?");
            values.push(Value::Text(category.to_owned()));
        }
        (conditions, values)
    }
}

/// `WHERE a AND b` for `conditions`, or nothing for none.
pub(super) fn where_clause(conditions: &[&str]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}
