//! [`PublishedLists`]: the published names and their journal, as the publishers read them.
//!
//! Names are stored normalized ([`crate::lists::normalize::normalize`]: lower case,
//! punycode, no trailing dot). Publishing a name blocks (or, on the allowlist, allows) the
//! name and every name below it, as the block lists do.
//!
//! Serials: every decision or revert that changes a list is one change with its own serial,
//! taken from one counter shared by all lists, so serials only grow, survive restarts, and
//! a list's serial is the serial of the last change that touched it (lists nobody touched
//! keep theirs, and their secondaries have nothing to transfer).

/// The list that accepted "blocked by mistake" reports go to: published as allow entries
/// (`rpz-passthru.` in RPZ; an `[[lists.allow]]` source on the edges).
pub const ALLOW_LIST: &str = "allow";

/// One change to one published list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Its serial (> the serial before it; every change has its own).
    pub serial: u32,
    /// The list it changed: a category, or [`ALLOW_LIST`].
    pub list: String,
    /// The normalized name.
    pub name: String,
    /// `true`: the name was added; `false`: it was removed (a revert).
    pub added: bool,
}

/// Why the published lists could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No such list.
    #[error("no published list named `{0}`")]
    UnknownList(String),
    /// The store failed (named in the message).
    #[error("published lists unavailable: {0}")]
    Store(String),
}

/// What the publishers (the HTTP feed and the RPZ primary) read.
///
/// Calls may block (the store is SQLite): call them from `spawn_blocking`.
pub trait PublishedLists: Send + Sync + 'static {
    /// Every list that may be published, with its serial (the serial of the last change to
    /// it; lists that never changed have serial 1 and no names).
    fn lists(&self) -> Result<Vec<(String, u32)>, PublishError>;

    /// The list's names (sorted) at its current serial, and that serial.
    fn snapshot(&self, list: &str) -> Result<(u32, Vec<String>), PublishError>;

    /// The list's changes with serial in `(from, current]`, oldest first, or `None` when
    /// the journal no longer reaches back to `from` (the caller then sends the whole list).
    /// `from` equal to the current serial gives `Some(vec![])`.
    fn changes_since(&self, list: &str, from: u32) -> Result<Option<Vec<Change>>, PublishError>;

    /// Wakes on every change: the receiver's value is the newest serial of any list.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u32>;
}
