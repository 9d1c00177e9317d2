//! DNS over a stream (TCP, TLS): each message is preceded by its length as two octets
//! (RFC 1035 §4.2.2, RFC 7766 §8). Written once here for the server's connections, the
//! forwarder's TCP/TLS exchanges, zone transfers and NOTIFY.

use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Appends `msg` to `out` with its two-octet length in front.
///
/// # Errors
/// `InvalidInput` when `msg` is longer than 65535 octets (it cannot be framed).
pub fn put(out: &mut Vec<u8>, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "DNS message over 65535 bytes"))?;
    out.reserve(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Ok(())
}

/// Writes `msg`, length first, in one write, and flushes (TLS holds records until then).
///
/// # Errors
/// The message is too long to frame, or the stream failed.
pub async fn write<W: AsyncWrite + Unpin>(stream: &mut W, msg: &[u8]) -> io::Result<()> {
    let mut out = Vec::new();
    put(&mut out, msg)?;
    stream.write_all(&out).await?;
    stream.flush().await
}

/// Reads one message; `None` on a clean end of stream between messages.
///
/// # Errors
/// The stream failed or ended inside a message.
pub async fn read<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut msg).await?;
    Ok(Some(msg))
}

/// The next whole message in `buf` (bytes read so far from a stream), cut from it; `None`
/// until all of it has arrived.
pub fn split(buf: &mut BytesMut) -> Option<BytesMut> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    if buf.len() < 2 + len {
        return None;
    }
    let mut frame = buf.split_to(2 + len);
    Some(frame.split_off(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_waits_for_the_whole_message_and_leaves_the_rest() {
        let mut out = Vec::new();
        put(&mut out, b"abc").unwrap();
        put(&mut out, b"de").unwrap();
        let mut buf = BytesMut::from(&out[..4]);
        assert!(split(&mut buf).is_none());
        buf.extend_from_slice(&out[4..]);
        assert_eq!(&split(&mut buf).unwrap()[..], b"abc");
        assert_eq!(&split(&mut buf).unwrap()[..], b"de");
        assert!(split(&mut buf).is_none() && buf.is_empty());
    }

    #[test]
    fn a_message_too_long_to_frame_is_an_error() {
        let mut out = Vec::new();
        assert!(put(&mut out, &vec![0; 65536]).is_err());
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn read_returns_none_at_a_clean_end() {
        let mut out = Vec::new();
        put(&mut out, b"xyz").unwrap();
        let mut stream = &out[..];
        assert_eq!(
            read(&mut stream).await.unwrap().as_deref(),
            Some(&b"xyz"[..])
        );
        assert!(read(&mut stream).await.unwrap().is_none());
        let mut cut = &out[..3];
        assert!(read(&mut cut).await.is_err(), "ended inside a message");
    }
}
