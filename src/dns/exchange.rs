//! Asking one server one question: over UDP from a fresh socket, or on a stream (TCP, TLS),
//! and taking only the reply that answers it.
//!
//! The policy around an exchange stays with its caller: the forwarder
//! (`upstream::forwarder`, `upstream::tls`) decides deadlines, retransmission, which server
//! is next and when to retry over TCP; the zone-transfer client (`feed::xfr`) decides its
//! own deadline, TCP fallback and TSIG checks. What they share is here: the socket, the
//! framing, and skipping what is not the reply.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout, timeout_at};

use super::frame;
use super::sockets::Lease;

/// Whether a UDP query is sent again while no reply has been taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Sent once; the caller's deadline ends the wait.
    Never,
    /// Sent again after `first` without a reply, then after twice as long each time, up to
    /// `max` between sends (UDP loses packets, and servers drop under rate limiting).
    Backoff {
        /// The wait before the first resend.
        first: Duration,
        /// The longest wait between two sends.
        max: Duration,
    },
}

/// Sends `query` to `server` over UDP from a socket on a random port (a new one, or one
/// this thread used for earlier queries to `server`: [`super::sockets`]) and returns
/// what `take` makes of the first datagram it accepts (`None` from `take`: not the reply,
/// keep waiting). Datagrams longer than `max_reply` are cut before `take` sees them.
///
/// There is no deadline here: the caller wraps the call in its own.
///
/// # Errors
/// The socket could not be bound, connected, written or read (an ICMP port unreachable
/// from the server surfaces here, since the socket is connected).
pub async fn udp<T>(
    server: SocketAddr,
    query: &[u8],
    max_reply: usize,
    resend: Resend,
    mut take: impl FnMut(&[u8]) -> Option<T>,
) -> io::Result<T> {
    let lease = Lease::take(server).await?;
    let socket = lease.socket();
    socket.send(query).await?;
    let mut buf = vec![0u8; max_reply];
    let (mut wait, max_wait) = match resend {
        Resend::Never => (Duration::ZERO, Duration::ZERO),
        Resend::Backoff { first, max } => (first, max),
    };
    // An absolute time, not a timeout per receive: datagrams that are ignored (garbage,
    // spoofs) must not push the retransmission back, or a server sending junk more often
    // than `wait` would stop it for good (tests/faults.rs).
    let mut resend_at = (resend != Resend::Never).then(|| Instant::now() + wait);
    loop {
        let n = match resend_at {
            None => socket.recv(&mut buf).await?,
            Some(at) => match timeout_at(at, socket.recv(&mut buf)).await {
                Ok(got) => got?,
                Err(_) => {
                    socket.send(query).await?;
                    wait = (wait * 2).min(max_wait);
                    resend_at = Some(Instant::now() + wait);
                    continue;
                }
            },
        };
        if let Some(reply) = take(&buf[..n]) {
            lease.done();
            return Ok(reply);
        }
    }
}

/// Sends `bytes` (the encoding of `sent`) on a TCP or TLS stream, two-octet length first,
/// and reads until the reply that [`answers`] it.
///
/// # Errors
/// The stream failed or closed, a message did not decode, or 30 s passed without a
/// message.
pub async fn stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    sent: &Message,
    bytes: &[u8],
) -> io::Result<Message> {
    frame::write(stream, bytes).await?;
    // A server may send unrelated messages first (it should not); read until ours.
    loop {
        let msg = timeout(Duration::from_secs(30), frame::read(stream))
            .await
            .map_err(io::Error::other)??
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        match Message::from_vec(&msg) {
            Ok(reply) if answers(sent, &reply) => return Ok(reply),
            Ok(_) => continue,
            Err(error) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    error.to_string(),
                ));
            }
        }
    }
}

/// True when `reply` answers `sent`: same ID, a response, the same opcode and the same
/// question; or a FORMERR that rejects the whole query, which need not echo the question.
pub fn answers(sent: &Message, reply: &Message) -> bool {
    reply.metadata.id == sent.metadata.id
        && reply.metadata.message_type == MessageType::Response
        // A reply with another opcode (say NOTIFY) is not an answer to our QUERY, whatever
        // its sections hold; it used to be relayed to the client (tests/faults.rs).
        && reply.metadata.op_code == sent.metadata.op_code
        && match reply.queries.as_slice() {
            [r] => sent.queries.first().is_some_and(|q| {
                r.query_type() == q.query_type()
                    && r.query_class() == q.query_class()
                    && r.name() == q.name()
            }),
            // Only a FORMERR can stand without the question, and it carries no answer.
            [] => {
                reply.metadata.response_code == ResponseCode::FormErr
                    && reply.answers.is_empty()
                    && reply.authorities.is_empty()
            }
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UdpSocket;

    #[tokio::test]
    async fn udp_resends_from_the_same_socket_and_skips_what_take_refuses() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            // The first send is "lost"; answer the resend, junk first.
            let (_, first) = server.recv_from(&mut buf).await.unwrap();
            let (n, again) = server.recv_from(&mut buf).await.unwrap();
            server.send_to(b"junk", again).await.unwrap();
            server.send_to(&buf[..n], again).await.unwrap();
            first == again
        });
        let resend = Resend::Backoff {
            first: Duration::from_millis(20),
            max: Duration::from_millis(40),
        };
        let reply = udp(addr, b"query", 512, resend, |datagram| {
            (datagram == b"query").then(|| datagram.to_vec())
        });
        let reply = timeout(Duration::from_secs(5), reply)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply, b"query");
        assert!(peer.await.unwrap(), "resent from the same port");
    }
}
