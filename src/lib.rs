//! kidsafe-dns: a DNS filtering resolver that keeps child-unsafe domains out of reach.
#![warn(missing_docs)]

pub mod lists;
