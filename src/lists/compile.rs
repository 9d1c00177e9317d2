//! Builder side: rules from every source → sorted reversed-label keys → FST + manifest on disk.
//!
//! Keys are gathered into one byte arena (a 2M-name list would otherwise cost 2M small
//! allocations), sorted, merged (a name in several categories keeps every bit), and streamed
//! into an `fst::MapBuilder` writing a temporary file. The temp file is fsynced and renamed
//! over the target, then the manifest follows the same way, so a reader never maps a half
//! written file (see [`crate::lists::manifest`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::clock::now_unix;
use crate::lists::bloom;
use crate::lists::key;
use crate::lists::manifest::{self, FORMAT_VERSION, Manifest, SourceRecord};
use crate::lists::parse::Format;
use crate::lists::rule::{Action, Rule};
use crate::lists::source::{SourceError, SourceReport, read_source};

/// At most this many categories fit the 32-bit mask in each value.
pub const MAX_CATEGORIES: usize = 32;

/// One list to compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListSource {
    /// The category its block rules belong to; `None` makes every rule in it an allow rule.
    pub category: Option<String>,
    /// Where the list is (plain or gzip).
    pub path: PathBuf,
    /// Its format, or [`Format::Auto`] to sniff it.
    pub format: Format,
}

/// Rules given inline (e.g. a school's own allow/deny entries in config).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineRules {
    /// Category name → rules (block rules in that category; allow rules stay allow).
    pub rules: Vec<(Option<String>, Rule)>,
}

/// Progress events for a front end (the CLI prints them).
#[derive(Debug)]
pub enum Progress<'a> {
    /// A source was read and parsed.
    SourceDone(&'a ListSource, &'a SourceReport),
    /// All sources are read; `keys` keys (with duplicates) are being sorted.
    Sorting {
        /// Keys gathered so far.
        keys: usize,
    },
    /// The FST is being written.
    Writing {
        /// Distinct keys.
        entries: usize,
    },
}

/// Why a compile failed. The previous compiled file, if any, is untouched.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A list could not be read, is not valid gzip, or has no valid entry.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// More categories than bits in a value.
    #[error("{count} categories configured, at most {MAX_CATEGORIES} are supported")]
    TooManyCategories {
        /// How many were asked for.
        count: usize,
    },
    /// Nothing to compile.
    #[error("no lists given: nothing to compile")]
    NoSources,
    /// Writing the output failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The fst builder refused the keys (a bug: keys are sorted and unique).
    #[error("building the FST failed: {0}")]
    Fst(#[from] fst::Error),
}

/// Collects rules into the key arena.
struct Keys {
    arena: Vec<u8>,
    /// (offset, len, value) into `arena`.
    index: Vec<(u32, u16, u64)>,
}

impl Keys {
    fn push(&mut self, rule: &Rule, categories: u32) {
        let start = self.arena.len();
        key::push_key(&rule.name, rule.scope, &mut self.arena);
        let len = self.arena.len() - start;
        // Names are at most 253 octets, and the arena of a 2M-name list is ~40 MB: both fit.
        self.index.push((
            start as u32,
            len as u16,
            key::value(rule.action, categories),
        ));
    }

    fn get(&self, (off, len, _): (u32, u16, u64)) -> &[u8] {
        &self.arena[off as usize..off as usize + len as usize]
    }
}

