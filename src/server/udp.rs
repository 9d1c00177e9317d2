//! The UDP fast path: kidsafe-dns's own receive loop per UDP socket.
//!
//! hickory-server spawns a task per UDP request and passes every answer back to the socket
//! task through a channel (a task wake-up per answer). This loop instead answers whatever
//! [`Handler::step`] can answer without waiting (blocked names, refusals, errors,
//! SafeSearch CNAMEs, fresh cache hits) right where it received the query, and spawns a
//! task only for a query that must wait on upstream; that task sends its reply on the same
//! (shared) socket.
//!
//! Decoding and encoding are [`wire`]'s; nothing is sent to port 0 or to an unspecified or
//! broadcast address. Replies are encoded under the client's UDP payload size (512 without
//! EDNS), which truncates with TC=1 exactly as hickory-server's `MessageResponse::encode`
//! does.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::Message;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::handler::Handler;
use super::{fastpath, wire};
use crate::metrics::Protocol;
use crate::upstream::forwarder::EDNS_PAYLOAD;

/// Largest query read (as hickory-server's UDP stream); longer datagrams are cut, and fail
/// to decode.
const RECEIVE_BUFFER: usize = 4096;

/// Datagrams handled in a row before the loop yields to the other tasks of its thread
/// (upstream tasks, TCP): reading with `try_recv_from` does not use tokio's budget.
const BURST: u32 = 64;

/// Starts the receive loop on `socket`; it stops receiving when `stop` is cancelled (tasks
/// it spawned still send their replies, which the drain waits for).
pub fn spawn(socket: UdpSocket, handler: Arc<Handler>, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(serve(Arc::new(socket), handler, stop))
}

async fn serve(socket: Arc<UdpSocket>, handler: Arc<Handler>, stop: CancellationToken) {
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut out = Vec::with_capacity(usize::from(EDNS_PAYLOAD));
    let mut burst = 0u32;
    loop {
        if stop.is_cancelled() {
            break;
        }
        match socket.try_recv_from(&mut buf) {
            Ok((len, src)) => {
                if let Some(packet) = buf.get(..len) {
                    handle(&socket, &handler, packet, src, &mut out).await;
                }
                burst += 1;
                if burst >= BURST {
                    burst = 0;
                    tokio::task::yield_now().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                burst = 0;
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    ready = socket.readable() => if let Err(error) = ready {
                        tracing::error!(%error, "UDP socket failed, no longer receiving");
                        break;
                    },
                }
            }
            Err(error) => {
                // E.g. an ICMP error reported on the socket: not fatal.
                tracing::debug!(%error, "UDP receive");
                tokio::task::yield_now().await;
            }
        }
    }
}

/// One datagram: answered inline, handed to a task, or ignored.
async fn handle(
    socket: &Arc<UdpSocket>,
    handler: &Arc<Handler>,
    packet: &[u8],
    src: SocketAddr,
    out: &mut Vec<u8>,
) {
    if !answerable(src) {
        return;
    }
    let Some(inflight) = handler.drain.enter() else {
        // Shutting down: drop it; the client retries another server.
        return;
    };
    let mut admission = None;
    if let Some(request) = fastpath::Request::parse(packet) {
        match fastpath::answer(handler, &request, src, Protocol::Udp, out) {
            fastpath::Fast::Replied => {
                if let Err(error) = socket.send_to(out, src).await {
                    tracing::debug!(%error, dst = %src, "could not send the response");
                }
                return;
            }
            fastpath::Fast::General(a) => admission = Some(a),
        }
    }
    match wire::step_with(handler, packet, src.ip(), Protocol::Udp, admission) {
        wire::Packet::Reply(reply) => send(socket, out, &reply, src).await,
        wire::Packet::Ignore => {}
        wire::Packet::Upstream(upstream) => {
            let inflight = inflight.into_owned(handler.drain.clone());
            let (socket, handler) = (socket.clone(), handler.clone());
            tokio::spawn(async move {
                let reply = wire::finish(&handler, upstream).await;
                let mut out = Vec::with_capacity(512);
                send(&socket, &mut out, &reply, src).await;
                drop(inflight);
            });
        }
    }
}

/// Encodes `reply` for UDP into `out` and sends it; a failure is logged, not fatal.
async fn send(socket: &UdpSocket, out: &mut Vec<u8>, reply: &Message, dst: SocketAddr) {
    wire::encode(out, reply, wire::udp_limit(reply));
    if let Err(error) = socket.send_to(out, dst).await {
        tracing::debug!(%error, %dst, "could not send the response");
    }
}

/// Whether a reply may go to `src` (hickory-server's rule): not port 0, not an unspecified
/// or broadcast address.
fn answerable(src: SocketAddr) -> bool {
    if src.port() == 0 {
        return false;
    }
    match src.ip() {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast()),
        IpAddr::V6(v6) => !v6.is_unspecified(),
    }
}
