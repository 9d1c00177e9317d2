//! What every SQLite file kidsafe-dns keeps has in common: it says whose it is, and it is
//! opened the same way.
//!
//! Four stores live side by side in `state_dir` (reports, profiles, a central's published
//! lists, an edge's forwarding spool), and an operator can point any path at any file.
//! Each [`Kind`] stamps its own `PRAGMA application_id` and schema version and names a
//! table only it has, so a store never takes another's file (or another program's) for
//! its own, and nothing is written to a file that is refused. Opening is the same for all:
//! a busy timeout, WAL where the file system allows it, `synchronous = FULL` (each store
//! acknowledges writes to a person: a report, a parent's rule, a reviewer's decision).
//!
//! Before this module each store carried its own copy of these checks, and two of them
//! stamped the same application id ("KSDP"), so a profile store accepted a published-lists
//! file; [`PUBLISHED`] now has its own id and still opens the files stamped before.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

/// One kind of store file.
#[derive(Debug)]
pub struct Kind {
    /// What the file is, for messages ("report store").
    pub what: &'static str,
    /// `PRAGMA application_id` stamped on it.
    pub application_id: i64,
    /// An id stamped by an older build, still opened (the marker table decides).
    pub legacy_id: Option<i64>,
    /// The newest schema version (`PRAGMA user_version`) this build reads.
    pub version: i64,
    /// A table every version of this store has and no other store has.
    pub marker_table: &'static str,
}

/// The report store ("KSDR").
pub const REPORTS: Kind = Kind {
    what: "report store",
    application_id: 0x4b53_4452,
    legacy_id: None,
    version: 5,
    marker_table: "reports",
};

/// The profile store ("KSDP").
pub const PROFILES: Kind = Kind {
    what: "profile store",
    application_id: 0x4b53_4450,
    legacy_id: None,
    version: 1,
    marker_table: "profiles",
};

/// A central's published lists ("KSDL"; files made before it carry "KSDP").
pub const PUBLISHED: Kind = Kind {
    what: "published-lists store",
    application_id: 0x4b53_444c,
    legacy_id: Some(0x4b53_4450),
    version: 1,
    marker_table: "decisions",
};

/// An edge's report forwarding spool ("KSDS").
pub const SPOOL: Kind = Kind {
    what: "report spool",
    application_id: 0x4b53_4453,
    legacy_id: None,
    version: 1,
    marker_table: "spool",
};

/// How long a writer waits for another connection's lock before failing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a file was not opened as a store.
#[derive(Debug)]
pub enum Refusal {
    /// The file is not this kind of store (the reason says what it is instead).
    NotOurs(String),
    /// SQLite failed while reading or writing it.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal::Sqlite(e)
    }
}

/// The schema version of the store behind `conn`: 0 for an empty database (to be created),
/// 1 to `kind.version` for one of ours. Read-only.
///
/// # Errors
/// [`Refusal::NotOurs`] for a file that is not an SQLite database, a database with tables
/// but no version (someone else's), another application's or another store's database, or
/// a newer schema.
pub fn identity(conn: &Connection, kind: &Kind) -> Result<i64, Refusal> {
    let app_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| {
            if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
                Refusal::NotOurs("not an SQLite database (or encrypted, or corrupt)".to_owned())
            } else {
                Refusal::Sqlite(e)
            }
        })?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let objects: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
    if version == 0 {
        if objects > 0 || app_id != 0 {
            return Err(Refusal::NotOurs(format!(
                "an SQLite database with {objects} schema objects but no {} schema \
                 (application_id {app_id:#x}, user_version 0)",
                kind.what
            )));
        }
        return Ok(0);
    }
    if app_id != kind.application_id && Some(app_id) != kind.legacy_id {
        return Err(Refusal::NotOurs(format!(
            "an SQLite database of another application or another kidsafe-dns store \
             (application_id {app_id:#x}, user_version {version}), not a {}",
            kind.what
        )));
    }
    let marked: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [kind.marker_table],
        |r| r.get(0),
    )?;
    if !marked {
        return Err(Refusal::NotOurs(format!(
            "another kidsafe-dns store (application_id {app_id:#x}, no `{}` table), not a {}",
            kind.marker_table, kind.what
        )));
    }
    if version > kind.version {
        return Err(Refusal::NotOurs(format!(
            "schema version {version} is newer than this build supports ({})",
            kind.version
        )));
    }
    Ok(version)
}

