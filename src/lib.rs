//! kidsafe-dns: a DNS filtering resolver that keeps child-unsafe domains out of reach.
//!
//! A query's path, top to bottom:
//!
//! 1. [`server`]: our UDP loops, TCP/DoT/DoH connections hand each request to
//!    [`server::handler`] (blocked names on UDP take [`server::fastpath`]); queries the
//!    protocol answers for us (meta types and classes, CHAOS, EDNS versions, TSIG) are
//!    answered there before any list is consulted;
//! 2. the handler asks [`policy`] (which client group, which categories) and [`lists`]
//!    (the compiled FST behind an `ArcSwap`) for a verdict;
//! 3. a blocked name is answered by [`answer`] (the sinkhole, with an Extended DNS Error);
//! 4. anything else goes to [`upstream`] (cache, forwarder), whose reply is checked again
//!    (CNAME cloaking) and relayed as is.
//!
//! Beneath them, [`dns`] holds the wire once: the zero-copy request view, TCP framing,
//! the size-limited encoder whose truncation rules every transport follows, and asking one
//! server one question (the forwarder's and the zone-transfer client's exchanges), and
//! [`clock`] reads the time once for everyone (Unix seconds).
//!
//! Around it: [`feed`] (lists fetched over HTTP or transferred from an RPZ primary,
//! recompiled and swapped live), [`admin`] (the HTTP API: health, [`metrics`], safety
//! check, reports, reload), [`querylog`] (blocked events only, privacy-preserving),
//! [`app`] (wiring and signals), [`shutdown`] (draining in-flight queries).
//!
//! On top: [`config`] (TOML in, typed config out). Each module owns its settings type
//! ([`answer::BlockingConfig`], [`policy::PolicyConfig`], [`feed::spec::ListsConfig`],
//! [`querylog::QueryLogConfig`], ...); config checks the file and builds them, and no
//! module below imports config (`tests/layers.rs` keeps the arrows pointing one way).
#![warn(missing_docs)]

pub mod admin;
pub mod answer;
pub mod app;
pub mod blockpage;
pub mod clock;
pub mod config;
pub mod dns;
pub mod feed;
pub mod lists;
pub mod metrics;
pub mod policy;
pub mod querylog;
pub mod server;
pub mod shutdown;
pub mod upstream;
