//! A blocked Bloom filter over every FST key, so most misses never walk the FST.
//!
//! A miss is the common case (most queries are for allowed names), and walking the FST
//! for one costs a chain of dependent reads through an 18 MB structure: ~0.6 µs on a
//! 2M-name list. The filter holds two kinds of entries:
//!
//! - *keys*: every FST key (`com.example.` for a subtree rule, `com.example` for an exact
//!   one);
//! - *paths*: every label-boundary prefix of every key (`com.`, `com.example.`).
//!
//! A lookup walks the query's reversed labels: at each boundary, a prefix that is not a
//! path means no rule exists at or below it (stop: not listed); a prefix that is a key
//! means a rule may apply (walk the FST). For a typical miss (`www.google.com`) that is
//! two probes on the hot `com.` line and one cold probe on `com.google.`, and only real
//! hits and the ~2% false positives walk the FST.
//!
//! Layout: 64-byte blocks (one cache line); an entry sets 3 bits inside one block chosen
//! by its hash. Hashes are FNV-1a over the key bytes, computed incrementally along the
//! reversed key so every prefix's hash costs one pass; keys and paths use different
//! finalizer seeds (MurmurHash3's mixer, which also spreads FNV's weak low bits).

/// Bits per key: ~10 gives ~1-2% false positives with 3 bits in a 512-bit block.
const BITS_PER_KEY: usize = 10;
/// Bytes per block: one cache line.
pub const BLOCK: usize = 64;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a state, fed one byte at a time.
#[derive(Clone, Copy)]
pub struct KeyHash(u64);

impl Default for KeyHash {
    fn default() -> Self {
        KeyHash(FNV_OFFSET)
    }
}

impl KeyHash {
    /// Feeds one byte.
    #[inline]
    pub fn push(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }

    /// The hash of a whole key.
    pub fn of(key: &[u8]) -> u64 {
        let mut h = KeyHash::default();
        key.iter().for_each(|&b| h.push(b));
        h.finish()
    }

    /// The mixed hash of the bytes so far, as a key entry.
    #[inline]
    pub fn finish(self) -> u64 {
        mix(self.0)
    }

    /// The mixed hash of the bytes so far, as a path entry.
    #[inline]
    pub fn finish_path(self) -> u64 {
        mix(self.0 ^ PATH_SEED)
    }
}

/// Distinguishes path entries from key entries.
const PATH_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The entries (mixed hashes) for sorted, unique `keys`: each key, and each label-boundary
/// prefix not already shared with the previous key (sorted order puts every key with a
/// given prefix next to each other, so this is exact deduplication).
pub fn entries<'a>(keys: impl Iterator<Item = &'a [u8]>) -> Vec<u64> {
    let mut out = Vec::new();
    let mut prev: &[u8] = &[];
    for key in keys {
        let common = key.iter().zip(prev).take_while(|(a, b)| a == b).count();
        let mut h = KeyHash::default();
        for (i, &b) in key.iter().enumerate() {
            h.push(b);
            if b == b'.' && i >= common {
                out.push(h.finish_path());
            }
        }
        out.push(h.finish());
        prev = key;
    }
    out
}

/// Block index and the three bit positions (0..512) of a mixed hash.
#[inline]
fn place(hash: u64, blocks: usize) -> (usize, [u32; 3]) {
    let block = ((u128::from(hash) * blocks as u128) >> 64) as usize;
    let bits = [
        (hash & 511) as u32,
        ((hash >> 9) & 511) as u32,
        ((hash >> 18) & 511) as u32,
    ];
    (block, bits)
}

/// Builds the filter bytes for `keys` hashes.
pub fn build(hashes: impl ExactSizeIterator<Item = u64>) -> Vec<u8> {
    let blocks = (hashes.len() * BITS_PER_KEY).div_ceil(BLOCK * 8).max(1);
    let mut bytes = vec![0u8; blocks * BLOCK];
    for h in hashes {
        let (block, bits) = place(h, blocks);
        for bit in bits {
            bytes[block * BLOCK + (bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    bytes
}

/// True when the key with mixed hash `hash` may be in the filter `bytes`.
#[inline]
pub fn may_contain(bytes: &[u8], hash: u64) -> bool {
    let blocks = bytes.len() / BLOCK;
    if blocks == 0 {
        return true;
    }
    let (block, bits) = place(hash, blocks);
    let b = &bytes[block * BLOCK..(block + 1) * BLOCK];
    bits.iter()
        .all(|&bit| b[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
}

/// True when some key that could decide a lookup of `key` (a reversed name without the
/// scope dot) may exist: a subtree key at a label boundary, or either key of the full
/// name. False means "not listed", for certain.
pub fn any_candidate(bytes: &[u8], key: &[u8]) -> bool {
    let mut h = KeyHash::default();
    for &b in key {
        h.push(b);
        if b == b'.' {
            if !may_contain(bytes, h.finish_path()) {
                return false; // no rule at or below this prefix
            }
            if may_contain(bytes, h.finish()) {
                return true; // a subtree rule may sit here
            }
        }
    }
    if may_contain(bytes, h.finish()) {
        return true;
    }
    h.push(b'.');
    may_contain(bytes, h.finish_path()) && may_contain(bytes, h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<String> = (0..50_000).map(|i| format!("com.site{i}.")).collect();
        let bytes = build(keys.iter().map(|k| KeyHash::of(k.as_bytes())));
        assert!(
            keys.iter()
                .all(|k| may_contain(&bytes, KeyHash::of(k.as_bytes())))
        );
        let fp = (0..50_000)
            .filter(|i| may_contain(&bytes, KeyHash::of(format!("org.other{i}.").as_bytes())))
            .count();
        assert!(fp < 1_500, "{fp} false positives in 50k");
    }

    fn filter(keys: &[&str]) -> Vec<u8> {
        build(entries(keys.iter().map(|k| k.as_bytes())).into_iter())
    }

    #[test]
    fn candidates_cover_boundaries_and_both_scopes() {
        let bytes = filter(&["com.example."]);
        assert!(any_candidate(&bytes, b"com.example.www"));
        assert!(any_candidate(&bytes, b"com.example.a.b"));
        assert!(any_candidate(&bytes, b"com.example"));
        let bytes = filter(&["com.example"]);
        assert!(any_candidate(&bytes, b"com.example"));
        let bytes = filter(&["com.example.ads.", "com.example.cdn", "org.x."]);
        assert!(any_candidate(&bytes, b"com.example.ads"));
        assert!(any_candidate(&bytes, b"com.example.ads.www"));
        assert!(any_candidate(&bytes, b"com.example.cdn"));
        assert!(any_candidate(&bytes, b"org.x.y"));
    }

    #[test]
    fn misses_stop_at_the_first_absent_path() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("com.site{i}.")).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        let bytes = build(entries(sorted.iter().map(|k| k.as_bytes())).into_iter());
        for k in &keys {
            let name = format!("{k}www");
            assert!(any_candidate(&bytes, name.as_bytes()), "{name}");
        }
        let fp = (0..20_000)
            .filter(|i| any_candidate(&bytes, format!("com.other{i}.www").as_bytes()))
            .count();
        assert!(fp < 800, "{fp} false positives in 20k");
    }
}
