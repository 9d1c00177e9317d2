//! [`ReportDesk`]: where a report is taken in, whoever sends it (the API, the block page's
//! forms, an edge's delivery): stored locally, and spooled for the central when this
//! resolver forwards (`[reports] forward_to`).
//!
//! The reporter's address never reaches it: callers rate-limit by address and pass only
//! the report. A contact the reporter typed is dropped here unless the operator allows
//! contacts (`[reports] allow_contact`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::reports::{BatchOutcome, KeyedReport, NewReport, ReportError, ReportStore, Submitted};
use crate::config::ReportsConfig;
use crate::forward::{ForwardError, ForwardStats, Outbox, Spooled, new_key};
use crate::lists::swap::LiveBlocklist;

/// Why the desk could not take a report.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The store refused or failed (see [`ReportError::is_client_error`]).
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The spool for the central failed: the report is stored locally, not forwarded.
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// The store could not be reached (a panic while holding it).
    #[error("report store unavailable: {0}")]
    Unavailable(String),
}

/// The report store, and the outbox to the central when forwarding.
#[derive(Debug)]
pub struct ReportDesk {
    store: Arc<Mutex<ReportStore>>,
    outbox: Option<Outbox>,
    allow_contact: bool,
    lists: Arc<LiveBlocklist>,
    /// The categories a report may name (as at start), for forms' menus.
    categories: Vec<String>,
}

impl ReportDesk {
    /// Opens the store at `path` (taking reports in `categories`) and, with
    /// `settings.forward`, the spool.
    ///
    /// # Errors
    /// The store or the spool cannot be opened.
    pub fn open(
        path: &Path,
        categories: Vec<String>,
        settings: &ReportsConfig,
        lists: Arc<LiveBlocklist>,
    ) -> Result<Self, DeskError> {
        let mut store = ReportStore::open(path)?;
        store.set_categories(Some(categories.clone()));
        let outbox = settings.forward.clone().map(Outbox::open).transpose()?;
        Ok(ReportDesk {
            store: Arc::new(Mutex::new(store)),
            outbox,
            allow_contact: settings.allow_contact,
            lists,
            categories,
        })
    }

    /// Starts delivering to the central (when forwarding) until `stop`.
    ///
    /// # Errors
    /// The HTTP client cannot be built (the CA file).
    pub fn spawn(&self, stop: CancellationToken) -> Result<(), DeskError> {
        if let Some(outbox) = &self.outbox {
            outbox.spawn(stop)?;
            tracing::info!(node = outbox.node_id(), "forwarding reports to the central");
        }
        Ok(())
    }

    /// The store, for reading and deciding.
    pub fn store(&self) -> Arc<Mutex<ReportStore>> {
        self.store.clone()
    }

    /// The categories a report may name.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Whether a contact the reporter types is kept (`[reports] allow_contact`).
    pub fn allow_contact(&self) -> bool {
        self.allow_contact
    }

    /// The forwarding counters, when forwarding.
    pub fn forward_stats(&self) -> Option<&ForwardStats> {
        self.outbox.as_ref().map(Outbox::stats)
    }

    /// Takes one report from the public: stored, then spooled for the central under a new
    /// key, before this returns.
    ///
    /// # Errors
    /// [`DeskError::Report`] (bad input: nothing written; or the store failed),
    /// [`DeskError::Forward`] (stored, but not spooled).
    pub async fn submit(&self, mut report: NewReport) -> Result<Submitted, DeskError> {
        if !self.allow_contact {
            report.contact = None;
        }
        let (store, outbox) = (self.store.clone(), self.outbox.clone());
        let serial = self.lists.current().manifest().serial;
        blocking(move || {
            let submitted = lock(&store)?.submit(&report, SystemTime::now())?;
            if let Some(outbox) = outbox {
                // What was stored (normalized), not what was typed.
                report.name = submitted.name.clone();
                report.category = submitted.category.clone();
                let item = KeyedReport {
                    key: new_key(),
                    serial: Some(serial),
                    report,
                };
                outbox.push(&[spooled(&item)])?;
            }
            Ok(submitted)
        })
        .await
    }

    /// Takes a batch an edge delivered (`node`, from its token): one transaction, each key
    /// counted once; the new ones are spooled onwards (same keys) when this central
    /// forwards too.
    ///
    /// # Errors
    /// As [`ReportStore::submit_batch`]; [`DeskError::Forward`] when the onward spool
    /// failed (the edge retries; the keys make that harmless).
    pub async fn submit_batch(
        &self,
        node: String,
        mut items: Vec<KeyedReport>,
    ) -> Result<BatchOutcome, DeskError> {
        if !self.allow_contact {
            for item in &mut items {
                item.report.contact = None;
            }
        }
        let (store, outbox) = (self.store.clone(), self.outbox.clone());
        let serial = self.lists.current().manifest().serial;
        blocking(move || {
            let outcome = lock(&store)?.submit_batch(&node, &items, SystemTime::now())?;
            if let Some(outbox) = outbox {
                let onward: Vec<Spooled> = outcome
                    .stored
                    .iter()
                    .map(|item| {
                        spooled(&KeyedReport {
                            serial: Some(serial),
                            ..item.clone()
                        })
                    })
                    .collect();
                outbox.push(&onward)?;
            }
            Ok(outcome)
        })
        .await
    }
}

fn spooled(item: &KeyedReport) -> Spooled {
    Spooled {
        key: item.key.clone(),
        // Serializing plain strings and numbers cannot fail.
        json: serde_json::to_string(item).unwrap_or_default(),
    }
}

fn lock(store: &Mutex<ReportStore>) -> Result<std::sync::MutexGuard<'_, ReportStore>, DeskError> {
    store
        .lock()
        .map_err(|_| DeskError::Unavailable("poisoned by a panic".into()))
}

/// Runs `op` on a blocking thread (SQLite waits on the disk).
async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, DeskError> + Send + 'static,
) -> Result<T, DeskError> {
    tokio::task::spawn_blocking(op)
        .await
        .map_err(|e| DeskError::Unavailable(e.to_string()))?
}
