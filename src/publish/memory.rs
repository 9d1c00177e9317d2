//! [`MemoryLists`]: published lists held in memory, with a bounded journal.
//!
//! The store a central runs on is SQLite (it survives restarts); this one is for tests,
//! benchmarks and tools that publish a set of names they hold themselves. It keeps the
//! same rules as the trait asks: one serial counter for all lists, one change per serial,
//! names normalized, and a journal per list that forgets its oldest changes past
//! `journal_keep` (an IXFR from before them then gets the whole zone).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::watch;

use crate::feed::xfr::{serial_gt, serial_lt};
use crate::lists::normalize::normalize;
use crate::publish::lists::{Change, PublishError, PublishedLists};

/// One list: its names, its serial and the journal that leads to it.
#[derive(Debug)]
struct List {
    names: BTreeSet<String>,
    serial: u32,
    journal: VecDeque<Change>,
    /// The serial before the oldest change still in `journal`: `changes_since(from)` can
    /// answer for any `from` at or after it.
    journal_floor: u32,
}

#[derive(Debug)]
struct Inner {
    lists: BTreeMap<String, List>,
    /// The newest serial handed out (to any list).
    last_serial: u32,
}

/// Published lists in memory. Every [`MemoryLists::add`] or [`MemoryLists::remove`] that
/// changes a list is one change with the next serial.
#[derive(Debug)]
pub struct MemoryLists {
    inner: Mutex<Inner>,
    journal_keep: usize,
    changed: watch::Sender<u32>,
}

/// Why a name could not be published.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemoryError {
    /// No such list.
    #[error("no published list named `{0}`")]
    UnknownList(String),
    /// The name is not a domain name (an IP address, a name over 253 octets, ...).
    #[error("`{name}` cannot be published: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// Why (from the normalizer).
        reason: String,
    },
}

impl MemoryLists {
    /// Lists named `lists` (categories and, if wanted, [`crate::publish::ALLOW_LIST`]), each
    /// at serial 1 with no names, keeping at most `journal_keep` changes per list.
    pub fn new<S: AsRef<str>>(lists: &[S], journal_keep: usize) -> MemoryLists {
        let lists = lists
            .iter()
            .map(|l| {
                let list = List {
                    names: BTreeSet::new(),
                    serial: 1,
                    journal: VecDeque::new(),
                    journal_floor: 1,
                };
                (l.as_ref().to_owned(), list)
            })
            .collect();
        MemoryLists {
            inner: Mutex::new(Inner {
                lists,
                last_serial: 1,
            }),
            journal_keep,
            changed: watch::channel(1).0,
        }
    }

    /// Publishes `name` on `list`. `Ok(Some(serial))`: the change's serial; `Ok(None)`: the
    /// name was already there (no change, no serial).
    pub fn add(&self, list: &str, name: &str) -> Result<Option<u32>, MemoryError> {
        self.change(list, name, true)
    }

    /// Withdraws `name` from `list`, as [`MemoryLists::add`] does the other way.
    pub fn remove(&self, list: &str, name: &str) -> Result<Option<u32>, MemoryError> {
        self.change(list, name, false)
    }

    /// Replaces a list's names with `names` in one go, one change (and serial) per name
    /// added or removed; names that do not normalize are returned, and left out.
    pub fn replace<S: AsRef<str>>(
        &self,
        list: &str,
        names: &[S],
    ) -> Result<Vec<MemoryError>, MemoryError> {
        let mut bad = Vec::new();
        let mut wanted = BTreeSet::new();
        for n in names {
            match normalized(n.as_ref()) {
                Ok(n) => {
                    wanted.insert(n);
                }
                Err(e) => bad.push(e),
            }
        }
        let current = {
            let inner = self.lock();
            let l = inner
                .lists
                .get(list)
                .ok_or_else(|| MemoryError::UnknownList(list.to_owned()))?;
            l.names.clone()
        };
        for gone in current.difference(&wanted) {
            self.change(list, gone, false)?;
        }
        for new in wanted.difference(&current) {
            self.change(list, new, true)?;
        }
        Ok(bad)
    }

    /// Fills a list with `names` as one change (one serial), without journal entries: for
    /// loading a large list quickly (a benchmark's million names). Secondaries that had
    /// the list before get the whole zone.
    pub fn load<I, S>(&self, list: &str, names: I) -> Result<u32, MemoryError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut inner = self.lock();
        let serial = inner.last_serial.wrapping_add(1);
        let l = inner
            .lists
            .get_mut(list)
            .ok_or_else(|| MemoryError::UnknownList(list.to_owned()))?;
        for n in names {
            l.names.insert(normalized(n.as_ref())?);
        }
        l.serial = serial;
        l.journal.clear();
        l.journal_floor = serial;
        inner.last_serial = serial;
        drop(inner);
        self.changed.send_replace(serial);
        Ok(serial)
    }

    fn change(&self, list: &str, name: &str, added: bool) -> Result<Option<u32>, MemoryError> {
        let name = normalized(name)?;
        let mut inner = self.lock();
        let serial = inner.last_serial.wrapping_add(1);
        let l = inner
            .lists
            .get_mut(list)
            .ok_or_else(|| MemoryError::UnknownList(list.to_owned()))?;
        let changed = if added {
            l.names.insert(name.clone())
        } else {
            l.names.remove(&name)
        };
        if !changed {
            return Ok(None);
        }
        l.serial = serial;
        l.journal.push_back(Change {
            serial,
            list: list.to_owned(),
            name,
            added,
        });
        while l.journal.len() > self.journal_keep {
            if let Some(dropped) = l.journal.pop_front() {
                l.journal_floor = dropped.serial;
            }
        }
        if l.journal.is_empty() {
            l.journal_floor = serial;
        }
        inner.last_serial = serial;
        drop(inner);
        self.changed.send_replace(serial);
        Ok(Some(serial))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every change is applied
        // in one step after its checks): keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn normalized(name: &str) -> Result<String, MemoryError> {
    normalize(name)
        .map(|n| n.into_owned())
        .map_err(|reason| MemoryError::BadName {
            name: name.to_owned(),
            reason: reason.as_str().to_owned(),
        })
}

