//! [`Tx`] on SQLite: the single-node store's SQL (one file under `lists.state_dir`).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::audit;
use super::backend::{IdentityRow, NewAudit, ProfileRow, Tx};
use super::error::{ProfileError, storage};
use super::types::{AuditEntry, Subscriber};

type R<T> = Result<T, ProfileError>;

/// A transaction on the store's connection.
pub(super) struct SqliteTx<'c> {
    tx: Transaction<'c>,
    path: PathBuf,
}

/// Opens a transaction: IMMEDIATE for a write (it waits for other writers up front, so it
/// never fails half-way on a lock), DEFERRED for a read.
pub(super) fn begin<'c>(conn: &'c Connection, path: &Path, write: bool) -> R<SqliteTx<'c>> {
    let behavior = if write {
        TransactionBehavior::Immediate
    } else {
        TransactionBehavior::Deferred
    };
    let tx = Transaction::new_unchecked(conn, behavior).map_err(|e| storage(path, e))?;
    Ok(SqliteTx {
        tx,
        path: path.to_owned(),
    })
}

impl SqliteTx<'_> {
    fn err(&self, e: rusqlite::Error) -> ProfileError {
        storage(&self.path, e)
    }
}

fn profile_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProfileRow> {
    Ok(ProfileRow {
        id: r.get(0)?,
        name: r.get(1)?,
        settings: r.get(2)?,
        version: r.get(3)?,
    })
}

fn identity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityRow> {
    Ok(IdentityRow {
        id: r.get(0)?,
        profile_id: r.get(1)?,
        kind: r.get(2)?,
        value: r.get(3)?,
    })
}

fn subscriber_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        prefix: r.get(0)?,
        profile: r.get(1)?,
    })
}

