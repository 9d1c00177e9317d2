//! Writing the store: a reviewer's accept, reject and revert (one transaction each, with
//! its audit row and its journal row), and the bulk import benchmarks and tests use.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{PublishedStore, StoreError};

/// A recorded decision: what the audit trail shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionRecord {
    /// The decision's id.
    pub id: i64,
    /// The report it decided.
    pub report_id: i64,
    /// `accept` or `reject`.
    pub decision: String,
    /// The list an accept published to (`None` for a reject).
    pub list: Option<String>,
    /// The normalized name.
    pub name: String,
    /// Who decided (the credential the request came with).
    pub actor: String,
    /// Why (the reviewer's note).
    pub note: Option<String>,
    /// When, seconds since the Unix epoch.
    pub at: u64,
    /// The serial of the change it made (`None`: it changed no list: a reject, or a name
    /// the list already held).
    pub serial: Option<u32>,
    /// When it was reverted, if it was.
    pub reverted_at: Option<u64>,
    /// Who reverted it.
    pub reverted_by: Option<String>,
    /// Why it was reverted.
    pub revert_note: Option<String>,
    /// The serial of the removal the revert published, if it removed the name.
    pub revert_serial: Option<u32>,
}

/// Who and why, for the audit.
#[derive(Clone, Copy, Debug)]
pub struct Audit<'a> {
    /// Who.
    pub actor: &'a str,
    /// Why.
    pub note: Option<&'a str>,
    /// When, seconds since the Unix epoch.
    pub at: u64,
}

const DECISION_COLUMNS: &str = "id, report_id, decision, list, name, actor, note, at, serial, \
     reverted_at, reverted_by, revert_note, revert_serial";

fn decision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DecisionRecord> {
    Ok(DecisionRecord {
        id: r.get(0)?,
        report_id: r.get(1)?,
        decision: r.get(2)?,
        list: r.get(3)?,
        name: r.get(4)?,
        actor: r.get(5)?,
        note: r.get(6)?,
        at: r.get::<_, i64>(7)?.max(0) as u64,
        serial: r.get(8)?,
        reverted_at: r.get::<_, Option<i64>>(9)?.map(|t| t.max(0) as u64),
        reverted_by: r.get(10)?,
        revert_note: r.get(11)?,
        revert_serial: r.get(12)?,
    })
}

impl PublishedStore {
    /// Accepts report `report_id` for `name` into `list`: records the decision and, when
    /// the list does not hold the name yet, adds it as one change with a new serial.
    ///
    /// # Errors
    /// [`StoreError::AlreadyDecided`] when the report has an active decision,
    /// [`StoreError::UnknownList`], [`StoreError::InvalidName`] (nothing is written).
    pub fn accept(
        &self,
        report_id: i64,
        list: &str,
        name: &str,
        audit: Audit<'_>,
    ) -> Result<DecisionRecord, StoreError> {
        let name = normalized(name)?;
        self.decide(report_id, Some(list), &name, audit)
    }

    /// Rejects report `report_id` (about `name`): records the decision; no list changes.
    ///
    /// # Errors
    /// [`StoreError::AlreadyDecided`], [`StoreError::InvalidName`].
    pub fn reject(
        &self,
        report_id: i64,
        name: &str,
        audit: Audit<'_>,
    ) -> Result<DecisionRecord, StoreError> {
        let name = normalized(name)?;
        self.decide(report_id, None, &name, audit)
    }

