//! The few row operations the store needs, one transaction at a time. SQLite, PostgreSQL
//! and the last-good copy each implement [`Tx`]; validation, versions and the audit
//! entries stay in `store`, written once for all of them.

use serde::{Deserialize, Serialize};

use super::error::ProfileError;
use super::types::{AuditEntry, Subscriber};

/// A `profiles` row: settings are the JSON of a validated `ProfileSpec`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct ProfileRow {
    pub id: i64,
    pub name: String,
    pub settings: String,
    pub version: i64,
}

/// An `identities` row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IdentityRow {
    pub id: i64,
    pub profile_id: i64,
    pub kind: String,
    pub value: String,
}

/// Everything the query path reads: what the last-good copy keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Rows {
    pub profiles: Vec<ProfileRow>,
    pub identities: Vec<IdentityRow>,
    pub subscribers: Vec<Subscriber>,
}

/// An audit entry to append.
pub(super) struct NewAudit<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub entity: &'a str,
    pub before: Option<String>,
    pub after: Option<String>,
}

type R<T> = Result<T, ProfileError>;

/// One open transaction. Dropped without [`commit`](Tx::commit), it rolls back.
pub(super) trait Tx {
    /// Every profile, by id.
    fn profiles(&mut self) -> R<Vec<ProfileRow>>;
    /// At most `limit` profiles with ids above `after`, by id (keyset paging on the
    /// primary key: a deep page costs what the first does).
    fn profiles_after(&mut self, after: i64, limit: i64) -> R<Vec<ProfileRow>>;
    /// At most `limit` profiles with ids below `before`, the highest id first.
    fn profiles_before(&mut self, before: i64, limit: i64) -> R<Vec<ProfileRow>>;
    /// Profile `n`.
    fn profile(&mut self, n: i64) -> R<Option<ProfileRow>>;
    /// The id of the profile named `name`.
    fn profile_named(&mut self, name: &str) -> R<Option<i64>>;
    /// A new profile at version 1; its id.
    fn insert_profile(&mut self, name: &str, settings: &str) -> R<i64>;
    /// Rewrites profile `n` if it is still at `version` (bumping it); false if not (another
    /// writer, maybe on another node, came first).
    fn update_profile(&mut self, n: i64, version: i64, name: &str, settings: &str) -> R<bool>;
    /// Deletes profile `n` (its identities with it) and the subscriber lines naming
    /// `public_id`, if it is still at `version`; false if not.
    fn delete_profile(&mut self, n: i64, version: i64, public_id: &str) -> R<bool>;
    /// The identities of profile `n`, or all of them, by id.
    fn identities(&mut self, profile: Option<i64>) -> R<Vec<IdentityRow>>;
    /// Identity `id`.
    fn identity(&mut self, id: i64) -> R<Option<IdentityRow>>;
    /// Who holds `kind`/`value`: (identity id, profile id, profile name).
    fn identity_holder(&mut self, kind: &str, value: &str) -> R<Option<(i64, i64, String)>>;
    /// A new identity of profile `n`; its id.
    fn insert_identity(&mut self, n: i64, kind: &str, value: &str) -> R<i64>;
    /// Removes identity `id`.
    fn delete_identity(&mut self, id: i64) -> R<()>;
    /// The subscriber lines of `profile`, or all of them, by prefix.
    fn subscribers(&mut self, profile: Option<&str>) -> R<Vec<Subscriber>>;
    /// The profile serving `prefix`.
    fn subscriber(&mut self, prefix: &str) -> R<Option<String>>;
    /// Inserts or repoints a subscriber line.
    fn put_subscriber(&mut self, s: &Subscriber) -> R<()>;
    /// Removes the line for `prefix`.
    fn delete_subscriber(&mut self, prefix: &str) -> R<()>;
    /// Appends an audit entry.
    fn audit(&mut self, entry: &NewAudit<'_>) -> R<()>;
    /// The newest `limit` audit entries older than id `before`, newest first (keyset
    /// paging on the primary key: any page costs what the first does).
    fn audit_list(&mut self, before: i64, limit: i64) -> R<Vec<AuditEntry>>;
    /// How many profiles are stored.
    fn profile_count(&mut self) -> R<u64>;
    /// Whether this reads the database itself (not the last-good copy).
    fn is_live(&self) -> bool {
        true
    }
    /// Makes the writes durable (and, on PostgreSQL, tells the other nodes).
    fn commit(self: Box<Self>) -> R<()>;
}
