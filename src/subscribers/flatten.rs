//! Longest-prefix match turned into one sorted array: overlapping prefixes are flattened
//! into non-overlapping ranges where the most specific prefix wins, so a lookup is one
//! search for the last range start at or below the address.
//!
//! Prefixes are either nested or disjoint, so a sweep over them sorted by start (parents
//! before their children) with a stack of the enclosing prefixes gives every point where
//! the answer changes: where a prefix starts, and just past where one ends (the answer
//! falls back to the enclosing prefix, or to none).

/// No profile: the value of the gaps between subscriber lines.
pub const NONE: u32 = u32::MAX;

/// One family's flattened table: `starts[i]..starts[i+1]` maps to `values[i]`.
/// `starts[0]` is always 0 (so every address has a range), and neighbours differ in value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ranges {
    /// Range starts, strictly increasing.
    pub starts: Vec<u128>,
    /// Profile index of each range, or [`NONE`].
    pub values: Vec<u32>,
}

/// A prefix as an inclusive interval of a `bits`-wide family.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// First address.
    pub first: u128,
    /// Prefix length.
    pub len: u8,
    /// Profile index.
    pub value: u32,
}

/// The last address of `e` in a `bits`-wide family.
fn last(e: &Entry, bits: u8) -> u128 {
    let host = u32::from(bits - e.len);
    if host == 128 {
        u128::MAX
    } else {
        e.first | ((1u128 << host) - 1)
    }
}

/// Flattens `entries` of a `bits`-wide family (32 or 128). The same prefix given twice
/// keeps the later value (stable sort, last wins), like a file edited by appending.
/// Returns the table and how many duplicate prefixes were dropped.
pub fn flatten(mut entries: Vec<Entry>, bits: u8) -> (Ranges, usize) {
    entries.sort_by_key(|e| (e.first, e.len));
    // Keep the last of each run of equal prefixes.
    let before = entries.len();
    let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        match kept.last_mut() {
            Some(k) if k.first == e.first && k.len == e.len => *k = e,
            _ => kept.push(e),
        }
    }
    let duplicates = before - kept.len();
    let max = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };

    let mut out = Ranges {
        starts: vec![0],
        values: vec![NONE],
    };
    let mut stack: Vec<(u128, u32)> = Vec::new(); // (last address, value) of open prefixes
    for e in &kept {
        close_until(&mut out, &mut stack, Some(e.first), max);
        emit(&mut out, e.first, e.value);
        stack.push((last(e, bits), e.value));
    }
    close_until(&mut out, &mut stack, None, max);
    (out, duplicates)
}

/// Pops the open prefixes that end before `next` (all of them for `None`), emitting the
/// enclosing prefix's value just past each end.
fn close_until(out: &mut Ranges, stack: &mut Vec<(u128, u32)>, next: Option<u128>, max: u128) {
    while let Some(&(end, _)) = stack.last() {
        if next.is_some_and(|n| n <= end) {
            break;
        }
        stack.pop();
        if end < max {
            let parent = stack.last().map_or(NONE, |&(_, v)| v);
            emit(out, end + 1, parent);
        }
    }
}

/// Appends a boundary, replacing one at the same point and merging equal neighbours.
fn emit(out: &mut Ranges, at: u128, value: u32) {
    let n = out.starts.len();
    if out.starts[n - 1] == at {
        out.values[n - 1] = value;
        if n >= 2 && out.values[n - 2] == value {
            out.starts.pop();
            out.values.pop();
        }
        return;
    }
    if out.values[n - 1] != value {
        out.starts.push(at);
        out.values.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], len: u8, value: u32) -> Entry {
        Entry {
            first: u128::from(u32::from_be_bytes(a)),
            len,
            value,
        }
    }

    fn pairs(r: &Ranges) -> Vec<(u128, u32)> {
        r.starts
            .iter()
            .copied()
            .zip(r.values.iter().copied())
            .collect()
    }

    #[test]
    fn nested_prefixes_most_specific_wins() {
        // 10.0.0.0/8 → 1, with 10.1.0.0/16 → 2 inside, with 10.1.2.3/32 → 3 inside that.
        let (r, dups) = flatten(
            vec![
                v4([10, 1, 2, 3], 32, 3),
                v4([10, 0, 0, 0], 8, 1),
                v4([10, 1, 0, 0], 16, 2),
            ],
            32,
        );
        assert_eq!(dups, 0);
        let ip = |a: [u8; 4]| u128::from(u32::from_be_bytes(a));
        assert_eq!(
            pairs(&r),
            [
                (0, NONE),
                (ip([10, 0, 0, 0]), 1),
                (ip([10, 1, 0, 0]), 2),
                (ip([10, 1, 2, 3]), 3),
                (ip([10, 1, 2, 4]), 2),
                (ip([10, 2, 0, 0]), 1),
                (ip([11, 0, 0, 0]), NONE),
            ]
        );
    }

    #[test]
    fn adjacent_equal_values_merge_and_duplicates_keep_the_last() {
        let (r, dups) = flatten(
            vec![
                v4([10, 0, 0, 0], 32, 1),
                v4([10, 0, 0, 1], 32, 1),
                v4([10, 0, 0, 2], 32, 5),
                v4([10, 0, 0, 2], 32, 2),
            ],
            32,
        );
        assert_eq!(dups, 1);
        let base = u128::from(u32::from_be_bytes([10, 0, 0, 0]));
        assert_eq!(
            pairs(&r),
            [(0, NONE), (base, 1), (base + 2, 2), (base + 3, NONE)]
        );
    }

    #[test]
    fn whole_space_and_top_of_space() {
        let (r, _) = flatten(
            vec![v4([0, 0, 0, 0], 0, 7), v4([255, 255, 255, 255], 32, 8)],
            32,
        );
        assert_eq!(pairs(&r), [(0, 7), (u128::from(u32::MAX), 8)]);
        let (r, _) = flatten(
            vec![Entry {
                first: u128::MAX,
                len: 128,
                value: 1,
            }],
            128,
        );
        assert_eq!(pairs(&r), [(0, NONE), (u128::MAX, 1)]);
        let (r, _) = flatten(
            vec![Entry {
                first: 0,
                len: 0,
                value: 4,
            }],
            128,
        );
        assert_eq!(pairs(&r), [(0, 4)]);
    }

    #[test]
    fn v6_nested() {
        let p = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
        let (r, _) = flatten(
            vec![
                Entry {
                    first: p("2001:db8::"),
                    len: 32,
                    value: 1,
                },
                Entry {
                    first: p("2001:db8:1::"),
                    len: 48,
                    value: 2,
                },
            ],
            128,
        );
        assert_eq!(
            pairs(&r),
            [
                (0, NONE),
                (p("2001:db8::"), 1),
                (p("2001:db8:1::"), 2),
                (p("2001:db8:2::"), 1),
                (p("2001:db9::"), NONE),
            ]
        );
    }
}
