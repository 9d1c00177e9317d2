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

use std::sync::Once;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};

/// The largest `.minisig` file accepted (real ones are about 300 bytes).
const MAX_SIGNATURE_BYTES: u64 = 16 * 1024;

/// Sent as `User-Agent` so feed operators can tell who is fetching.
const USER_AGENT: &str = concat!("kidsafe-dns/", env!("CARGO_PKG_VERSION"), " (list fetcher)");

/// Installs rustls' ring crypto provider as the process default, once.
///
/// reqwest is built with `rustls-no-provider`, so a provider must be installed
/// before the first client is built or reqwest panics. Safe to call any number
/// of times from any thread; if another provider was installed first (by the
/// application or another library) that one is kept.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means some provider is already installed: keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// HTTP cache validators of the last successful download, sent back as
/// `If-None-Match` / `If-Modified-Since`. Persist them alongside the compiled
/// list (serde) and only after the new list has been swapped in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// The `ETag` response header, verbatim (weak tags keep their `W/`).
    pub etag: Option<String>,
    /// The `Last-Modified` response header, verbatim.
    pub last_modified: Option<String>,
}

impl Validators {
    /// True when there is nothing to make a request conditional with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// Result of a successful [`HttpFeed::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The server answered 304: the list the caller has is current.
    NotModified,
    /// A new copy of the list, size-checked and (if a key is configured)
    /// signature-verified.
    New {
        /// The list as served (after HTTP `Content-Encoding` decoding); may
        /// itself be a gzip file.
        body: Bytes,
        /// Validators to persist and pass to the next fetch.
        validators: Validators,
    },
}

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

/// A downloadable list: URL, client, limits and optional signature key.
#[derive(Debug, Clone)]
pub struct HttpFeed {
    client: reqwest::Client,
    url: Url,
    sig_url: Url,
    pubkey: Option<minisign_verify::PublicKey>,
    max_bytes: u64,
    timeout: Duration,
}

