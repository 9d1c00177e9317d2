//! The audit log: who changed what, with the entity before and after, written in the
//! same transaction as the change. Actors are names (`admin`, `portal`), never tokens;
//! queries are never logged here.

use super::backend::{NewAudit, Tx};
use super::error::ProfileError;
use super::types::AuditEntry;

/// Appends one entry (inside the caller's transaction).
pub(super) fn record(
    tx: &mut dyn Tx,
    actor: &str,
    action: &str,
    entity: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), ProfileError> {
    tx.audit(&NewAudit {
        at: now_unix(),
        actor,
        action,
        entity,
        before: before.map(ToString::to_string),
        after: after.map(ToString::to_string),
    })
}

/// The newest `limit` entries older than id `before` (all of them without), newest first.
pub(super) fn list(
    tx: &mut dyn Tx,
    before: Option<i64>,
    limit: usize,
) -> Result<Vec<AuditEntry>, ProfileError> {
    tx.audit_list(
        before.unwrap_or(i64::MAX),
        i64::try_from(limit).unwrap_or(i64::MAX),
    )
}

/// An entry as read back; `before`/`after` are JSON text (unreadable JSON shows as none).
pub(super) fn entry(
    id: i64,
    at: i64,
    actor: String,
    action: String,
    entity: String,
    before: Option<String>,
    after: Option<String>,
) -> AuditEntry {
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    AuditEntry {
        id,
        at: u64::try_from(at).unwrap_or(0),
        actor,
        action,
        entity,
        before: json(before),
        after: json(after),
    }
}

fn now_unix() -> i64 {
    i64::try_from(crate::clock::now_unix()).unwrap_or(i64::MAX)
}
