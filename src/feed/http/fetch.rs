//! [`HttpFeed`]: one list URL's client, and the download itself: conditional GET,
//! capped body, then the signature when a key is configured.

use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use minisign_verify::PublicKey;
use reqwest::{StatusCode, Url};

use super::body::{ReadError, read_capped};
use super::error::FeedError;
use super::signature::{self, MAX_SIGNATURE_BYTES, parse_public_key, signature_url};
use super::validators::Validators;

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

/// A downloadable list: URL, client, limits and optional signature key.
#[derive(Debug, Clone)]
pub struct HttpFeed {
    client: reqwest::Client,
    url: Url,
    sig_url: Url,
    pubkey: Option<PublicKey>,
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
        let headers = prev.request_headers();
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
        let validators = Validators::from_response(resp.headers());

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
    async fn verify(&self, key: &PublicKey, body: &[u8]) -> Result<(), FeedError> {
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
        signature::check(key, &self.url, &self.sig_url, &raw, body)
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
