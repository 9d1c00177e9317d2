//! The one writer of exceptions: adds, lists, revokes, and keeps them in a small JSON
//! file (written to a temporary file, synced, renamed over the old one), so a restart
//! sees the same expiries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::set::{Exception, ExceptionSet, Target};

/// Longest exception or pause: one week, in minutes.
pub const MAX_MINUTES: i64 = 7 * 24 * 60;

/// File name under `lists.state_dir`.
pub const FILE_NAME: &str = "exceptions.json";

/// The clock expiries are judged by (the policy's, so tests move both at once).
pub type Now = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Why an exception could not be added, revoked or kept.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionError {
    /// `minutes` out of range.
    #[error("minutes must be from 1 to {MAX_MINUTES} (one week), got {0}")]
    Minutes(i64),
    /// The file could not be read or written.
    #[error("exceptions file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what this version writes.
    #[error("exceptions file {path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
}

/// The file's shape.
#[derive(Default, Serialize, Deserialize)]
struct File {
    /// The next id's number (ids are never reused, so a stale `DELETE` hits nothing).
    next: u64,
    exceptions: Vec<Row>,
}

/// One exception as stored: exactly one of `service`, `name`, `pause`.
#[derive(Serialize, Deserialize)]
struct Row {
    id: String,
    profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pause: bool,
    /// Expiry, seconds since the Unix epoch (UTC).
    until_unix: i64,
}

impl Row {
    fn of(e: &Exception) -> Row {
        let (service, name, pause) = match &e.target {
            Target::Service(s) => (Some(s.clone()), None, false),
            Target::Name(n) => (None, Some(n.clone()), false),
            Target::Pause => (None, None, true),
        };
        Row {
            id: e.id.clone(),
            profile: e.profile.clone(),
            service,
            name,
            pause,
            until_unix: e.until.as_second(),
        }
    }

    fn exception(self) -> Option<Exception> {
        let target = match (self.service, self.name, self.pause) {
            (Some(s), None, false) => Target::Service(s),
            (None, Some(n), false) => Target::Name(n),
            (None, None, true) => Target::Pause,
            _ => return None,
        };
        Some(Exception {
            id: self.id,
            profile: self.profile,
            target,
            until: Timestamp::from_second(self.until_unix).ok()?,
        })
    }
}

/// Exceptions on disk and in force.
pub struct ExceptionStore {
    path: PathBuf,
    file: Mutex<(u64, Vec<Exception>)>,
    live: Arc<ArcSwap<ExceptionSet>>,
    now: Now,
}

