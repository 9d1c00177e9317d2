//! [`ProfileStore`]: profiles, identities, subscribers and the audit log, with optimistic
//! concurrency on profiles, over one backend: the SQLite file (a single node) or the
//! fleet's PostgreSQL (see `pg`). Validation and the audit entries live here, once.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::IpNet;
use rusqlite::Connection;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::backend::{IdentityRow, ProfileRow, Rows, Tx};
use super::error::{ProfileError, storage};
use super::pg::Pg;
use super::types::{
    AuditEntry, CONFIG_ID_PREFIX, Identity, IdentityKind, NewIdentity, Profile, ProfileSpec,
    ProfilesSnapshot, STORED_ID_PREFIX, Subscriber, merge_patch,
};
use super::validate::{identity_value, network, validate_spec};
use super::{MAX_AUDIT_LIMIT, audit, schema, sqlite};
use crate::policy::GroupConfig;
use crate::policy::client::{ClientId, Mac};
use crate::policy::schedule::Schedule;

/// The profile database: its backend, the categories writes are checked against, the
/// config file's (read-only) profiles, and the change notification.
pub struct ProfileStore {
    backend: Backend,
    path: PathBuf,
    categories: Vec<String>,
    /// The service catalog `services` and `service_groups` are checked against.
    services: std::sync::Arc<crate::services::Catalog>,
    config: Vec<GroupConfig>,
    changed: Arc<watch::Sender<u64>>,
}

/// Where the rows are.
enum Backend {
    /// One SQLite connection (single node).
    Sqlite(Connection),
    /// The fleet's PostgreSQL, with its last-good copy and LISTEN thread.
    Postgres(Box<Pg>),
}

impl fmt::Debug for ProfileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.backend {
            Backend::Sqlite(_) => "sqlite".to_owned(),
            Backend::Postgres(pg) => format!("postgres {}", pg.target()),
        };
        f.debug_struct("ProfileStore")
            .field("backend", &backend)
            .field("path", &self.path)
            .field("categories", &self.categories)
            .finish_non_exhaustive()
    }
}

/// Where a [`ProfileStore::page`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageCursor<'a> {
    /// The first page (the config file's profiles, then the lowest ids).
    First,
    /// The profiles after this stored profile id (a page's `next`).
    After(&'a str),
    /// The profiles before this stored profile id (a page's `previous`).
    Before(&'a str),
}

/// A page of profiles and the cursors around it.
#[derive(Clone, Debug)]
pub struct ProfilePage {
    /// The profiles, in id order.
    pub profiles: Vec<Profile>,
    /// For [`PageCursor::Before`]: `None` on the first page.
    pub previous: Option<String>,
    /// For [`PageCursor::After`]: `None` on the last page.
    pub next: Option<String>,
}

/// One row of a bulk subscriber upload, with the line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkRow {
    /// 1-based line number in the upload.
    pub line: usize,
    /// The address or prefix as sent.
    pub prefix: String,
    /// The profile id as sent.
    pub profile: String,
}