    fn decide(
        &self,
        report_id: i64,
        list: Option<&str>,
        name: &str,
        audit: Audit<'_>,
    ) -> Result<DecisionRecord, StoreError> {
        let mut conn = self.write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.storage(e))?;
        if let Some(active) = active(&tx, report_id).map_err(|e| self.storage(e))? {
            return Err(StoreError::AlreadyDecided {
                report_id,
                decision: active.decision,
                decision_id: active.id,
            });
        }
        if let Some(list) = list {
            let known: Option<i64> = tx
                .query_row("SELECT 1 FROM lists WHERE name = ?1", [list], |r| r.get(0))
                .optional()
                .map_err(|e| self.storage(e))?;
            if known.is_none() {
                return Err(StoreError::UnknownList(list.to_owned()));
            }
        }
        tx.execute(
            "INSERT INTO decisions (report_id, decision, list, name, actor, note, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                report_id,
                if list.is_some() { "accept" } else { "reject" },
                list,
                name,
                audit.actor,
                audit.note,
                audit.at as i64
            ],
        )
        .map_err(|e| self.storage(e))?;
        let id = tx.last_insert_rowid();
        let mut serial = None;
        if let Some(list) = list {
            let added = tx
                .execute(
                    "INSERT OR IGNORE INTO entries (list, name) VALUES (?1, ?2)",
                    params![list, name],
                )
                .map_err(|e| self.storage(e))?;
            if added == 1 {
                let s = self.change(&tx, list, name, true, id, audit)?;
                tx.execute(
                    "UPDATE decisions SET serial = ?2 WHERE id = ?1",
                    params![id, s],
                )
                .map_err(|e| self.storage(e))?;
                serial = Some(s);
            }
        }
        let record = by_id(&tx, id).map_err(|e| self.storage(e))?;
        tx.commit().map_err(|e| self.storage(e))?;
        drop(conn);
        if let Some(s) = serial {
            self.announce(s);
        }
        Ok(record)
    }

    /// Reverts report `report_id`'s active decision: an accept's name leaves its list (one
    /// change, a new serial) unless another active accept still holds it there.
    ///
    /// # Errors
    /// [`StoreError::NotDecided`] when the report has no active decision.
    pub fn revert(&self, report_id: i64, audit: Audit<'_>) -> Result<DecisionRecord, StoreError> {
        let mut conn = self.write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.storage(e))?;
        let Some(decision) = active(&tx, report_id).map_err(|e| self.storage(e))? else {
            return Err(StoreError::NotDecided { report_id });
        };
        tx.execute(
            "UPDATE decisions SET reverted_at = ?2, reverted_by = ?3, revert_note = ?4
             WHERE id = ?1",
            params![decision.id, audit.at as i64, audit.actor, audit.note],
        )
        .map_err(|e| self.storage(e))?;
        let mut serial = None;
        if let Some(list) = &decision.list {
            let still_held: i64 = tx
                .query_row(
                    "SELECT count(*) FROM decisions
                     WHERE list = ?1 AND name = ?2 AND decision = 'accept'
                       AND reverted_at IS NULL",
                    params![list, decision.name],
                    |r| r.get(0),
                )
                .map_err(|e| self.storage(e))?;
            if still_held == 0 {
                let removed = tx
                    .execute(
                        "DELETE FROM entries WHERE list = ?1 AND name = ?2",
                        params![list, decision.name],
                    )
                    .map_err(|e| self.storage(e))?;
                if removed == 1 {
                    let s = self.change(&tx, list, &decision.name, false, decision.id, audit)?;
                    tx.execute(
                        "UPDATE decisions SET revert_serial = ?2 WHERE id = ?1",
                        params![decision.id, s],
                    )
                    .map_err(|e| self.storage(e))?;
                    serial = Some(s);
                }
            }
        }
        let record = by_id(&tx, decision.id).map_err(|e| self.storage(e))?;
        tx.commit().map_err(|e| self.storage(e))?;
        drop(conn);
        if let Some(s) = serial {
            self.announce(s);
        }
        Ok(record)
    }

    /// Every decision on report `report_id`, oldest first (the audit trail).
    ///
    /// # Errors
    /// SQLite failing.
    pub fn decisions(&self, report_id: i64) -> Result<Vec<DecisionRecord>, StoreError> {
        let conn = self.read()?;
        conn.prepare_cached(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE report_id = ?1 ORDER BY id"
        ))
        .and_then(|mut st| st.query_map([report_id], decision_row)?.collect())
        .map_err(|e| self.storage(e))
    }

    /// The newest decisions first, `limit` of them, older than decision `before` when
    /// given (keyset paging on the decision id: a page costs the same at any depth).
    ///
    /// # Errors
    /// SQLite failing.
    pub fn recent_decisions(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let conn = self.read()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        conn.prepare_cached(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
        ))
        .and_then(|mut st| {
            st.query_map(params![before.unwrap_or(i64::MAX), limit], decision_row)?
                .collect()
        })
        .map_err(|e| self.storage(e))
    }

    /// Adds `names` to `list` in one transaction and one serial, without journal rows
    /// (a transfer from before it is a full one): for benchmarks and tests, and for seeding
    /// a central from an existing list. Returns the new serial and how many names were new.
    ///
    /// # Errors
    /// [`StoreError::UnknownList`], [`StoreError::InvalidName`] (nothing is written).
    pub fn import<I, S>(
        &self,
        list: &str,
        names: I,
        audit: Audit<'_>,
    ) -> Result<(u32, u64), StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut conn = self.write()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.storage(e))?;
        let known: Option<i64> = tx
            .query_row("SELECT 1 FROM lists WHERE name = ?1", [list], |r| r.get(0))
            .optional()
            .map_err(|e| self.storage(e))?;
        if known.is_none() {
            return Err(StoreError::UnknownList(list.to_owned()));
        }
        let mut added = 0u64;
        {
            let mut st = tx
                .prepare_cached("INSERT OR IGNORE INTO entries (list, name) VALUES (?1, ?2)")
                .map_err(|e| self.storage(e))?;
            for name in names {
                let name = normalized(name.as_ref())?;
                added += st
                    .execute(params![list, name])
                    .map_err(|e| self.storage(e))? as u64;
            }
        }
        let serial = next_serial(&tx).map_err(|e| self.storage(e))?;
        tx.execute(
            "UPDATE lists SET serial = ?2, pruned_through = ?2 WHERE name = ?1",
            params![list, serial],
        )
        .map_err(|e| self.storage(e))?;
        tx.commit().map_err(|e| self.storage(e))?;
        drop(conn);
        tracing::info!(
            list,
            serial,
            added,
            actor = audit.actor,
            "published list: names imported"
        );
        self.announce(serial);
        Ok((serial, added))
    }

    /// Takes the next serial for one change of `list` (`name` added or removed by
    /// decision `decision_id`), journals it, and prunes the list's journal to
    /// `journal_keep`.
    fn change(
        &self,
        tx: &Transaction<'_>,
        list: &str,
        name: &str,
        added: bool,
        decision_id: i64,
        audit: Audit<'_>,
    ) -> Result<u32, StoreError> {
        let serial = next_serial(tx).map_err(|e| self.storage(e))?;
        tx.execute(
            "UPDATE lists SET serial = ?2 WHERE name = ?1",
            params![list, serial],
        )
        .map_err(|e| self.storage(e))?;
        tx.prepare_cached(
            "INSERT INTO journal (serial, at, list, name, added, decision_id, actor, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut st| {
            st.execute(params![
                serial,
                audit.at as i64,
                list,
                name,
                added,
                decision_id,
                audit.actor,
                audit.note
            ])
        })
        .map_err(|e| self.storage(e))?;
        // Keep the newest `journal_keep` changes of this list; remember how far the
        // pruning went, so older requests get a full transfer.
        let cut: Option<u32> = tx
            .prepare_cached(
                "SELECT serial FROM journal WHERE list = ?1 ORDER BY serial DESC LIMIT 1 OFFSET ?2",
            )
            .and_then(|mut st| {
                st.query_row(params![list, self.journal_keep as i64], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.storage(e))?;
        if let Some(cut) = cut {
            tx.execute(
                "DELETE FROM journal WHERE list = ?1 AND serial <= ?2",
                params![list, cut],
            )
            .map_err(|e| self.storage(e))?;
            tx.execute(
                "UPDATE lists SET pruned_through = max(pruned_through, ?2) WHERE name = ?1",
                params![list, cut],
            )
            .map_err(|e| self.storage(e))?;
        }
        Ok(serial)
    }
}

/// Bumps the shared counter and returns the new serial.
fn next_serial(tx: &Transaction<'_>) -> rusqlite::Result<u32> {
    tx.query_row(
        "UPDATE meta SET value = value + 1 WHERE key = 'serial' RETURNING value",
        [],
        |r| r.get(0),
    )
}

fn active(tx: &Transaction<'_>, report_id: i64) -> rusqlite::Result<Option<DecisionRecord>> {
    tx.prepare_cached(&format!(
        "SELECT {DECISION_COLUMNS} FROM decisions WHERE report_id = ?1 AND reverted_at IS NULL"
    ))?
    .query_row([report_id], decision_row)
    .optional()
}

fn by_id(tx: &Transaction<'_>, id: i64) -> rusqlite::Result<DecisionRecord> {
    tx.prepare_cached(&format!(
        "SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?1"
    ))?
    .query_row([id], decision_row)
}

fn normalized(name: &str) -> Result<String, StoreError> {
    crate::lists::normalize::normalize(name)
        .map(|n| n.into_owned())
        .map_err(|reason| StoreError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_string(),
        })
}
