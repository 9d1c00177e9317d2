//! Why a report operation failed, and which side is at fault.

use std::path::{Path, PathBuf};

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
    pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
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

pub(super) fn storage(path: &Path, source: rusqlite::Error) -> ReportError {
    ReportError::Storage {
        path: path.to_owned(),
        source,
    }
}
