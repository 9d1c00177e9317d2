//! DNS over TCP and over TLS (RFC 7766, RFC 7858): our own accept loop and connections; the
//! same loop takes DNS-over-HTTPS connections to [`super::doh`].
//!
//! hickory-server's TCP listener spawns a task for every connection it accepts, without
//! bound: 10,000 clients that connect and send nothing would hold 10,000 tasks and buffers
//! until each idle timeout. Here a connection first takes a permit from a fixed pool
//! (`server.tcp_max_connections`, shared by TCP, DoT and DoH); at the limit a new connection is
//! closed at once, so memory stays bounded and UDP is never starved. A connection is closed
//! when it stays idle for `server.tcp_idle_ms` (between queries, or mid-message), and a TLS
//! handshake gets the same time.
//!
//! Queries on one connection are answered in order, one at a time.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::handler::Handler;
use super::proxy::{self, TrustedProxies};
use super::wire;
use crate::metrics::Protocol;

/// Limits shared by every TCP, DoT and DoH listener of a server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// One permit per open connection.
    pub connections: Arc<Semaphore>,
    /// Close a connection idle for this long.
    pub idle: Duration,
}

impl Limits {
    /// At most `max` connections, each closed after `idle` without traffic.
    pub fn new(max: usize, idle: Duration) -> Self {
        Limits {
            connections: Arc::new(Semaphore::new(max)),
            idle,
        }
    }
}

/// What a listener speaks.
#[derive(Clone)]
pub enum Transport {
    /// DNS over TCP.
    Tcp,
    /// DNS over TLS, with this acceptor (ALPN `dot`).
    Dot(TlsAcceptor),
    /// DNS over HTTPS, with this acceptor (ALPN `h2`).
    Doh(TlsAcceptor),
}

/// Serves `transport` on `listener` until `stop`. Connections from `proxies` start with
/// a PROXY v2 header naming the client (before the TLS handshake, for DoT and DoH).
pub fn spawn(
    listener: TcpListener,
    transport: Transport,
    handler: Arc<Handler>,
    limits: Limits,
    proxies: Arc<TrustedProxies>,
    stop: CancellationToken,
) {
    tokio::spawn(accept_loop(
        listener, transport, handler, limits, proxies, stop,
    ));
}

async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
    handler: Arc<Handler>,
    limits: Limits,
    proxies: Arc<TrustedProxies>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                // Out of file descriptors, or a connection reset before we took it: wait a
                // moment rather than spin.
                tracing::debug!(%error, "TCP accept");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
            handler.metrics().tcp_rejected.increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (handler, stop, transport) = (handler.clone(), stop.clone(), transport.clone());
        let idle = limits.idle;
        let proxied = proxies.expects_header(peer.ip());
        tokio::spawn(async move {
            let gauge = &handler.metrics().tcp_connections;
            gauge.increment(1.0);
            let served = serve(stream, peer, proxied, transport, &handler, idle, &stop).await;
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "connection closed");
            }
            gauge.decrement(1.0);
            drop::<OwnedSemaphorePermit>(permit);
        });
    }
}

/// One connection from `peer`; with `proxied`, it starts with a PROXY v2 header and the
/// client it names is who the queries are from.
async fn serve(
    mut stream: TcpStream,
    mut peer: SocketAddr,
    proxied: bool,
    transport: Transport,
    handler: &Arc<Handler>,
    idle: Duration,
    stop: &CancellationToken,
) -> io::Result<()> {
    if proxied {
        peer = proxy::read_header(&mut stream, peer, idle)
            .await
            .inspect_err(|_| handler.metrics().proxy_invalid.increment(1))?;
    }
    match transport {
        Transport::Tcp => connection(stream, peer, Protocol::Tcp, handler, idle, stop).await,
        Transport::Dot(acceptor) => {
            let stream = handshake(&acceptor, stream, idle).await?;
            connection(stream, peer, Protocol::Dot, handler, idle, stop).await
        }
        Transport::Doh(acceptor) => {
            let stream = handshake(&acceptor, stream, idle).await?;
            super::doh::connection(stream, peer, handler, idle, stop).await
        }
    }
}

/// The TLS handshake, given `idle` to complete.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    idle: Duration,
) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    tokio::time::timeout(idle, acceptor.accept(stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))?
}

/// Reads length-prefixed queries and writes the replies until the client closes, stays
/// idle too long, or the server stops.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    protocol: Protocol,
    handler: &Handler,
    idle: Duration,
    stop: &CancellationToken,
) -> io::Result<()> {
    let mut packet = Vec::with_capacity(512);
    let mut out = Vec::with_capacity(512);
    let mut body = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        let first = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            r = tokio::time::timeout(idle, stream.read_exact(&mut len)) => r,
        };
        match first {
            Err(_) => return Ok(()), // idle
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        packet.resize(usize::from(u16::from_be_bytes(len)), 0);
        tokio::time::timeout(idle, stream.read_exact(&mut packet))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "message not completed"))??;
        let Some(_inflight) = handler.drain.enter() else {
            return Ok(());
        };
        let reply = match wire::step(handler, &packet, peer.ip(), protocol) {
            wire::Packet::Ignore => continue,
            wire::Packet::Reply(reply) => reply,
            wire::Packet::Upstream(upstream) => wire::finish(handler, upstream).await,
        };
        out.clear();
        out.extend_from_slice(&[0, 0]);
        wire::encode(&mut body, &reply, u16::MAX);
        let Ok(n) = u16::try_from(body.len()) else {
            continue;
        };
        out[..2].copy_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&body);
        tokio::time::timeout(idle, stream.write_all(&out))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client not reading"))??;
        stream.flush().await?;
    }
}
