//! Forwarding reports from an edge to its central: a durable spool first, then delivery
//! in batches with retry and backoff.
//!
//! A report accepted at the edge is written to the spool ([`spool::Spool`], SQLite with
//! `synchronous=FULL`) under a random idempotency key before the reporter is answered; the
//! delivery task ([`deliver`]) sends up to [`ForwardConfig::batch_max`] spooled reports per
//! `POST` to the central and deletes them only after its 2xx. A central that is down for an
//! hour gets every report once when it returns: the keys make redeliveries (a 2xx lost on
//! the way back) count nothing there.
//!
//! What travels: the edge's node id, and per report its key, the list serial the edge was
//! serving, and the report as the edge stored it (normalized name, kind, category, note,
//! and a contact only where the edge's operator allows one). Never the reporter's address:
//! the spool has no column for it.
//!
//! This module knows reports only as JSON objects (the admin API decides their shape);
//! it owns the spool, the HTTP client and the counters.

pub mod deliver;
pub mod spool;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use spool::{Spool, SpoolError, Spooled};

/// File name of the spool under the state directory.
pub const SPOOL_FILE: &str = "report-spool.sqlite";
/// Reports per delivery when not configured.
pub const DEFAULT_BATCH_MAX: usize = 500;
/// Longest wait between two delivery attempts when not configured.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(30);

/// `[reports] forward_to` and its companions: where and how an edge delivers.
#[derive(Clone, Debug)]
pub struct ForwardConfig {
    /// The central's intake (`https://central.example/v1/reports`; http for loopback).
    pub url: reqwest::Url,
    /// The bearer token the central knows this edge by (from `token_file`).
    pub token: String,
    /// An extra CA (PEM) for the central's certificate, beside the system's roots.
    pub ca_file: Option<PathBuf>,
    /// This edge's name at the central (default: the host name).
    pub node_id: String,
    /// The longest wait between retries (the backoff doubles up to it).
    pub retry_max: Duration,
    /// Reports per delivery (1 to 1000).
    pub batch_max: usize,
    /// The spool database.
    pub spool: PathBuf,
}

/// Why forwarding could not start or a report could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The CA file could not be read or holds no certificate.
    #[error("reports.ca_file {}: {reason}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("report forwarding: cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Counters for `/metrics`: totals since start.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Reports written to the spool.
    pub spooled: AtomicU64,
    /// Reports the central acknowledged (2xx), removed from the spool.
    pub delivered: AtomicU64,
    /// Of those, reports the central refused for their input (dropped: a retry would be
    /// refused again).
    pub rejected: AtomicU64,
    /// Delivery attempts that failed (no answer, or not 2xx); each is retried.
    pub failures: AtomicU64,
    /// Reports waiting in the spool, as of the last spool operation.
    pub pending: AtomicU64,
}

impl ForwardStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// An edge's way to the central: the spool, and the signal that wakes the delivery task.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
    stats: Arc<ForwardStats>,
    config: Arc<ForwardConfig>,
}

impl Outbox {
    /// Opens (or creates) the spool of `config`; reports left in it from before are
    /// delivered once [`spawn`](Self::spawn) runs.
    ///
    /// # Errors
    /// [`ForwardError::Spool`] when the spool cannot be opened.
    pub fn open(config: ForwardConfig) -> Result<Self, ForwardError> {
        let spool = Spool::open(&config.spool)?;
        let stats = ForwardStats::default();
        stats.pending.store(spool.len()?, Ordering::Relaxed);
        Ok(Outbox {
            spool: Arc::new(Mutex::new(spool)),
            wake: Arc::new(Notify::new()),
            stats: Arc::new(stats),
            config: Arc::new(config),
        })
    }

    /// This edge's node id.
    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    /// Spools `reports` (each a JSON object with its key) in one transaction, synced to
    /// disk, and wakes the delivery task. Blocking: call it off the async threads.
    ///
    /// # Errors
    /// [`ForwardError::Spool`]: nothing was spooled.
    pub fn push(&self, reports: &[Spooled]) -> Result<(), ForwardError> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut spool = self.spool.lock().map_err(|_| SpoolError::Poisoned)?;
        spool.push(reports)?;
        ForwardStats::add(&self.stats.spooled, reports.len() as u64);
        self.stats
            .pending
            .store(spool.len().unwrap_or(0), Ordering::Relaxed);
        drop(spool);
        self.wake.notify_one();
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> &ForwardStats {
        &self.stats
    }

    /// Starts the delivery task: it runs until `stop`.
    ///
    /// # Errors
    /// [`ForwardError::Ca`] or [`ForwardError::Client`] when the HTTP client cannot be
    /// built.
    pub fn spawn(&self, stop: CancellationToken) -> Result<(), ForwardError> {
        let client = deliver::client(&self.config)?;
        let task = deliver::Delivery {
            client,
            outbox: self.clone(),
        };
        tokio::spawn(task.run(stop));
        Ok(())
    }
}

/// A new idempotency key: 128 random bits in hex.
pub fn new_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}