impl PublishedLists for MemoryLists {
    fn lists(&self) -> Result<Vec<(String, u32)>, PublishError> {
        let inner = self.lock();
        Ok(inner
            .lists
            .iter()
            .map(|(name, l)| (name.clone(), l.serial))
            .collect())
    }

    fn snapshot(&self, list: &str) -> Result<(u32, Vec<String>), PublishError> {
        let inner = self.lock();
        let l = inner
            .lists
            .get(list)
            .ok_or_else(|| PublishError::UnknownList(list.to_owned()))?;
        Ok((l.serial, l.names.iter().cloned().collect()))
    }

    fn changes_since(&self, list: &str, from: u32) -> Result<Option<Vec<Change>>, PublishError> {
        let inner = self.lock();
        let l = inner
            .lists
            .get(list)
            .ok_or_else(|| PublishError::UnknownList(list.to_owned()))?;
        if from == l.serial {
            return Ok(Some(Vec::new()));
        }
        // RFC 1982 order: `from` must lie in [journal_floor, serial).
        if !serial_gt(l.serial, from) || serial_lt(from, l.journal_floor) {
            return Ok(None);
        }
        Ok(Some(
            l.journal
                .iter()
                .filter(|c| serial_gt(c.serial, from))
                .cloned()
                .collect(),
        ))
    }

    fn subscribe(&self) -> watch::Receiver<u32> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_take_one_serial_each_and_the_journal_forgets_the_oldest() {
        let m = MemoryLists::new(&["gambling", "allow"], 2);
        assert_eq!(m.add("gambling", "Casino.Example.").unwrap(), Some(2));
        assert_eq!(m.add("gambling", "casino.example").unwrap(), None);
        assert_eq!(m.add("allow", "good.example").unwrap(), Some(3));
        assert_eq!(m.add("gambling", "bet.example").unwrap(), Some(4));
        assert_eq!(
            m.lists().unwrap(),
            vec![("allow".into(), 3), ("gambling".into(), 4)]
        );
        let (serial, names) = m.snapshot("gambling").unwrap();
        assert_eq!(serial, 4);
        assert_eq!(names, vec!["bet.example", "casino.example"]);
        let since = m.changes_since("gambling", 1).unwrap().unwrap();
        assert_eq!(
            since.iter().map(|c| c.serial).collect::<Vec<_>>(),
            vec![2, 4]
        );
        // 3 is not one of gambling's serials, but its state then was serial 2's.
        let since = m.changes_since("gambling", 3).unwrap().unwrap();
        assert_eq!(since.len(), 1);
        assert_eq!(since[0].name, "bet.example");
        assert_eq!(m.changes_since("gambling", 4).unwrap(), Some(vec![]));

        assert_eq!(m.remove("gambling", "casino.example").unwrap(), Some(5));
        // Journal keeps 2: the change to serial 2 is gone, so from 1 it no longer reaches.
        assert_eq!(m.changes_since("gambling", 1).unwrap(), None);
        assert_eq!(m.changes_since("gambling", 2).unwrap().unwrap().len(), 2);
        assert_eq!(m.changes_since("gambling", 77).unwrap(), None, "future");
        assert!(matches!(
            m.snapshot("nope"),
            Err(PublishError::UnknownList(_))
        ));
    }

    #[test]
    fn bad_names_are_refused_and_change_nothing() {
        let m = MemoryLists::new(&["adult"], 10);
        let rx = m.subscribe();
        assert!(matches!(
            m.add("adult", "192.0.2.1"),
            Err(MemoryError::BadName { .. })
        ));
        assert!(matches!(
            m.add("adult", &"a".repeat(300)),
            Err(MemoryError::BadName { .. })
        ));
        assert_eq!(
            m.add("nope", "x.example"),
            Err(MemoryError::UnknownList("nope".into()))
        );
        assert_eq!(m.lists().unwrap(), vec![("adult".into(), 1)]);
        assert!(!rx.has_changed().unwrap());
    }

    #[test]
    fn replace_and_load() {
        let m = MemoryLists::new(&["adult"], 100);
        let bad = m
            .replace("adult", &["a.example", "b.example", "10.0.0.1"])
            .unwrap();
        assert_eq!(bad.len(), 1);
        m.replace("adult", &["b.example", "c.example"]).unwrap();
        let (serial, names) = m.snapshot("adult").unwrap();
        assert_eq!(names, vec!["b.example", "c.example"]);
        assert_eq!(serial, 5);
        let changes = m.changes_since("adult", 1).unwrap().unwrap();
        let summary: Vec<_> = changes.iter().map(|c| (c.name.as_str(), c.added)).collect();
        assert_eq!(
            summary,
            vec![
                ("a.example", true),
                ("b.example", true),
                ("a.example", false),
                ("c.example", true)
            ]
        );
        let loaded = m.load("adult", ["d.example"]).unwrap();
        assert_eq!(loaded, 6);
        assert_eq!(m.changes_since("adult", 5).unwrap(), None);
        assert_eq!(m.changes_since("adult", 6).unwrap(), Some(vec![]));
    }
}