/// Per-connection settings, once the file is known to be ours (or empty): the busy
/// timeout, WAL (a warning where the file system cannot: network mounts), and
/// `synchronous = FULL`, because in WAL mode NORMAL syncs only at checkpoints and a power
/// loss could roll back writes already acknowledged to a person. Returns the version, as
/// [`identity`].
///
/// # Errors
/// As [`identity`]; nothing is written to a refused file.
pub fn configure(path: &Path, conn: &Connection, kind: &Kind) -> Result<i64, Refusal> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The first read of the file header: where a file that is not a database is caught.
    let version = identity(conn, kind)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), %mode, store = kind.what, "WAL unavailable");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(version)
}

/// Stamps `kind`'s application id and newest version (inside the transaction that
/// created or migrated the schema).
///
/// # Errors
/// SQLite failing.
pub fn stamp(conn: &Connection, kind: &Kind) -> rusqlite::Result<()> {
    conn.pragma_update(None, "application_id", kind.application_id)?;
    conn.pragma_update(None, "user_version", kind.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [&Kind; 4] = [&REPORTS, &PROFILES, &PUBLISHED, &SPOOL];

    fn made(kind: &Kind) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("CREATE TABLE {} (x);", kind.marker_table))
            .unwrap();
        stamp(&conn, kind).unwrap();
        conn
    }

    #[test]
    fn every_store_has_its_own_id_and_marker() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.application_id, b.application_id, "{} {}", a.what, b.what);
                assert_ne!(a.marker_table, b.marker_table);
            }
        }
    }

    #[test]
    fn a_store_opens_its_own_file_and_refuses_every_other() {
        for a in ALL {
            assert_eq!(identity(&made(a), a).unwrap(), a.version);
            for b in ALL.iter().filter(|b| b.what != a.what) {
                assert!(
                    matches!(identity(&made(b), a), Err(Refusal::NotOurs(_))),
                    "{} took a {}",
                    a.what,
                    b.what
                );
            }
        }
    }

    #[test]
    fn an_old_published_file_opens_but_a_profile_store_refuses_it() {
        // Stamped "KSDP" before PUBLISHED had its own id.
        let old = Connection::open_in_memory().unwrap();
        old.execute_batch("CREATE TABLE decisions (x); CREATE TABLE lists (y);")
            .unwrap();
        old.pragma_update(None, "application_id", PROFILES.application_id)
            .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        assert_eq!(identity(&old, &PUBLISHED).unwrap(), 1);
        let Err(Refusal::NotOurs(why)) = identity(&old, &PROFILES) else {
            panic!("a profile store took a published-lists file")
        };
        assert!(why.contains("no `profiles` table"), "{why}");
    }

    #[test]
    fn empty_foreign_and_newer_files() {
        let empty = Connection::open_in_memory().unwrap();
        assert_eq!(identity(&empty, &REPORTS).unwrap(), 0);
        let foreign = Connection::open_in_memory().unwrap();
        foreign.execute_batch("CREATE TABLE t (x);").unwrap();
        assert!(matches!(
            identity(&foreign, &REPORTS),
            Err(Refusal::NotOurs(_))
        ));
        let newer = made(&SPOOL);
        newer.pragma_update(None, "user_version", 9).unwrap();
        let Err(Refusal::NotOurs(why)) = identity(&newer, &SPOOL) else {
            panic!("a newer schema opened")
        };
        assert!(why.contains("newer"), "{why}");
    }
}
