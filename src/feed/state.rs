//! The state directory: each feed's last good copy and a status file per source, so a
//! restart serves and polls from where it left off, and `kidsafe-dns status` can read
//! what the running server saw.
//!
//! Layout under `lists.state_dir`:
//! - `sources/<name>.body`: the last accepted download of a `url` source, as served;
//! - `sources/<name>.rpz`: the last accepted snapshot of an `rpz` zone, as zone text;
//! - `sources/<name>.json`: [`SourceState`] (validators, serial, counters, last error);
//! - `pipeline.json`: [`PipelineState`] (last compile, refused compiles).
//!
//! Every file is written to a temp file and renamed over, so a reader sees the old or
//! the new content, never a mix.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::clock::now_unix;
use crate::feed::guard::Refusal;
use crate::feed::http::Validators;
use crate::feed::spec::{FeedConfig, SourceKind, SourceSpec};

/// `state_dir/sources`.
pub fn sources_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sources")
}

/// Stored body of `url` source `name`.
pub fn body_path(state_dir: &Path, name: &str) -> PathBuf {
    sources_dir(state_dir).join(format!("{name}.body"))
}

/// Stored zone snapshot of `rpz` source `name`.
pub fn zone_path(state_dir: &Path, name: &str) -> PathBuf {
    sources_dir(state_dir).join(format!("{name}.rpz"))
}

/// Status file of source `name`.
pub fn status_path(state_dir: &Path, name: &str) -> PathBuf {
    sources_dir(state_dir).join(format!("{name}.json"))
}

/// Status file of the compile stage.
pub fn pipeline_path(state_dir: &Path) -> PathBuf {
    state_dir.join("pipeline.json")
}

/// Where a new copy of `stored` waits while the guards and the compile judge it.
pub fn candidate_path(stored: &Path) -> PathBuf {
    let mut name = stored.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

// Where a feed's stored copy lives is the state directory's layout, so it is written here
// beside the other paths; `spec` then needs nothing from `state` (the arrow is state → spec).
impl SourceSpec {
    /// The file the compiler reads: the configured path, or the stored copy of a feed.
    pub fn list_path(&self, state_dir: &Path) -> PathBuf {
        match &self.kind {
            SourceKind::Path(p) => p.clone(),
            SourceKind::Url(_) => body_path(state_dir, &self.name),
            SourceKind::Rpz(_) => zone_path(state_dir, &self.name),
        }
    }
}

/// Writes `bytes` to `path` through a temp file, fsynced (with its directory when
/// `durable`) and renamed over.
///
/// # Errors
/// Any I/O error; `path` is then untouched.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)?;
        if durable {
            sync_parent(path);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes renames in `path`'s directory durable; not every platform lets a directory be
/// opened, so failure is ignored.
pub fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// The last error of a source or compile, and when.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// When, seconds since the Unix epoch.
    pub at_unix: u64,
    /// Which guard refused (see [`crate::feed::guard::Guard`]).
    pub guard: String,
    /// What happened.
    pub message: String,
}

/// What is known about one source; persisted as `sources/<name>.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceState {
    /// The source's name.
    pub name: String,
    /// `path`, `url` or `rpz`.
    pub kind: String,
    /// File, URL or `zone from primary`.
    pub origin: String,
    /// Last time a new version was accepted and is serving.
    pub last_success_unix: Option<u64>,
    /// Last time the source was reached (new version, 304 or same serial).
    pub last_check_unix: Option<u64>,
    /// The most recent refusal (kept after later successes: compare the times).
    pub last_error: Option<ErrorRecord>,
    /// HTTP `ETag` of the stored copy.
    pub etag: Option<String>,
    /// HTTP `Last-Modified` of the stored copy.
    pub last_modified: Option<String>,
    /// SOA serial of the stored zone snapshot.
    pub serial: Option<u32>,
    /// SHA-256 of the stored copy (hex).
    pub sha256: Option<String>,
    /// Rules the stored copy yields (before duplicates across sources collapse).
    pub entries: Option<u64>,
    /// Lines of the stored copy rejected as invalid.
    pub rejected: Option<u64>,
    /// New versions accepted since the state directory was created.
    pub updates: u64,
    /// Polls answered "not modified" (HTTP 304 or an unchanged serial).
    pub unchanged: u64,
    /// Refused updates per guard.
    pub refused: BTreeMap<String, u64>,
}