impl ProfileStore {
    /// Opens the SQLite store at `path`, creating the directory and the database if
    /// missing.
    ///
    /// # Errors
    /// [`ProfileError::Io`] if the directory cannot be created,
    /// [`ProfileError::NotAProfileStore`] if the file is someone else's (left untouched),
    /// [`ProfileError::Storage`] for other SQLite failures.
    pub fn open(path: &Path) -> Result<Self, ProfileError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| ProfileError::Io {
                path: dir.to_owned(),
                source,
            })?;
        }
        let mut conn = Connection::open(path).map_err(|e| storage(path, e))?;
        schema::configure(path, &conn)?;
        schema::migrate(path, &mut conn)?;
        Ok(ProfileStore {
            backend: Backend::Sqlite(conn),
            path: path.to_owned(),
            categories: Vec::new(),
            services: std::sync::Arc::new(crate::services::Catalog::builtin().unwrap_or_default()),
            config: Vec::new(),
            changed: Arc::new(watch::Sender::new(0)),
        })
    }

    /// Opens the fleet's PostgreSQL store at `url` (schema created or migrated), keeping
    /// its last-good copy at `last_good`. With PostgreSQL unreachable it opens degraded:
    /// reads and [`snapshot`](Self::snapshot) serve the last-good copy, writes fail with
    /// [`ProfileError::Unavailable`], and the generation moves once PostgreSQL is back.
    /// A thread LISTENs for the other nodes' writes and bumps the generation.
    ///
    /// Its methods block on the network: call them from a blocking thread
    /// (`spawn_blocking`, as the admin API does), not from an async task. Opening is safe
    /// anywhere.
    ///
    /// # Errors
    /// [`ProfileError::Unavailable`] when PostgreSQL is unreachable and there is no
    /// last-good copy; [`ProfileError::Postgres`] (login refused, ...);
    /// [`ProfileError::NotAProfileStore`] for a newer schema; [`ProfileError::Io`].
    pub fn open_postgres(url: &str, last_good: &Path) -> Result<Self, ProfileError> {
        let changed = Arc::new(watch::Sender::new(0));
        let pg = Pg::open(url, last_good, changed.clone())?;
        Ok(ProfileStore {
            backend: Backend::Postgres(Box::new(pg)),
            path: last_good.to_owned(),
            categories: Vec::new(),
            services: std::sync::Arc::new(crate::services::Catalog::builtin().unwrap_or_default()),
            config: Vec::new(),
            changed,
        })
    }

    /// The database file (SQLite), or the last-good copy (PostgreSQL).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The categories profiles may name (the compiled list's); call again after a reload.
    pub fn set_categories(&mut self, categories: Vec<String>) {
        self.categories = categories;
    }

    /// The service catalog profiles may name (the config's); call again after a reload.
    pub fn set_services(&mut self, catalog: std::sync::Arc<crate::services::Catalog>) {
        self.services = catalog;
    }

    /// The profiles of the config file (`[[groups]]`): listed, readable, never written.
    pub fn set_config_profiles(&mut self, groups: Vec<GroupConfig>) {
        self.config = groups;
    }

    /// A receiver of the store's generation, bumped after each committed write (on
    /// PostgreSQL, any node's, and once after a reconnection): wait on it, then take a
    /// [`snapshot`](Self::snapshot).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Every profile: the config file's first (read-only), then the stored ones by id.
    ///
    /// # Errors
    /// [`ProfileError::Storage`] if SQLite fails; [`ProfileError::Unavailable`] /
    /// [`ProfileError::Postgres`] on PostgreSQL.
    pub fn list(&self) -> Result<Vec<Profile>, ProfileError> {
        let mut out: Vec<Profile> = self.config.iter().map(Profile::from_config).collect();
        let rows = self.read()?.profiles()?;
        for row in rows {
            out.push(self.profile_of(row)?);
        }
        Ok(out)
    }

    /// One page of [`list`](Self::list)'s order: at most `limit` stored profiles around
    /// the cursor (keyset paging on the row id, so page 2,000 of 100,000 profiles costs
    /// what the first does), with the config file's profiles in front of the first page.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] for a cursor that is no stored profile id (`p<n>`);
    /// [`ProfileError::Storage`], [`ProfileError::Unavailable`].
    pub fn page(&self, cursor: PageCursor<'_>, limit: usize) -> Result<ProfilePage, ProfileError> {
        let limit = limit.max(1);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        let row_of = |id: &str| {
            stored_id(id).ok_or_else(|| {
                ProfileError::invalid("page", format!("{id:?} is no stored profile id (p<n>)"))
            })
        };
        let mut tx = self.read()?;
        let (mut rows, first, more_after) = match cursor {
            PageCursor::First => {
                let mut rows = tx.profiles_after(i64::MIN, fetch)?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                (rows, true, more)
            }
            PageCursor::After(id) => {
                let mut rows = tx.profiles_after(row_of(id)?, fetch)?;
                let more = rows.len() > limit;
                rows.truncate(limit);
                (rows, false, more)
            }
            PageCursor::Before(id) => {
                let mut rows = tx.profiles_before(row_of(id)?, fetch)?;
                let more_before = rows.len() > limit;
                rows.truncate(limit);
                rows.reverse();
                (rows, !more_before, true)
            }
        };
        drop(tx);
        let mut profiles: Vec<Profile> = if first {
            self.config.iter().map(Profile::from_config).collect()
        } else {
            Vec::new()
        };
        let (low, high) = (rows.first().map(|r| r.id), rows.last().map(|r| r.id));
        for row in rows.drain(..) {
            profiles.push(self.profile_of(row)?);
        }
        Ok(ProfilePage {
            profiles,
            previous: if first { None } else { low.map(public_id) },
            next: if more_after {
                high.map(public_id)
            } else {
                None
            },
        })
    }

    /// The profile with this id.
    ///
    /// # Errors
    /// [`ProfileError::NotFound`] for an unknown id, [`ProfileError::Storage`].
    pub fn get(&self, id: &str) -> Result<Profile, ProfileError> {
        if let Some(group) = self.config_group(id) {
            return Ok(Profile::from_config(group));
        }
        let n = stored_id(id).ok_or_else(|| ProfileError::no_profile(id))?;
        let mut tx = self.read()?;
        self.load(tx.as_mut(), n)?
            .ok_or_else(|| ProfileError::no_profile(id))
    }

    /// Creates a profile from `spec` (validated first). Returns it at version 1.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] naming the field, [`ProfileError::Conflict`] for a name
    /// taken; nothing is written then. [`ProfileError::Storage`],
    /// [`ProfileError::Unavailable`].
    pub fn create(&mut self, spec: &ProfileSpec, actor: &str) -> Result<Profile, ProfileError> {
        let spec = validate_spec(spec, &self.categories, &self.services)?;
        self.check_config_name(&spec.name)?;
        let mut tx = self.write()?;
        name_free(tx.as_mut(), &spec.name, None)?;
        let settings = serde_json::to_string(&spec).unwrap_or_default();
        let n = tx.insert_profile(&spec.name, &settings)?;
        let profile = self
            .load(tx.as_mut(), n)?
            .ok_or_else(|| ProfileError::no_profile(public_id(n)))?;
        let after = to_json(&profile);
        audit::record(
            tx.as_mut(),
            actor,
            "create",
            &entity("profile", &profile.id),
            None,
            Some(&after),
        )?;
        self.commit(tx)?;
        Ok(profile)
    }

    /// Replaces profile `id` with `spec` if `if_match` names its current version.
    ///
    /// # Errors
    /// [`ProfileError::PreconditionRequired`] without `if_match`,
    /// [`ProfileError::Stale`] for another version (also when another node wrote between
    /// this node's read and its write), [`ProfileError::Conflict`] for a config profile
    /// or a name taken, [`ProfileError::NotFound`], [`ProfileError::Invalid`]; nothing is
    /// written in any of these cases.
    pub fn replace(
        &mut self,
        id: &str,
        spec: &ProfileSpec,
        if_match: Option<&str>,
        actor: &str,
    ) -> Result<Profile, ProfileError> {
        let n = self.writable(id)?;
        let spec = validate_spec(spec, &self.categories, &self.services)?;
        self.check_config_name(&spec.name)?;
        let mut tx = self.write()?;
        let before = self
            .load(tx.as_mut(), n)?
            .ok_or_else(|| ProfileError::no_profile(id))?;
        check_version(if_match, before.version)?;
        name_free(tx.as_mut(), &spec.name, Some(n))?;
        let settings = serde_json::to_string(&spec).unwrap_or_default();
        // The version is in the WHERE clause: on PostgreSQL another node may have written
        // since the read above (READ COMMITTED); then no row matches and this is a 412.
        if !tx.update_profile(n, before.version, &spec.name, &settings)? {
            return Err(self.stale(tx.as_mut(), n, id, if_match)?);
        }
        let after = self
            .load(tx.as_mut(), n)?
            .ok_or_else(|| ProfileError::no_profile(id))?;
        audit::record(
            tx.as_mut(),
            actor,
            "update",
            &entity("profile", id),
            Some(&to_json(&before)),
            Some(&to_json(&after)),
        )?;
        self.commit(tx)?;
        Ok(after)
    }

    /// Applies a JSON merge patch (RFC 7396) to profile `id`, under the same
    /// preconditions as [`replace`](Self::replace).
    ///
    /// # Errors
    /// As [`replace`](Self::replace).
    pub fn patch(
        &mut self,
        id: &str,
        patch: &Value,
        if_match: Option<&str>,
        actor: &str,
    ) -> Result<Profile, ProfileError> {
        self.writable(id)?;
        if !patch.is_object() {
            return Err(ProfileError::invalid(
                "body",
                "a merge patch is a JSON object",
            ));
        }
        let current = self.get(id)?;
        // The version is checked again inside replace's transaction: a writer between this
        // read and that one makes it fail with 412 rather than lose its change.
        check_version(if_match, current.version)?;
        let mut value = serde_json::to_value(&current.spec).unwrap_or_default();
        merge_patch(&mut value, patch);
        let spec = ProfileSpec::from_json(value)?;
        let version = current.version.to_string();
        self.replace(id, &spec, Some(&version), actor)
    }

    /// Deletes profile `id`, its identities and the subscribers pointing at it.
    ///
    /// # Errors
    /// As [`replace`](Self::replace).
    pub fn delete(
        &mut self,
        id: &str,
        if_match: Option<&str>,
        actor: &str,
    ) -> Result<(), ProfileError> {
        let n = self.writable(id)?;
        let mut tx = self.write()?;
        let before = self
            .load(tx.as_mut(), n)?
            .ok_or_else(|| ProfileError::no_profile(id))?;
        check_version(if_match, before.version)?;
        let mut before_json = to_json(&before);
        let identities = tx.identities(Some(n))?;
        let identities = self.identities_of(identities)?;
        before_json["identities"] = to_json(&identities);
        let subscribers = tx.subscribers(Some(&before.id))?;
        before_json["subscribers"] = to_json(&subscribers);
        if !tx.delete_profile(n, before.version, &before.id)? {
            return Err(self.stale(tx.as_mut(), n, id, if_match)?);
        }
        audit::record(
            tx.as_mut(),
            actor,
            "delete",
            &entity("profile", id),
            Some(&before_json),
            None,
        )?;
        self.commit(tx)
    }

    /// The identities of profile `id` (none for a config profile: it lists `clients`).
    ///
    /// # Errors
    /// [`ProfileError::NotFound`], [`ProfileError::Storage`].
    pub fn identities(&self, id: &str) -> Result<Vec<Identity>, ProfileError> {
        if self.config_group(id).is_some() {
            return Ok(Vec::new());
        }
        let n = stored_id(id).ok_or_else(|| ProfileError::no_profile(id))?;
        let mut tx = self.read()?;
        if tx.profile(n)?.is_none() {
            return Err(ProfileError::no_profile(id));
        }
        let rows = tx.identities(Some(n))?;
        self.identities_of(rows)
    }

    /// Adds an identity to profile `id`. The same kind and value on another profile is
    /// a conflict naming that profile.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] (field `value`), [`ProfileError::Conflict`] (duplicate,
    /// or a config profile), [`ProfileError::NotFound`], [`ProfileError::Storage`].
    pub fn add_identity(
        &mut self,
        id: &str,
        identity: &NewIdentity,
        actor: &str,
    ) -> Result<Identity, ProfileError> {
        let n = self.writable(id)?;
        let value = identity_value(identity.kind, &identity.value)?;
        let mut tx = self.write()?;
        if tx.profile(n)?.is_none() {
            return Err(ProfileError::no_profile(id));
        }
        if let Some((identity_id, pid, name)) =
            tx.identity_holder(identity.kind.as_str(), &value)?
        {
            return Err(ProfileError::conflict(
                "value",
                format!(
                    "{} {value} is already identity {identity_id} of profile {} ({name:?})",
                    identity.kind,
                    public_id(pid)
                ),
            ));
        }
        let new_id = tx.insert_identity(n, identity.kind.as_str(), &value)?;
        let created = Identity {
            id: new_id,
            profile: public_id(n),
            kind: identity.kind,
            value,
        };
        audit::record(
            tx.as_mut(),
            actor,
            "create",
            &entity("identity", &created.id.to_string()),
            None,
            Some(&to_json(&created)),
        )?;
        self.commit(tx)?;
        Ok(created)
    }

    /// Removes identity `identity_id`.
    ///
    /// # Errors
    /// [`ProfileError::NotFound`], [`ProfileError::Storage`].
    pub fn delete_identity(
        &mut self,
        identity_id: i64,
        actor: &str,
    ) -> Result<Identity, ProfileError> {
        let mut tx = self.write()?;
        let Some(row) = tx.identity(identity_id)? else {
            return Err(ProfileError::NotFound {
                entity: "identity",
                id: identity_id.to_string(),
                field: None,
            });
        };
        let identity = self.identity_of(row)?;
        tx.delete_identity(identity_id)?;
        audit::record(
            tx.as_mut(),
            actor,
            "delete",
            &entity("identity", &identity_id.to_string()),
            Some(&to_json(&identity)),
            None,
        )?;
        self.commit(tx)?;
        Ok(identity)
    }

    /// Every subscriber line, by prefix.
    ///
    /// # Errors
    /// [`ProfileError::Storage`].
    pub fn subscribers(&self) -> Result<Vec<Subscriber>, ProfileError> {
        self.read()?.subscribers(None)
    }

    /// Serves `prefix` (an address or a network) with `profile`. Returns the line and
    /// whether it is new.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] (field `prefix`), [`ProfileError::NotFound`] (field
    /// `profile`), [`ProfileError::Storage`].
    pub fn set_subscriber(
        &mut self,
        prefix: &str,
        profile: &str,
        actor: &str,
    ) -> Result<(Subscriber, bool), ProfileError> {
        let rows = [BulkRow {
            line: 0,
            prefix: prefix.to_owned(),
            profile: profile.to_owned(),
        }];
        let checked = self.check_rows(&rows, false)?;
        let mut tx = self.write()?;
        let mut created = false;
        for s in &checked {
            created = put_subscriber(tx.as_mut(), s, actor)?;
        }
        self.commit(tx)?;
        let line = checked
            .into_iter()
            .next()
            .ok_or_else(|| ProfileError::invalid("prefix", "missing"))?;
        Ok((line, created))
    }

    /// Stops serving `prefix` with a profile.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] (field `prefix`), [`ProfileError::NotFound`],
    /// [`ProfileError::Storage`].
    pub fn delete_subscriber(
        &mut self,
        prefix: &str,
        actor: &str,
    ) -> Result<Subscriber, ProfileError> {
        let net = network(prefix).map_err(|r| ProfileError::invalid("prefix", r))?;
        let key = net.to_string();
        let mut tx = self.write()?;
        let Some(profile) = tx.subscriber(&key)? else {
            return Err(ProfileError::NotFound {
                entity: "subscriber",
                id: key,
                field: None,
            });
        };
        let before = Subscriber {
            prefix: key.clone(),
            profile,
        };
        tx.delete_subscriber(&key)?;
        audit::record(
            tx.as_mut(),
            actor,
            "delete",
            &entity("subscriber", &key),
            Some(&to_json(&before)),
            None,
        )?;
        self.commit(tx)?;
        Ok(before)
    }

    /// Sets every row of a bulk upload, or none: the first bad row (prefix, profile, or a
    /// prefix given twice) fails the whole upload, naming its line (`line 3: prefix`).
    /// Returns how many lines were set.
    ///
    /// # Errors
    /// [`ProfileError::Invalid`] / [`ProfileError::NotFound`] with field `line N.prefix` or
    /// `line N.profile`; [`ProfileError::Storage`].
    pub fn bulk_subscribers(
        &mut self,
        rows: &[BulkRow],
        actor: &str,
    ) -> Result<usize, ProfileError> {
        let checked = self.check_rows(rows, true)?;
        let mut tx = self.write()?;
        for s in &checked {
            put_subscriber(tx.as_mut(), s, actor)?;
        }
        self.commit(tx)?;
        Ok(checked.len())
    }

    /// The newest `limit` audit entries (at most [`MAX_AUDIT_LIMIT`]), newest first.
    ///
    /// # Errors
    /// [`ProfileError::Storage`]; [`ProfileError::Unavailable`] while PostgreSQL is down
    /// (the last-good copy has no audit log).
    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, ProfileError> {
        self.audit_before(None, limit)
    }

    /// The newest `limit` audit entries (at most [`MAX_AUDIT_LIMIT`]) older than entry id
    /// `before` (the last id of the page before), newest first: keyset paging on the log's
    /// primary key, so the thousandth page of a long log costs what the first does.
    ///
    /// # Errors
    /// As [`audit`](Self::audit).
    pub fn audit_before(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, ProfileError> {
        audit::list(self.read()?.as_mut(), before, limit.min(MAX_AUDIT_LIMIT))
    }

    /// How many profiles there are: the config file's and the stored ones (on PostgreSQL
    /// while it is down, the last-good copy's).
    ///
    /// # Errors
    /// [`ProfileError::Storage`], [`ProfileError::Unavailable`].
    pub fn count(&self) -> Result<u64, ProfileError> {
        Ok(self.config.len() as u64 + self.read()?.profile_count()?)
    }

    /// What the query path needs, read in one transaction (see [`ProfilesSnapshot`]).
    /// On PostgreSQL, a snapshot read from the database is also written as the last-good
    /// copy; while PostgreSQL is unreachable, the snapshot is the last-good copy.
    ///
    /// # Errors
    /// [`ProfileError::Storage`]; on PostgreSQL, [`ProfileError::Unavailable`] only if
    /// the connection breaks during the read.
    pub fn snapshot(&self) -> Result<ProfilesSnapshot, ProfileError> {
        let generation = *self.changed.borrow();
        let mut tx = self.read()?;
        let rows = Rows {
            profiles: tx.profiles()?,
            identities: tx.identities(None)?,
            subscribers: tx.subscribers(None)?,
        };
        let live = tx.is_live();
        tx.commit()?;
        if let (Backend::Postgres(pg), true) = (&self.backend, live) {
            pg.keep(&rows);
        }
        self.snapshot_of(generation, rows)
    }

    fn snapshot_of(&self, generation: u64, rows: Rows) -> Result<ProfilesSnapshot, ProfileError> {
        let profiles = rows
            .profiles
            .into_iter()
            .map(|r| self.profile_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        let identities = self.identities_of(rows.identities)?;
        let mut snap = ProfilesSnapshot {
            generation,
            ..ProfilesSnapshot::default()
        };
        for i in identities {
            match i.kind {
                IdentityKind::Ip | IdentityKind::Cidr => {
                    if let Ok(net) = network(&i.value) {
                        snap.by_prefix.push((net, i.profile));
                    }
                }
                IdentityKind::ClientId => {
                    snap.by_client_id.insert(i.value, i.profile);
                }
                IdentityKind::Mac => {
                    snap.by_mac.insert(i.value, i.profile);
                }
            }
        }
        for s in rows.subscribers {
            if let Ok(net) = network(&s.prefix) {
                snap.subscribers.push((net, s.profile));
            }
        }
        let mut clients: HashMap<&str, Vec<IpNet>> = HashMap::new();
        for (net, id) in &snap.by_prefix {
            clients.entry(id.as_str()).or_default().push(*net);
        }
        let mut devices: HashMap<&str, (Vec<ClientId>, Vec<Mac>)> = HashMap::new();
        for (value, id) in &snap.by_client_id {
            if let Ok(client_id) = ClientId::parse(value) {
                devices.entry(id.as_str()).or_default().0.push(client_id);
            }
        }
        for (value, id) in &snap.by_mac {
            if let Ok(mac) = Mac::parse(value) {
                devices.entry(id.as_str()).or_default().1.push(mac);
            }
        }
        let groups: Vec<(String, GroupConfig)> = profiles
            .iter()
            .map(|p| {
                let mut group = group_of(p, clients.get(p.id.as_str()));
                if let Some((client_ids, macs)) = devices.get(p.id.as_str()) {
                    group.client_ids = client_ids.clone();
                    group.macs = macs.clone();
                }
                (p.id.clone(), group)
            })
            .collect();
        snap.groups = groups;
        Ok(snap)
    }

    /// A read transaction (on PostgreSQL while it is down: the last-good copy).
    fn read(&self) -> Result<Box<dyn Tx + '_>, ProfileError> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(Box::new(sqlite::begin(conn, &self.path, false)?)),
            Backend::Postgres(pg) => pg.begin(false),
        }
    }

    /// A write transaction; [`ProfileError::Unavailable`] while PostgreSQL is down.
    fn write(&self) -> Result<Box<dyn Tx + '_>, ProfileError> {
        match &self.backend {
            Backend::Sqlite(conn) => Ok(Box::new(sqlite::begin(conn, &self.path, true)?)),
            Backend::Postgres(pg) => pg.begin(true),
        }
    }

    /// Commits (synced to disk; on PostgreSQL the other nodes are notified) and bumps
    /// this node's generation.
    fn commit(&self, tx: Box<dyn Tx + '_>) -> Result<(), ProfileError> {
        tx.commit()?;
        self.changed.send_modify(|g| *g += 1);
        Ok(())
    }

    /// The 412 for a versioned write that matched no row: the profile is gone (404) or at
    /// another version.
    fn stale(
        &self,
        tx: &mut dyn Tx,
        n: i64,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<ProfileError, ProfileError> {
        let current = tx.profile(n)?.ok_or_else(|| ProfileError::no_profile(id))?;
        Ok(ProfileError::Stale {
            given: if_match.unwrap_or_default().to_owned(),
            current: current.version,
        })
    }

    fn load(&self, tx: &mut dyn Tx, n: i64) -> Result<Option<Profile>, ProfileError> {
        tx.profile(n)?.map(|r| self.profile_of(r)).transpose()
    }

    fn profile_of(&self, row: ProfileRow) -> Result<Profile, ProfileError> {
        let mut spec: ProfileSpec = serde_json::from_str(&row.settings)
            .map_err(|e| self.corrupt(format!("profile {}: settings: {e}", row.id)))?;
        spec.name = row.name;
        Ok(Profile {
            id: public_id(row.id),
            version: row.version,
            read_only: false,
            spec,
            clients: Vec::new(),
            allow_paths: Vec::new(),
            deny_paths: Vec::new(),
        })
    }

    fn identity_of(&self, row: IdentityRow) -> Result<Identity, ProfileError> {
        let kind = row
            .kind
            .parse::<IdentityKind>()
            .map_err(|e| self.corrupt(format!("identity {}: kind: {e}", row.id)))?;
        Ok(Identity {
            id: row.id,
            profile: public_id(row.profile_id),
            kind,
            value: row.value,
        })
    }

    fn identities_of(&self, rows: Vec<IdentityRow>) -> Result<Vec<Identity>, ProfileError> {
        rows.into_iter().map(|r| self.identity_of(r)).collect()
    }

    fn corrupt(&self, reason: String) -> ProfileError {
        ProfileError::NotAProfileStore {
            path: self.path.clone(),
            reason,
        }
    }

    fn config_group(&self, id: &str) -> Option<&GroupConfig> {
        let name = id.strip_prefix(CONFIG_ID_PREFIX)?;
        self.config.iter().find(|g| g.name == name)
    }

    /// The row id of stored profile `id`; a conflict for a config profile.
    fn writable(&self, id: &str) -> Result<i64, ProfileError> {
        if self.config_group(id).is_some() {
            return Err(ProfileError::conflict(
                "id",
                format!(
                    "profile {id} is defined in the config file ([[groups]]) and is read-only \
                     through the API; edit the file, or create a profile with POST /v1/profiles"
                ),
            ));
        }
        stored_id(id).ok_or_else(|| ProfileError::no_profile(id))
    }

    fn check_config_name(&self, name: &str) -> Result<(), ProfileError> {
        if self.config.iter().any(|g| g.name == name) {
            return Err(ProfileError::conflict(
                "name",
                format!(
                    "{name:?} is the name of a profile of the config file ({CONFIG_ID_PREFIX}{name})"
                ),
            ));
        }
        Ok(())
    }

    /// Validates subscriber rows against the profiles; errors name the line when `lines`.
    fn check_rows(&self, rows: &[BulkRow], lines: bool) -> Result<Vec<Subscriber>, ProfileError> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        let mut known: HashMap<String, bool> = HashMap::new();
        for row in rows {
            let at = |e: ProfileError| {
                if lines {
                    e.within(&format!("line {}", row.line))
                } else {
                    e
                }
            };
            let net = network(&row.prefix).map_err(|r| at(ProfileError::invalid("prefix", r)))?;
            let prefix = net.to_string();
            if let Some(first) = seen.insert(prefix.clone(), row.line) {
                return Err(at(ProfileError::invalid(
                    "prefix",
                    format!("{prefix} is also on line {first}"),
                )));
            }
            let profile = row.profile.trim().to_owned();
            let exists = match known.get(&profile) {
                Some(&e) => e,
                None => {
                    let e = match self.get(&profile) {
                        Ok(_) => true,
                        Err(ProfileError::NotFound { .. }) => false,
                        Err(e) => return Err(e),
                    };
                    known.insert(profile.clone(), e);
                    e
                }
            };
            if !exists {
                return Err(at(ProfileError::NotFound {
                    entity: "profile",
                    id: profile,
                    field: Some("profile".to_owned()),
                }));
            }
            out.push(Subscriber { prefix, profile });
        }
        Ok(out)
    }
}

