//! Temporary exceptions and pauses: a parent lets a profile reach a service or a name, or
//! pauses its filtering, for some minutes; each lapses by itself.
//!
//! - [`set`]: the live, read-only view the query path reads (an [`ExceptionSet`] behind
//!   an `ArcSwap`), judged by the injected clock, so an exception applies and lapses
//!   without a policy rebuild;
//! - [`store`]: the one writer: adds, lists and revokes, and keeps them in
//!   `exceptions.json` under `lists.state_dir` (expiry as an absolute UTC time, so a restart
//!   neither extends nor forgets one).
//!
//! A leaf module: it imports nothing of the crate's; the policy reads the set, the admin
//! API writes through the store. Mandatory categories are not its business: the policy
//! checks them before it asks here.

pub mod set;
pub mod store;

pub use set::{Exception, ExceptionSet, Target};
pub use store::{ExceptionError, ExceptionStore, MAX_MINUTES};
