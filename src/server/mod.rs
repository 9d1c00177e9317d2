//! The DNS server: our own UDP receive loops ([`udp`]) and hickory's `Server` for TCP on
//! every `server.listen` address, both answering through [`handler::Handler`].

pub mod handler;
pub mod listener;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use tokio_util::sync::CancellationToken;

pub use handler::Handler;

/// Bytes buffered per TCP connection for outgoing responses.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Binds every address (UDP + TCP): TCP is registered with a new hickory server, each UDP
/// socket (one per runtime worker thread, sharing the address with `SO_REUSEPORT`) gets a
/// receive loop that stops when `stop` is cancelled.
///
/// # Errors
/// An address that cannot be bound; the error names it.
pub fn start(
    handler: Handler,
    listen: &[SocketAddr],
    tcp_idle: Duration,
    stop: CancellationToken,
) -> Result<(Server<Handler>, Vec<SocketAddr>), std::io::Error> {
    let workers = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(1);
    let shared = Arc::new(handler.clone());
    let mut server = Server::new(handler);
    // Bind everything first: a failure must not leave loops running on the addresses
    // bound before it.
    let mut bound = Vec::with_capacity(listen.len());
    for &addr in listen {
        let b = listener::bind(addr, workers)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        bound.push(b);
    }
    let mut bound_addrs = Vec::with_capacity(listen.len());
    for b in bound {
        tracing::info!(addr = %b.addr, udp_sockets = b.udp.len(), "listening on UDP and TCP");
        for socket in b.udp {
            udp::spawn(socket, shared.clone(), stop.clone());
        }
        server.register_listener(b.tcp, tcp_idle, TCP_RESPONSE_BUFFER);
        bound_addrs.push(b.addr);
    }
    Ok((server, bound_addrs))
}