/// Compiles `sources` (and `inline` rules) into an FST at `out`, with its manifest beside it.
///
/// Categories get bits in the order they first appear in `sources` and `inline`.
///
/// # Errors
/// Any source that cannot be read or has no valid entry fails the whole compile, naming the
/// file; so does a failure to write. The file at `out` is replaced only on success.
pub fn compile(
    sources: &[ListSource],
    inline: &InlineRules,
    out: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Manifest, CompileError> {
    if sources.is_empty() && inline.rules.is_empty() {
        return Err(CompileError::NoSources);
    }
    // Bits in order of first appearance, decided before any list is read.
    let mut categories: Vec<String> = Vec::new();
    let named = sources.iter().map(|s| &s.category);
    for name in named.chain(inline.rules.iter().map(|(c, _)| c)).flatten() {
        if !categories.contains(name) {
            categories.push(name.clone());
        }
    }
    if categories.len() > MAX_CATEGORIES {
        return Err(CompileError::TooManyCategories {
            count: categories.len(),
        });
    }
    let bit_of = |name: &Option<String>| -> u32 {
        name.as_ref()
            .and_then(|n| categories.iter().position(|c| c == n))
            .map_or(0, |i| 1 << i)
    };

    let mut keys = Keys {
        arena: Vec::new(),
        index: Vec::new(),
    };
    let mut records = Vec::with_capacity(sources.len());
    for source in sources {
        let bit = bit_of(&source.category);
        let is_allowlist = source.category.is_none();
        let report = read_source(&source.path, source.format, &mut |mut rule| {
            if is_allowlist {
                rule.action = Action::Allow;
            }
            keys.push(&rule, bit);
        })?;
        progress(Progress::SourceDone(source, &report));
        records.push(source_record(source, &report));
    }
    for (category, rule) in &inline.rules {
        keys.push(rule, bit_of(category));
    }

    progress(Progress::Sorting {
        keys: keys.index.len(),
    });
    let mut index = std::mem::take(&mut keys.index);
    index.sort_unstable_by(|a, b| keys.get(*a).cmp(keys.get(*b)));

    // Merge duplicates: OR the values, and count per category as we go.
    let mut merged: Vec<(u32, u16, u64)> = Vec::with_capacity(index.len());
    for entry in index {
        match merged.last_mut() {
            Some(last) if keys.get(*last) == keys.get(entry) => last.2 |= entry.2,
            _ => merged.push(entry),
        }
    }
    progress(Progress::Writing {
        entries: merged.len(),
    });

    let mut per_category = vec![0u64; categories.len()];
    let mut allow_entries = 0;
    for &(_, _, v) in &merged {
        if v & key::ALLOW != 0 {
            allow_entries += 1;
        }
        for (bit, count) in per_category.iter_mut().enumerate() {
            if v & (1 << bit) != 0 {
                *count += 1;
            }
        }
    }

    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| CompileError::Write { path, source }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    let tmp = temp_path(out);
    let result = (|| -> Result<Manifest, CompileError> {
        let file = File::create(&tmp).map_err(write_err(&tmp))?;
        let mut builder = fst::MapBuilder::new(BufWriter::with_capacity(1 << 20, file))?;
        for &entry in &merged {
            builder.insert(keys.get(entry), entry.2)?;
        }
        let file = builder
            .into_inner()?
            .into_inner()
            .map_err(|e| write_err(&tmp)(e.into_error()))?;
        file.sync_all().map_err(write_err(&tmp))?;
        drop(file);
        let (fst_bytes, fst_crc32c) = size_and_checksum(&tmp).map_err(write_err(&tmp))?;
        let bloom = bloom::build(bloom::entries(merged.iter().map(|e| keys.get(*e))).into_iter());
        let bloom_path = manifest::bloom_path_for(out);
        let bloom_tmp = temp_path(&bloom_path);
        write_synced(&bloom_tmp, &bloom).map_err(write_err(&bloom_tmp))?;
        let bloom_sha256 = hex::encode(Sha256::digest(&bloom));

        let manifest_path = manifest::path_for(out);
        let previous_serial = fs::read(&manifest_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .map_or(0, |m| m.serial);
        let now = now_unix();
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            serial: (previous_serial + 1).max(now),
            built_at_unix: now,
            entries_per_category: categories
                .iter()
                .cloned()
                .zip(per_category.iter().copied())
                .collect::<BTreeMap<_, _>>(),
            categories: categories.clone(),
            entries: merged.len() as u64,
            allow_entries,
            fst_bytes,
            fst_crc32c,
            bloom_bytes: bloom.len() as u64,
            bloom_sha256,
            sources: records,
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other);
        let json = json.map_err(write_err(&manifest_path))?;
        let manifest_tmp = temp_path(&manifest_path);
        write_synced(&manifest_tmp, &json).map_err(write_err(&manifest_tmp))?;
        // FST and filter first, manifest last: the manifest is the commit record.
        fs::rename(&tmp, out).map_err(write_err(out))?;
        fs::rename(&bloom_tmp, &bloom_path).map_err(write_err(&bloom_path))?;
        fs::rename(&manifest_tmp, &manifest_path).map_err(write_err(&manifest_path))?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the renames durable; not every platform lets a directory be opened.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(manifest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        let _ = fs::remove_file(temp_path(&manifest::bloom_path_for(out)));
    }
    result
}

/// The manifest's record of what `source` contributed, from its read report.
pub fn source_record(source: &ListSource, report: &SourceReport) -> SourceRecord {
    SourceRecord {
        category: source.category.clone(),
        path: source.path.clone(),
        format: report.parse.format.to_string(),
        sha256: report.sha256.clone(),
        lines: report.parse.lines,
        accepted: report.parse.accepted,
        rejected: report
            .parse
            .rejected
            .iter()
            .map(|(r, n)| (r.as_str().to_owned(), *n))
            .collect(),
        unsupported: report.parse.unsupported,
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp.{}", std::process::id()));
    PathBuf::from(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// File size and the CRC-32C the fst crate appends as its last four bytes (little endian).
pub(crate) fn size_and_checksum(path: &Path) -> io::Result<(u64, u32)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if len < 4 {
        return Ok((len, 0));
    }
    f.seek(SeekFrom::End(-4))?;
    let mut tail = [0u8; 4];
    f.read_exact(&mut tail)?;
    Ok((len, u32::from_le_bytes(tail)))
}
