//! The compiled map's layout, shared by the writer ([`super::compile`]) and the reader
//! ([`super::map`]). All integers are little-endian; nothing is aligned, since the reader
//! decodes with `from_le_bytes` instead of casting the mapped bytes.
//!
//! ```text
//! header     magic "KSSUBMAP", version u32, ids u32, strtab bytes u32,
//!            v4 ranges u32, v6 ranges u32, rows u32               (32 bytes)
//! id table   (ids + 1) u32 offsets into the string table
//! strtab     the profile ids, concatenated
//! v4 index   65537 u32: for each /16 b, how many v4 starts lie below b << 16
//! v4 starts  u32 each, strictly increasing, the first 0
//! v4 values  u32 each: an id index, or u32::MAX for none
//! v6 starts  u128 each, strictly increasing, the first 0
//! v6 values  u32 each
//! ```
//!
//! The /16 index narrows a v4 lookup to the ranges of one /16 before the binary search:
//! 256 KiB whatever the size, and it saves the ~16 first (cache-missing) search steps.

/// The file's first 8 bytes.
pub const MAGIC: &[u8; 8] = b"KSSUBMAP";

/// The layout version this build writes and reads.
pub const VERSION: u32 = 1;

/// Header size in bytes.
pub const HEADER: usize = 32;

/// Entries of the v4 /16 index.
pub const INDEX: usize = (1 << 16) + 1;

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
        let v4_starts = index.checked_add(INDEX * 4)?;
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
