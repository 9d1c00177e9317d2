//! Minisign: the configured public key, where a list's signature is published,
//! and checking a downloaded signature file against the list's bytes.

use minisign_verify::{PublicKey, Signature};
use reqwest::Url;

use super::error::FeedError;

/// The largest `.minisig` file accepted (real ones are about 300 bytes).
pub(super) const MAX_SIGNATURE_BYTES: u64 = 16 * 1024;

/// `<url>.minisig`: the suffix goes on the path so a query string stays valid.
pub(super) fn signature_url(url: &Url) -> Url {
    let mut sig = url.clone();
    sig.set_path(&format!("{}.minisig", url.path()));
    sig.set_fragment(None);
    sig
}

/// Accepts the bare base64 key line or a whole minisign `.pub` file.
pub(crate) fn parse_public_key(key: &str) -> Result<PublicKey, String> {
    let line = key
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| "empty key".to_owned())?;
    PublicKey::from_base64(line).map_err(|e| e.to_string())
}

/// Checks `body`, downloaded from `list_url`, against `sig_file`, the bytes served
/// at `sig_url`: a signature file that is not text or not minisign, or that does
/// not verify with `key`, is a [`FeedError::Signature`] naming the list.
pub(super) fn check(
    key: &PublicKey,
    list_url: &Url,
    sig_url: &Url,
    sig_file: &[u8],
    body: &[u8],
) -> Result<(), FeedError> {
    let bad = |reason: String| FeedError::Signature {
        url: list_url.to_string(),
        reason,
    };
    let text = std::str::from_utf8(sig_file)
        .map_err(|_| bad(format!("{sig_url} is not a text minisign signature")))?;
    let sig = Signature::decode(text).map_err(|e| bad(format!("cannot parse {sig_url}: {e}")))?;
    // Legacy (non-prehashed, "Ed") signatures are plain Ed25519 over the
    // file and as sound as prehashed ones for list sizes; accept both.
    key.verify(body, &sig, true).map_err(|e| bad(e.to_string()))
}
