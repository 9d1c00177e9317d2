//! The last-good copy of a PostgreSQL store's rows (`profiles-last-good.json` under
//! `lists.state_dir`): a node that boots while PostgreSQL is down still filters with the
//! profiles it last saw. Written whole (temp file, fsync, rename, fsync of the directory)
//! so a crash leaves the old copy or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::backend::{IdentityRow, NewAudit, ProfileRow, Rows, Tx};
use super::error::ProfileError;
use super::types::{AuditEntry, Subscriber};

/// The copy at `path`; `None` when there is none yet.
pub(super) fn load(path: &Path) -> io::Result<Option<Rows>> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Replaces the copy at `path` with `rows`, atomically and durably.
pub(super) fn save(path: &Path, rows: &Rows) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut tmp, rows).map_err(io::Error::other)?;
    tmp.flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself must survive a power loss too.
    File::open(dir)?.sync_all()
}

/// A read-only transaction over the copy: reads answer from it, writes are refused.
pub(super) struct CopyTx<'a> {
    pub rows: Rows,
    pub target: &'a str,
}

type R<T> = Result<T, ProfileError>;

impl CopyTx<'_> {
    fn down<T>(&self) -> R<T> {
        Err(ProfileError::Unavailable {
            target: self.target.to_owned(),
        })
    }
}

impl Tx for CopyTx<'_> {
    fn profiles(&mut self) -> R<Vec<ProfileRow>> {
        Ok(self.rows.profiles.clone())
    }
    fn profiles_after(&mut self, after: i64, limit: i64) -> R<Vec<ProfileRow>> {
        // The copy is held by id (as `profiles` read it).
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .rows
            .profiles
            .iter()
            .filter(|p| p.id > after)
            .take(take)
            .cloned()
            .collect())
    }
    fn profiles_before(&mut self, before: i64, limit: i64) -> R<Vec<ProfileRow>> {
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .rows
            .profiles
            .iter()
            .rev()
            .filter(|p| p.id < before)
            .take(take)
            .cloned()
            .collect())
    }
    fn profile(&mut self, n: i64) -> R<Option<ProfileRow>> {
        Ok(self.rows.profiles.iter().find(|p| p.id == n).cloned())
    }
    fn profile_named(&mut self, name: &str) -> R<Option<i64>> {
        Ok(self
            .rows
            .profiles
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.id))
    }
    fn insert_profile(&mut self, _: &str, _: &str) -> R<i64> {
        self.down()
    }
    fn update_profile(&mut self, _: i64, _: i64, _: &str, _: &str) -> R<bool> {
        self.down()
    }
    fn delete_profile(&mut self, _: i64, _: i64, _: &str) -> R<bool> {
        self.down()
    }
    fn identities(&mut self, profile: Option<i64>) -> R<Vec<IdentityRow>> {
        Ok(self
            .rows
            .identities
            .iter()
            .filter(|i| profile.is_none_or(|n| i.profile_id == n))
            .cloned()
            .collect())
    }
    fn identity(&mut self, id: i64) -> R<Option<IdentityRow>> {
        Ok(self.rows.identities.iter().find(|i| i.id == id).cloned())
    }
    fn identity_holder(&mut self, kind: &str, value: &str) -> R<Option<(i64, i64, String)>> {
        let Some(i) = (self.rows.identities.iter()).find(|i| i.kind == kind && i.value == value)
        else {
            return Ok(None);
        };
        let name = (self.rows.profiles.iter())
            .find(|p| p.id == i.profile_id)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        Ok(Some((i.id, i.profile_id, name)))
    }
    fn insert_identity(&mut self, _: i64, _: &str, _: &str) -> R<i64> {
        self.down()
    }
    fn delete_identity(&mut self, _: i64) -> R<()> {
        self.down()
    }
    fn subscribers(&mut self, profile: Option<&str>) -> R<Vec<Subscriber>> {
        Ok(self
            .rows
            .subscribers
            .iter()
            .filter(|s| profile.is_none_or(|p| s.profile == p))
            .cloned()
            .collect())
    }
    fn subscriber(&mut self, prefix: &str) -> R<Option<String>> {
        Ok((self.rows.subscribers.iter())
            .find(|s| s.prefix == prefix)
            .map(|s| s.profile.clone()))
    }
    fn put_subscriber(&mut self, _: &Subscriber) -> R<()> {
        self.down()
    }
    fn delete_subscriber(&mut self, _: &str) -> R<()> {
        self.down()
    }
    fn audit(&mut self, _: &NewAudit<'_>) -> R<()> {
        self.down()
    }
    // The copy keeps what the query path needs, not the audit log.
    fn audit_list(&mut self, _: i64, _: i64) -> R<Vec<AuditEntry>> {
        self.down()
    }
    fn profile_count(&mut self) -> R<u64> {
        Ok(self.rows.profiles.len() as u64)
    }
    fn is_live(&self) -> bool {
        false
    }
    fn commit(self: Box<Self>) -> R<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_copy_reads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/profiles-last-good.json");
        assert_eq!(load(&path).unwrap(), None);
        let mut rows = Rows::default();
        rows.profiles.push(ProfileRow {
            id: 1,
            name: "kids".into(),
            settings: "{}".into(),
            version: 2,
        });
        save(&path, &rows).unwrap();
        save(&path, &rows).unwrap();
        assert_eq!(load(&path).unwrap(), Some(rows));
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
