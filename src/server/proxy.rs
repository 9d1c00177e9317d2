//! The PROXY protocol, version 2 (HAProxy's spec), from trusted load balancers.
//!
//! Behind dnsdist every query arrives from dnsdist's address, so the closed-resolver check,
//! the rate limit and the client groups would all see one client. With
//! `useProxyProtocol=true` dnsdist puts a binary PROXY v2 header naming the subscriber in
//! front of every UDP datagram and at the start of every TCP connection; the addresses in
//! `server.proxy_protocol_from` must send one, and the client it names is who the query is
//! from. The reply still goes to the load balancer, without a header. As in PowerDNS
//! Recursor's `proxy-protocol-from`, traffic from those addresses without a valid header is
//! dropped (anyone could otherwise pose as the load balancer's clients by leaving it out,
//! or the other way round), and traffic from anyone else is plain DNS: a header there is
//! not trusted, it is just a malformed query.
//!
//! A LOCAL header (the balancer's own health check) or one without an IP address family
//! stands for the balancer itself. The header is parsed by the `ppp` crate.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use ppp::v2::{Addresses, Command, Header, PROTOCOL_PREFIX};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::policy::access::AccessList;

/// The fixed part of a v2 header: the 12-byte signature, version and command, family and
/// protocol, and the 2-byte length of what follows.
const MINIMUM_LENGTH: usize = 16;

/// The load balancers whose traffic carries a PROXY v2 header.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    /// `None` when the PROXY protocol is off: no lookup per datagram then.
    nets: Option<AccessList>,
}

impl TrustedProxies {
    /// Trusts `nets` (`server.proxy_protocol_from`); empty turns the PROXY protocol off.
    pub fn new(nets: &[IpNet]) -> Self {
        TrustedProxies {
            nets: (!nets.is_empty()).then(|| AccessList::new(nets)),
        }
    }

    /// True when traffic from `peer` must start with a PROXY v2 header.
    pub fn expects_header(&self, peer: IpAddr) -> bool {
        self.nets.as_ref().is_some_and(|nets| nets.allows(peer))
    }
}

/// The client a complete header at the start of `bytes` names (or `peer` for a LOCAL or
/// address-less header), and the header's length.
///
/// # Errors
/// No complete, valid PROXY v2 header starts `bytes`.
pub fn parse(bytes: &[u8], peer: SocketAddr) -> Result<(SocketAddr, usize), ppp::v2::ParseError> {
    let header = Header::try_from(bytes)?;
    let client = match (header.command, header.addresses) {
        (Command::Proxy, Addresses::IPv4(a)) => SocketAddr::from((a.source_address, a.source_port)),
        (Command::Proxy, Addresses::IPv6(a)) => SocketAddr::from((a.source_address, a.source_port)),
        _ => peer,
    };
    Ok((client, header.len()))
}

/// A datagram from `src`: the client it is from and the DNS message in it. `None` when a
/// trusted balancer's datagram has no valid header (it is dropped).
pub fn datagram<'a>(
    proxies: &TrustedProxies,
    packet: &'a [u8],
    src: SocketAddr,
) -> Option<(SocketAddr, &'a [u8])> {
    if !proxies.expects_header(src.ip()) {
        return Some((src, packet));
    }
    match parse(packet, src) {
        Ok((client, len)) => packet.get(len..).map(|rest| (client, rest)),
        Err(error) => {
            tracing::debug!(%src, %error, "datagram from a PROXY protocol source without a valid header, dropped");
            None
        }
    }
}

