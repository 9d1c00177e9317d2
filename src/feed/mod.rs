//! Feed fetchers: bring block lists in from outside.
//!
//! - [`http`]: HTTP(S) list download with conditional GET, a size cap and
//!   optional minisign signature verification.
//! - [`xfr`]: RPZ secondary — AXFR/IXFR client (with TSIG), SOA polling and
//!   NOTIFY helpers.
//!
//! Both only fetch and check: parsing, compiling and swapping the result in is
//! the list pipeline's job.

pub mod http;
pub mod xfr;
