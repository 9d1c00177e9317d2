//! The database file: whether it is ours, per-connection settings (WAL, FULL sync) and
//! the schema with its migrations (`PRAGMA user_version`).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::error::{ProfileError, storage};

/// Schema version stored in `PRAGMA user_version`: 1 has profiles, identities,
/// subscribers and the audit log.
pub(super) const SCHEMA_VERSION: i64 = 1;
/// `PRAGMA application_id` marking the file as a kidsafe-dns profile store ("KSDP").
pub(super) const APPLICATION_ID: i64 = 0x4b53_4450;
/// How long a write waits for another connection's write transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1. Profile settings are one JSON document (a validated `ProfileSpec` without
/// its name); ids are AUTOINCREMENT so a deleted profile's id is never given again.
/// Subscribers name a profile by its public id (`p3` or `config:kids`). Nothing about
/// queries is ever stored here.
const SCHEMA_V1: &str = "
CREATE TABLE profiles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    settings    TEXT    NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE identities (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id  INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL CHECK (kind IN ('ip', 'cidr', 'client_id', 'mac')),
    value       TEXT    NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX identities_profile ON identities (profile_id, id);
CREATE TABLE subscribers (
    prefix      TEXT    PRIMARY KEY,
    profile     TEXT    NOT NULL
);
CREATE INDEX subscribers_profile ON subscribers (profile);
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    entity      TEXT    NOT NULL,
    before      TEXT,
    after       TEXT
);
";

/// Per-connection settings, once the file is known to be ours (or empty).
pub(super) fn configure(path: &Path, conn: &Connection) -> Result<(), ProfileError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| storage(path, e))?;
    check_identity(path, conn)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| storage(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, "profile store: WAL unavailable");
    }
    // FULL: an acknowledged write (a parent's new rule) survives a power loss.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| storage(path, e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| storage(path, e))?;
    Ok(())
}

/// Creates the schema in an empty database, or brings an older one up to date, in one
/// immediate transaction (two processes opening a new file create it once).
pub(super) fn migrate(path: &Path, conn: &mut Connection) -> Result<(), ProfileError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| storage(path, e))?;
    let version = check_identity(path, &tx)?;
    if version == 0 {
        tx.execute_batch(SCHEMA_V1).map_err(|e| storage(path, e))?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| storage(path, e))?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| storage(path, e))?;
    }
    tx.commit().map_err(|e| storage(path, e))
}

/// The schema version behind `conn`: 0 for an empty database, 1 to [`SCHEMA_VERSION`]
/// for a profile store; an error for anything else. Read-only.
fn check_identity(path: &Path, conn: &Connection) -> Result<i64, ProfileError> {
    let not_ours = |reason: String| ProfileError::NotAProfileStore {
        path: path.to_owned(),
        reason,
    };
    let app_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| {
            if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
                not_ours("not an SQLite database (or encrypted, or corrupt)".to_owned())
            } else {
                storage(path, e)
            }
        })?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| storage(path, e))?;
    match version {
        0 => {
            let objects: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
                .map_err(|e| storage(path, e))?;
            if objects > 0 || app_id != 0 {
                return Err(not_ours(format!(
                    "an SQLite database with {objects} schema objects but no profile store \
                     schema (application_id {app_id:#x})"
                )));
            }
        }
        _ if app_id != APPLICATION_ID => {
            return Err(not_ours(format!(
                "an SQLite database of another application (application_id {app_id:#x})"
            )));
        }
        1..=SCHEMA_VERSION => {}
        _ => {
            return Err(not_ours(format!(
                "schema version {version} is newer than this build supports ({SCHEMA_VERSION})"
            )));
        }
    }
    Ok(version)
}
