//! [`FeedError`]: why a download failed, one variant per thing to check.

use std::time::Duration;

use reqwest::StatusCode;

/// Why a fetch failed. Every variant names the URL involved and its message
/// says what to check.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The configured URL cannot be used.
    #[error("invalid feed URL {url:?}: {reason} (use an absolute http:// or https:// URL)")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configured minisign public key cannot be parsed.
    #[error(
        "invalid minisign public key for {url}: {reason} (give the base64 line starting with \"RW\" that `minisign -G` prints or that is the second line of the .pub file)"
    )]
    InvalidKey {
        /// The feed URL the key was configured for.
        url: String,
        /// What is wrong with the key.
        reason: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client for {url}: {}", chain(.source))]
    Client {
        /// The feed URL.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a status other than 200 (or 304 to a
    /// conditional request).
    #[error(
        "{url} answered HTTP {status}: check that the URL is still valid and the feed server is healthy"
    )]
    Http {
        /// The URL requested.
        url: String,
        /// The status received.
        status: StatusCode,
    },
    /// Connection, TLS, protocol or decoding failure.
    #[error(
        "could not download {url}: {} (check DNS resolution, connectivity, proxy settings and the server's TLS certificate)",
        chain(.source)
    )]
    Transport {
        /// The URL requested.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The request did not complete within the configured timeout.
    #[error(
        "downloading {url} took longer than {timeout:?}: raise the feed timeout or check the server and network"
    )]
    Timeout {
        /// The URL requested.
        url: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The body (after decoding) is larger than the configured cap.
    #[error(
        "{url} is larger than the {limit}-byte limit{}: raise max_bytes if the list really grew, otherwise the server is misbehaving",
        match .content_length { Some(n) => format!(" (Content-Length {n})"), None => String::new() }
    )]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The configured cap in bytes.
        limit: u64,
        /// The announced size when the server sent a Content-Length that was
        /// already over the cap; `None` when the cap was hit while streaming.
        content_length: Option<u64>,
    },
    /// `<url>.minisig` could not be obtained although a key is configured.
    #[error(
        "signature {url} is missing: {reason} (the feed must publish a minisign signature next to the list, or remove the public key from the config)"
    )]
    SignatureMissing {
        /// The signature URL.
        url: String,
        /// What happened (HTTP status, size, ...).
        reason: String,
    },
    /// The signature does not verify with the configured key (tampered list,
    /// wrong key, or a malformed signature file).
    #[error(
        "signature check failed for {url}: {reason} (the list was modified after signing, or the configured public key is not the one the feed signs with)"
    )]
    Signature {
        /// The list URL.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// Formats an error and its sources on one line: reqwest's own message is
/// terse and the useful part (refused, certificate, ...) is in the chain.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