/// Reads the header that starts a connection from a trusted balancer `peer` and returns
/// the client it names. The header must arrive within `idle`.
///
/// # Errors
/// The connection closed or stalled before a whole header, or the header is invalid.
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    peer: SocketAddr,
    idle: Duration,
) -> io::Result<SocketAddr> {
    let invalid = |e: ppp::v2::ParseError| io::Error::new(io::ErrorKind::InvalidData, e);
    let read = async {
        let mut bytes = vec![0u8; MINIMUM_LENGTH];
        stream.read_exact(&mut bytes).await?;
        // Refuse anything else before waiting on a length it claims.
        if !bytes.starts_with(PROTOCOL_PREFIX) {
            return Err(invalid(ppp::v2::ParseError::Prefix));
        }
        let len = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
        bytes.resize(MINIMUM_LENGTH + len, 0);
        stream.read_exact(&mut bytes[MINIMUM_LENGTH..]).await?;
        parse(&bytes, peer)
            .map(|(client, _)| client)
            .map_err(invalid)
    };
    tokio::time::timeout(idle, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "PROXY protocol header"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Protocol, Version};

    fn header(command: Command, client: SocketAddr) -> Vec<u8> {
        let dst: SocketAddr = if client.is_ipv4() {
            "192.0.2.53:53".parse().unwrap()
        } else {
            "[2001:db8::53]:53".parse().unwrap()
        };
        Builder::with_addresses(Version::Two | command, Protocol::Datagram, (client, dst))
            .build()
            .unwrap()
    }

    const LB: &str = "127.0.0.1:40000";

    #[test]
    fn the_client_named_by_a_proxy_header_and_the_message_after_it() {
        let proxies = TrustedProxies::new(&["127.0.0.0/8".parse().unwrap()]);
        for client in ["10.1.2.3:5353", "[2001:db8::7]:1234"] {
            let client: SocketAddr = client.parse().unwrap();
            let mut packet = header(Command::Proxy, client);
            packet.extend_from_slice(b"dns");
            let got = datagram(&proxies, &packet, LB.parse().unwrap());
            assert_eq!(got, Some((client, &b"dns"[..])));
        }
    }

    #[test]
    fn a_local_header_stands_for_the_balancer() {
        let proxies = TrustedProxies::new(&["127.0.0.0/8".parse().unwrap()]);
        let mut packet = header(Command::Local, "10.1.2.3:5353".parse().unwrap());
        packet.extend_from_slice(b"dns");
        let lb: SocketAddr = LB.parse().unwrap();
        assert_eq!(datagram(&proxies, &packet, lb), Some((lb, &b"dns"[..])));
    }

    #[test]
    fn a_trusted_source_without_a_valid_header_is_dropped() {
        let proxies = TrustedProxies::new(&["127.0.0.0/8".parse().unwrap()]);
        let good = header(Command::Proxy, "10.1.2.3:5353".parse().unwrap());
        let lb: SocketAddr = LB.parse().unwrap();
        let mut bad_version = good.clone();
        bad_version[12] = 0x11;
        let mut too_long = good.clone();
        too_long[15] = 0xff;
        for (what, packet) in [
            (
                "plain DNS",
                b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00".to_vec(),
            ),
            ("empty", Vec::new()),
            ("cut", good[..20].to_vec()),
            ("version 1", bad_version),
            ("length past the end", too_long),
            (
                "text v1",
                b"PROXY TCP4 10.1.2.3 127.0.0.1 1 53\r\n".to_vec(),
            ),
        ] {
            assert_eq!(datagram(&proxies, &packet, lb), None, "{what}");
        }
    }

    #[test]
    fn untrusted_sources_and_no_proxies_mean_plain_dns() {
        let packet = header(Command::Proxy, "10.1.2.3:5353".parse().unwrap());
        let other: SocketAddr = "192.0.2.9:999".parse().unwrap();
        let proxies = TrustedProxies::new(&["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            datagram(&proxies, &packet, other),
            Some((other, &packet[..]))
        );
        let none = TrustedProxies::new(&[]);
        let lb: SocketAddr = LB.parse().unwrap();
        assert_eq!(datagram(&none, &packet, lb), Some((lb, &packet[..])));
    }

    #[tokio::test]
    async fn a_stream_header_arriving_in_pieces() {
        let client: SocketAddr = "10.9.8.7:4444".parse().unwrap();
        let mut bytes = header(Command::Proxy, client);
        bytes.extend_from_slice(b"\x00\x0c");
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in bytes.chunks(5) {
                a.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            a
        });
        let got = read_header(&mut b, LB.parse().unwrap(), Duration::from_secs(2)).await;
        assert_eq!(got.unwrap(), client);
        // What follows the header is left for the DNS reader.
        let mut next = [0u8; 2];
        b.read_exact(&mut next).await.unwrap();
        assert_eq!(next, [0, 12]);
        drop(writer.await);
    }

    #[tokio::test]
    async fn a_stream_without_a_header_is_refused_at_once() {
        let (mut a, mut b) = tokio::io::duplex(64);
        use tokio::io::AsyncWriteExt;
        // A whole plain query (www.example. A), not a header.
        a.write_all(b"\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x00\x00\x01\x00\x01")
            .await
            .unwrap();
        let got = read_header(&mut b, LB.parse().unwrap(), Duration::from_secs(60)).await;
        assert_eq!(got.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
