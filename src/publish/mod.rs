//! The central's side of the national loop: what reviewers accepted, published.
//!
//! A central keeps the names its reviewers accepted in *published lists*: one per category
//! (`gambling`, `adult`, ...) and one allowlist (`allow`, from accepted "blocked by
//! mistake" reports). Every decision, and every revert, is one change with one serial, kept
//! in a journal. Two standard ways carry the lists to edges and to other resolvers:
//!
//! - a signed HTTP feed per list (`GET /v1/published/{list}.txt`, with its `.minisig`),
//!   which `[[lists.source]] url = ... minisign_pubkey = ...` consumes;
//! - an RPZ zone per list, served as a primary (AXFR, IXFR from the journal, TSIG, NOTIFY),
//!   which `[[lists.source]] rpz = {...}`, Unbound's `rpz:` and PowerDNS Recursor's
//!   `rpzPrimary` consume.
//!
//! # Layout
//! - `settings`: the `[publish]` table as checked;
//! - `lists`: [`PublishedLists`], what both publishers read (the store implements it);
//! - `store`: [`PublishedStore`], the lists, their journal and the decisions in SQLite;
//! - `feed`: [`SignedFeed`], each list's HTTP body and its minisign signature, built
//!   once per serial.

pub mod feed;
pub mod lists;
pub mod memory;
pub mod rpz;
pub mod settings;
pub mod store;

pub use feed::{FeedError, SignedFeed};
pub use lists::{ALLOW_LIST, Change, PublishError, PublishedLists};
pub use settings::PublishConfig;
pub use store::{PublishedStore, StoreError};
