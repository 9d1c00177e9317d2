//! [`SubscriberMap`]: a compiled map, memory-mapped and checked on open, answering
//! address → profile id with one narrowed binary search.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::flatten::NONE;
use super::format::{Counts, HEADER, MAGIC, Sections, VERSION};

/// Why a compiled map was refused on open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be read.
    #[error("cannot open the subscriber map {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not a compiled subscriber map, a different layout version, or damaged; recompile
    /// it from its source (delete it and restart, or let the feed rewrite it).
    #[error("{} is not a usable subscriber map: {reason}; delete it to recompile from the source", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
}

/// Bytes behind a map: a file mapping, or a buffer (tests, benchmarks).
#[derive(Debug)]
enum Bytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// A validated, immutable subscriber map. A new source makes a new map; nothing mutates
/// one (the serving one is swapped whole, see [`super::live::SubscriberSource`]).
#[derive(Debug)]
pub struct SubscriberMap {
    bytes: Bytes,
    counts: Counts,
    at: Sections,
}

/// The `i`-th little-endian u32 of `b`, or 0 past the end (never reached: every index
/// used is checked against the counts on open).
#[inline(always)]
fn u32_at(b: &[u8], i: usize) -> u32 {
    match b.get(i * 4..i * 4 + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

#[inline(always)]
fn u128_at(b: &[u8], i: usize) -> u128 {
    match b
        .get(i * 16..i * 16 + 16)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
    {
        Some(a) => u128::from_le_bytes(a),
        None => 0,
    }
}

impl SubscriberMap {
    /// Maps the file at `path` and checks it (see [`SubscriberMap::from_vec`] for what).
    ///
    /// # Errors
    /// [`OpenError`]: unreadable, or failing a check.
    pub fn open(path: &Path) -> Result<SubscriberMap, OpenError> {
        let io = |source| OpenError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is only read, and our files are replaced by rename, never
        // rewritten in place, so the mapped bytes do not change under us.
        let mmap = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::checked(Bytes::Mapped(mmap)).map_err(|reason| OpenError::Corrupt {
            path: path.to_owned(),
            reason,
        })
    }

    /// A map over `bytes` (as [`super::compile::compile`] made them), checked like a file:
    /// magic, version, exact size, id table bounds and UTF-8, the v4 index, and every
    /// range start strictly above the one before with a value naming an id.
    ///
    /// The sortedness check reads every start once (O(rows), about 10 ms for 5M rows):
    /// it is what makes the binary search's answer the intended one, it runs off the
    /// query path (at start and on a feed swap), and the pages it touches are the ones
    /// lookups read anyway.
    ///
    /// # Errors
    /// The check that failed.
    pub fn from_vec(bytes: Vec<u8>) -> Result<SubscriberMap, String> {
        Self::checked(Bytes::Owned(bytes))
    }

    fn checked(bytes: Bytes) -> Result<SubscriberMap, String> {
        let b = bytes.as_slice();
        if b.len() < HEADER || &b[..8] != MAGIC {
            return Err("no subscriber map header (bad magic)".into());
        }
        let h = |i: usize| u32_at(&b[8..HEADER], i);
        if h(0) != VERSION {
            return Err(format!(
                "layout version {} (this build reads {VERSION})",
                h(0)
            ));
        }
        let counts = Counts {
            ids: h(1),
            strtab: h(2),
            v4: h(3),
            v6: h(4),
            rows: h(5),
            index_bits: h(6),
        };
        let at = counts
            .sections()
            .filter(|s| s.end == b.len())
            .ok_or_else(|| format!("size {} does not match its header {counts:?}", b.len()))?;
        let map = SubscriberMap { bytes, counts, at };
        map.check()?;
        Ok(map)
    }

    fn check(&self) -> Result<(), String> {
        let b = self.bytes.as_slice();
        let (ids, strtab) = (self.counts.ids as usize, self.counts.strtab as usize);
        let offsets = &b[self.at.ids..self.at.strtab];
        let table = &b[self.at.strtab..self.at.index];
        let mut prev = 0usize;
        for i in 0..=ids {
            let off = u32_at(offsets, i) as usize;
            if (i == 0 && off != 0) || off < prev || off > strtab {
                return Err(format!("profile id table out of order at {i}"));
            }
            if i > 0 && std::str::from_utf8(&table[prev..off]).is_err() {
                return Err(format!("profile id {} is not UTF-8", i - 1));
            }
            prev = off;
        }
        if prev != strtab {
            return Err("profile id table does not cover its strings".into());
        }
        let (n4, n6) = (self.counts.v4 as usize, self.counts.v6 as usize);
        let value_ok = |v: u32| v == NONE || (v as usize) < ids;
        let starts = &b[self.at.v4_starts..self.at.v4_values];
        let values = &b[self.at.v4_values..self.at.v6_starts];
        for i in 0..n4 {
            let s = u32_at(starts, i);
            if (i == 0 && s != 0) || (i > 0 && s <= u32_at(starts, i - 1)) {
                return Err(format!("IPv4 range {i} is out of order"));
            }
            if !value_ok(u32_at(values, i)) {
                return Err(format!("IPv4 range {i} names no profile id"));
            }
        }
        // The index must say exactly where each /16 starts, so a lookup's narrowed
        // search holds its answer.
        let index = &b[self.at.index..self.at.v4_starts];
        let bits = self.counts.index_bits;
        for blk in 0..=(1usize << bits) {
            let at = u32_at(index, blk) as usize;
            let bound = (blk as u64) << (32 - bits);
            let below = at == 0 || u64::from(u32_at(starts, at - 1)) < bound;
            let above = at == n4 || u64::from(u32_at(starts, at)) >= bound;
            if at > n4 || !below || !above {
                return Err(format!("IPv4 index entry {blk} is wrong"));
            }
        }
        let starts = &b[self.at.v6_starts..self.at.v6_values];
        let values = &b[self.at.v6_values..];
        for i in 0..n6 {
            let s = u128_at(starts, i);
            if (i == 0 && s != 0) || (i > 0 && s <= u128_at(starts, i - 1)) {
                return Err(format!("IPv6 range {i} is out of order"));
            }
            if !value_ok(u32_at(values, i)) {
                return Err(format!("IPv6 range {i} names no profile id"));
            }
        }
        Ok(())
    }

    /// The profile id of the most specific line containing `ip`, if any.
    pub fn lookup(&self, ip: IpAddr) -> Option<&str> {
        self.lookup_index(ip).and_then(|i| self.id(i))
    }

    /// As [`SubscriberMap::lookup`], as an index into the id table ([`SubscriberMap::id`]).
    /// IPv4-mapped IPv6 addresses (dual-stack sockets) are looked up as IPv4.
    #[inline]
    pub fn lookup_index(&self, ip: IpAddr) -> Option<u32> {
        let v = match ip {
            IpAddr::V4(a) => self.lookup_v4(u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a) => self.lookup_v4(u32::from(a)),
                None => self.lookup_v6(u128::from(a)),
            },
        };
        (v != NONE).then_some(v)
    }

    #[inline]
    fn lookup_v4(&self, ip: u32) -> u32 {
        let n = self.counts.v4 as usize;
        if n == 0 {
            return NONE;
        }
        let b = self.bytes.as_slice();
        let index = &b[self.at.index..self.at.v4_starts];
        let starts = &b[self.at.v4_starts..self.at.v4_values];
        // `index_bits` is 8..=24 (checked on open), so the shift is in range.
        let blk = (ip >> (32 - self.counts.index_bits)) as usize;
        // The last start at or below `ip` lies in [index[blk] - 1, index[blk + 1]): the
        // one before the block's first start is below it, and starts[0] is 0.
        let mut base = (u32_at(index, blk) as usize).saturating_sub(1);
        let mut size = (u32_at(index, blk + 1) as usize).max(base + 1) - base;
        // Branch-free: the loop runs log2(size) times whatever the data, and the
        // compare becomes a conditional move.
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            base = if u32_at(starts, mid) <= ip { mid } else { base };
            size -= half;
        }
        u32_at(&b[self.at.v4_values..self.at.v6_starts], base)
    }

    fn lookup_v6(&self, ip: u128) -> u32 {
        let n = self.counts.v6 as usize;
        if n == 0 {
            return NONE;
        }
        let b = self.bytes.as_slice();
        let starts = &b[self.at.v6_starts..self.at.v6_values];
        let (mut base, mut size) = (0usize, n);
        while size > 1 {
            let half = size / 2;
            let mid = base + half;
            base = if u128_at(starts, mid) <= ip {
                mid
            } else {
                base
            };
            size -= half;
        }
        u32_at(&b[self.at.v6_values..], base)
    }

    /// Profile id number `i` of the id table.
    pub fn id(&self, i: u32) -> Option<&str> {
        let b = self.bytes.as_slice();
        let i = i as usize;
        if i >= self.counts.ids as usize {
            return None;
        }
        let offsets = &b[self.at.ids..self.at.strtab];
        let (from, to) = (u32_at(offsets, i) as usize, u32_at(offsets, i + 1) as usize);
        b[self.at.strtab..self.at.index]
            .get(from..to)
            .and_then(|s| std::str::from_utf8(s).ok())
    }

    /// Rows compiled in (distinct lines of the source).
    pub fn rows(&self) -> u64 {
        u64::from(self.counts.rows)
    }

    /// Distinct profile ids.
    pub fn ids(&self) -> u32 {
        self.counts.ids
    }

    /// Size of the compiled map in bytes.
    pub fn size(&self) -> usize {
        self.bytes.as_slice().len()
    }
}
