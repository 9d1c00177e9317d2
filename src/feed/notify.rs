//! DNS NOTIFY (RFC 1996) from RPZ primaries: a small UDP + TCP listener per `notify_listen`
//! address, and [`NotifyRouter`], which any listener (this one, or the resolver's own port)
//! asks whether a NOTIFY is for a configured zone from its primary.
//!
//! A NOTIFY from any other address is dropped without an answer: it would let anyone make
//! the resolver hammer the primary, and silence is what a primary that is not ours
//! deserves. One from a primary we follow, for a zone of it we do not follow (a central
//! announces all its lists to every edge), is answered REFUSED, so it stops retrying.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::Name;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::dns::frame;
use crate::feed::xfr::{is_notify_for, notify_refusal, notify_response, notify_serial};

/// How long a TCP NOTIFY connection may take to deliver its message.
const TCP_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One zone whose primary may NOTIFY us.
#[derive(Debug, Clone)]
struct Route {
    source: String,
    zone: Name,
    primary: IpAddr,
    trigger: Arc<Notify>,
}

/// Matches NOTIFY messages to the RPZ sources they wake up.
#[derive(Debug, Clone, Default)]
pub struct NotifyRouter {
    routes: Vec<Route>,
}

impl NotifyRouter {
    /// Registers `zone` of source `source`, whose primary is at `primary`.
    pub fn add(&mut self, source: &str, zone: Name, primary: IpAddr, trigger: Arc<Notify>) {
        self.routes.push(Route {
            source: source.to_owned(),
            zone,
            primary,
            trigger,
        });
    }

    /// True when no zone is registered.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Handles the wire message `query` received from `from`: if it is a NOTIFY for a
    /// configured zone from that zone's primary, wakes the zone's task and returns the
    /// acknowledgement to send back. `None`: not ours, send nothing.
    ///
    /// The resolver's request handler can call this for opcode NOTIFY on its own port.
    pub fn handle(&self, from: IpAddr, query: &[u8]) -> Option<Vec<u8>> {
        let message = Message::from_vec(query).ok()?;
        let Some(route) = self
            .routes
            .iter()
            .find(|r| is_notify_for(&message, &r.zone))
        else {
            if self.routes.iter().any(|r| r.primary == from) {
                tracing::debug!(%from, "NOTIFY for a zone not followed from a known primary: REFUSED");
                return notify_refusal(query);
            }
            return None;
        };
        if route.primary != from {
            tracing::warn!(
                source = %route.source,
                %from,
                primary = %route.primary,
                "NOTIFY from an address that is not the zone's primary, ignored"
            );
            return None;
        }
        let ack = notify_response(query)?;
        tracing::info!(
            source = %route.source,
            serial = notify_serial(&message),
            "NOTIFY from the primary"
        );
        route.trigger.notify_one();
        Some(ack)
    }
}

/// Binds UDP and TCP on `addr` (the same port for both, also when `addr` has port 0)
/// and answers NOTIFYs through `router` until `stop`. Returns the bound address.
///
/// # Errors
/// The address cannot be bound.
pub async fn listen(
    addr: SocketAddr,
    router: Arc<NotifyRouter>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let (udp, tcp) = bind_pair(addr).await?;
    let bound = udp.local_addr()?;
    tokio::spawn(serve_udp(udp, router.clone(), stop.clone()));
    tokio::spawn(serve_tcp(tcp, router, stop));
    Ok(bound)
}

async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..if addr.port() == 0 { 20 } else { 1 } {
        let udp = UdpSocket::bind(addr).await?;
        match TcpListener::bind(udp.local_addr()?).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e), // port 0: the TCP side of that port was taken, retry
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("cannot bind")))
}

async fn serve_udp(udp: UdpSocket, router: Arc<NotifyRouter>, stop: CancellationToken) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, from) = tokio::select! {
            _ = stop.cancelled() => return,
            got = udp.recv_from(&mut buf) => match got {
                Ok(x) => x,
                Err(_) => continue, // e.g. ICMP errors surfacing on Linux
            },
        };
        if let Some(ack) = router.handle(from.ip(), &buf[..n]) {
            let _ = udp.send_to(&ack, from).await;
        }
    }
}

async fn serve_tcp(tcp: TcpListener, router: Arc<NotifyRouter>, stop: CancellationToken) {
    loop {
        let (conn, from) = tokio::select! {
            _ = stop.cancelled() => return,
            got = tcp.accept() => match got {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        let router = router.clone();
        tokio::spawn(async move {
            let _ =
                tokio::time::timeout(TCP_READ_TIMEOUT, serve_conn(conn, from.ip(), &router)).await;
        });
    }
}

/// Answers NOTIFYs on one connection (a primary may send several) until it closes.
async fn serve_conn(mut conn: TcpStream, from: IpAddr, router: &NotifyRouter) {
    while let Ok(Some(msg)) = frame::read(&mut conn).await {
        let Some(ack) = router.handle(from, &msg) else {
            return;
        };
        if frame::write(&mut conn, &ack).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::{MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::RecordType;

    use super::*;

    fn notify(zone: &str) -> Vec<u8> {
        let mut m = Message::new(4321, MessageType::Query, OpCode::Notify);
        m.add_query(Query::query(Name::from_str(zone).unwrap(), RecordType::SOA));
        m.to_vec().unwrap()
    }

    #[tokio::test]
    async fn accepts_only_the_primary_and_the_zone() {
        let trigger = Arc::new(Notify::new());
        let mut router = NotifyRouter::default();
        let primary: IpAddr = "127.0.0.1".parse().unwrap();
        router.add(
            "z",
            Name::from_str("kidsafe.rpz.").unwrap(),
            primary,
            trigger.clone(),
        );
        assert!(
            router
                .handle("127.0.0.2".parse().unwrap(), &notify("kidsafe.rpz."))
                .is_none()
        );
        // Its primary, another zone: REFUSED (it stops retrying); anyone else: silence.
        let refused = router.handle(primary, &notify("other.rpz.")).unwrap();
        let refused = Message::from_vec(&refused).unwrap();
        assert_eq!(refused.id, 4321);
        assert_eq!(refused.response_code, ResponseCode::Refused);
        assert!(
            router
                .handle("127.0.0.2".parse().unwrap(), &notify("other.rpz."))
                .is_none()
        );
        assert!(router.handle(primary, b"garbage").is_none());
        let ack = router.handle(primary, &notify("kidsafe.rpz.")).unwrap();
        let ack = Message::from_vec(&ack).unwrap();
        assert_eq!(ack.id, 4321);
        assert_eq!(ack.message_type, MessageType::Response);
        tokio::time::timeout(Duration::from_secs(1), trigger.notified())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn listener_answers_over_udp_and_tcp() {
        let trigger = Arc::new(Notify::new());
        let mut router = NotifyRouter::default();
        let zone = Name::from_str("kidsafe.rpz.").unwrap();
        router.add("z", zone, "127.0.0.1".parse().unwrap(), trigger.clone());
        let stop = CancellationToken::new();
        let addr = listen(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(router),
            stop.clone(),
        )
        .await
        .unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        udp.send_to(&notify("kidsafe.rpz."), addr).await.unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(2), udp.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Message::from_vec(&buf[..n]).unwrap().id, 4321);

        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let q = notify("kidsafe.rpz.");
        frame::write(&mut tcp, &q).await.unwrap();
        let ack = frame::read(&mut tcp).await.unwrap().unwrap();
        assert_eq!(Message::from_vec(&ack).unwrap().id, 4321);
        stop.cancel();
    }
}
