//! Connected UDP sockets to upstream servers, reused for a few queries instead of opened
//! and closed for each.
//!
//! Why: a miss used to cost a socket, a bind to a random port, a connect, two `epoll_ctl`s
//! and a close, about a fifth of the server's CPU per forwarded query (benches/load/
//! xdp_compare.sh, "miss" mix, BENCHMARKS.md). A socket that has carried a query and got
//! its reply is kept, connected to that server, and the next query to the same server from
//! the same thread takes it.
//!
//! Spoofing resistance stays what it was: every socket is still bound to a random port
//! chosen by the kernel, connected (the kernel drops datagrams from anyone but the server),
//! each query has a random ID and only the reply that answers it is taken; what changes is
//! that a port now carries up to [`MAX_USES`] queries in turn, never two at once. The
//! ports open at one time are still one per query in flight plus at most [`MAX_IDLE`]
//! idle ones per server and thread, the same exposure as Unbound's `outgoing-range`. A
//! socket whose exchange failed, timed out or was abandoned is closed, never reused, so a
//! late reply to it cannot be mistaken for another's.
//!
//! Pools are per thread: the UDP loops each run their own single-thread runtime, and a
//! socket stays registered with the runtime that opened it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

/// Queries one socket carries before it is closed (a fresh random port after that).
pub const MAX_USES: u32 = 64;

/// Idle sockets kept per server and thread.
pub const MAX_IDLE: usize = 64;

thread_local! {
    static IDLE: RefCell<HashMap<SocketAddr, Vec<(UdpSocket, u32)>>> =
        RefCell::new(HashMap::new());
}

/// A socket connected to one server, lent for one exchange. Dropped without
/// [`Lease::done`], it is closed.
pub struct Lease {
    socket: UdpSocket,
    server: SocketAddr,
    uses: u32,
}

impl Lease {
    /// An idle socket to `server` of this thread's, or a new one on a random port.
    ///
    /// # Errors
    /// A new socket could not be bound or connected.
    pub async fn take(server: SocketAddr) -> io::Result<Lease> {
        let idle = IDLE.with(|idle| {
            idle.borrow_mut()
                .get_mut(&server)
                .and_then(|sockets| sockets.pop())
        });
        let (socket, uses) = match idle {
            Some(found) => found,
            None => (connect(server).await?, 0),
        };
        Ok(Lease {
            socket,
            server,
            uses: uses + 1,
        })
    }

    /// The socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The exchange got its reply: the socket goes back to this thread's idle sockets,
    /// unless it has carried [`MAX_USES`] queries or enough are idle already.
    pub fn done(self) {
        let Lease {
            socket,
            server,
            uses,
        } = self;
        if uses >= MAX_USES {
            return;
        }
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let sockets = idle.entry(server).or_default();
            if sockets.len() < MAX_IDLE {
                sockets.push((socket, uses));
            }
        });
    }
}

/// A new socket on a random port of the unspecified address, connected to `server`:
/// replies from anyone but the server are filtered by the kernel, and an ICMP port
/// unreachable surfaces as an error instead of a timeout.
async fn connect(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn port(lease: &Lease) -> u16 {
        lease.socket().local_addr().map(|a| a.port()).unwrap_or(0)
    }

    #[tokio::test]
    async fn a_socket_is_reused_after_a_reply_and_closed_after_a_failure() {
        let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let first = Lease::take(server).await.unwrap();
        let p1 = port(&first).await;
        first.done();
        let again = Lease::take(server).await.unwrap();
        assert_eq!(port(&again).await, p1, "the idle socket is taken again");
        // Abandoned (no reply): dropped, not reused.
        drop(again);
        let fresh = Lease::take(server).await.unwrap();
        assert_ne!(port(&fresh).await, p1);
        assert_eq!(fresh.uses, 1);
    }

    #[tokio::test]
    async fn a_socket_is_retired_after_max_uses() {
        let server: SocketAddr = "127.0.0.1:7".parse().unwrap();
        let mut ports = std::collections::HashSet::new();
        for _ in 0..MAX_USES + 1 {
            let lease = Lease::take(server).await.unwrap();
            ports.insert(port(&lease).await);
            lease.done();
        }
        assert_eq!(ports.len(), 2, "a new port after {MAX_USES} queries");
    }
}
