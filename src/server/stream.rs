//! DNS over TCP and over TLS (RFC 7766, RFC 7858): our own accept loop and connections; the
//! same loop takes DNS-over-HTTPS connections to `doh`.
//!
//! Connections are bounded, so clients that connect and send nothing cannot pile up tasks
//! and buffers until each idle timeout: a connection first takes a permit from a fixed pool
//! (`server.tcp_max_connections`, shared by TCP, DoT and DoH); at the limit a new connection is
//! closed at once, so memory stays bounded and UDP is never starved. A connection is closed
//! when it stays idle for `server.tcp_idle_ms` (between queries, or mid-message), and a TLS
//! handshake gets the same time.
//!
//! Queries on one connection are answered concurrently, each reply written when ready
//! (RFC 7766 §6.2.1.1), at most [`MAX_PENDING`] waiting on upstream at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hickory_proto::op::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::handler::{Handler, Reply};
use super::proxy::{self, TrustedProxies};
use super::wire;
use crate::dns::frame;
use crate::metrics::Protocol;
use crate::policy::Client;
use crate::policy::client::ClientId;
use crate::shutdown::InFlightOwned;

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
    let mut client = Client::from_addr(peer.ip());
    match transport {
        Transport::Tcp => {
            // Borrowed halves of a TCP stream need no lock (tokio::io::split takes one on
            // every read and write).
            let halves = stream.split();
            connection(halves, &client, Protocol::Tcp, handler, idle, stop).await
        }
        // The TLS branches are boxed: a task's future is as large as its largest state
        // (a TLS handshake, an HTTP/2 connection), and every plain TCP connection's task
        // would be moved into place at that size. Measured (BENCHMARKS.md): memmove went
        // from 12.7 % to 10.1 % of the server's samples on DoH; qps within the noise.
        Transport::Dot(acceptor) => {
            Box::pin(async move {
                let stream = handshake(&acceptor, stream, idle).await?;
                client.client_id = sni_client_id(&stream, handler);
                let halves = tokio::io::split(stream);
                connection(halves, &client, Protocol::Dot, handler, idle, stop).await
            })
            .await
        }
        Transport::Doh(acceptor) => {
            Box::pin(async move {
                let stream = handshake(&acceptor, stream, idle).await?;
                client.client_id = sni_client_id(&stream, handler);
                super::doh::connection(stream, client, handler, idle, stop).await
            })
            .await
        }
    }
}

/// The ClientID in the server name the client sent in its TLS hello
/// (`{id}.{server.client_id_domain}`: [`super::identity::Identify::sni`]).
fn sni_client_id(
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
    handler: &Handler,
) -> Option<ClientId> {
    let name = stream.get_ref().1.server_name();
    handler.identity().sni(name, &handler.metrics().identity)
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

/// Reads length-prefixed queries from `client` and writes the replies until the client closes, stays
/// idle too long, or the server stops.
///
/// Queries are answered concurrently and each reply is written when it is ready (RFC 7766
/// §6.2.1.1: clients match replies by ID): a blocked name or a cache hit pipelined behind a
/// slow upstream miss is not held back by it. That matters for DoT clients that send
/// everything over one connection (Android's Private DNS does). At most [`MAX_PENDING`]
/// queries of a connection wait on upstream at once; past that it is not read until one
/// is answered. Reading is cancel-safe (whole frames are cut from a buffer), so a reply
/// that becomes ready mid-message loses nothing.
///
/// A blocked name or a cache hit is written on bytes by the fast path, as on UDP
/// ([`fastpath`]); any other decision goes to the general path ([`wire`]) as made.
async fn connection<R, W>(
    (mut reader, mut writer): (R, W),
    client: &Client,
    protocol: Protocol,
    handler: &Arc<Handler>,
    idle: Duration,
    stop: &CancellationToken,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Most connections carry one small query (a stub falling back from a truncated UDP
    // reply); the buffer grows for a pipelining client.
    let mut buf = BytesMut::with_capacity(512);
    let mut framed = Framed::default();
    // Each reply with the drain guard that keeps shutdown waiting until it is written.
    let mut pending: JoinSet<(Message, InFlightOwned)> = JoinSet::new();
    // No more reading: the client closed its side, or the server is stopping.
    let mut done_reading = false;
    loop {
        while pending.len() < MAX_PENDING
            && let Some(packet) = frame::split(&mut buf)
        {
            let Some(inflight) = handler.drain.enter() else {
                return Ok(());
            };
            match wire::answer_into(handler, &packet, client, protocol, &mut framed.body) {
                None => framed.write_body(&mut writer, idle).await?,
                Some(Reply::Silent) => {}
                Some(Reply::Now(reply)) => {
                    framed.write(&mut writer, &reply, idle).await?;
                }
                Some(Reply::Upstream(waiting)) => {
                    let inflight = inflight.into_owned(handler.drain.clone());
                    let handler = handler.clone();
                    pending.spawn(async move {
                        let reply = handler.finish(waiting).await;
                        (reply, inflight)
                    });
                }
            }
        }
        if done_reading && pending.is_empty() {
            return Ok(());
        }
        let can_read = !done_reading && pending.len() < MAX_PENDING;
        tokio::select! {
            () = stop.cancelled(), if !done_reading => done_reading = true,
            Some(joined) = pending.join_next(), if !pending.is_empty() => {
                if let Ok((reply, _inflight)) = joined {
                    framed.write(&mut writer, &reply, idle).await?;
                }
            }
            read = tokio::time::timeout(idle, reader.read_buf(&mut buf)), if can_read => match read {
                // Idle (between messages or mid-message) with nothing owed: close.
                Err(_) if pending.is_empty() => return Ok(()),
                Err(_) => {}
                Ok(Ok(0)) => done_reading = true,
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => done_reading = true,
                Ok(Err(e)) => return Err(e),
            },
        }
    }
}

/// Queries of one connection waiting on upstream at once.
pub const MAX_PENDING: usize = 32;

/// A connection's reply buffers, reused for every reply it writes.
#[derive(Default)]
struct Framed {
    body: Vec<u8>,
    out: Vec<u8>,
}

impl Framed {
    /// Writes `reply`, length first, in one write; the client gets `idle` to take it.
    async fn write<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        reply: &Message,
        idle: Duration,
    ) -> io::Result<()> {
        crate::dns::encode::encode(&mut self.body, reply, u16::MAX);
        self.write_body(writer, idle).await
    }

    /// Writes the reply already in `body` (from the fast path or [`Framed::write`]).
    async fn write_body<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        idle: Duration,
    ) -> io::Result<()> {
        self.out.clear();
        if frame::put(&mut self.out, &self.body).is_err() {
            // The encoder caps at 65535, so this cannot happen; never send a bad frame.
            return Ok(());
        }
        tokio::time::timeout(idle, async {
            writer.write_all(&self.out).await?;
            writer.flush().await
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "client not reading"))?
    }
}
