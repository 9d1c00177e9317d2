//! The DNS server: hickory's `Server` on the sockets of every `server.listen` address,
//! answering through [`handler::Handler`].

pub mod handler;
pub mod listener;

use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;

pub use handler::Handler;

/// Bytes buffered per TCP connection for outgoing responses.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Binds every address (UDP + TCP) and registers it with a new hickory server.
///
/// # Errors
/// An address that cannot be bound; the error names it.
pub fn start(
    handler: Handler,
    listen: &[SocketAddr],
    tcp_idle: Duration,
) -> Result<(Server<Handler>, Vec<SocketAddr>), std::io::Error> {
    let mut server = Server::new(handler);
    let mut bound_addrs = Vec::with_capacity(listen.len());
    for &addr in listen {
        let bound = listener::bind(addr)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        tracing::info!(addr = %bound.addr, "listening on UDP and TCP");
        server.register_socket(bound.udp);
        server.register_listener(bound.tcp, tcp_idle, TCP_RESPONSE_BUFFER);
        bound_addrs.push(bound.addr);
    }
    Ok((server, bound_addrs))
}