impl Tx for SqliteTx<'_> {
    fn profiles(&mut self) -> R<Vec<ProfileRow>> {
        self.tx
            .prepare_cached("SELECT id, name, settings, version FROM profiles ORDER BY id")
            .and_then(|mut st| st.query_map([], profile_row)?.collect())
            .map_err(|e| self.err(e))
    }

    fn profiles_after(&mut self, after: i64, limit: i64) -> R<Vec<ProfileRow>> {
        self.tx
            .prepare_cached(
                "SELECT id, name, settings, version FROM profiles WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .and_then(|mut st| st.query_map([after, limit], profile_row)?.collect())
            .map_err(|e| self.err(e))
    }

    fn profiles_before(&mut self, before: i64, limit: i64) -> R<Vec<ProfileRow>> {
        self.tx
            .prepare_cached(
                "SELECT id, name, settings, version FROM profiles WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )
            .and_then(|mut st| st.query_map([before, limit], profile_row)?.collect())
            .map_err(|e| self.err(e))
    }

    fn profile(&mut self, n: i64) -> R<Option<ProfileRow>> {
        self.tx
            .prepare_cached("SELECT id, name, settings, version FROM profiles WHERE id = ?1")
            .and_then(|mut st| st.query_row([n], profile_row).optional())
            .map_err(|e| self.err(e))
    }

    fn profile_named(&mut self, name: &str) -> R<Option<i64>> {
        self.tx
            .query_row("SELECT id FROM profiles WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    fn insert_profile(&mut self, name: &str, settings: &str) -> R<i64> {
        self.tx
            .prepare_cached("INSERT INTO profiles (name, settings, version) VALUES (?1, ?2, 1)")
            .and_then(|mut st| st.execute(params![name, settings]))
            .map_err(|e| self.err(e))?;
        Ok(self.tx.last_insert_rowid())
    }

    fn update_profile(&mut self, n: i64, version: i64, name: &str, settings: &str) -> R<bool> {
        self.tx
            .prepare_cached(
                "UPDATE profiles SET name = ?3, settings = ?4, version = version + 1
                 WHERE id = ?1 AND version = ?2",
            )
            .and_then(|mut st| st.execute(params![n, version, name, settings]))
            .map(|rows| rows == 1)
            .map_err(|e| self.err(e))
    }

    fn delete_profile(&mut self, n: i64, version: i64, public_id: &str) -> R<bool> {
        let deleted = self
            .tx
            .execute(
                "DELETE FROM profiles WHERE id = ?1 AND version = ?2",
                params![n, version],
            )
            .map_err(|e| self.err(e))?;
        if deleted == 0 {
            return Ok(false);
        }
        self.tx
            .execute("DELETE FROM subscribers WHERE profile = ?1", [public_id])
            .map_err(|e| self.err(e))?;
        Ok(true)
    }

    fn identities(&mut self, profile: Option<i64>) -> R<Vec<IdentityRow>> {
        // Two statements rather than `?1 IS NULL OR profile_id = ?1`, which SQLite plans
        // as a scan of every identity: one profile's is a range of `identities_profile`
        // (a dashboard of 50 cards over 100,000 profiles went from ~240 ms to a few).
        match profile {
            Some(n) => self
                .tx
                .prepare_cached(
                    "SELECT id, profile_id, kind, value FROM identities
                     WHERE profile_id = ?1 ORDER BY id",
                )
                .and_then(|mut st| st.query_map([n], identity_row)?.collect()),
            None => self
                .tx
                .prepare_cached("SELECT id, profile_id, kind, value FROM identities ORDER BY id")
                .and_then(|mut st| st.query_map([], identity_row)?.collect()),
        }
        .map_err(|e| self.err(e))
    }

    fn identity(&mut self, id: i64) -> R<Option<IdentityRow>> {
        self.tx
            .query_row(
                "SELECT id, profile_id, kind, value FROM identities WHERE id = ?1",
                [id],
                identity_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn identity_holder(&mut self, kind: &str, value: &str) -> R<Option<(i64, i64, String)>> {
        self.tx
            .query_row(
                "SELECT i.id, p.id, p.name FROM identities i JOIN profiles p ON p.id = i.profile_id
                 WHERE i.kind = ?1 AND i.value = ?2",
                params![kind, value],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn insert_identity(&mut self, n: i64, kind: &str, value: &str) -> R<i64> {
        self.tx
            .execute(
                "INSERT INTO identities (profile_id, kind, value) VALUES (?1, ?2, ?3)",
                params![n, kind, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.tx.last_insert_rowid())
    }

    fn delete_identity(&mut self, id: i64) -> R<()> {
        self.tx
            .execute("DELETE FROM identities WHERE id = ?1", [id])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn subscribers(&mut self, profile: Option<&str>) -> R<Vec<Subscriber>> {
        self.tx
            .prepare_cached(
                "SELECT prefix, profile FROM subscribers
                 WHERE ?1 IS NULL OR profile = ?1 ORDER BY prefix",
            )
            .and_then(|mut st| st.query_map([profile], subscriber_row)?.collect())
            .map_err(|e| self.err(e))
    }

    fn subscriber(&mut self, prefix: &str) -> R<Option<String>> {
        self.tx
            .query_row(
                "SELECT profile FROM subscribers WHERE prefix = ?1",
                [prefix],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn put_subscriber(&mut self, s: &Subscriber) -> R<()> {
        self.tx
            .execute(
                "INSERT INTO subscribers (prefix, profile) VALUES (?1, ?2)
                 ON CONFLICT (prefix) DO UPDATE SET profile = excluded.profile",
                params![s.prefix, s.profile],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn delete_subscriber(&mut self, prefix: &str) -> R<()> {
        self.tx
            .execute("DELETE FROM subscribers WHERE prefix = ?1", [prefix])
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn audit(&mut self, a: &NewAudit<'_>) -> R<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO audit (at, actor, action, entity, before, after)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    a.at, a.actor, a.action, a.entity, a.before, a.after
                ])
            })
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn audit_list(&mut self, before: i64, limit: i64) -> R<Vec<AuditEntry>> {
        self.tx
            .prepare_cached(
                "SELECT id, at, actor, action, entity, before, after FROM audit
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            )
            .and_then(|mut st| {
                st.query_map([before, limit], |r| {
                    Ok(audit::entry(
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect()
            })
            .map_err(|e| self.err(e))
    }

    fn profile_count(&mut self) -> R<u64> {
        self.tx
            .prepare_cached("SELECT count(*) FROM profiles")
            .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    fn commit(self: Box<Self>) -> R<()> {
        let path = self.path;
        self.tx.commit().map_err(|e| storage(&path, e))
    }
}