impl ExceptionStore {
    /// Opens `path` (absent = none yet), dropping exceptions lapsed while the resolver
    /// was down.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed.
    pub fn open(path: &Path, now: Now) -> Result<ExceptionStore, ExceptionError> {
        let file: File = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| ExceptionError::Format {
                    path: path.to_owned(),
                    source,
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(source) => {
                return Err(ExceptionError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let at = now();
        let list: Vec<Exception> = file
            .exceptions
            .into_iter()
            .filter_map(Row::exception)
            .filter(|e| e.live_at(at))
            .collect();
        Ok(ExceptionStore {
            path: path.to_owned(),
            live: Arc::new(ArcSwap::from_pointee(ExceptionSet::new(&list))),
            file: Mutex::new((file.next, list)),
            now,
        })
    }

    /// The set the query path reads; every write here swaps it.
    pub fn live(&self) -> Arc<ArcSwap<ExceptionSet>> {
        Arc::clone(&self.live)
    }

    /// Adds an exception for `profile` lasting `minutes` from now.
    ///
    /// # Errors
    /// `minutes` out of 1..=[`MAX_MINUTES`], or the file cannot be written (then nothing
    /// changes).
    pub fn add(
        &self,
        profile: &str,
        target: Target,
        minutes: i64,
    ) -> Result<Exception, ExceptionError> {
        if !(1..=MAX_MINUTES).contains(&minutes) {
            return Err(ExceptionError::Minutes(minutes));
        }
        let at = (self.now)();
        let until = at
            .checked_add(SignedDuration::from_mins(minutes))
            .map_err(|_| ExceptionError::Minutes(minutes))?;
        let mut file = self.lock();
        let next = file.0 + 1;
        let e = Exception {
            id: format!("e{next}"),
            profile: profile.to_owned(),
            target,
            until,
        };
        let mut list: Vec<Exception> = file.1.iter().filter(|x| x.live_at(at)).cloned().collect();
        list.push(e.clone());
        self.write(next, &list)?;
        *file = (next, list);
        self.live.store(Arc::new(ExceptionSet::new(&file.1)));
        Ok(e)
    }

    /// `profile`'s exceptions in force, oldest first.
    pub fn list(&self, profile: &str) -> Vec<Exception> {
        let at = (self.now)();
        self.lock()
            .1
            .iter()
            .filter(|e| e.profile == profile && e.live_at(at))
            .cloned()
            .collect()
    }

    /// Revokes `profile`'s exception `id`; false when it has none by that id (or it lapsed).
    ///
    /// # Errors
    /// The file cannot be written (then nothing changes).
    pub fn remove(&self, profile: &str, id: &str) -> Result<bool, ExceptionError> {
        let at = (self.now)();
        let mut file = self.lock();
        let before = file.1.len();
        let list: Vec<Exception> = file
            .1
            .iter()
            .filter(|e| e.live_at(at) && !(e.profile == profile && e.id == id))
            .cloned()
            .collect();
        let found = file
            .1
            .iter()
            .any(|e| e.live_at(at) && e.profile == profile && e.id == id);
        if !found {
            return Ok(false);
        }
        debug_assert!(list.len() < before);
        self.write(file.0, &list)?;
        file.1 = list;
        self.live.store(Arc::new(ExceptionSet::new(&file.1)));
        Ok(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Exception>)> {
        // A panic while holding the lock leaves the list as it was before that write
        // (we only assign after the file is written), so poisoning is safe to ignore.
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the file atomically: temporary file, fsync, rename, fsync of the folder.
    fn write(&self, next: u64, list: &[Exception]) -> Result<(), ExceptionError> {
        let io = |source| ExceptionError::Io {
            path: self.path.clone(),
            source,
        };
        let file = File {
            next,
            exceptions: list.iter().map(Row::of).collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|source| ExceptionError::Format {
            path: self.path.clone(),
            source,
        })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Ok(d) = std::fs::File::open(dir) {
            // Best effort: some filesystems refuse to sync a directory.
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn clock() -> (Arc<AtomicI64>, Now) {
        let t = Arc::new(AtomicI64::new(1_800_000_000));
        let c = Arc::clone(&t);
        let now: Now = Arc::new(move || {
            Timestamp::from_second(c.load(Ordering::Relaxed)).unwrap_or(Timestamp::UNIX_EPOCH)
        });
        (t, now)
    }

    #[test]
    fn a_restart_keeps_the_same_expiry_and_drops_lapsed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (t, now) = clock();
        let store = ExceptionStore::open(&path, now.clone()).unwrap();
        let e = store
            .add("p1", Target::Service("youtube".into()), 60)
            .unwrap();
        let p = store.add("p1", Target::Pause, 30).unwrap();
        assert_eq!(e.until.as_second(), 1_800_000_000 + 3600);
        drop(store);
        t.fetch_add(600, Ordering::Relaxed);
        let store = ExceptionStore::open(&path, now.clone()).unwrap();
        assert_eq!(store.list("p1"), vec![e.clone(), p.clone()]);
        assert!(store.live().load().paused("p1", now()));
        // Past the pause's expiry: gone after a restart, ids are not reused.
        t.fetch_add(1800, Ordering::Relaxed);
        let store = ExceptionStore::open(&path, now).unwrap();
        assert_eq!(store.list("p1"), vec![e.clone()]);
        let n = store
            .add("p1", Target::Name("example.org".into()), 5)
            .unwrap();
        assert_eq!(n.id, "e3");
        assert!(store.remove("p1", "e1").unwrap());
        assert!(!store.remove("p1", "e1").unwrap());
        assert!(!store.remove("p2", "e3").unwrap(), "another profile's");
        assert_eq!(store.list("p1"), vec![n]);
    }

    #[test]
    fn minutes_out_of_range_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, now) = clock();
        let store = ExceptionStore::open(&dir.path().join(FILE_NAME), now).unwrap();
        for m in [0, -5, MAX_MINUTES + 1] {
            let e = store.add("p1", Target::Pause, m).unwrap_err();
            assert!(matches!(e, ExceptionError::Minutes(x) if x == m));
            assert!(e.to_string().contains("minutes"));
        }
        assert!(store.add("p1", Target::Pause, MAX_MINUTES).is_ok());
    }
}
