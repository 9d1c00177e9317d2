//! Binding the UDP and TCP sockets for each `server.listen` address.
//!
//! Built with socket2 so IPv6 sockets are IPv6-only (`[::]:53` and `0.0.0.0:53` can both be
//! configured) and TCP reuses the address (a restart does not wait out TIME_WAIT). Port 0
//! picks a free port and uses the same number for UDP and TCP, which is what tests want.
//!
//! UDP can be several sockets on one address with `SO_REUSEPORT`, one per receive thread
//! ([`super::udp`]), so the kernel spreads the datagrams and every core receives. They are
//! returned as std sockets: each is registered with its own thread's runtime.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use std::net::UdpSocket;

use tokio::net::TcpListener;

/// One address served over both transports.
#[derive(Debug)]
pub struct Bound {
    /// The UDP sockets, non-blocking (several share the address with `SO_REUSEPORT`).
    pub udp: Vec<UdpSocket>,
    /// The TCP listener.
    pub tcp: TcpListener,
    /// The address both are bound to (the real port when 0 was asked for).
    pub addr: SocketAddr,
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    // Room for a burst of queries while the workers are busy.
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// A TCP listener on `addr` (IPv6-only for IPv6, address reuse, a backlog of 1024).
///
/// # Errors
/// The address is in use, not local, or needs privileges.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// `count` UDP sockets on `addr` sharing it with `SO_REUSEPORT` (one plain socket when
/// `count` is 1).
fn bind_udp_group(addr: SocketAddr, count: usize) -> io::Result<Vec<UdpSocket>> {
    if count <= 1 {
        return Ok(vec![bind_udp(addr, false)?]);
    }
    // A plain bind first, dropped at once: if the port is taken (another resolver, a stale
    // instance) this fails like a single socket would, instead of silently sharing the
    // port with it through SO_REUSEPORT.
    drop(bind_udp(addr, false)?);
    (0..count).map(|_| bind_udp(addr, true)).collect()
}

/// Binds UDP and TCP on `addr`, with `udp_sockets` UDP sockets on it. Port 0 gets a single
/// UDP socket: `SO_REUSEPORT` on an ephemeral port could share it with another socket of
/// the same user that also picked port 0.
///
/// # Errors
/// The address is in use, not local, or needs privileges (ports below 1024).
pub fn bind(addr: SocketAddr, udp_sockets: usize) -> io::Result<Bound> {
    if addr.port() != 0 {
        let udp = bind_udp_group(addr, udp_sockets)?;
        let tcp = bind_tcp(addr)?;
        return Ok(Bound { udp, tcp, addr });
    }
    let mut last = None;
    for _ in 0..20 {
        let udp = bind_udp(addr, false)?;
        let addr = udp.local_addr()?;
        match bind_tcp(addr) {
            Ok(tcp) => {
                return Ok(Bound {
                    udp: vec![udp],
                    tcp,
                    addr,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}
