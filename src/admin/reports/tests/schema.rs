//! Opening, identity checks, migrations and durability of the database file.

use rusqlite::Connection;

use super::*;
use crate::admin::reports::schema::{SCHEMA_V1, SCHEMA_VERSION};
use crate::sqlite_file::REPORTS;

#[test]
fn open_creates_parent_dir_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/reports.db");
    let store = ReportStore::open(&path).unwrap();
    assert!(path.is_file());
    assert_eq!(store.path(), path);
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = store
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "FULL");
    assert!(all(&store).is_empty());
}

#[test]
fn reports_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports.db");
    let (id, id2) = {
        let mut store = ReportStore::open(&path).unwrap();
        let id = store
            .submit(&report("p.example", "drugs", Some("why")), at(5))
            .unwrap()
            .id;
        let id2 = store
            .submit(&report("q.example", "drugs", None), at(6))
            .unwrap()
            .id;
        store.set_status(id2, Status::Rejected).unwrap();
        (id, id2)
    };
    let mut store = ReportStore::open(&path).unwrap();
    let again = store
        .submit(&report("P.EXAMPLE", "drugs", None), at(9))
        .unwrap();
    assert_eq!((again.id, again.count, again.new), (id, 2, false));
    let r = store.get(id).unwrap().unwrap();
    assert_eq!(
        (r.notes, r.first_seen, r.last_seen),
        (vec!["why".into()], 5, 9)
    );
    assert_eq!(store.get(id2).unwrap().unwrap().status, Status::Rejected);
    let new = store
        .submit(&report("r.example", "drugs", None), at(10))
        .unwrap();
    assert!(new.id > id2, "ids are not reused");
}

#[test]
fn garbage_file_is_an_error_naming_the_path_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports.db");
    let garbage = "this is not a database\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let err = ReportStore::open(&path).unwrap_err();
    assert!(
        matches!(err, ReportError::NotAReportStore { .. }),
        "{err:?}"
    );
    assert!(!err.is_client_error());
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not an SQLite database"), "{msg}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), garbage);
}

#[test]
fn foreign_or_newer_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE reports (x); INSERT INTO reports VALUES (1);")
        .unwrap();
    let err = ReportStore::open(&foreign).unwrap_err();
    assert!(matches!(err, ReportError::NotAReportStore { .. }), "{err}");
    assert!(err.to_string().contains("foreign.db"), "{err}");
    let mode: String = Connection::open(&foreign)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "a foreign database is not switched to WAL");

    let newer = dir.path().join("newer.db");
    drop(ReportStore::open(&newer).unwrap());
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = ReportStore::open(&newer).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("schema version {} is newer", SCHEMA_VERSION + 1)),
        "{err}"
    );

    let dir_path = dir.path().join("a-directory");
    std::fs::create_dir(&dir_path).unwrap();
    let err = ReportStore::open(&dir_path).unwrap_err();
    assert!(err.to_string().contains("a-directory"), "{err}");
}

#[test]
fn a_version_1_store_is_upgraded_and_keeps_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.pragma_update(None, "application_id", REPORTS.application_id)
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO reports (name, category, first_seen, last_seen) VALUES ('old.example', 'adult', 5, 5)",
            [],
        )
        .unwrap();
    }
    let mut store = ReportStore::open(&path).unwrap();
    let version: i64 = store
        .conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let id = all(&store)[0].id;
    let decision = NewDecision {
        status: Status::Accepted,
        note: Some("listed".into()),
    };
    assert_eq!(
        store.decide(id, &decision, at(9)).unwrap().decisions.len(),
        1
    );
    drop(store);
    // Opening again does not migrate twice.
    assert_eq!(
        all(&ReportStore::open(&path).unwrap())[0].status,
        Status::Accepted
    );
}

#[test]
fn empty_file_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports.db");
    std::fs::write(&path, b"").unwrap();
    let mut store = ReportStore::open(&path).unwrap();
    assert!(
        store
            .submit(&report("e.example", "adult", None), at(1))
            .unwrap()
            .new
    );
}

#[test]
fn two_connections_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports.db");
    let mut a = ReportStore::open(&path).unwrap();
    let mut b = ReportStore::open(&path).unwrap();
    let first = a
        .submit(&report("t.example", "adult", Some("from a")), at(1))
        .unwrap();
    let second = b
        .submit(&report("T.example.", "adult", Some("from b")), at(2))
        .unwrap();
    assert_eq!((second.id, second.count, second.new), (first.id, 2, false));
    assert_eq!(
        a.get(first.id).unwrap().unwrap().notes,
        ["from a", "from b"]
    );

    // Writers on two threads, each with its own connection: every report counted.
    const PER_THREAD: u64 = 50;
    std::thread::scope(|s| {
        for store in [&mut a, &mut b] {
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    store
                        .submit(&report("busy.example", "adult", None), at(10 + i))
                        .unwrap();
                }
            });
        }
    });
    let busy = all(&a)
        .into_iter()
        .find(|r| r.name == "busy.example")
        .unwrap();
    assert_eq!(busy.count, 2 * PER_THREAD);
    assert_eq!(all(&b), all(&a));
}

#[test]
fn a_version_2_store_is_rebuilt_keeping_notes_and_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(
            "CREATE TABLE report_decisions (
                id INTEGER PRIMARY KEY,
                report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
                status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
                note TEXT, decided_at INTEGER NOT NULL);
             INSERT INTO reports (id, name, category, count, first_seen, last_seen, status)
                VALUES (4, 'old.example', 'adult', 3, 5, 6, 'accepted');
             INSERT INTO report_notes (report_id, note, added) VALUES (4, 'kept', 5);
             INSERT INTO report_decisions (report_id, status, note, decided_at)
                VALUES (4, 'accepted', 'ok', 7);",
        )
        .unwrap();
        conn.pragma_update(None, "application_id", REPORTS.application_id)
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
    }
    let mut store = ReportStore::open(&path).unwrap();
    let r = store.get(4).unwrap().unwrap();
    assert_eq!(
        (r.kind, r.count, r.status),
        (Kind::Harmful, 3, Status::Accepted)
    );
    assert_eq!(r.notes, ["kept"]);
    assert_eq!(r.decisions.len(), 1);
    // The old row is the harmful report; a mistake about the same name is another.
    let again = store
        .submit(&report("old.example", "adult", None), at(9))
        .unwrap();
    assert_eq!((again.id, again.count), (4, 4));
    let fk: bool = store
        .conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert!(fk, "foreign keys are back on after the rebuild");
}
