//! HTTP(S) list download with conditional GET, a hard size cap and optional
//! minisign verification.
//!
//! One [`HttpFeed`] per configured list URL. [`HttpFeed::fetch`] sends a
//! conditional GET built from the [`Validators`] of the previous successful
//! fetch, streams the body with a running size check, and — when a minisign
//! public key is configured — downloads `<url>.minisig` and verifies the body
//! before returning it. Nothing is returned that did not pass every check, so
//! the caller can hand [`Fetched::New`] straight to its compile → validate →
//! swap pipeline and persist the new validators only after the swap.
//!
//! Transport notes:
//! - TLS is rustls with the ring provider ([`install_crypto_provider`] is
//!   called by [`HttpFeed::new`]); server certificates are checked against the
//!   operating system's trust store (rustls-platform-verifier), so the host
//!   needs its CA bundle (Debian: `ca-certificates`).
//! - reqwest's `gzip` feature advertises `Accept-Encoding: gzip` and decodes a
//!   `Content-Encoding: gzip` response transparently: `max_bytes` applies to the
//!   decoded bytes, so a gzip bomb is cut off at the cap. A list served as a
//!   `.gz` *file* (no `Content-Encoding`) is returned as served, still
//!   compressed; the caller's parser recognises gzip by its magic bytes.
//! - The signature always covers the list file's bytes, which are the decoded
//!   bytes in the `Content-Encoding` case and the raw bytes otherwise, so both
//!   ways of serving verify.
//!
//! # Layout
//! - `fetch`: [`HttpFeed`] (the client for one URL) and the download itself;
//! - `validators`: the conditional GET state, [`Validators`];
//! - `body`: reading a body under the size cap;
//! - `signature`: the minisign key, the `.minisig` URL and the check;
//! - `error`: [`FeedError`], one variant per thing to check;
//! - `tests/`: a local axum server serving every case, and one test file each for
//!   the download, the conditional GET and the signature.

mod body;
mod error;
mod fetch;
mod signature;
mod validators;

pub use error::FeedError;
pub use fetch::{Fetched, HttpFeed, install_crypto_provider};
pub(crate) use signature::parse_public_key;
pub use validators::Validators;

#[cfg(test)]
mod tests;
