//! The database file: whether it is ours, per-connection settings (WAL, FULL sync) and
//! the schema with its migrations (`PRAGMA user_version`).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::error::{ProfileError, storage};
use crate::sqlite_file;

/// Schema version stored in `PRAGMA user_version`: 1 has profiles, identities,
/// subscribers and the audit log.
/// The application id and the open settings are [`sqlite_file::PROFILES`]'s.
pub(super) const SCHEMA_VERSION: i64 = sqlite_file::PROFILES.version;

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

/// Per-connection settings, once the file is known to be ours (or empty):
/// [`sqlite_file::configure`] (FULL: an acknowledged write, a parent's new rule, survives a
/// power loss), and foreign keys.
pub(super) fn configure(path: &Path, conn: &Connection) -> Result<(), ProfileError> {
    sqlite_file::configure(path, conn, &sqlite_file::PROFILES).map_err(|e| refused(path, e))?;
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
    }
    if version < SCHEMA_VERSION {
        sqlite_file::stamp(&tx, &sqlite_file::PROFILES).map_err(|e| storage(path, e))?;
    }
    tx.commit().map_err(|e| storage(path, e))
}

/// The schema version behind `conn` ([`sqlite_file::identity`]): 0 for an empty database,
/// 1 to [`SCHEMA_VERSION`] for a profile store; an error for anything else. Read-only.
fn check_identity(path: &Path, conn: &Connection) -> Result<i64, ProfileError> {
    sqlite_file::identity(conn, &sqlite_file::PROFILES).map_err(|e| refused(path, e))
}

/// A [`sqlite_file::Refusal`] as this store's error.
fn refused(path: &Path, e: sqlite_file::Refusal) -> ProfileError {
    match e {
        sqlite_file::Refusal::NotOurs(reason) => ProfileError::NotAProfileStore {
            path: path.to_owned(),
            reason,
        },
        sqlite_file::Refusal::Sqlite(e) => storage(path, e),
    }
}
