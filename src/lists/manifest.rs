//! The manifest written beside every compiled FST: what went in, and how to check what came out.
//!
//! The manifest is written after the FST and renamed into place last, so it is the commit
//! record of a compile: a loader that finds an FST whose size or checksum disagrees with the
//! manifest knows it caught a compile half way and keeps the list it has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the on-disk layout (key scheme + value bits). Bump on any change.
pub const FORMAT_VERSION: u32 = 2;

/// Everything known about one compiled blocklist.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// On-disk layout version, must equal [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Monotonic serial: each compile into the same place gets a larger one.
    pub serial: u64,
    /// Build time, seconds since the Unix epoch.
    pub built_at_unix: u64,
    /// Category names; bit `i` of a value stands for `categories[i]`.
    pub categories: Vec<String>,
    /// Keys in the FST (after duplicates collapsed).
    pub entries: u64,
    /// Distinct blocked names per category.
    pub entries_per_category: BTreeMap<String, u64>,
    /// Distinct allowlisted names.
    pub allow_entries: u64,
    /// Size of the FST file in bytes.
    pub fst_bytes: u64,
    /// The CRC-32C the fst crate stores in its last four bytes.
    pub fst_crc32c: u32,
    /// Size of the Bloom filter file beside the FST (see [`crate::lists::bloom`]).
    pub bloom_bytes: u64,
    /// SHA-256 of the Bloom filter file (hex).
    pub bloom_sha256: String,
    /// One record per list that went in.
    pub sources: Vec<SourceRecord>,
}

/// What one source list contributed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourceRecord {
    /// The category it fed, or `None` for an allowlist.
    pub category: Option<String>,
    /// Where it was read from.
    pub path: PathBuf,
    /// The format it was parsed as (after sniffing).
    pub format: String,
    /// SHA-256 of the file as stored (hex).
    pub sha256: String,
    /// Lines read.
    pub lines: u64,
    /// Rules it yielded (before duplicates collapsed).
    pub accepted: u64,
    /// Lines rejected, per reason.
    pub rejected: BTreeMap<String, u64>,
    /// Rules that cannot be expressed at DNS level.
    pub unsupported: u64,
}

/// Where the manifest of the FST at `fst_path` lives: the same name plus `.manifest.json`.
pub fn path_for(fst_path: &Path) -> PathBuf {
    let mut name = fst_path.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// Where the Bloom filter of the FST at `fst_path` lives: the same name plus `.bloom`.
pub fn bloom_path_for(fst_path: &Path) -> PathBuf {
    let mut name = fst_path.as_os_str().to_owned();
    name.push(".bloom");
    PathBuf::from(name)
}

impl Manifest {
    /// Name of category bit `bit`, if the manifest has one.
    pub fn category_name(&self, bit: u32) -> Option<&str> {
        self.categories.get(bit as usize).map(String::as_str)
    }

    /// Names of the categories set in `mask`, in bit order.
    pub fn category_names(&self, mask: u32) -> Vec<&str> {
        (0..32)
            .filter(|b| mask & (1 << b) != 0)
            .filter_map(|b| self.category_name(b))
            .collect()
    }
}
