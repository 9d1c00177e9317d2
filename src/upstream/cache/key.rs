//! The cache key: a question (name lowercased, type, class) and the DO and CD bits, packed
//! in one buffer so that a lookup hashes one slice and compares with one `memcmp`. The UDP
//! fast path packs the same bytes without allocating ([`CacheKey::pack`]).

use std::fmt;

use hickory_proto::op::Query;
use hickory_proto::rr::{DNSClass, Name, RecordType};

/// What a cached answer is filed under: the question (name lowercased) and the flags that
/// change what upstream answers.
///
/// Packed in one buffer (flags, type, class, then the name's labels in lowercased wire form)
/// so that hashing it is one pass and comparing it one `memcmp`: the key is hashed and
/// compared on every lookup.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    packed: Box<[u8]>,
}

/// Bits of `packed[0]`.
const KEY_DO: u8 = 1;
const KEY_CD: u8 = 2;
/// Bytes before the name in `packed`.
const KEY_HEADER: usize = 5;

impl CacheKey {
    /// The key of `query` asked with the DNSSEC OK bit `dnssec_ok` (and CD clear; see
    /// [`CacheKey::with_checking_disabled`]). The name is lowercased; `example.com` and
    /// `example.com.` are the same key.
    pub fn new(query: &Query, dnssec_ok: bool) -> Self {
        let name = query.name();
        let mut packed = Vec::with_capacity(KEY_HEADER + name.len() + 1);
        packed.push(if dnssec_ok { KEY_DO } else { 0 });
        packed.extend_from_slice(&u16::from(query.query_type()).to_be_bytes());
        packed.extend_from_slice(&u16::from(query.query_class()).to_be_bytes());
        for label in name.iter() {
            // Labels are at most 63 bytes: the length fits.
            packed.push(label.len() as u8);
            packed.extend(label.iter().map(u8::to_ascii_lowercase));
        }
        CacheKey {
            packed: packed.into_boxed_slice(),
        }
    }

    /// The same key for a query with the Checking Disabled bit `cd`. A validating upstream
    /// answers CD=1 queries with data it would SERVFAIL for CD=0 ones (bogus DNSSEC), so the
    /// two must not share entries: set it from the client's header.
    #[must_use]
    pub fn with_checking_disabled(mut self, cd: bool) -> Self {
        if cd {
            self.packed[0] |= KEY_CD;
        } else {
            self.packed[0] &= !KEY_CD;
        }
        self
    }

    /// The lowercased, fully qualified name (rebuilt: for logs, not for the hot path).
    pub fn name(&self) -> Name {
        Name::from_labels(self.labels()).unwrap_or_default()
    }

    /// The query type.
    pub fn query_type(&self) -> RecordType {
        RecordType::from(u16::from_be_bytes([self.packed[1], self.packed[2]]))
    }

    /// The query class.
    pub fn query_class(&self) -> DNSClass {
        DNSClass::from(u16::from_be_bytes([self.packed[3], self.packed[4]]))
    }

    /// The DNSSEC OK bit.
    pub fn dnssec_ok(&self) -> bool {
        self.packed[0] & KEY_DO != 0
    }

    /// The Checking Disabled bit.
    pub fn checking_disabled(&self) -> bool {
        self.packed[0] & KEY_CD != 0
    }

    /// The name's labels, lowercased.
    fn labels(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &self.packed[KEY_HEADER..];
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let (label, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            Some(label)
        })
    }

    /// Longest packed key: the header and a 255-byte wire name.
    pub const MAX_PACKED: usize = KEY_HEADER + 255;

    /// The packed form of a key, written into `buf` without allocating, for
    /// [`ResponseCache::get_encoded`](super::ResponseCache::get_encoded): `labels` must already be lowercased (the UDP fast
    /// path's). `None` when the name does not fit.
    pub fn pack<'b, 'l>(
        buf: &'b mut [u8; Self::MAX_PACKED],
        dnssec_ok: bool,
        checking_disabled: bool,
        query_type: u16,
        query_class: u16,
        labels: impl Iterator<Item = &'l [u8]>,
    ) -> Option<&'b [u8]> {
        buf[0] = if dnssec_ok { KEY_DO } else { 0 } | if checking_disabled { KEY_CD } else { 0 };
        buf[1..3].copy_from_slice(&query_type.to_be_bytes());
        buf[3..5].copy_from_slice(&query_class.to_be_bytes());
        let mut at = KEY_HEADER;
        for label in labels {
            let end = at + 1 + label.len();
            *buf.get_mut(at)? = u8::try_from(label.len()).ok()?;
            buf.get_mut(at + 1..end)?.copy_from_slice(label);
            at = end;
        }
        buf.get(..at)
    }

    /// Whether `query` asks this key's question.
    pub(super) fn matches(&self, query: &Query) -> bool {
        CacheKey::new(query, false).packed[1..] == self.packed[1..]
    }
}

// Lookups by packed bytes ([`CacheKey::pack`]) hash the same as the key: the derived
// `Hash` of a struct with one `Box<[u8]>` field is the slice's hash.
impl std::borrow::Borrow<[u8]> for CacheKey {
    fn borrow(&self) -> &[u8] {
        &self.packed
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheKey")
            .field("name", &self.name())
            .field("query_type", &self.query_type())
            .field("query_class", &self.query_class())
            .field("dnssec_ok", &self.dnssec_ok())
            .field("checking_disabled", &self.checking_disabled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cached;
    use super::super::testing::*;
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn key_is_case_insensitive_on_the_name() {
        let lower = key("www.example.", RecordType::A);
        let mixed = key("WwW.ExAmPlE.", RecordType::A);
        assert_eq!(lower, mixed);
        assert_eq!(mixed.name().to_ascii(), "www.example.");
        assert_eq!(mixed.query_type(), RecordType::A);
        assert_eq!(mixed.query_class(), DNSClass::IN);
        assert!(format!("{mixed:?}").contains("www.example."));
        assert_eq!(
            CacheKey::new(&question(".", RecordType::NS), false).name(),
            Name::root()
        );
        let relative = CacheKey::new(&question("www.example", RecordType::A), false);
        assert_eq!(lower, relative);

        let cache = cache();
        assert!(cache.insert(mixed, &positive("www.example.", &[300])));
        assert_eq!(fresh_ttls(&cache, &lower), [300]);
    }

    #[tokio::test(start_paused = true)]
    async fn key_distinguishes_type_class_do_and_cd() {
        let q = question("www.example.", RecordType::A);
        let plain = CacheKey::new(&q, false);
        let with_do = CacheKey::new(&q, true);
        let with_cd = CacheKey::new(&q, false).with_checking_disabled(true);
        let aaaa = key("www.example.", RecordType::AAAA);
        let mut chaos = q.clone();
        chaos.set_query_class(DNSClass::CH);
        let chaos = CacheKey::new(&chaos, false);
        let all = [&plain, &with_do, &with_cd, &aaaa, &chaos];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(key("ab.c.", RecordType::A), key("a.bc.", RecordType::A));
        assert_eq!(with_cd.clone().with_checking_disabled(false), plain);
        assert!(with_do.dnssec_ok() && !plain.dnssec_ok());
        assert!(with_cd.checking_disabled() && !plain.checking_disabled());

        let cache = cache();
        assert!(cache.insert(with_do.clone(), &positive("www.example.", &[300])));
        assert!(matches!(cache.get(&with_do), Cached::Fresh { .. }));
        for other in [&plain, &with_cd, &aaaa, &chaos] {
            assert!(is_miss(&cache, other));
        }
    }
}
