//! The fleet's PostgreSQL store: the same tables as the SQLite file, one connection for
//! reads and writes, NOTIFY after each commit, a LISTEN thread (`listen`), and the
//! last-good copy served while the database is unreachable.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::Client;
use tokio::sync::watch;

use super::backend::{IdentityRow, NewAudit, ProfileRow, Rows, Tx};
use super::error::ProfileError;
use super::last_good::{self, CopyTx};
use super::pg_connect::{CHANNEL, connect, pg_error};
use super::settings::target_of;
use super::types::{AuditEntry, Subscriber};
use super::{audit, listen};

/// Schema version in `kidsafe_schema`: 1 has profiles, identities, subscribers, audit.
const SCHEMA_VERSION: i32 = 1;
/// Advisory lock key ("KSDP") held while creating or migrating the schema, so two nodes
/// starting together create it once.
const SCHEMA_LOCK: i64 = 0x4b53_4450;
/// While down, a read tries to reconnect at most this often (else: the last-good copy).
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Version 1: the SQLite schema in PostgreSQL types. Identity columns are never reused
/// (like AUTOINCREMENT), so a deleted profile's id is never given again.
const SCHEMA_V1: &str = "
CREATE TABLE profiles (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT   NOT NULL UNIQUE,
    settings    TEXT   NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE identities (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id  BIGINT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    kind        TEXT   NOT NULL CHECK (kind IN ('ip', 'cidr', 'client_id', 'mac')),
    value       TEXT   NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX identities_profile ON identities (profile_id, id);
CREATE TABLE subscribers (
    prefix      TEXT   PRIMARY KEY,
    profile     TEXT   NOT NULL
);
CREATE INDEX subscribers_profile ON subscribers (profile);
CREATE TABLE audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    entity      TEXT   NOT NULL,
    before      TEXT,
    after       TEXT
);
";

type R<T> = Result<T, ProfileError>;

/// The PostgreSQL backend of one node.
pub(super) struct Pg {
    url: String,
    target: String,
    /// This node's id in NOTIFY payloads: its LISTEN thread skips its own writes (the
    /// generation moved at commit already).
    node: String,
    /// `None` while down.
    client: Mutex<Conn>,
    last_good_path: PathBuf,
    /// What the last-good file holds (served while down; compared to skip rewrites).
    copy: Mutex<Rows>,
    /// Tells the LISTEN thread to stop (set when the store is dropped).
    stop: Arc<AtomicBool>,
}

struct Conn {
    client: Option<Client>,
    last_try: Option<Instant>,
}

impl Pg {
    /// Connects and migrates; degraded (the last-good copy) if PostgreSQL is unreachable.
    pub(super) fn open(url: &str, last_good: &Path, changed: Arc<watch::Sender<u64>>) -> R<Pg> {
        let target = target_of(url);
        let copy = last_good::load(last_good).map_err(|source| ProfileError::Io {
            path: last_good.to_owned(),
            source,
        })?;
        // On a thread of its own: the sync client runs a runtime of its own, which cannot
        // start on a thread driving async tasks (the app opens the store from one).
        let opened = std::thread::scope(|s| {
            s.spawn(|| {
                let mut client = connect(url, &target)?;
                migrate(&mut client, &target)?;
                Ok(client)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(ProfileError::Unavailable {
                    target: target.clone(),
                })
            })
        });
        let client = match opened {
            Ok(client) => {
                tracing::info!(postgres = %target, "profile store: PostgreSQL");
                Some(client)
            }
            Err(ProfileError::Unavailable { .. }) if copy.is_some() => {
                tracing::warn!(
                    postgres = %target,
                    last_good = %last_good.display(),
                    "profile store: PostgreSQL unreachable; serving the last-good copy \
                     read-only until it is back"
                );
                None
            }
            Err(e) => return Err(e),
        };
        let node = format!("{:016x}", rand::random::<u64>());
        let stop = Arc::new(AtomicBool::new(false));
        listen::spawn(listen::Listener {
            url: url.to_owned(),
            target: target.clone(),
            node: node.clone(),
            changed,
            stop: stop.clone(),
        });
        Ok(Pg {
            url: url.to_owned(),
            target,
            node,
            client: Mutex::new(Conn {
                client,
                last_try: Some(Instant::now()),
            }),
            last_good_path: last_good.to_owned(),
            copy: Mutex::new(copy.unwrap_or_default()),
            stop,
        })
    }

    /// `host/db`, for logs.
    pub(super) fn target(&self) -> &str {
        &self.target
    }

    /// A transaction on PostgreSQL; while it is down, the last-good copy for a read and
    /// [`ProfileError::Unavailable`] for a write.
    pub(super) fn begin(&self, write: bool) -> R<Box<dyn Tx + '_>> {
        let mut conn = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if conn.client.as_ref().is_none_or(Client::is_closed) {
            conn.client = None;
            // A write always tries (someone is waiting on it); reads fall back quickly.
            if write || conn.last_try.is_none_or(|t| t.elapsed() >= RETRY_EVERY) {
                conn.last_try = Some(Instant::now());
                match connect(&self.url, &self.target) {
                    Ok(c) => {
                        tracing::info!(postgres = %self.target, "profile store: reconnected");
                        conn.client = Some(c);
                    }
                    Err(e) => tracing::debug!(error = %e, "profile store: still down"),
                }
            }
        }
        let begun = match conn.client.as_mut() {
            // REPEATABLE READ: a read (the snapshot) sees one point in time.
            Some(c) => c.batch_execute(if write {
                "BEGIN"
            } else {
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            }),
            None => return self.fallback(write, conn),
        };
        match begun {
            Ok(()) => Ok(Box::new(PgTx {
                conn,
                target: &self.target,
                node: &self.node,
                done: false,
            })),
            Err(e) => {
                let e = pg_error(&self.target, e);
                if matches!(e, ProfileError::Unavailable { .. }) {
                    conn.client = None;
                    return self.fallback(write, conn);
                }
                Err(e)
            }
        }
    }

    fn fallback(&self, write: bool, conn: MutexGuard<'_, Conn>) -> R<Box<dyn Tx + '_>> {
        drop(conn);
        if write {
            return Err(ProfileError::Unavailable {
                target: self.target.clone(),
            });
        }
        let copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Box::new(CopyTx {
            rows: copy.clone(),
            target: &self.target,
        }))
    }

    /// Keeps `rows` (just read from PostgreSQL) as the last-good copy, on disk if they
    /// changed. A failure to write it is logged: the node still serves.
    pub(super) fn keep(&self, rows: &Rows) {
        let mut copy = self.copy.lock().unwrap_or_else(PoisonError::into_inner);
        if *copy == *rows && self.last_good_path.exists() {
            return;
        }
        match last_good::save(&self.last_good_path, rows) {
            Ok(()) => *copy = rows.clone(),
            Err(e) => tracing::warn!(
                path = %self.last_good_path.display(),
                error = %e,
                "profile store: cannot write the last-good copy"
            ),
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Closing the client blocks on its runtime: not on a thread that may drive async
        // tasks (the store can be dropped at the app's shutdown).
        let conn = self
            .client
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = conn.client.take() {
            let _ = std::thread::Builder::new()
                .name("profiles-close".into())
                .spawn(move || drop(client));
        }
    }
}

/// Creates the schema in an empty database or migrates an older one, under an advisory
/// lock, in one transaction.
fn migrate(client: &mut Client, target: &str) -> R<()> {
    let err = |e| pg_error(target, e);
    let mut tx = client.transaction().map_err(err)?;
    tx.query("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(err)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS kidsafe_schema (version INTEGER NOT NULL)")
        .map_err(err)?;
    let version: Option<i32> = tx
        .query_one("SELECT max(version) FROM kidsafe_schema", &[])
        .map_err(err)?
        .get(0);
    match version.unwrap_or(0) {
        0 => {
            tx.batch_execute(SCHEMA_V1).map_err(err)?;
            tx.execute(
                "INSERT INTO kidsafe_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .map_err(err)?;
        }
        1..=SCHEMA_VERSION => {}
        v => {
            return Err(ProfileError::NotAProfileStore {
                path: PathBuf::from(format!("postgres:{target}")),
                reason: format!(
                    "schema version {v} is newer than this build supports ({SCHEMA_VERSION})"
                ),
            });
        }
    }
    tx.commit().map_err(err)
}

/// A transaction on the node's connection (BEGIN sent); rolled back if dropped.
struct PgTx<'a> {
    conn: MutexGuard<'a, Conn>,
    target: &'a str,
    node: &'a str,
    done: bool,
}

impl PgTx<'_> {
    fn client(&mut self) -> R<&mut Client> {
        self.conn
            .client
            .as_mut()
            .ok_or_else(|| ProfileError::Unavailable {
                target: self.target.to_owned(),
            })
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> R<Vec<postgres::Row>> {
        let target = self.target;
        self.client()?
            .query(sql, params)
            .map_err(|e| pg_error(target, e))
    }

    fn execute(&mut self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> R<u64> {
        let target = self.target;
        self.client()?
            .execute(sql, params)
            .map_err(|e| pg_error(target, e))
    }

    fn get<'r, T: postgres::types::FromSql<'r>>(&self, row: &'r postgres::Row, i: usize) -> R<T> {
        row.try_get(i).map_err(|e| ProfileError::Postgres {
            target: self.target.to_owned(),
            source: e,
        })
    }

    fn profile_rows(&mut self, rows: Vec<postgres::Row>) -> R<Vec<ProfileRow>> {
        rows.iter()
            .map(|r| {
                Ok(ProfileRow {
                    id: self.get(r, 0)?,
                    name: self.get(r, 1)?,
                    settings: self.get(r, 2)?,
                    version: self.get(r, 3)?,
                })
            })
            .collect()
    }

    fn identity_rows(&mut self, rows: Vec<postgres::Row>) -> R<Vec<IdentityRow>> {
        rows.iter()
            .map(|r| {
                Ok(IdentityRow {
                    id: self.get(r, 0)?,
                    profile_id: self.get(r, 1)?,
                    kind: self.get(r, 2)?,
                    value: self.get(r, 3)?,
                })
            })
            .collect()
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Some(c) = self.conn.client.as_mut()
            && c.batch_execute("ROLLBACK").is_err()
        {
            // A broken connection: reconnect on the next call.
            self.conn.client = None;
        }
    }
}

impl Tx for PgTx<'_> {
    fn profiles(&mut self) -> R<Vec<ProfileRow>> {
        let rows = self.query(
            "SELECT id, name, settings, version FROM profiles ORDER BY id",
            &[],
        )?;
        self.profile_rows(rows)
    }

    fn profiles_after(&mut self, after: i64, limit: i64) -> R<Vec<ProfileRow>> {
        let rows = self.query(
            "SELECT id, name, settings, version FROM profiles WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &limit],
        )?;
        self.profile_rows(rows)
    }

    fn profiles_before(&mut self, before: i64, limit: i64) -> R<Vec<ProfileRow>> {
        let rows = self.query(
            "SELECT id, name, settings, version FROM profiles WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[&before, &limit],
        )?;
        self.profile_rows(rows)
    }

    fn profile(&mut self, n: i64) -> R<Option<ProfileRow>> {
        let rows = self.query(
            "SELECT id, name, settings, version FROM profiles WHERE id = $1",
            &[&n],
        )?;
        Ok(self.profile_rows(rows)?.pop())
    }

    fn profile_named(&mut self, name: &str) -> R<Option<i64>> {
        let rows = self.query("SELECT id FROM profiles WHERE name = $1", &[&name])?;
        rows.first().map(|r| self.get(r, 0)).transpose()
    }

    fn insert_profile(&mut self, name: &str, settings: &str) -> R<i64> {
        let rows = self.query(
            "INSERT INTO profiles (name, settings, version) VALUES ($1, $2, 1) RETURNING id",
            &[&name, &settings],
        )?;
        let row = rows.first().ok_or_else(|| ProfileError::no_profile(name))?;
        self.get(row, 0)
    }

    fn update_profile(&mut self, n: i64, version: i64, name: &str, settings: &str) -> R<bool> {
        let changed = self.execute(
            "UPDATE profiles SET name = $3, settings = $4, version = version + 1
             WHERE id = $1 AND version = $2",
            &[&n, &version, &name, &settings],
        )?;
        Ok(changed == 1)
    }

    fn delete_profile(&mut self, n: i64, version: i64, public_id: &str) -> R<bool> {
        let deleted = self.execute(
            "DELETE FROM profiles WHERE id = $1 AND version = $2",
            &[&n, &version],
        )?;
        if deleted == 0 {
            return Ok(false);
        }
        self.execute("DELETE FROM subscribers WHERE profile = $1", &[&public_id])?;
        Ok(true)
    }

    fn identities(&mut self, profile: Option<i64>) -> R<Vec<IdentityRow>> {
        // Two statements, not `$1 IS NULL OR profile_id = $1`: a prepared statement's
        // generic plan for that is a scan of every identity; one profile's is an index
        // range of `identities_profile`.
        let rows = match profile {
            Some(n) => self.query(
                "SELECT id, profile_id, kind, value FROM identities
                 WHERE profile_id = $1 ORDER BY id",
                &[&n],
            )?,
            None => self.query(
                "SELECT id, profile_id, kind, value FROM identities ORDER BY id",
                &[],
            )?,
        };
        self.identity_rows(rows)
    }

    fn identity(&mut self, id: i64) -> R<Option<IdentityRow>> {
        let rows = self.query(
            "SELECT id, profile_id, kind, value FROM identities WHERE id = $1",
            &[&id],
        )?;
        Ok(self.identity_rows(rows)?.pop())
    }

    fn identity_holder(&mut self, kind: &str, value: &str) -> R<Option<(i64, i64, String)>> {
        let rows = self.query(
            "SELECT i.id, p.id, p.name FROM identities i JOIN profiles p ON p.id = i.profile_id
             WHERE i.kind = $1 AND i.value = $2",
            &[&kind, &value],
        )?;
        rows.first()
            .map(|r| Ok((self.get(r, 0)?, self.get(r, 1)?, self.get(r, 2)?)))
            .transpose()
    }

    fn insert_identity(&mut self, n: i64, kind: &str, value: &str) -> R<i64> {
        let rows = self.query(
            "INSERT INTO identities (profile_id, kind, value) VALUES ($1, $2, $3) RETURNING id",
            &[&n, &kind, &value],
        )?;
        let row = rows.first().ok_or_else(|| ProfileError::no_profile(""))?;
        self.get(row, 0)
    }

    fn delete_identity(&mut self, id: i64) -> R<()> {
        self.execute("DELETE FROM identities WHERE id = $1", &[&id])
            .map(drop)
    }

    fn subscribers(&mut self, profile: Option<&str>) -> R<Vec<Subscriber>> {
        let rows = self.query(
            "SELECT prefix, profile FROM subscribers
             WHERE $1::TEXT IS NULL OR profile = $1 ORDER BY prefix",
            &[&profile],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Subscriber {
                    prefix: self.get(r, 0)?,
                    profile: self.get(r, 1)?,
                })
            })
            .collect()
    }

    fn subscriber(&mut self, prefix: &str) -> R<Option<String>> {
        let rows = self.query(
            "SELECT profile FROM subscribers WHERE prefix = $1",
            &[&prefix],
        )?;
        rows.first().map(|r| self.get(r, 0)).transpose()
    }

    fn put_subscriber(&mut self, s: &Subscriber) -> R<()> {
        self.execute(
            "INSERT INTO subscribers (prefix, profile) VALUES ($1, $2)
             ON CONFLICT (prefix) DO UPDATE SET profile = excluded.profile",
            &[&s.prefix, &s.profile],
        )
        .map(drop)
    }

    fn delete_subscriber(&mut self, prefix: &str) -> R<()> {
        self.execute("DELETE FROM subscribers WHERE prefix = $1", &[&prefix])
            .map(drop)
    }

    fn audit(&mut self, a: &NewAudit<'_>) -> R<()> {
        self.execute(
            "INSERT INTO audit (at, actor, action, entity, before, after)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&a.at, &a.actor, &a.action, &a.entity, &a.before, &a.after],
        )
        .map(drop)
    }

    fn audit_list(&mut self, before: i64, limit: i64) -> R<Vec<AuditEntry>> {
        let rows = self.query(
            "SELECT id, at, actor, action, entity, before, after FROM audit
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[&before, &limit],
        )?;
        rows.iter()
            .map(|r| {
                Ok(audit::entry(
                    self.get(r, 0)?,
                    self.get(r, 1)?,
                    self.get(r, 2)?,
                    self.get(r, 3)?,
                    self.get(r, 4)?,
                    self.get(r, 5)?,
                    self.get(r, 6)?,
                ))
            })
            .collect()
    }

    fn profile_count(&mut self) -> R<u64> {
        let rows = self.query("SELECT count(*) FROM profiles", &[])?;
        let n: i64 = match rows.first() {
            Some(r) => self.get(r, 0)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// NOTIFY is transactional: the other nodes hear of the change only once it is
    /// committed, and never of a rolled-back one.
    fn commit(mut self: Box<Self>) -> R<()> {
        let node = self.node;
        self.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &node])?;
        let target = self.target;
        let result = self.client()?.batch_execute("COMMIT");
        self.done = true;
        result.map_err(|e| {
            self.conn.client = None;
            pg_error(target, e)
        })
    }
}
