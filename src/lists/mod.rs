//! Blocklists: from published list files to one compiled, memory-mapped FST.
//!
//! The path a list takes, one module per stage:
//!
//! 1. [`source`] opens a file (gzip or plain), hashes it and hands the lines to
//! 2. [`parse`], one module per format (domains, hosts, adblock, RPZ), which yields [`rule::Rule`]s
//!    whose names went through
//! 3. [`normalize`] (lowercase, trailing dot, IDN to A-labels, hostname checks);
//! 4. [`compile`] turns the rules into reversed-label keys, sorts them and writes the FST and
//!    its [`manifest`] atomically;
//! 5. [`load`] maps the file (and its [`bloom`] filter) and checks both against the manifest;
//! 6. [`matcher`] answers "is this name blocked, and why?" in one walk over the FST;
//! 7. [`swap`] keeps the serving blocklist behind an `ArcSwap` and replaces it live.

pub mod bloom;
pub mod compile;
pub mod key;
pub mod load;
pub mod manifest;
pub mod matcher;
pub mod normalize;
pub mod parse;
pub mod rule;
pub mod source;
pub mod swap;

pub use load::Blocklist;
pub use matcher::{Decision, Verdict};
