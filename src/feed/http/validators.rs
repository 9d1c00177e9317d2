//! Conditional GET: the [`Validators`] a download leaves behind and the request
//! headers they become on the next one.

use reqwest::header::{
    ETAG, HeaderMap, HeaderName, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED,
};
use serde::{Deserialize, Serialize};

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

    /// `If-None-Match` / `If-Modified-Since` for the next request; a value that is
    /// not a valid header value is left out, so the map can be empty.
    pub(super) fn request_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(etag) = self.etag.as_deref().and_then(|v| v.parse().ok()) {
            headers.insert(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = self.last_modified.as_deref().and_then(|v| v.parse().ok()) {
            headers.insert(IF_MODIFIED_SINCE, lm);
        }
        headers
    }

    /// The validators a 200 answer carries in its `ETag` / `Last-Modified` headers.
    pub(super) fn from_response(headers: &HeaderMap) -> Self {
        Self {
            etag: header_string(headers, ETAG),
            last_modified: header_string(headers, LAST_MODIFIED),
        }
    }
}

fn header_string(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|v| !v.is_empty())
}