/// `p<n>` for stored profile `n`.
pub(super) fn public_id(n: i64) -> String {
    format!("{STORED_ID_PREFIX}{n}")
}

/// The row id of `p<n>`.
fn stored_id(id: &str) -> Option<i64> {
    let digits = id.strip_prefix(STORED_ID_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn entity(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Whether `if_match` names `current` (`"3"`, `W/"3"`, a list, or `*`).
fn check_version(if_match: Option<&str>, current: i64) -> Result<(), ProfileError> {
    let Some(given) = if_match else {
        return Err(ProfileError::PreconditionRequired { current });
    };
    let want = current.to_string();
    let matches = given.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag.trim_matches('"') == want
    });
    if matches {
        Ok(())
    } else {
        Err(ProfileError::Stale {
            given: given.to_owned(),
            current,
        })
    }
}

/// A conflict when another stored profile than `except` has `name`.
fn name_free(tx: &mut dyn Tx, name: &str, except: Option<i64>) -> Result<(), ProfileError> {
    match tx.profile_named(name)? {
        Some(o) if Some(o) != except => Err(ProfileError::conflict(
            "name",
            format!("profile {} is already named {name:?}", public_id(o)),
        )),
        _ => Ok(()),
    }
}

/// Inserts or repoints one subscriber line, with its audit entry; true if it is new.
fn put_subscriber(tx: &mut dyn Tx, s: &Subscriber, actor: &str) -> Result<bool, ProfileError> {
    let before = tx.subscriber(&s.prefix)?;
    if before.as_deref() == Some(s.profile.as_str()) {
        return Ok(false);
    }
    tx.put_subscriber(s)?;
    let before_json = before
        .as_ref()
        .map(|p| json!({ "prefix": s.prefix, "profile": p }));
    audit::record(
        tx,
        actor,
        if before.is_some() { "update" } else { "create" },
        &entity("subscriber", &s.prefix),
        before_json.as_ref(),
        Some(&to_json(s)),
    )?;
    Ok(before.is_none())
}

/// A stored profile as a client group for the policy.
fn group_of(p: &Profile, clients: Option<&Vec<IpNet>>) -> GroupConfig {
    let schedule = p.spec.schedule.as_ref().and_then(|s| {
        match Schedule::new(&s.days, &s.start, &s.end, &s.timezone) {
            Ok(sched) => Some((sched, s.categories.clone())),
            Err(e) => {
                // Validated when written; only a tzdb change could get here.
                tracing::warn!(profile = %p.id, error = %e, "profile schedule ignored");
                None
            }
        }
    });
    GroupConfig {
        id: p.id.clone(),
        name: p.spec.name.clone(),
        clients: clients.cloned().unwrap_or_default(),
        categories: p.spec.categories.clone(),
        allow: p.spec.allow.clone(),
        allow_paths: Vec::new(),
        deny: p.spec.deny.clone(),
        deny_paths: Vec::new(),
        safesearch: p.spec.safesearch,
        youtube: p.spec.youtube,
        mode: p.spec.mode.map(Into::into),
        schedule,
        client_ids: Vec::new(),
        macs: Vec::new(),
        services: p.spec.services.clone(),
        service_groups: p.spec.service_groups.clone(),
        bypass_protection: p.spec.bypass_protection,
        block_unsafe_search: p.spec.block_unsafe_search,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profiles::types::ScheduleSpec;

    fn store() -> (tempfile::TempDir, ProfileStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProfileStore::open(&dir.path().join("profiles.sqlite")).unwrap();
        s.set_categories(vec!["adult".into(), "gambling".into()]);
        (dir, s)
    }

    #[test]
    fn pages_go_forward_and_back_by_id_and_refuse_a_bad_cursor() {
        let (_dir, mut s) = store();
        for i in 0..7 {
            let spec = ProfileSpec {
                name: format!("kid {i}"),
                ..ProfileSpec::default()
            };
            s.create(&spec, "test").unwrap();
        }
        let names = |p: &ProfilePage| -> Vec<String> {
            p.profiles.iter().map(|p| p.spec.name.clone()).collect()
        };
        let one = s.page(PageCursor::First, 3).unwrap();
        assert_eq!(names(&one), ["kid 0", "kid 1", "kid 2"]);
        assert_eq!(one.previous, None);
        let two = s
            .page(PageCursor::After(one.next.as_deref().unwrap()), 3)
            .unwrap();
        assert_eq!(names(&two), ["kid 3", "kid 4", "kid 5"]);
        let three = s
            .page(PageCursor::After(two.next.as_deref().unwrap()), 3)
            .unwrap();
        assert_eq!(names(&three), ["kid 6"]);
        assert_eq!(three.next, None, "the last page");
        let back = s
            .page(PageCursor::Before(three.previous.as_deref().unwrap()), 3)
            .unwrap();
        assert_eq!(names(&back), names(&two));
        let start = s
            .page(PageCursor::Before(back.previous.as_deref().unwrap()), 3)
            .unwrap();
        assert_eq!(names(&start), names(&one));
        assert_eq!(start.previous, None, "back at the first page");
        for bad in ["cfg-x", "p", "p1x", "../1"] {
            assert!(
                matches!(
                    s.page(PageCursor::After(bad), 3),
                    Err(ProfileError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn snapshot_follows_writes_and_the_generation_moves() {
        let (_dir, mut s) = store();
        let rx = s.subscribe();
        assert_eq!(*rx.borrow(), 0);
        let spec = ProfileSpec {
            name: "teens".into(),
            categories: Some(vec!["adult".into()]),
            schedule: Some(ScheduleSpec {
                days: vec!["mon".into()],
                start: "08:00".into(),
                end: "15:00".into(),
                timezone: "UTC".into(),
                categories: vec!["gambling".into()],
            }),
            ..ProfileSpec::default()
        };
        let p = s.create(&spec, "admin").unwrap();
        let add = |kind, value: &str| NewIdentity {
            kind,
            value: value.into(),
        };
        s.add_identity(&p.id, &add(IdentityKind::Cidr, "10.1.0.0/16"), "admin")
            .unwrap();
        s.add_identity(&p.id, &add(IdentityKind::ClientId, "tablet"), "admin")
            .unwrap();
        s.add_identity(&p.id, &add(IdentityKind::Mac, "aa:bb:cc:dd:ee:ff"), "admin")
            .unwrap();
        s.set_subscriber("192.0.2.0/24", &p.id, "admin").unwrap();
        assert_eq!(*rx.borrow(), 5);
        // A refused write does not move the generation.
        assert!(s.create(&spec, "admin").is_err());
        assert_eq!(*rx.borrow(), 5);

        let snap = s.snapshot().unwrap();
        assert_eq!(snap.generation, 5);
        assert_eq!(snap.groups.len(), 1);
        let (id, group) = &snap.groups[0];
        assert_eq!(id, &p.id);
        assert_eq!(group.name, "teens");
        assert_eq!(group.categories, Some(vec!["adult".to_owned()]));
        assert_eq!(group.id, p.id);
        // The `ip` identity; the subscriber line is apart (the subscriber map's overlay).
        assert_eq!(group.clients.len(), 1);
        assert!(group.schedule.is_some());
        assert_eq!(snap.by_client_id.get("tablet"), Some(&p.id));
        assert_eq!(snap.by_mac.get("aa:bb:cc:dd:ee:ff"), Some(&p.id));
        assert_eq!(snap.by_prefix.len(), 1);
        assert_eq!(
            snap.subscribers,
            vec![("192.0.2.0/24".parse().unwrap(), p.id.clone())]
        );
    }

    #[test]
    fn someone_elses_database_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER);").unwrap();
        drop(conn);
        let e = ProfileStore::open(&path).unwrap_err();
        assert!(matches!(e, ProfileError::NotAProfileStore { .. }), "{e}");
    }
}
