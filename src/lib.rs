//! kidsafe-dns: a DNS filtering resolver that keeps child-unsafe domains out of reach.
//!
//! A query's path, top to bottom:
//!
//! 1. [`server`]: our UDP loops and TCP/DoT/DoH connections read each request
//!    ([`server::wire`] decodes it; the fast path, [`server::fastpath`], reads a plain
//!    query in place);
//! 2. one decision, [`server::handler::decision`], for every transport: admission and the
//!    client's group ([`policy`]), the protocol rules ([`server::local`]: meta types and
//!    classes, CHAOS, EDNS versions, TSIG), then what [`lists`] (the compiled FST behind an
//!    `ArcSwap`) and the group's policy say (its windows, and the temporary
//!    [`exceptions`] and pauses read with the policy's clock); it is counted in
//!    [`metrics`] there, once, and in its profile's [`activity`] (today's and this week's
//!    counts the console shows a parent);
//! 3. the reply encodes that decision: a blocked name gets [`answer`]'s sinkhole with an
//!    Extended DNS Error (on bytes by the fast path, as a message otherwise);
//! 4. anything else goes to [`upstream`] (cache, forwarder), whose reply is checked again
//!    (CNAME cloaking) and relayed as is.
//!
//! Beneath them, [`dns`] holds the wire once: the zero-copy request view, TCP framing,
//! the size-limited encoder whose truncation rules every transport follows, and asking one
//! server one question (the forwarder's and the zone-transfer client's exchanges), and
//! [`clock`] reads the time once for everyone (Unix seconds).
//!
//! Around it: [`feed`] (the one writer of the compiled list: sources compiled, feeds
//! fetched over HTTP or transferred from an RPZ primary, guarded and swapped live),
//! [`admin`] (the HTTP API: health, [`metrics`], safety check, reports, reload),
//! [`forward`] (an edge's reports spooled and delivered to its central),
//! [`blockpage`] (what a browser sent to the sinkhole sees), [`web`] (serving those two
//! HTTP apps until shutdown), [`querylog`] (blocked events only, privacy-preserving),
//! [`shutdown`] (draining in-flight queries).
//!
//! On top: [`config`] (TOML in, typed config out). Each module owns its settings type
//! ([`answer::BlockingConfig`], [`policy::PolicyConfig`], [`feed::spec::ListsConfig`],
//! [`querylog::QueryLogConfig`], ...); config checks the file and builds them, and no
//! module below imports config (`tests/layers.rs` keeps the arrows pointing one way).
//! [`app`] wires the modules together from a config and handles signals; [`app::reload`]
//! applies an edited config live (SIGHUP, `POST /v1/reload`, the watched config file).
#![warn(missing_docs)]

pub mod activity;
pub mod admin;
pub mod answer;
pub mod app;
pub mod blockpage;
pub mod bypass;
pub mod clock;
pub mod config;
pub mod console;
pub mod dns;
pub mod exceptions;
pub mod feed;
pub mod forward;
pub mod lists;
pub mod metrics;
pub mod policy;
pub mod profiles;
pub mod publish;
pub mod querylog;
pub mod server;
pub mod services;
pub mod shutdown;
pub mod sqlite_file;
pub mod subscribers;
pub mod upstream;
pub mod web;
