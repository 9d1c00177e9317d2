//! Why a profile operation failed, and which side is at fault.

use std::path::{Path, PathBuf};

/// Why a profile store operation failed.
///
/// [`Invalid`](Self::Invalid) (400), [`NotFound`](Self::NotFound) (404),
/// [`Conflict`](Self::Conflict) (409), [`PreconditionRequired`](Self::PreconditionRequired)
/// (428) and [`Stale`](Self::Stale) (412) are the caller's; they name the field or entity
/// and are safe to show. [`Unavailable`](Self::Unavailable) (503) is safe to show too: the
/// shared PostgreSQL store cannot be reached and nothing was changed. The others are
/// storage failures (500): they name the database, so log them and do not echo them.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// A field of the request is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field (`name`, `categories[2]`, `schedule.days`, `value`, ...).
        field: String,
        /// What is wrong with it, in plain words.
        reason: String,
    },
    /// The entity named does not exist.
    #[error("no {entity} {id}")]
    NotFound {
        /// What was looked for: `profile`, `identity`, `subscriber`.
        entity: &'static str,
        /// The id or key asked for.
        id: String,
        /// The request field that named it (`profile`), if it came from the body.
        field: Option<String>,
    },
    /// The request is valid but conflicts with what is stored: a duplicate identity, a
    /// name taken, or a profile defined in the config file (read-only).
    #[error("{field}: {reason}")]
    Conflict {
        /// The field in conflict (`value`, `name`, `id`).
        field: String,
        /// What it conflicts with.
        reason: String,
    },
    /// A write without `If-Match`.
    #[error(
        "this write needs an If-Match header with the profile's ETag (GET it first); \
         the current version is {current}"
    )]
    PreconditionRequired {
        /// The profile's current version.
        current: i64,
    },
    /// `If-Match` named a version that is no longer current: someone else wrote first.
    #[error(
        "the profile changed since you read it (If-Match {given}, current version \
         {current}); GET it again and retry"
    )]
    Stale {
        /// The version the caller had.
        given: String,
        /// The current version.
        current: i64,
    },
    /// The directory holding the database could not be created.
    #[error("profile store {}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not a profile store (not SQLite, another application's
    /// database, or a newer schema).
    #[error("profile store {}: {reason}", path.display())]
    NotAProfileStore {
        /// The database file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// SQLite failed.
    #[error("profile store {}: {source}", path.display())]
    Storage {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The shared PostgreSQL store cannot be reached (down, or the connection broke
    /// during the write): the write was rolled back. Retry later.
    #[error("the profile store (PostgreSQL at {target}) is unreachable; nothing was changed")]
    Unavailable {
        /// `host/db`, never the URL (it may hold a password).
        target: String,
    },
    /// PostgreSQL answered with an error.
    #[error("profile store (PostgreSQL at {target}): {source}")]
    Postgres {
        /// `host/db`.
        target: String,
        /// The error.
        #[source]
        source: postgres::Error,
    },
}

impl ProfileError {
    /// An [`Invalid`](Self::Invalid) error for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ProfileError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A [`Conflict`](Self::Conflict) error for `field`.
    pub fn conflict(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ProfileError::Conflict {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A [`NotFound`](Self::NotFound) error for a profile named by the request path.
    pub fn no_profile(id: impl Into<String>) -> Self {
        ProfileError::NotFound {
            entity: "profile",
            id: id.into(),
            field: None,
        }
    }

    /// Same error, saying which field (or line) of the request it came from: `field`
    /// becomes `prefix.field` (or `prefix` when there was none).
    pub fn within(self, prefix: &str) -> Self {
        let join = |f: String| {
            if f.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}.{f}")
            }
        };
        match self {
            ProfileError::Invalid { field, reason } => ProfileError::Invalid {
                field: join(field),
                reason,
            },
            ProfileError::Conflict { field, reason } => ProfileError::Conflict {
                field: join(field),
                reason,
            },
            ProfileError::NotFound { entity, id, field } => ProfileError::NotFound {
                entity,
                id,
                field: Some(join(field.unwrap_or_default())),
            },
            other => other,
        }
    }

    /// The request field this error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ProfileError::Invalid { field, .. } | ProfileError::Conflict { field, .. } => {
                Some(field)
            }
            ProfileError::NotFound { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// Whether the caller is at fault rather than the storage.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            ProfileError::Io { .. }
                | ProfileError::NotAProfileStore { .. }
                | ProfileError::Storage { .. }
                | ProfileError::Unavailable { .. }
                | ProfileError::Postgres { .. }
        )
    }
}

pub(super) fn storage(path: &Path, source: rusqlite::Error) -> ProfileError {
    ProfileError::Storage {
        path: path.to_owned(),
        source,
    }
}
