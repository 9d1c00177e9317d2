//! Source rows → the compiled map's bytes ([`super::format`]). The feed writes them
//! (`crate::feed::subscribers`, through a temporary file and a rename).

use std::collections::HashMap;

use ipnet::IpNet;

use super::flatten::{Entry, NONE, Ranges, flatten};
use super::format::{Counts, MAGIC, VERSION, index_bits};
use super::parse::Row;

/// Why rows could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// More rows, ranges or profile ids than the format's 32-bit counts hold.
    #[error("too many {what} for the subscriber map format ({count}); split the source")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
        /// How many there were.
        count: usize,
    },
}

/// A compiled map in memory, before it is written.
#[derive(Debug)]
pub struct Compiled {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Distinct rows compiled in.
    pub rows: usize,
    /// Rows that repeated an earlier prefix (the later one was kept).
    pub duplicates: usize,
}

/// Compiles `rows`: profile ids interned in first-seen order, each family flattened.
///
/// # Errors
/// [`CompileError::TooLarge`] past the format's 32-bit counts.
pub fn compile(rows: &[Row]) -> Result<Compiled, CompileError> {
    let mut ids: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for row in rows {
        let next = ids.len();
        let value = *index.entry(row.profile.as_str()).or_insert_with(|| {
            ids.push(row.profile.as_str());
            next as u32
        });
        match row.net {
            IpNet::V4(n) => v4.push(Entry {
                first: u128::from(u32::from(n.network())),
                len: n.prefix_len(),
                value,
            }),
            IpNet::V6(n) => v6.push(Entry {
                first: u128::from(n.network()),
                len: n.prefix_len(),
                value,
            }),
        }
    }
    let total = v4.len() + v6.len();
    let (r4, d4) = flatten(v4, 32);
    let (r6, d6) = flatten(v6, 128);
    let duplicates = d4 + d6;
    let rows = total - duplicates;
    let count = |what: &'static str, n: usize| {
        u32::try_from(n).map_err(|_| CompileError::TooLarge { what, count: n })
    };
    if ids.len() >= NONE as usize {
        // NONE marks "no profile", so it cannot be an id's index.
        return Err(CompileError::TooLarge {
            what: "profile ids",
            count: ids.len(),
        });
    }
    let strtab_len: usize = ids.iter().map(|s| s.len()).sum();
    let counts = Counts {
        ids: count("profile ids", ids.len())?,
        strtab: count("profile id bytes", strtab_len)?,
        v4: count("IPv4 ranges", r4.starts.len())?,
        v6: count("IPv6 ranges", r6.starts.len())?,
        rows: count("rows", rows)?,
        index_bits: index_bits(r4.starts.len()),
    };
    let sections = counts.sections().ok_or(CompileError::TooLarge {
        what: "bytes",
        count: usize::MAX,
    })?;
    let mut out = Vec::with_capacity(sections.end);
    out.extend_from_slice(MAGIC);
    for n in [
        VERSION,
        counts.ids,
        counts.strtab,
        counts.v4,
        counts.v6,
        counts.rows,
        counts.index_bits,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    let mut at = 0u32;
    out.extend_from_slice(&at.to_le_bytes());
    for id in &ids {
        at += id.len() as u32; // fits: strtab_len fits u32, checked above
        out.extend_from_slice(&at.to_le_bytes());
    }
    for id in &ids {
        out.extend_from_slice(id.as_bytes());
    }
    write_v4(&mut out, &r4, counts.index_bits);
    for s in &r6.starts {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for v in &r6.values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    debug_assert_eq!(out.len(), sections.end);
    Ok(Compiled {
        bytes: out,
        rows,
        duplicates,
    })
}

/// The v4 index (`bits` wide), starts and values.
fn write_v4(out: &mut Vec<u8>, r: &Ranges, bits: u32) {
    let mut i = 0usize;
    for b in 0..=(1u128 << bits) {
        let bound = b << (32 - bits);
        while i < r.starts.len() && r.starts[i] < bound {
            i += 1;
        }
        out.extend_from_slice(&(i as u32).to_le_bytes());
    }
    for s in &r.starts {
        // v4 starts are below 2^32 by construction (flattened in a 32-bit family).
        out.extend_from_slice(&(*s as u32).to_le_bytes());
    }
    for v in &r.values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}
