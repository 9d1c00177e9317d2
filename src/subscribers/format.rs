//! The compiled map's layout, shared by the writer ([`super::compile`]) and the reader
//! ([`super::map`]). All integers are little-endian; nothing is aligned, since the reader
//! decodes with `from_le_bytes` instead of casting the mapped bytes.
//!
//! ```text
//! header     magic "KSSUBMAP", version u32, ids u32, strtab bytes u32,
//!            v4 ranges u32, v6 ranges u32, rows u32, index bits u32  (36 bytes)
//! id table   (ids + 1) u32 offsets into the string table
//! strtab     the profile ids, concatenated
//! v4 index   2^bits + 1 u32: for each /bits block b, how many v4 starts lie below it
//! v4 starts  u32 each, strictly increasing, the first 0
//! v4 values  u32 each: an id index, or u32::MAX for none
//! v6 starts  u128 each, strictly increasing, the first 0
//! v6 values  u32 each
//! ```
//!
//! The index narrows a v4 lookup to the ranges of one block before the binary search,
//! saving its first (cache-missing) steps. Its width grows with the map (one entry per
//! one or two ranges, 8 to 24 bits): 1 KiB for a small map, 64 MiB (about 13 bytes per
//! row) at 5M rows, where it halves the lookup time.

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"KSSUBMAP";

/// The layout version this build writes and reads.
pub const VERSION: u32 = 1;

/// Header size in bytes.
pub const HEADER: usize = 36;

/// Narrowest and widest v4 index, in address bits.
pub const INDEX_BITS: std::ops::RangeInclusive<u32> = 8..=24;

/// The index width for `v4` ranges: about one entry per one or two ranges.
pub fn index_bits(v4: usize) -> u32 {
    let log2 = usize::BITS - v4.leading_zeros();
    log2.clamp(*INDEX_BITS.start(), *INDEX_BITS.end())
}

/// Counts read from a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Profile ids.
    pub ids: u32,
    /// Bytes of the string table.
    pub strtab: u32,
    /// IPv4 ranges.
    pub v4: u32,
    /// IPv6 ranges.
    pub v6: u32,
    /// Source rows compiled in (after duplicates were dropped).
    pub rows: u32,
    /// Width of the v4 index in address bits ([`INDEX_BITS`]).
    pub index_bits: u32,
}

/// Byte offsets of each section, from the counts; `None` on overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    /// Id offsets.
    pub ids: usize,
    /// String table.
    pub strtab: usize,
    /// v4 /16 index.
    pub index: usize,
    /// v4 starts.
    pub v4_starts: usize,
    /// v4 values.
    pub v4_values: usize,
    /// v6 starts.
    pub v6_starts: usize,
    /// v6 values.
    pub v6_values: usize,
    /// Total file size.
    pub end: usize,
}

impl Counts {
    /// Where each section lies; `None` when the counts overflow the address space (a
    /// corrupt header).
    pub fn sections(&self) -> Option<Sections> {
        let n = |x: u32| usize::try_from(x).ok();
        let ids = HEADER;
        let strtab = ids.checked_add(n(self.ids)?.checked_add(1)?.checked_mul(4)?)?;
        let index = strtab.checked_add(n(self.strtab)?)?;
        if !INDEX_BITS.contains(&self.index_bits) {
            return None;
        }
        let v4_starts = index.checked_add(((1usize << self.index_bits) + 1) * 4)?;
        let v4_values = v4_starts.checked_add(n(self.v4)?.checked_mul(4)?)?;
        let v6_starts = v4_values.checked_add(n(self.v4)?.checked_mul(4)?)?;
        let v6_values = v6_starts.checked_add(n(self.v6)?.checked_mul(16)?)?;
        let end = v6_values.checked_add(n(self.v6)?.checked_mul(4)?)?;
        Some(Sections {
            ids,
            strtab,
            index,
            v4_starts,
            v4_values,
            v6_starts,
            v6_values,
            end,
        })
    }
}
