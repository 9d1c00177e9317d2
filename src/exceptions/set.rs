//! The exceptions in force, grouped by profile, as the query path reads them.

use std::collections::HashMap;

use jiff::Timestamp;

/// What an exception lets through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A catalog service, by id (`youtube`).
    Service(String),
    /// A name and the names under it (`example.org`).
    Name(String),
    /// Everything the profile blocks, mandatory categories aside.
    Pause,
}

/// One temporary exception of one profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    /// Its id (`e12`), for `DELETE`.
    pub id: String,
    /// The profile it belongs to (`p3`, `config:kids`).
    pub profile: String,
    /// What it lets through.
    pub target: Target,
    /// When it lapses (UTC): it is in force strictly before this instant.
    pub until: Timestamp,
}

impl Exception {
    /// True while in force at `now`.
    pub fn live_at(&self, now: Timestamp) -> bool {
        now < self.until
    }
}

/// Every exception, lapsed ones included until the store prunes them (the query path
/// skips them by the clock, so none outlives its expiry by a second).
#[derive(Clone, Debug, Default)]
pub struct ExceptionSet {
    by_profile: HashMap<String, Vec<Exception>>,
}

impl ExceptionSet {
    /// The set of `list`.
    pub fn new(list: &[Exception]) -> ExceptionSet {
        let mut by_profile: HashMap<String, Vec<Exception>> = HashMap::new();
        for e in list {
            by_profile
                .entry(e.profile.clone())
                .or_default()
                .push(e.clone());
        }
        ExceptionSet { by_profile }
    }

    /// True when there are none at all: the query path's shortcut.
    pub fn is_empty(&self) -> bool {
        self.by_profile.is_empty()
    }

    /// `profile`'s exceptions in force at `now`.
    pub fn live<'a>(
        &'a self,
        profile: &str,
        now: Timestamp,
    ) -> impl Iterator<Item = &'a Exception> + 'a {
        self.by_profile
            .get(profile)
            .into_iter()
            .flatten()
            .filter(move |e| e.live_at(now))
    }

    /// True when `profile` is paused at `now`.
    pub fn paused(&self, profile: &str, now: Timestamp) -> bool {
        self.live(profile, now).any(|e| e.target == Target::Pause)
    }

    /// True when an exception of `profile` in force at `now` names `labels` (a name's
    /// labels, leftmost first, any case) or a name above it.
    pub fn covers_name<'a>(
        &self,
        profile: &str,
        now: Timestamp,
        labels: impl Iterator<Item = &'a [u8]>,
    ) -> bool {
        let mut names = self.live(profile, now).filter_map(|e| match &e.target {
            Target::Name(n) => Some(n.as_str()),
            _ => None,
        });
        let Some(first) = names.next() else {
            return false;
        };
        let asked: Vec<String> = labels
            .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
            .collect();
        let asked = asked.join(".");
        let covers = |n: &str| {
            asked == n
                || (asked.len() > n.len()
                    && asked.ends_with(n)
                    && asked.as_bytes()[asked.len() - n.len() - 1] == b'.')
        };
        covers(first) || names.any(covers)
    }

    /// The services `profile` may reach at `now` by an exception.
    pub fn services<'a>(
        &'a self,
        profile: &str,
        now: Timestamp,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.live(profile, now).filter_map(|e| match &e.target {
            Target::Service(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// A fingerprint of `profile`'s exceptions in force at `now` (0 for none): cached
    /// answers checked under one set of exceptions are told apart from another's by it.
    pub fn key(&self, profile: &str, now: Timestamp) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut live = self.live(profile, now).peekable();
        if live.peek().is_none() {
            return 0;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for e in live {
            e.id.hash(&mut h);
        }
        h.finish() | 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn set() -> ExceptionSet {
        let e = |id: &str, target, until: &str| Exception {
            id: id.into(),
            profile: "p1".into(),
            target,
            until: ts(until),
        };
        ExceptionSet::new(&[
            e(
                "e1",
                Target::Name("example.org".into()),
                "2027-01-01T10:00:00Z",
            ),
            e(
                "e2",
                Target::Service("youtube".into()),
                "2027-01-01T11:00:00Z",
            ),
            e("e3", Target::Pause, "2027-01-01T09:00:00Z"),
        ])
    }

    fn labels(name: &str) -> impl Iterator<Item = &[u8]> {
        name.split('.').map(str::as_bytes)
    }

    #[test]
    fn exceptions_lapse_when_the_clock_passes_them() {
        let s = set();
        let before = ts("2027-01-01T08:59:59Z");
        assert!(s.paused("p1", before));
        assert!(
            !s.paused("p1", ts("2027-01-01T09:00:00Z")),
            "lapsed at expiry"
        );
        assert!(s.covers_name("p1", before, labels("www.Example.org")));
        assert!(s.covers_name("p1", before, labels("example.org")));
        assert!(!s.covers_name("p1", before, labels("badexample.org")));
        assert!(
            !s.covers_name("p2", before, labels("example.org")),
            "other profile"
        );
        let later = ts("2027-01-01T10:00:00Z");
        assert!(!s.covers_name("p1", later, labels("example.org")));
        assert_eq!(s.services("p1", later).collect::<Vec<_>>(), ["youtube"]);
        assert_eq!(s.services("p1", ts("2027-01-01T11:00:00Z")).count(), 0);
        assert_ne!(s.key("p1", before), s.key("p1", later));
        assert_eq!(s.key("p1", ts("2027-01-02T00:00:00Z")), 0);
    }
}
