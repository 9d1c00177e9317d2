//! Blocked services: a catalog of apps and sites ("TikTok", "Roblox") that a parent blocks
//! by name rather than by list category.
//!
//! - [`catalog`]: the entries shipped with the binary (`data/services/*.toml`, compiled in),
//!   merged with an operator's override directory (`[services] dir`), and checked;
//! - [`index`]: which services cover a name (a domain blocks itself and its subdomains),
//!   walked over the query's labels from the right.
//!
//! A leaf module: it imports nothing of the crate's; [`crate::policy`] turns a group's
//! `services` and `service_groups` into a [`ServiceSet`] and asks the [`ServiceIndex`].

pub mod catalog;
pub mod index;

pub use catalog::{Catalog, CatalogError, Service, ServiceDomain};
pub use index::{ServiceIndex, ServiceSet};
