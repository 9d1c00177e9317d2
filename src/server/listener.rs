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

/// `error` from binding `what` (DNS, DoT, admin API, ...) on `addr`, with a message that
/// names the address and, for the two usual first-day failures, what to do: for a port in
/// use, the programs that usually hold DNS ports; for a port below 1024 refused,
/// `CAP_NET_BIND_SERVICE`. The error kind is kept.
pub fn bind_error(addr: SocketAddr, what: &str, error: &io::Error) -> io::Error {
    let port = addr.port();
    let hint = match error.kind() {
        io::ErrorKind::AddrInUse => format!(
            "; another program holds port {port}: often systemd-resolved (port 53, \
             DNSStubListener=no in /etc/systemd/resolved.conf), dnsmasq (libvirt, \
             NetworkManager), avahi-daemon (mDNS, port 5353) or another kidsafe-dns; \
             `ss -lntup 'sport = :{port}'` shows which"
        ),
        io::ErrorKind::PermissionDenied if port != 0 && port < 1024 => format!(
            "; ports below 1024 need CAP_NET_BIND_SERVICE: run under the systemd unit \
             (deploy/systemd/, AmbientCapabilities=CAP_NET_BIND_SERVICE), grant it with \
             `sudo setcap cap_net_bind_service=+ep {}`, or listen on a port above 1023",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/usr/local/bin/kidsafe-dns".into())
        ),
        _ => String::new(),
    };
    io::Error::new(
        error.kind(),
        format!("cannot listen for {what} on {addr}: {error}{hint}"),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_names_the_usual_suspects() {
        let addr: SocketAddr = "0.0.0.0:53".parse().unwrap();
        let e = bind_error(addr, "DNS", &io::Error::from(io::ErrorKind::AddrInUse));
        let text = e.to_string();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        for name in [
            "0.0.0.0:53",
            "systemd-resolved",
            "dnsmasq",
            "avahi",
            "another kidsafe-dns",
        ] {
            assert!(text.contains(name), "{name}: {text}");
        }
    }

    #[test]
    fn a_low_port_refused_names_cap_net_bind_service() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let text = bind_error("[::]:53".parse().unwrap(), "DNS", &denied).to_string();
        assert!(
            text.contains("CAP_NET_BIND_SERVICE")
                && text.contains("setcap cap_net_bind_service=+ep"),
            "{text}"
        );
        // Above 1023 a refusal has another cause (SELinux, a sandbox): no capability hint.
        let text = bind_error("127.0.0.1:10053".parse().unwrap(), "DNS", &denied).to_string();
        assert!(!text.contains("CAP_NET_BIND_SERVICE"), "{text}");
    }
}
