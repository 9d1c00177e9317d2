//! Reading a response body under a hard size cap.

use bytes::{Bytes, BytesMut};

/// Why [`read_capped`] gave up.
pub(super) enum ReadError {
    /// More than the cap: announced by `Content-Length` (`Some`) or seen while
    /// streaming (`None`).
    TooLarge { content_length: Option<u64> },
    /// The connection failed or timed out mid-body.
    Transport(reqwest::Error),
}

/// Reads the whole body, refusing more than `limit` bytes. The buffer grows
/// with what actually arrives (a lying Content-Length cannot make us reserve
/// more than the cap).
pub(super) async fn read_capped(
    resp: &mut reqwest::Response,
    limit: u64,
) -> Result<Bytes, ReadError> {
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
