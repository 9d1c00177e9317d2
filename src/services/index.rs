//! Which services cover a name: every catalog domain keyed by its labels from the right
//! (`tiktok.com` → `com.tiktok`), so one walk over a query's labels, rightmost first,
//! finds each listed suffix with one hash lookup per label.

use std::collections::HashMap;

use super::catalog::Catalog;

/// Longest name we build keys for (a DNS name is at most 255 octets on the wire).
const MAX_KEY: usize = 256;

/// A set of services (positions in [`Catalog::services`]): what one group blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSet {
    bits: Vec<u64>,
}

impl ServiceSet {
    /// The set of these positions.
    pub fn of(positions: &[usize]) -> ServiceSet {
        let mut s = ServiceSet::default();
        for &p in positions {
            if s.bits.len() <= p / 64 {
                s.bits.resize(p / 64 + 1, 0);
            }
            s.bits[p / 64] |= 1 << (p % 64);
        }
        s
    }

    /// True when `position` is in the set.
    pub fn contains(&self, position: usize) -> bool {
        self.bits
            .get(position / 64)
            .is_some_and(|w| w & (1 << (position % 64)) != 0)
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// Adds every service of `other`.
    pub fn insert_all(&mut self, other: &ServiceSet) {
        if self.bits.len() < other.bits.len() {
            self.bits.resize(other.bits.len(), 0);
        }
        for (w, o) in self.bits.iter_mut().zip(&other.bits) {
            *w |= o;
        }
    }

    /// Removes every service of `other`.
    pub fn remove_all(&mut self, other: &ServiceSet) {
        for (w, o) in self.bits.iter_mut().zip(&other.bits) {
            *w &= !o;
        }
    }
}

/// A service that covers a name: which one, and the listed domain that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceMatch {
    /// Position in [`Catalog::services`].
    pub position: usize,
    /// The catalog domain that matched (a suffix of the name, or the name itself).
    pub domain: String,
}

/// Catalog domains → the services listing them.
#[derive(Clone, Debug, Default)]
pub struct ServiceIndex {
    /// Key: labels right to left, joined by `.` (`com.tiktok`).
    by_key: HashMap<Box<[u8]>, Vec<usize>>,
    /// Most labels of any catalog domain: the walk stops there.
    depth: usize,
}

impl ServiceIndex {
    /// The index of every domain of `catalog`.
    pub fn new(catalog: &Catalog) -> ServiceIndex {
        let mut by_key: HashMap<Box<[u8]>, Vec<usize>> = HashMap::new();
        let mut depth = 0;
        for (p, s) in catalog.services().iter().enumerate() {
            for d in &s.domains {
                let labels: Vec<&str> = d.name.split('.').rev().collect();
                depth = depth.max(labels.len());
                let users = by_key
                    .entry(labels.join(".").into_bytes().into_boxed_slice())
                    .or_default();
                if !users.contains(&p) {
                    users.push(p);
                }
            }
        }
        ServiceIndex { by_key, depth }
    }

    /// The most specific catalog domain covering `labels` (a name's labels, leftmost first,
    /// any case) that lists a service of `set`, if any.
    pub fn lookup<'a, I>(&self, labels: I, set: &ServiceSet) -> Option<ServiceMatch>
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        if set.is_empty() {
            return None;
        }
        let mut key = [0u8; MAX_KEY];
        let mut len = 0;
        let mut found: Option<(usize, usize)> = None;
        for (n, label) in labels.rev().take(self.depth).enumerate() {
            let add = label.len() + usize::from(n > 0);
            if label.is_empty() || len + add > MAX_KEY {
                break;
            }
            if n > 0 {
                key[len] = b'.';
                len += 1;
            }
            for (i, b) in label.iter().enumerate() {
                key[len + i] = b.to_ascii_lowercase();
            }
            len += label.len();
            if let Some(users) = self.by_key.get(&key[..len])
                && let Some(&p) = users.iter().find(|&&p| set.contains(p))
            {
                found = Some((p, len));
            }
        }
        let (position, len) = found?;
        // The key back in name order: `com.tiktok` → `tiktok.com`.
        let text = String::from_utf8_lossy(&key[..len]);
        let mut parts: Vec<&str> = text.split('.').collect();
        parts.reverse();
        Some(ServiceMatch {
            position,
            domain: parts.join("."),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::catalog::{Service, ServiceDomain};

    fn catalog() -> Catalog {
        let svc = |id: &str, domains: &[&str]| Service {
            id: id.into(),
            name_en: id.into(),
            name_vi: id.into(),
            group: "video".into(),
            domains: domains
                .iter()
                .map(|d| ServiceDomain {
                    name: (*d).into(),
                    source: None,
                    verified: Some("2026-11-29".into()),
                    shared_with: Vec::new(),
                })
                .collect(),
        };
        Catalog::from_services(vec![
            svc("tiktok", &["tiktok.com", "tiktokcdn.com"]),
            svc("music", &["music.tiktok.com"]),
        ])
    }

    fn labels(name: &str) -> impl DoubleEndedIterator<Item = &[u8]> {
        name.split('.').map(str::as_bytes)
    }

    #[test]
    fn a_domain_covers_itself_and_its_subdomains_only() {
        let c = catalog();
        let idx = ServiceIndex::new(&c);
        let set = ServiceSet::of(&[0]);
        for name in [
            "tiktok.com",
            "www.tiktok.com",
            "A.B.TikTok.COM",
            "x.tiktokcdn.com",
        ] {
            let m = idx.lookup(labels(name), &set).unwrap();
            assert_eq!(m.position, 0, "{name}");
        }
        for name in ["nottiktok.com", "tiktok.com.evil", "com", "tiktok.co"] {
            assert_eq!(idx.lookup(labels(name), &set), None, "{name}");
        }
        assert_eq!(
            idx.lookup(labels("tiktok.com"), &ServiceSet::default()),
            None
        );
    }

    #[test]
    fn the_most_specific_blocked_domain_wins() {
        let c = catalog();
        let idx = ServiceIndex::new(&c);
        let both = ServiceSet::of(&[0, 1]);
        let m = idx.lookup(labels("a.music.tiktok.com"), &both).unwrap();
        assert_eq!((m.position, m.domain.as_str()), (1, "music.tiktok.com"));
        let m = idx.lookup(labels("a.music.tiktok.com"), &ServiceSet::of(&[0]));
        assert_eq!(m.unwrap().domain, "tiktok.com");
        let m = idx.lookup(labels("a.music.tiktok.com"), &ServiceSet::of(&[1]));
        assert_eq!(m.unwrap().position, 1);
        assert_eq!(
            idx.lookup(labels("tiktok.com"), &ServiceSet::of(&[1])),
            None
        );
    }

    #[test]
    fn sets() {
        let s = ServiceSet::of(&[3, 70]);
        assert!(s.contains(3) && s.contains(70) && !s.contains(4) && !s.contains(700));
        assert!(!s.is_empty());
        assert!(ServiceSet::of(&[]).is_empty());
    }
}
