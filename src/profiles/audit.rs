//! The audit log: who changed what, with the entity before and after, written in the
//! same transaction as the change. Actors are names (`admin`, `portal`), never tokens;
//! queries are never logged here.

use rusqlite::{Connection, params};

use super::types::AuditEntry;

/// Appends one entry (inside the caller's transaction).
pub(super) fn record(
    conn: &Connection,
    actor: &str,
    action: &str,
    entity: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, actor, action, entity, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        now_unix(),
        actor,
        action,
        entity,
        before.map(ToString::to_string),
        after.map(ToString::to_string),
    ])?;
    Ok(())
}

/// The newest `limit` entries, newest first.
pub(super) fn list(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<AuditEntry>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(
        "SELECT id, at, actor, action, entity, before, after FROM audit
         ORDER BY id DESC LIMIT ?1",
    )?;
    st.query_map([limit], |r| {
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(AuditEntry {
            id: r.get(0)?,
            at: r.get::<_, i64>(1)?.max(0) as u64,
            actor: r.get(2)?,
            action: r.get(3)?,
            entity: r.get(4)?,
            before: json(r.get(5)?),
            after: json(r.get(6)?),
        })
    })?
    .collect()
}

fn now_unix() -> i64 {
    i64::try_from(crate::clock::now_unix()).unwrap_or(i64::MAX)
}
