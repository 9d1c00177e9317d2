//! Tests for the report store, by the part they exercise; shared helpers here.

mod kinds;
mod schema;
mod store;
mod validate;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn report(name: &str, category: &str, note: Option<&str>) -> NewReport {
    NewReport {
        name: name.to_owned(),
        category: category.to_owned(),
        note: note.map(str::to_owned),
        ..NewReport::default()
    }
}

fn temp_store() -> (tempfile::TempDir, ReportStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ReportStore::open(&dir.path().join("reports.db")).unwrap();
    (dir, store)
}

fn all(store: &ReportStore) -> Vec<Report> {
    store
        .list(&ListQuery {
            limit: Some(MAX_LIST_LIMIT),
            ..ListQuery::default()
        })
        .unwrap()
}

fn invalid_field(err: ReportError) -> &'static str {
    match err {
        ReportError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}