impl SourceState {
    /// The HTTP validators to make the next request conditional with.
    pub fn validators(&self) -> Validators {
        Validators {
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }
}

/// What is known about the compile stage; persisted as `pipeline.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineState {
    /// Last time a compiled list was installed and swapped in.
    pub last_install_unix: Option<u64>,
    /// Its manifest serial.
    pub serial: Option<u64>,
    /// Its entries.
    pub entries: Option<u64>,
    /// Compiles installed.
    pub installs: u64,
    /// The most recent refusal.
    pub last_error: Option<ErrorRecord>,
    /// Refused compiles per guard.
    pub refused: BTreeMap<String, u64>,
}

/// The in-memory copy of every status file; each change is written through.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    sources: Mutex<HashMap<String, SourceState>>,
    pipeline: Mutex<PipelineState>,
}

/// Reads a JSON status file; a missing or unreadable one gives the default.
pub fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> T {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl StateStore {
    /// Loads the status files of the configured sources (missing ones start empty).
    pub fn load(config: &FeedConfig) -> Self {
        let dir = config.state_dir.clone();
        let sources = config
            .sources
            .iter()
            .map(|spec| {
                let mut s: SourceState = read_json(&status_path(&dir, &spec.name));
                s.name = spec.name.clone();
                s.kind = spec.kind.label().into();
                s.origin = spec.kind.origin();
                (spec.name.clone(), s)
            })
            .collect();
        let pipeline = read_json(&pipeline_path(&dir));
        StateStore {
            dir,
            sources: Mutex::new(sources),
            pipeline: Mutex::new(pipeline),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A copy of source `name`'s state.
    pub fn get(&self, name: &str) -> SourceState {
        let map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned().unwrap_or_default()
    }

    /// Changes source `name`'s state and writes it out.
    pub fn update(&self, name: &str, change: impl FnOnce(&mut SourceState)) {
        let snapshot = {
            let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            let s = map.entry(name.to_owned()).or_default();
            change(s);
            s.clone()
        };
        self.write(&status_path(&self.dir, name), &snapshot);
    }

    /// Counts a refusal against source `name` and logs it.
    pub fn refused(&self, name: &str, refusal: &Refusal) {
        tracing::warn!(
            source = name,
            guard = refusal.guard.as_str(),
            error = %refusal.message,
            "update refused; the current list keeps serving"
        );
        self.update(name, |s| {
            *s.refused.entry(refusal.guard.as_str().into()).or_default() += 1;
            s.last_error = Some(refusal.record());
        });
    }

    /// Changes the compile stage's state and writes it out.
    pub fn update_pipeline(&self, change: impl FnOnce(&mut PipelineState)) {
        let snapshot = {
            let mut p = self.pipeline.lock().unwrap_or_else(|e| e.into_inner());
            change(&mut p);
            p.clone()
        };
        self.write(&pipeline_path(&self.dir), &snapshot);
    }

    /// Counts a refused compile.
    pub fn pipeline_refused(&self, refusal: &Refusal) {
        self.update_pipeline(|p| {
            *p.refused.entry(refusal.guard.as_str().into()).or_default() += 1;
            p.last_error = Some(refusal.record());
        });
    }

    fn write<T: Serialize>(&self, path: &Path, value: &T) {
        // Status is advisory: losing the last update to a crash costs one unconditional
        // download, so no fsync here.
        let written = serde_json::to_vec_pretty(value)
            .map_err(io::Error::other)
            .and_then(|json| write_atomic(path, &json, false));
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot write feed status");
        }
    }
}

impl Refusal {
    /// The refusal as persisted.
    pub fn record(&self) -> ErrorRecord {
        ErrorRecord {
            at_unix: now_unix(),
            guard: self.guard.as_str().into(),
            message: self.message.clone(),
        }
    }
}
