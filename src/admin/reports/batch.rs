//! [`ReportStore::submit_batch`]: a delivery from an edge, in one transaction, each report
//! counted once per idempotency key however often it is delivered.

use std::time::SystemTime;

use rusqlite::{TransactionBehavior, params};

use super::error::{ReportError, storage};
use super::store::{record, unix_seconds};
use super::validate::validate_key;
use super::{BatchOutcome, InvalidItem, KEY_RETENTION, KeyedReport, MAX_BATCH, ReportStore};

impl ReportStore {
    /// Records the reports edge `node` delivered (with the list serial each was made
    /// under, when sent) at `now`, all in one transaction (one sync to disk for the batch).
    ///
    /// A report whose key was seen in the last [`KEY_RETENTION`] is a redelivery and counts
    /// nothing; a report with bad input is listed in [`BatchOutcome::invalid`] and the rest
    /// are stored (a redelivery would be refused again, so the sender drops it). Keys older
    /// than the retention are forgotten here, as deliveries come in.
    ///
    /// # Errors
    /// [`ReportError::Invalid`] for a batch of more than [`MAX_BATCH`] reports (nothing is
    /// written), [`ReportError::Storage`] if SQLite fails (nothing is written either).
    pub fn submit_batch(
        &mut self,
        node: &str,
        items: &[KeyedReport],
        now: SystemTime,
    ) -> Result<BatchOutcome, ReportError> {
        if items.len() > MAX_BATCH {
            return Err(ReportError::invalid(
                "reports",
                format!(
                    "{} reports in one batch; send at most {MAX_BATCH}",
                    items.len()
                ),
            ));
        }
        // Validation reads the allowed categories: done before the transaction borrows
        // the connection.
        let mut outcome = BatchOutcome::default();
        let mut valid = Vec::with_capacity(items.len());
        for item in items {
            match validate_key(&item.key).and_then(|_| self.clean(&item.report)) {
                Ok(clean) => valid.push((item.key.as_str(), item.serial, clean)),
                Err(e) => outcome.invalid.push(InvalidItem {
                    key: item.key.chars().take(64).collect(),
                    error: e.to_string(),
                }),
            }
        }
        let now = unix_seconds(now);
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| storage(path, e))?;
        let forget_before = now.saturating_sub(KEY_RETENTION.as_secs() as i64);
        tx.prepare_cached("DELETE FROM report_keys WHERE received < ?1")
            .and_then(|mut st| st.execute([forget_before]))
            .map_err(|e| storage(path, e))?;
        for (key, serial, clean) in valid {
            let serial = serial.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
            let fresh = tx
                .prepare_cached(
                    "INSERT INTO report_keys (key, node, serial, received)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO NOTHING",
                )
                .and_then(|mut st| st.execute(params![key, node, serial, now]))
                .map_err(|e| storage(path, e))?;
            if fresh == 0 {
                outcome.duplicates += 1;
                continue;
            }
            let (id, _) = record(&tx, &clean, now).map_err(|e| storage(path, e))?;
            tx.prepare_cached("UPDATE report_keys SET report_id = ?2 WHERE key = ?1")
                .and_then(|mut st| st.execute(params![key, id]))
                .map_err(|e| storage(path, e))?;
            outcome.accepted += 1;
            outcome.stored.push(KeyedReport {
                key: key.to_owned(),
                serial: None,
                report: clean.to_report(),
            });
        }
        tx.commit().map_err(|e| storage(path, e))?;
        Ok(outcome)
    }
}