impl HttpFeed {
    /// Creates a feed for `url`.
    ///
    /// `minisign_pubkey` is the base64 public key line (`RW...`) as
    /// `minisign -G` prints it; the full two-line `.pub` file content is
    /// accepted too. `max_bytes` caps the (decoded) body; `timeout` bounds each
    /// request (connect, headers and body).
    pub fn new(
        url: impl AsRef<str>,
        minisign_pubkey: Option<&str>,
        max_bytes: u64,
        timeout: Duration,
    ) -> Result<Self, FeedError> {
        let raw = url.as_ref().trim();
        let url = Url::parse(raw).map_err(|e| FeedError::InvalidUrl {
            url: raw.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FeedError::InvalidUrl {
                url: raw.to_owned(),
                reason: format!("unsupported scheme {:?}", url.scheme()),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(FeedError::InvalidUrl {
                url: raw.to_owned(),
                reason: "no host".to_owned(),
            });
        }
        let sig_url = signature_url(&url);

        let pubkey = minisign_pubkey
            .map(|key| {
                parse_public_key(key).map_err(|reason| FeedError::InvalidKey {
                    url: url.to_string(),
                    reason,
                })
            })
            .transpose()?;

        install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|source| FeedError::Client {
                url: url.to_string(),
                source,
            })?;

        Ok(Self {
            client,
            url,
            sig_url,
            pubkey,
            max_bytes,
            timeout,
        })
    }

    /// The list URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL the signature is fetched from when a key is configured
    /// (`<url>.minisig`; `.minisig` is appended to the path, any query string
    /// is kept).
    pub fn signature_url(&self) -> &Url {
        &self.sig_url
    }

    /// Conditional GET of the list.
    ///
    /// Sends `If-None-Match` / `If-Modified-Since` from `prev`; a 304 answer
    /// gives [`Fetched::NotModified`] (only when `prev` is non-empty: a 304 to
    /// an unconditional request is an error). A 200 body is streamed with a
    /// running size check against `max_bytes` (a `Content-Length` over the cap
    /// is refused before reading). With a key configured, `<url>.minisig` is
    /// fetched and verified before [`Fetched::New`] is returned; a missing or
    /// bad signature is an error.
    pub async fn fetch(&self, prev: &Validators) -> Result<Fetched, FeedError> {
        let mut headers = HeaderMap::new();
        if let Some(etag) = prev.etag.as_deref().and_then(|v| v.parse().ok()) {
            headers.insert(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = prev.last_modified.as_deref().and_then(|v| v.parse().ok()) {
            headers.insert(IF_MODIFIED_SINCE, lm);
        }
        let conditional = !headers.is_empty();

        let mut resp = self
            .client
            .get(self.url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(|e| self.transport(&self.url, e))?;

        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED && conditional {
            return Ok(Fetched::NotModified);
        }
        if status != StatusCode::OK {
            return Err(FeedError::Http {
                url: self.url.to_string(),
                status,
            });
        }
        let validators = Validators {
            etag: header_string(resp.headers(), ETAG),
            last_modified: header_string(resp.headers(), LAST_MODIFIED),
        };

        let body = match read_capped(&mut resp, self.max_bytes).await {
            Ok(body) => body,
            Err(ReadError::TooLarge { content_length }) => {
                return Err(FeedError::TooLarge {
                    url: self.url.to_string(),
                    limit: self.max_bytes,
                    content_length,
                });
            }
            Err(ReadError::Transport(e)) => return Err(self.transport(&self.url, e)),
        };

        if let Some(key) = &self.pubkey {
            self.verify(key, &body).await?;
        }
        Ok(Fetched::New { body, validators })
    }

    /// Downloads `<url>.minisig` and checks `body` against it.
    async fn verify(&self, key: &minisign_verify::PublicKey, body: &[u8]) -> Result<(), FeedError> {
        let missing = |reason: String| FeedError::SignatureMissing {
            url: self.sig_url.to_string(),
            reason,
        };
        let mut resp = self
            .client
            .get(self.sig_url.clone())
            .send()
            .await
            .map_err(|e| self.transport(&self.sig_url, e))?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(missing(format!("HTTP {status}")));
        }
        let raw = match read_capped(&mut resp, MAX_SIGNATURE_BYTES).await {
            Ok(raw) => raw,
            Err(ReadError::TooLarge { .. }) => {
                return Err(missing(format!(
                    "larger than {MAX_SIGNATURE_BYTES} bytes, not a minisign signature"
                )));
            }
            Err(ReadError::Transport(e)) => return Err(self.transport(&self.sig_url, e)),
        };
        let bad = |reason: String| FeedError::Signature {
            url: self.url.to_string(),
            reason,
        };
        let text = std::str::from_utf8(&raw)
            .map_err(|_| bad(format!("{} is not a text minisign signature", self.sig_url)))?;
        let sig = minisign_verify::Signature::decode(text)
            .map_err(|e| bad(format!("cannot parse {}: {e}", self.sig_url)))?;
        // Legacy (non-prehashed, "Ed") signatures are plain Ed25519 over the
        // file and as sound as prehashed ones for list sizes; accept both.
        key.verify(body, &sig, true).map_err(|e| bad(e.to_string()))
    }

    fn transport(&self, url: &Url, e: reqwest::Error) -> FeedError {
        if e.is_timeout() {
            FeedError::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            }
        } else {
            FeedError::Transport {
                url: url.to_string(),
                source: e,
            }
        }
    }
}

enum ReadError {
    TooLarge { content_length: Option<u64> },
    Transport(reqwest::Error),
}

/// Reads the whole body, refusing more than `limit` bytes. The buffer grows
/// with what actually arrives (a lying Content-Length cannot make us reserve
/// more than the cap).
async fn read_capped(resp: &mut reqwest::Response, limit: u64) -> Result<Bytes, ReadError> {
    // `content_length()` is the exact body size when known; it is `None` when
    // reqwest decodes gzip, so the decoded size is checked while streaming.
    let announced = resp.content_length();
    if let Some(n) = announced.filter(|&n| n > limit) {
        return Err(ReadError::TooLarge {
            content_length: Some(n),
        });
    }
    let initial = announced.unwrap_or(0).min(limit).min(8 << 20);
    let mut buf = BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(ReadError::TooLarge {
                content_length: None,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn header_string(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
}

/// `<url>.minisig`: the suffix goes on the path so a query string stays valid.
fn signature_url(url: &Url) -> Url {
    let mut sig = url.clone();
    sig.set_path(&format!("{}.minisig", url.path()));
    sig.set_fragment(None);
    sig
}

/// Accepts the bare base64 key line or a whole minisign `.pub` file.
pub(crate) fn parse_public_key(key: &str) -> Result<minisign_verify::PublicKey, String> {
    let line = key
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| "empty key".to_owned())?;
    minisign_verify::PublicKey::from_base64(line).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::body::Body;
    use axum::http::{HeaderMap as AxHeaders, HeaderValue, StatusCode as AxStatus, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    use super::*;

    // Test vectors made once with minisign 0.11:
    //   minisign -G -W -p a.pub -s a.sec; minisign -G -W -p b.pub -s b.sec
    //   minisign -S -s a.sec -m list.txt -t 'kidsafe test vector'      (prehashed, "ED")
    //   minisign -S -l -s a.sec -m list.txt -t 'kidsafe legacy vector' (legacy, "Ed")
    const LIST: &str = "# kidsafe test list\nbad.example\nworse.example\n";
    const PUBKEY_A: &str = "RWQIo99G4J10CIipp71Z8YGOFmRObx0ZnrutqqgyFdmYKkbGp+V1+Soe";
    const PUBFILE_A: &str = "untrusted comment: minisign public key 8749DE046DFA308\nRWQIo99G4J10CIipp71Z8YGOFmRObx0ZnrutqqgyFdmYKkbGp+V1+Soe\n";
    const PUBKEY_B: &str = "RWQ+SoH/RI+qKIGFnvBf2RXhiafXPAGifSSs96feO+p80Omw2eYzj+TK";
    const SIG_PREHASHED: &str = "untrusted comment: signature from minisign secret key
RUQIo99G4J10CN2fddecExuK/At08NjydK1myrTaIeaVisBFttUUy2VquzsPLJHY5OYOPKQxiboWwh0aYq9TiaivhD+qQtrOjAE=
trusted comment: kidsafe test vector
nORcLLhJbbzOmkIIzB3NSYAxrk+jYg/gUrGhyULM3RnYiAJI8oEYiW7PPHOkLbI77tUr0gpm6hBZw8PT4EfTBg==
";
    const SIG_LEGACY: &str = "untrusted comment: signature from minisign secret key
RWQIo99G4J10CArAYBtaJaewhhpRzkMLYpYQOrnKm4296feFFyOhUy8TY4l9eZP47YIrS6f5I4POtab7kJFYTnBz+GEgplVjEQk=
trusted comment: kidsafe legacy vector
U3BfLDBjp67GhAbSNl8sKjKF35d1T+I5zI1CQbZXptOsB9286WLrwOV+vsOUHQ22CzuqcGsveYHE1HjUj446BQ==
";

    const ETAG_V1: &str = "\"v1\"";
    const LAST_MOD: &str = "Wed, 21 Oct 2026 07:28:00 GMT";
    const TIMEOUT: Duration = Duration::from_secs(5);

    struct Server {
        addr: SocketAddr,
        hits: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Server {
        fn url(&self, path: &str) -> String {
            format!("http://{}{}", self.addr, path)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// Streams `total` bytes in 64 KiB chunks with no Content-Length.
    fn chunked(total: usize) -> Body {
        let chunks = (0..total.div_ceil(65536)).map(move |i| {
            let n = (total - i * 65536).min(65536);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; n]))
        });
        Body::from_stream(futures_util::stream::iter(chunks))
    }

    async fn list_handler(req_headers: AxHeaders) -> Response {
        // ETag path: 304 when the client presents the current tag.
        if req_headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v == ETAG_V1)
        {
            return (AxStatus::NOT_MODIFIED, [(header::ETAG, ETAG_V1)]).into_response();
        }
        (AxStatus::OK, [(header::ETAG, ETAG_V1)], LIST).into_response()
    }

    async fn lm_handler(req_headers: AxHeaders) -> Response {
        if req_headers
            .get(header::IF_MODIFIED_SINCE)
            .is_some_and(|v| v == LAST_MOD)
        {
            return AxStatus::NOT_MODIFIED.into_response();
        }
        (AxStatus::OK, [(header::LAST_MODIFIED, LAST_MOD)], LIST).into_response()
    }

    async fn serve() -> Server {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = Router::new()
            .route("/etag.txt", get(list_handler))
            .route("/lm.txt", get(lm_handler))
            .route("/plain.txt", get(|| async { LIST }))
            .route("/big-cl.txt", get(|| async { vec![b'a'; 4096] }))
            .route("/big-chunked.txt", get(|| async { chunked(300_000) }))
            .route(
                "/error.txt",
                get(|| async { (AxStatus::INTERNAL_SERVER_ERROR, "boom") }),
            )
            .route(
                "/unsolicited-304.txt",
                get(|| async { AxStatus::NOT_MODIFIED }),
            )
            .route(
                "/gzip-encoded.txt",
                get(|| async {
                    (
                        [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                        gzip(LIST.as_bytes()),
                    )
                }),
            )
            .route(
                "/bomb.txt",
                get(|| async {
                    (
                        [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                        gzip(&vec![0u8; 10 << 20]),
                    )
                }),
            )
            .route("/list.gz", get(|| async { gzip(LIST.as_bytes()) }))
            .route(
                "/slow.txt",
                get(|| async { stalled_body(Duration::from_secs(30)) }),
            )
            // Signed lists.
            .route("/signed.txt", get(|| async { LIST }))
            .route("/signed.txt.minisig", get(|| async { SIG_PREHASHED }))
            .route("/legacy.txt", get(|| async { LIST }))
            .route("/legacy.txt.minisig", get(|| async { SIG_LEGACY }))
            .route(
                "/tampered.txt",
                get(|| async { LIST.replace("bad.example", "good.example") }),
            )
            .route("/tampered.txt.minisig", get(|| async { SIG_PREHASHED }))
            .route("/unsigned.txt", get(|| async { LIST }))
            .route("/garbage-sig.txt", get(|| async { LIST }))
            .route(
                "/garbage-sig.txt.minisig",
                get(|| async { "untrusted comment: x\nnot base64 at all\n" }),
            )
            .route(
                "/gzip-signed.txt",
                get(|| async {
                    (
                        [(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"))],
                        gzip(LIST.as_bytes()),
                    )
                }),
            )
            .route("/gzip-signed.txt.minisig", get(|| async { SIG_PREHASHED }))
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { addr, hits, task }
    }

    /// A body that sends one byte and then stalls for `stall`.
    fn stalled_body(stall: Duration) -> Body {
        let stream = futures_util::stream::unfold(0u8, move |state| async move {
            match state {
                0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"a")), 1)),
                _ => {
                    tokio::time::sleep(stall).await;
                    None
                }
            }
        });
        Body::from_stream(stream)
    }

    fn feed(url: &str, key: Option<&str>, max: u64) -> HttpFeed {
        HttpFeed::new(url, key, max, TIMEOUT).unwrap()
    }

    async fn body_of(f: &HttpFeed, prev: &Validators) -> (Bytes, Validators) {
        match f.fetch(prev).await.unwrap() {
            Fetched::New { body, validators } => (body, validators),
            Fetched::NotModified => panic!("expected a new body"),
        }
    }

    #[tokio::test]
    async fn etag_then_not_modified() {
        let srv = serve().await;
        let f = feed(&srv.url("/etag.txt"), None, 1 << 20);
        let (body, v) = body_of(&f, &Validators::default()).await;
        assert_eq!(body, LIST.as_bytes());
        assert_eq!(v.etag.as_deref(), Some(ETAG_V1));
        assert_eq!(v.last_modified, None);
        assert_eq!(f.fetch(&v).await.unwrap(), Fetched::NotModified);
        // A stale tag gets the body again.
        let stale = Validators {
            etag: Some("\"v0\"".into()),
            last_modified: None,
        };
        let (body, _) = body_of(&f, &stale).await;
        assert_eq!(body, LIST.as_bytes());
        assert_eq!(srv.hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn last_modified_then_not_modified() {
        let srv = serve().await;
        let f = feed(&srv.url("/lm.txt"), None, 1 << 20);
        let (body, v) = body_of(&f, &Validators::default()).await;
        assert_eq!(body, LIST.as_bytes());
        assert_eq!(v.last_modified.as_deref(), Some(LAST_MOD));
        assert_eq!(v.etag, None);
        assert_eq!(f.fetch(&v).await.unwrap(), Fetched::NotModified);
    }

    #[test]
    fn validators_round_trip_through_serde() {
        let v = Validators {
            etag: Some("W/\"abc\"".into()),
            last_modified: Some(LAST_MOD.into()),
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<Validators>(&json).unwrap(), v);
        assert!(!v.is_empty());
        assert!(Validators::default().is_empty());
    }

    #[tokio::test]
    async fn unsolicited_304_is_an_error() {
        let srv = serve().await;
        let f = feed(&srv.url("/unsolicited-304.txt"), None, 1 << 20);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(
            matches!(err, FeedError::Http { status, .. } if status == StatusCode::NOT_MODIFIED),
            "{err}"
        );
    }

    #[tokio::test]
    async fn server_error_is_rejected() {
        let srv = serve().await;
        let f = feed(&srv.url("/error.txt"), None, 1 << 20);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        match &err {
            FeedError::Http { url, status } => {
                assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR);
                assert!(url.ends_with("/error.txt"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("500") && msg.contains("/error.txt"), "{msg}");
    }

    #[tokio::test]
    async fn oversized_with_content_length_is_refused_up_front() {
        let srv = serve().await;
        let f = feed(&srv.url("/big-cl.txt"), None, 1000);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(
            matches!(
                err,
                FeedError::TooLarge {
                    limit: 1000,
                    content_length: Some(4096),
                    ..
                }
            ),
            "{err:?}"
        );
        // Exactly at the cap is fine.
        let f = feed(&srv.url("/big-cl.txt"), None, 4096);
        let (body, _) = body_of(&f, &Validators::default()).await;
        assert_eq!(body.len(), 4096);
    }

    #[tokio::test]
    async fn oversized_chunked_is_cut_while_streaming() {
        let srv = serve().await;
        let f = feed(&srv.url("/big-chunked.txt"), None, 100_000);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(
            matches!(
                err,
                FeedError::TooLarge {
                    limit: 100_000,
                    content_length: None,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("100000-byte limit"), "{err}");
        let f = feed(&srv.url("/big-chunked.txt"), None, 300_000);
        let (body, _) = body_of(&f, &Validators::default()).await;
        assert_eq!(body.len(), 300_000);
    }

    #[tokio::test]
    async fn gzip_content_encoding_is_decoded_and_bomb_is_capped() {
        let srv = serve().await;
        let f = feed(&srv.url("/gzip-encoded.txt"), None, 1 << 20);
        let (body, _) = body_of(&f, &Validators::default()).await;
        assert_eq!(body, LIST.as_bytes());

        // 10 MiB of zeros compresses to ~10 KiB; the cap is on decoded bytes.
        let f = feed(&srv.url("/bomb.txt"), None, 1 << 20);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(
            matches!(
                err,
                FeedError::TooLarge {
                    content_length: None,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn gz_file_is_returned_as_served() {
        let srv = serve().await;
        let f = feed(&srv.url("/list.gz"), None, 1 << 20);
        let (body, _) = body_of(&f, &Validators::default()).await;
        assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic kept");
    }

    #[tokio::test]
    async fn stalled_body_times_out() {
        let srv = serve().await;
        let f = HttpFeed::new(
            srv.url("/slow.txt"),
            None,
            1 << 20,
            Duration::from_millis(300),
        )
        .unwrap();
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(matches!(err, FeedError::Timeout { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn connection_refused_is_transport() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let f = feed(&format!("http://127.0.0.1:{port}/x"), None, 1000);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(matches!(err, FeedError::Transport { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn https_to_plain_server_fails_cleanly() {
        // Exercises the rustls + ring setup: the handshake fails, no panic.
        let srv = serve().await;
        let url = format!("https://{}/plain.txt", srv.addr);
        let f = feed(&url, None, 1000);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(matches!(err, FeedError::Transport { .. }), "{err:?}");
    }

    #[test]
    fn bad_configuration_is_reported() {
        for url in ["not a url", "ftp://example.com/list", "file:///etc/passwd"] {
            let err = HttpFeed::new(url, None, 1, TIMEOUT).unwrap_err();
            assert!(
                matches!(err, FeedError::InvalidUrl { .. }),
                "{url}: {err:?}"
            );
        }
        let err = HttpFeed::new("https://example.com/l", Some("RWnope"), 1, TIMEOUT).unwrap_err();
        assert!(matches!(err, FeedError::InvalidKey { .. }), "{err:?}");
        assert!(err.to_string().contains("https://example.com/l"));
    }

    #[test]
    fn signature_url_appends_to_path() {
        let f =
            HttpFeed::new("https://example.com/lists/a.txt?v=2#frag", None, 1, TIMEOUT).unwrap();
        assert_eq!(
            f.signature_url().as_str(),
            "https://example.com/lists/a.txt.minisig?v=2"
        );
        // Full .pub file content is accepted as the key.
        HttpFeed::new("https://example.com/a", Some(PUBFILE_A), 1, TIMEOUT).unwrap();
    }

    #[tokio::test]
    async fn good_signature_is_accepted() {
        let srv = serve().await;
        for path in ["/signed.txt", "/legacy.txt", "/gzip-signed.txt"] {
            let f = feed(&srv.url(path), Some(PUBKEY_A), 1 << 20);
            let (body, _) = body_of(&f, &Validators::default()).await;
            assert_eq!(body, LIST.as_bytes(), "{path}");
        }
    }

    #[tokio::test]
    async fn tampered_body_is_rejected() {
        let srv = serve().await;
        let f = feed(&srv.url("/tampered.txt"), Some(PUBKEY_A), 1 << 20);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(matches!(err, FeedError::Signature { .. }), "{err:?}");
        assert!(err.to_string().contains("/tampered.txt"), "{err}");
    }

    #[tokio::test]
    async fn missing_signature_is_rejected() {
        let srv = serve().await;
        let f = feed(&srv.url("/unsigned.txt"), Some(PUBKEY_A), 1 << 20);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        match &err {
            FeedError::SignatureMissing { url, reason } => {
                assert!(url.ends_with("/unsigned.txt.minisig"), "{url}");
                assert!(reason.contains("404"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn wrong_key_is_rejected() {
        let srv = serve().await;
        let f = feed(&srv.url("/signed.txt"), Some(PUBKEY_B), 1 << 20);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(matches!(err, FeedError::Signature { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn malformed_signature_is_rejected() {
        let srv = serve().await;
        let f = feed(&srv.url("/garbage-sig.txt"), Some(PUBKEY_A), 1 << 20);
        let err = f.fetch(&Validators::default()).await.unwrap_err();
        assert!(matches!(err, FeedError::Signature { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn not_modified_skips_the_signature() {
        let srv = serve().await;
        // /etag.txt has no .minisig: a 304 must not try to fetch one.
        let f = feed(&srv.url("/etag.txt"), Some(PUBKEY_A), 1 << 20);
        let v = Validators {
            etag: Some(ETAG_V1.into()),
            last_modified: None,
        };
        assert_eq!(f.fetch(&v).await.unwrap(), Fetched::NotModified);
        assert_eq!(srv.hits.load(Ordering::SeqCst), 1);
    }

    /// Signs a fresh random list with the real `minisign` tool, when present.
    #[tokio::test]
    async fn minisign_tool_round_trip() {
        let Some(dir) = minisign_sign_fresh() else {
            eprintln!("minisign_tool_round_trip: `minisign` not installed, skipped");
            return;
        };
        let list = std::fs::read(dir.path().join("fresh.txt")).unwrap();
        let sig = std::fs::read_to_string(dir.path().join("fresh.txt.minisig")).unwrap();
        let pubkey = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
        let list2 = list.clone();
        let app = Router::new()
            .route("/fresh.txt", get(move || async move { list2 }))
            .route("/fresh.txt.minisig", get(move || async move { sig }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let f = feed(&format!("http://{addr}/fresh.txt"), Some(&pubkey), 1 << 20);
        let (body, _) = body_of(&f, &Validators::default()).await;
        assert_eq!(body, list);
        let f = feed(&format!("http://{addr}/fresh.txt"), Some(PUBKEY_A), 1 << 20);
        assert!(matches!(
            f.fetch(&Validators::default()).await,
            Err(FeedError::Signature { .. })
        ));
        task.abort();
    }

    fn minisign_sign_fresh() -> Option<tempfile::TempDir> {
        use std::process::{Command, Stdio};
        let ok = Command::new("minisign")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let body: String = (0..1000).map(|i| format!("host{i}.example\n")).collect();
        std::fs::write(p("fresh.txt"), body).unwrap();
        let run = |args: &[&std::ffi::OsStr]| {
            let st = Command::new("minisign")
                .args(args)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "minisign {args:?}");
        };
        run(&[
            "-G".as_ref(),
            "-W".as_ref(),
            "-p".as_ref(),
            p("k.pub").as_os_str(),
            "-s".as_ref(),
            p("k.sec").as_os_str(),
        ]);
        run(&[
            "-S".as_ref(),
            "-s".as_ref(),
            p("k.sec").as_os_str(),
            "-m".as_ref(),
            p("fresh.txt").as_os_str(),
        ]);
        Some(dir)
    }
}
