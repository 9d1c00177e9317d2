//! Reader side: map a compiled FST, check it against its manifest, hand out an immutable
//! [`Blocklist`].
//!
//! `fst::Map::new` only checks the header, so a truncated or bit-flipped file could still
//! be walked into a wrong verdict. Loading therefore checks size and checksum against the
//! manifest and runs `verify()` over every byte (a few milliseconds for a 2M-name list)
//! before the map may answer a single query.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use sha2::{Digest, Sha256};

use crate::lists::manifest::{self, FORMAT_VERSION, Manifest};

/// The bytes behind a map: a file mapping in production, a vector in tests.
#[derive(Debug)]
pub enum Bytes {
    /// A read-only mapping of the compiled file, shared with every process mapping it.
    Mapped(Mmap),
    /// Bytes in memory.
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A loaded, validated, immutable compiled blocklist. Lookups live in [`crate::lists::matcher`].
#[derive(Debug)]
pub struct Blocklist {
    pub(crate) map: fst::Map<Bytes>,
    /// The Bloom filter over every key (see [`crate::lists::bloom`]).
    pub(crate) bloom: Bytes,
    manifest: Manifest,
}

/// Why a compiled list was refused. The list already serving, if any, stays.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest or the FST could not be opened or mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not the JSON we write.
    #[error("manifest {} is not valid: {source}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
    /// Written by an incompatible version; recompile with this one.
    #[error("{} has format version {got}, this build reads {expected}: recompile the list", path.display())]
    Version {
        /// The manifest file.
        path: PathBuf,
        /// What this build reads.
        expected: u32,
        /// What the file says.
        got: u32,
    },
    /// The FST is not the one the manifest describes (truncated, or caught mid-update).
    #[error("{} does not match its manifest: {what}", path.display())]
    Mismatch {
        /// The FST file.
        path: PathBuf,
        /// Which check failed.
        what: String,
    },
    /// The FST itself is corrupt.
    #[error("{} is not a valid FST: {source}", path.display())]
    Corrupt {
        /// The FST file.
        path: PathBuf,
        /// What the fst crate found.
        #[source]
        source: fst::Error,
    },
}

impl Blocklist {
    /// Maps the FST at `path` and its manifest (`<path>.manifest.json`) and validates both.
    ///
    /// # Errors
    /// Any unreadable, mismatched or corrupt file; see [`LoadError`].
    pub fn open(path: &Path) -> Result<Blocklist, LoadError> {
        let manifest_path = manifest::path_for(path);
        let io = |p: &Path| {
            let path = p.to_owned();
            move |source| LoadError::Io { path, source }
        };
        let json = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
        let manifest: Manifest =
            serde_json::from_slice(&json).map_err(|source| LoadError::Manifest {
                path: manifest_path.clone(),
                source,
            })?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(LoadError::Version {
                path: manifest_path,
                expected: FORMAT_VERSION,
                got: manifest.format_version,
            });
        }
        let file = File::open(path).map_err(io(path))?;
        let len = file.metadata().map_err(io(path))?.len();
        if len != manifest.fst_bytes {
            return Err(LoadError::Mismatch {
                path: path.to_owned(),
                what: format!("{len} bytes, manifest says {}", manifest.fst_bytes),
            });
        }
        // SAFETY: the file is opened read-only and compile never rewrites a file in place:
        // it writes a new file and renames it over, so this mapping keeps the old inode.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io(path))?;
        let bloom_path = manifest::bloom_path_for(path);
        let bloom_file = File::open(&bloom_path).map_err(io(&bloom_path))?;
        // SAFETY: as above.
        let bloom = unsafe { Mmap::map(&bloom_file) }.map_err(io(&bloom_path))?;
        Self::from_parts(Bytes::Mapped(mmap), Bytes::Mapped(bloom), manifest, path)
    }

    /// Validates the FST `bytes` and the Bloom filter `bloom` against `manifest` and builds
    /// a blocklist from them.
    ///
    /// # Errors
    /// [`LoadError::Mismatch`] or [`LoadError::Corrupt`].
    pub fn from_parts(
        bytes: Bytes,
        bloom: Bytes,
        manifest: Manifest,
        path: &Path,
    ) -> Result<Blocklist, LoadError> {
        let data = bytes.as_ref();
        let mismatch = |what: String| LoadError::Mismatch {
            path: path.to_owned(),
            what,
        };
        if data.len() as u64 != manifest.fst_bytes {
            return Err(mismatch(format!(
                "{} bytes, manifest says {}",
                data.len(),
                manifest.fst_bytes
            )));
        }
        let tail = data
            .len()
            .checked_sub(4)
            .and_then(|at| data.get(at..))
            .and_then(|t| <[u8; 4]>::try_from(t).ok())
            .map(u32::from_le_bytes);
        if tail != Some(manifest.fst_crc32c) {
            return Err(mismatch("checksum differs from the manifest's".into()));
        }
        let corrupt = |source| LoadError::Corrupt {
            path: path.to_owned(),
            source,
        };
        let map = fst::Map::new(bytes).map_err(corrupt)?;
        map.as_fst().verify().map_err(corrupt)?;
        if map.len() as u64 != manifest.entries {
            return Err(mismatch(format!(
                "{} keys, manifest says {}",
                map.len(),
                manifest.entries
            )));
        }
        let b = bloom.as_ref();
        if b.len() as u64 != manifest.bloom_bytes
            || b.len() % crate::lists::bloom::BLOCK != 0
            || hex::encode(Sha256::digest(b)) != manifest.bloom_sha256
        {
            return Err(mismatch(
                "the Bloom filter's size or SHA-256 differs from the manifest's".into(),
            ));
        }
        Ok(Blocklist {
            map,
            bloom,
            manifest,
        })
    }

    /// The manifest this list was compiled with.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Distinct keys in the list.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True for a list without keys (never produced by [`crate::lists::compile`]).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
