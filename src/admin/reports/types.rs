//! The report store's inputs and outputs, shaped for the HTTP layer (serde).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ReportError;
#[cfg(doc)]
use super::{
    DEFAULT_LIST_LIMIT, MAX_CATEGORY_LEN, MAX_CONTACT_CHARS, MAX_LIST_LIMIT, MAX_NOTE_CHARS,
    MAX_NOTES, ReportStore,
};

/// A reviewer's verdict on a report. Serialized in lowercase (`"open"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not reviewed yet (every new report).
    Open,
    /// A reviewer agreed the name belongs in the category.
    Accepted,
    /// A reviewer disagreed.
    Rejected,
}

impl Status {
    /// The lowercase name, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Status::Open),
            "accepted" => Ok(Status::Accepted),
            "rejected" => Ok(Status::Rejected),
            _ => Err(ReportError::invalid(
                "status",
                format!("unknown status {s:?}; expected open, accepted or rejected"),
            )),
        }
    }
}

/// What a report says about its name.
///
/// Serialized in lowercase; a report without a kind is [`Kind::Harmful`], the only kind
/// there was before version 3 of the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// "This site is harmful": it should be blocked, in the report's category (required).
    #[default]
    Harmful,
    /// "This page was blocked by mistake": it should be allowed; the category, optional,
    /// is the one that blocked it.
    Mistake,
}

impl Kind {
    /// The lowercase name, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Harmful => "harmful",
            Kind::Mistake => "mistake",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = ReportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "harmful" => Ok(Kind::Harmful),
            "mistake" => Ok(Kind::Mistake),
            _ => Err(ReportError::invalid(
                "kind",
                format!("unknown kind {s:?}; expected harmful or mistake"),
            )),
        }
    }
}

/// A report as submitted by the public, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct NewReport {
    /// The host name, in any case, with or without a trailing dot, U-labels or A-labels.
    /// Surrounding whitespace is ignored. A URL is reduced to its host
    /// (`https://Bad.Example/x?y` is `bad.example`); IP addresses are rejected.
    pub name: String,
    /// Harmful (the default) or blocked by mistake.
    #[serde(default)]
    pub kind: Kind,
    /// The category: the one the reporter thinks a harmful site belongs to (required), or
    /// the one that blocked a mistake (optional, empty for none). 1 to
    /// [`MAX_CATEGORY_LEN`] printable ASCII characters, compared case-sensitively (as the
    /// configured categories are).
    #[serde(default)]
    pub category: String,
    /// Free text, at most [`MAX_NOTE_CHARS`] characters once cleaned: control characters
    /// (newlines and tabs included) become spaces, bidirectional formatting characters are
    /// removed, surrounding whitespace is trimmed; a note left empty counts as none.
    #[serde(default)]
    pub note: Option<String>,
    /// How to reach the reporter, if they typed it (cleaned like a note, at most
    /// [`MAX_CONTACT_CHARS`]). Kept only where the operator allows it
    /// (`[reports] allow_contact`); dropped before the store otherwise.
    #[serde(default)]
    pub contact: Option<String>,
}

/// A report an edge forwarded: the report and the idempotency key the edge gave it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct KeyedReport {
    /// Unique per report at its origin (1 to 64 of `A-Z a-z 0-9 - _`): a key seen before
    /// is a redelivery, counted once.
    pub key: String,
    /// The serial of the list the edge was serving when the report was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    /// The report.
    #[serde(flatten)]
    pub report: NewReport,
}

/// What [`ReportStore::submit_batch`] did with a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchOutcome {
    /// Reports counted (new keys with valid input).
    pub accepted: u64,
    /// Keys seen before: nothing counted again.
    pub duplicates: u64,
    /// Reports refused for their input (a redelivery would be refused again, so the
    /// sender drops them): key and reason.
    pub invalid: Vec<InvalidItem>,
    /// The keys accepted, in batch order, with what was stored (for forwarding onwards).
    #[serde(skip)]
    pub stored: Vec<KeyedReport>,
}

/// A report of a batch refused for its input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidItem {
    /// Its idempotency key.
    pub key: String,
    /// Why.
    pub error: String,
}

/// What [`ReportStore::submit`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Submitted {
    /// The report's id (the same for every repeat of a name, kind and category).
    pub id: i64,
    /// The normalized name.
    pub name: String,
    /// Harmful or mistake.
    pub kind: Kind,
    /// The category (empty for a mistake that names none).
    pub category: String,
    /// How many times it has been reported, this time included.
    pub count: u64,
    /// Whether this created the report (`count == 1`).
    pub new: bool,
}

/// A stored report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Stable id, increasing with creation time.
    pub id: i64,
    /// The normalized name.
    pub name: String,
    /// Harmful or mistake.
    pub kind: Kind,
    /// The category (empty for a mistake that names none).
    pub category: String,
    /// The distinct notes, oldest first: the first note ever sent, then up to
    /// [`MAX_NOTES`] in all.
    pub notes: Vec<String>,
    /// How many times it has been reported.
    pub count: u64,
    /// When it was first reported, in seconds since the Unix epoch.
    pub first_seen: u64,
    /// When it was last reported, in seconds since the Unix epoch.
    pub last_seen: u64,
    /// The reviewers' verdict.
    pub status: Status,
    /// Contacts reporters left (only where `[reports] allow_contact` is on), oldest
    /// first, at most [`MAX_NOTES`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// Every decision recorded on it, oldest first (the last one set `status`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
}

/// A reviewer's decision as sent to [`ReportStore::decide`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDecision {
    /// `accepted` or `rejected`.
    pub status: Status,
    /// Why, for the record: cleaned like a report's note (at most [`MAX_NOTE_CHARS`]).
    #[serde(default)]
    pub note: Option<String>,
}

/// A recorded decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `accepted` or `rejected`.
    pub status: Status,
    /// The reviewer's note, if any.
    pub note: Option<String>,
    /// When it was recorded, in seconds since the Unix epoch.
    pub decided_at: u64,
}

/// Which reports [`ReportStore::list`] returns.
///
/// Reports come newest first (by id, i.e. by when they were first reported; a repeat does
/// not move a report up). Page with `after_id`: pass the id of the last report of the
/// previous page to get the reports listed after it (those with smaller ids). Deserializable
/// so it can be taken straight from a query string
/// (`?status=open&category=gambling&limit=50&after_id=120`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ListQuery {
    /// Only reports with this status; all of them when `None`.
    #[serde(default)]
    pub status: Option<Status>,
    /// How many reports at most: [`DEFAULT_LIST_LIMIT`] when `None`, capped at
    /// [`MAX_LIST_LIMIT`].
    #[serde(default)]
    pub limit: Option<usize>,
    /// Only reports listed after this one (with a smaller id).
    #[serde(default)]
    pub after_id: Option<i64>,
    /// Only reports in this category (compared exactly, as stored); every category when
    /// `None`.
    #[serde(default)]
    pub category: Option<String>,
}
