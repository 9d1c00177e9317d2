//! Why a published-store operation failed, and which side is at fault.

use std::path::{Path, PathBuf};

use crate::publish::PublishError;

/// Why a published-store operation failed.
///
/// [`UnknownList`](Self::UnknownList) and [`InvalidName`](Self::InvalidName) are the
/// caller's (400), [`AlreadyDecided`](Self::AlreadyDecided) and
/// [`NotDecided`](Self::NotDecided) a conflict (409); the rest are the storage's (500:
/// log them, they name the file).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No list of that name may be published.
    #[error("no published list named `{0}`")]
    UnknownList(String),
    /// A name that does not normalize.
    #[error("`{name}` is not a host name: {reason}")]
    InvalidName {
        /// As given.
        name: String,
        /// Why.
        reason: String,
    },
    /// The report already has a decision that was not reverted.
    #[error(
        "report {report_id} was already decided ({decision}, decision {decision_id}); revert \
         it first (POST /v1/reports/{report_id}/revert)"
    )]
    AlreadyDecided {
        /// The report.
        report_id: i64,
        /// `accept` or `reject`.
        decision: String,
        /// The active decision's id.
        decision_id: i64,
    },
    /// A revert for a report with no active decision.
    #[error("report {report_id} has no decision to revert")]
    NotDecided {
        /// The report.
        report_id: i64,
    },
    /// The directory could not be created.
    #[error("published store {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not a published store (another application's database, a newer schema, not SQLite).
    #[error("published store {}: {reason}", path.display())]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// SQLite failed.
    #[error("published store {}: {source}", path.display())]
    Storage {
        /// The file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
}

impl StoreError {
    /// Whether the caller asked for something impossible (400).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            StoreError::UnknownList(_) | StoreError::InvalidName { .. }
        )
    }

    /// Whether the request conflicts with a decision's state (409).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::AlreadyDecided { .. } | StoreError::NotDecided { .. }
        )
    }
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UnknownList(list) => PublishError::UnknownList(list),
            other => PublishError::Store(other.to_string()),
        }
    }
}

pub(super) fn storage(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Storage {
        path: path.to_owned(),
        source,
    }
}
