//! The FST key layout: a name's labels reversed, so that a subdomain rule is a prefix.
//!
//! `www.example.com` becomes `com.example.www`. A rule covering a name and its subdomains
//! is stored with a trailing dot (`com.example.`), an exact-only rule without it
//! (`com.example`). The trailing dot keeps `com.example.` from matching `com.examples`,
//! and lets one walk over the query's key find every rule that applies to it.
//!
//! The value packs the block categories (bits 0..32) and two flags.

use crate::lists::rule::{Action, Scope};

/// Longest key: a 253-octet name reversed, plus the trailing dot.
pub const MAX_KEY: usize = 256;

/// Value bit: at least one block rule sits on this key.
pub const BLOCK: u64 = 1 << 32;
/// Value bit: at least one allow rule sits on this key.
pub const ALLOW: u64 = 1 << 33;
/// The bits a valid value may have; anything else means a foreign or corrupt file.
pub const VALID_BITS: u64 = BLOCK | ALLOW | 0xffff_ffff;

/// Appends the key for `name` (normalized, no trailing dot) under `scope` to `out`.
pub fn push_key(name: &str, scope: Scope, out: &mut Vec<u8>) {
    for (i, label) in name.rsplit('.').enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(label.as_bytes());
    }
    if scope == Scope::Subtree {
        out.push(b'.');
    }
}

/// The value stored for one rule of `action` in the categories `mask`.
pub fn value(action: Action, categories: u32) -> u64 {
    match action {
        Action::Block => BLOCK | u64::from(categories),
        Action::Allow => ALLOW,
    }
}

/// Writes the reversed key of `name` (no trailing dot, no scope dot) into `buf`,
/// returning its length, or `None` when the name cannot fit a valid key.
pub fn reverse_into(name: &[u8], buf: &mut [u8; MAX_KEY]) -> Option<usize> {
    if name.len() >= MAX_KEY {
        return None;
    }
    let mut at = 0;
    for (i, label) in name.rsplit(|&b| b == b'.').enumerate() {
        if i > 0 {
            buf[at] = b'.';
            at += 1;
        }
        buf[at..at + label.len()].copy_from_slice(label);
        at += label.len();
    }
    Some(at)
}

/// Turns a reversed key prefix (`com.example`) back into the name it stands for.
pub fn unreverse(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, label) in key.rsplit(|&b| b == b'.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&String::from_utf8_lossy(label));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reverse_labels_and_mark_scope() {
        let mut k = Vec::new();
        push_key("www.example.com", Scope::Subtree, &mut k);
        assert_eq!(k, b"com.example.www.");
        k.clear();
        push_key("example.com", Scope::Exact, &mut k);
        assert_eq!(k, b"com.example");
    }

    #[test]
    fn reverse_round_trips() {
        let mut buf = [0u8; MAX_KEY];
        let n = reverse_into(b"a.b.c", &mut buf).unwrap();
        assert_eq!(&buf[..n], b"c.b.a");
        assert_eq!(unreverse(&buf[..n]), "a.b.c");
        assert!(reverse_into(&[b'a'; 300], &mut buf).is_none());
    }
}
