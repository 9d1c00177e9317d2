//! Profiles: named policies (what a client group of the config file is), editable at run
//! time through the admin API and kept in SQLite, with who they apply to.
//!
//! * A **profile** is a name, categories, own allow/deny names, SafeSearch and YouTube
//!   mode, a blocking mode and an optional schedule: a [`GroupConfig`](crate::policy::GroupConfig)
//!   without list files. Stored profiles have ids `p<n>` (never reused) and a version
//!   bumped by every write, for optimistic concurrency (`ETag` / `If-Match`). The config
//!   file's `[[groups]]` are profiles too (`config:<name>`), listed and read-only.
//! * An **identity** says who a profile is for: an IP address, a network, a DoT/DoH
//!   ClientID or a MAC address; one kind and value belongs to one profile at most.
//! * A **subscriber** line maps an address or prefix to a profile (an ISP's customer
//!   lines, uploaded in bulk).
//! * Every write appends to an **audit log** (who, what, before, after) in the same
//!   transaction. Queries are never stored here.
//!
//! The store is SQLite under the state directory (WAL, `synchronous=FULL`, schema
//! versioned with `PRAGMA user_version`), or, with `[store] url` ([`StoreConfig`]), one
//! PostgreSQL database shared by a fleet: every write NOTIFYs the other nodes, and a
//! last-good copy of the rows lets a node boot and filter while PostgreSQL is down.
//! Everything is validated before anything is written, and a failed write changes
//! nothing. After each committed write the store's
//! generation ([`ProfileStore::subscribe`]) goes up; [`ProfileStore::snapshot`] gives the
//! query path what it needs.
//!
//! # Layout
//! - `types`: what goes in and out ([`ProfileSpec`], [`Profile`], [`Identity`], ...);
//! - `error`: [`ProfileError`], each naming the field;
//! - `validate`: categories, names, schedules, identities and prefixes;
//! - `store`: [`ProfileStore`], over a backend's row operations (`backend::Tx`);
//! - `sqlite`, `schema`: the SQLite rows; the file's identity, settings and migrations;
//! - `pg`, `listen`, `last_good`: the PostgreSQL rows and schema, the LISTEN thread, and
//!   the copy served while PostgreSQL is down;
//! - `settings`: `[store]` ([`StoreConfig`]);
//! - `audit`: the audit log.

mod audit;
mod backend;
mod error;
mod last_good;
mod listen;
mod pg;
mod pg_connect;
mod schema;
mod settings;
mod sqlite;
mod store;
mod types;
mod validate;

pub use error::ProfileError;
pub use settings::StoreConfig;
pub use store::{BulkRow, PageCursor, ProfilePage, ProfileStore};
pub use types::{
    AuditEntry, CONFIG_ID_PREFIX, Identity, IdentityKind, Mode, NewIdentity, Profile, ProfileSpec,
    ProfilesSnapshot, STORED_ID_PREFIX, ScheduleSpec, Subscriber, WindowSpec, merge_patch,
};
pub use validate::window_of;

/// Longest profile name, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// Most names in a profile's `allow` or `deny`.
pub const MAX_LIST_ENTRIES: usize = 1000;
/// Audit entries returned when the query gives no limit.
pub const DEFAULT_AUDIT_LIMIT: usize = 100;
/// Most audit entries one call returns.
pub const MAX_AUDIT_LIMIT: usize = 1000;
/// The store's file name under `lists.state_dir`.
pub const FILE_NAME: &str = "profiles.sqlite";
/// The last-good copy of a PostgreSQL store's rows, under `lists.state_dir`.
pub const LAST_GOOD_FILE_NAME: &str = "profiles-last-good.json";
