//! The durable store behind the public "report a harmful site" feature.
//!
//! Anyone may send a name they think should be blocked together with a category (and an
//! optional note); reviewers list the reports and mark them accepted or rejected. Reports
//! live in one SQLite database (WAL, `synchronous=FULL`, schema versioned with
//! `PRAGMA user_version`), so an acknowledged report survives a crash or a restart.
//!
//! * Names go through [`normalize`](crate::lists::normalize::normalize), the spelling the block lists use: `Bücher.Example.`,
//!   `bücher.example` and `xn--bcher-kva.example` are one report.
//! * A report is of a [`Kind`]: harmful (block it, in a category) or a mistake (it was
//!   blocked and should not be; the category that blocked it, if given).
//! * Reports are deduplicated on (normalized name, kind, category): a repeat bumps `count` and
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
//!
//! # Layout
//! - this file: the limits callers see;
//! - `types`: what goes in and out ([`NewReport`], [`Report`], [`Status`], [`ListQuery`], ...);
//! - `error`: [`ReportError`];
//! - `validate`: name, category and note checks, before anything is written;
//! - `store`: [`ReportStore`], the SQL behind submit, list, get and decide;
//! - `filter`: a listing's status and category conditions, each an index equality;
//! - `batch`: [`ReportStore::submit_batch`], an edge's delivery in one transaction, each
//!   report counted once per idempotency key (keys kept [`KEY_RETENTION`]);
//! - `schema`: the file's identity, per-connection settings and migrations.

mod batch;
mod error;
mod filter;
mod review;
mod schema;
mod store;
mod types;
mod validate;

pub use error::ReportError;
pub use review::SortBy;
pub use store::ReportStore;
pub use types::{
    BatchOutcome, Decision, InvalidItem, KeyedReport, Kind, ListQuery, NewDecision, NewReport,
    Report, Status, Submitted,
};

/// Longest note, in characters (Unicode scalar values), after cleaning.
pub const MAX_NOTE_CHARS: usize = 1000;
/// Longest contact, in characters, after cleaning.
pub const MAX_CONTACT_CHARS: usize = 200;
/// Most reports in one batch from an edge ([`ReportStore::submit_batch`]).
pub const MAX_BATCH: usize = 1000;
/// How long an idempotency key is remembered: a redelivery within it counts nothing.
pub const KEY_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// Most distinct notes kept per report (the first one included).
pub const MAX_NOTES: usize = 20;
/// Longest category name, in bytes.
pub const MAX_CATEGORY_LEN: usize = 64;
/// Reports returned by [`ReportStore::list`] when the query gives no limit.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Most reports one [`ReportStore::list`] call returns, whatever the query asks for.
pub const MAX_LIST_LIMIT: usize = 1000;

#[cfg(test)]
mod tests;
