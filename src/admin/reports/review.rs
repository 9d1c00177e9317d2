//! What the review side reads beyond [`ReportStore::list`]: reports in a reviewer's order
//! (most reported, newest, oldest) with offset paging, whether a name is under review, and
//! a report's kind.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params_from_iter};
use serde::Deserialize;

use super::filter::{Filter, where_clause};
use super::{DEFAULT_LIST_LIMIT, Kind, MAX_LIST_LIMIT, Report, ReportError, ReportStore, Status};

/// A reviewer's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// Most reported first (ties: newest first).
    Count,
    /// Most recently reported first.
    LastSeen,
    /// First reported longest ago first (the review queue's order).
    FirstSeen,
}

impl ReportStore {
    /// Reports with `status` (all when `None`) in `category` (every one when `None`), in
    /// `sort` order, `offset` reports skipped, at most `limit` ([`DEFAULT_LIST_LIMIT`] when
    /// `None`, capped at [`MAX_LIST_LIMIT`]).
    ///
    /// # Errors
    /// [`ReportError::Storage`] if SQLite fails.
    pub fn list_sorted(
        &self,
        status: Option<Status>,
        category: Option<&str>,
        sort: SortBy,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<Report>, ReportError> {
        let limit = limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT) as i64;
        let order = match sort {
            SortBy::Count => "count DESC, id DESC",
            SortBy::LastSeen => "last_seen DESC, id DESC",
            SortBy::FirstSeen => "first_seen ASC, id ASC",
        };
        // With a status (and a category), equalities alone, so the order is a walk of
        // `reports_status_count` / `reports_status_last_seen` (schema 4) or of their
        // `reports_status_category_*` twins (schema 5).
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (conditions, mut values) = Filter { status, category }.conditions();
        values.push(Value::Integer(limit));
        values.push(Value::Integer(offset));
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(&format!(
                "SELECT id FROM reports {} ORDER BY {order} LIMIT ? OFFSET ?",
                where_clause(&conditions)
            ))
            .and_then(|mut st| {
                st.query_map(params_from_iter(values), |r| r.get(0))?
                    .collect()
            })
            .map_err(|e| self.storage(e))?;
        let mut reports = Vec::with_capacity(ids.len());
        for id in ids {
            // A report decided between the two reads is still listed, as it now stands.
            if let Some(report) = self.get(id)? {
                reports.push(report);
            }
        }
        Ok(reports)
    }

    /// Whether an open report names `name` (normalized) or a name above it, in any
    /// category: the public check's "under review".
    ///
    /// # Errors
    /// [`ReportError::Storage`] if SQLite fails.
    pub fn under_review(&self, name: &str) -> Result<bool, ReportError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT 1 FROM reports WHERE name = ?1 AND status = 'open' LIMIT 1")
            .map_err(|e| self.storage(e))?;
        let mut rest = name;
        loop {
            let open: Option<i64> = st
                .query_row([rest], |r| r.get(0))
                .optional()
                .map_err(|e| self.storage(e))?;
            if open.is_some() {
                return Ok(true);
            }
            match rest.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => rest = parent,
                _ => return Ok(false),
            }
        }
    }

    /// Report `id`'s kind: read from its `kind` column where the schema has one ("blocked
    /// by mistake" reports, `mistake`), [`Kind::Harmful`] otherwise (every report of a
    /// store without kinds is a harmful-site report).
    ///
    /// # Errors
    /// [`ReportError::Storage`] if SQLite fails.
    pub fn kind(&self, id: i64) -> Result<Kind, ReportError> {
        let has_kind: bool = self
            .conn
            .prepare_cached("SELECT 1 FROM pragma_table_info('reports') WHERE name = 'kind'")
            .and_then(|mut st| st.exists([]))
            .map_err(|e| self.storage(e))?;
        if !has_kind {
            return Ok(Kind::Harmful);
        }
        let kind: Option<String> = self
            .conn
            .prepare_cached("SELECT kind FROM reports WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |r| r.get(0)).optional())
            .map_err(|e| self.storage(e))?
            .flatten();
        Ok(match kind.as_deref() {
            Some("mistake") => Kind::Mistake,
            _ => Kind::Harmful,
        })
    }
}
