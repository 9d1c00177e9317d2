//! The UDP fast path: kidsafe-dns's own receive loop per UDP socket.
//!
//! hickory-server spawns a task per UDP request and passes every answer back to the socket
//! task through a channel (a task wake-up per answer). This loop instead answers whatever
//! [`Handler::step`] can answer without waiting (blocked names, refusals, errors,
//! SafeSearch CNAMEs, fresh cache hits) right where it received the query, and spawns a
//! task only for a query that must wait on upstream; that task sends its reply on the same
//! (shared) socket. TCP stays on hickory-server.
//!
//! What hickory-server did before the handler ran is kept: datagrams shorter than a header
//! are ignored, a header followed by something undecodable gets FORMERR (no question, no
//! OPT), responses (QR=1) are ignored, and nothing is sent to port 0 or to an unspecified
//! or broadcast address. Replies are encoded with hickory-proto's `emit_message_parts` (via
//! `Message::emit`) under the client's UDP payload size (512 without EDNS), which truncates
//! with TC=1 exactly as hickory-server's `MessageResponse::encode` does.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode};
use hickory_proto::op::{Query, ResponseCode};
use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::handler::{Handler, Question, Step};
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
    let mut decoder = BinDecoder::new(packet);
    let Ok(header) = Header::read(&mut decoder) else {
        // Shorter than a header: not a DNS query, no reply.
        return;
    };
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(error) => {
            tracing::debug!(%error, %src, "malformed query");
            let mut metadata = Metadata::response_from_request(&header.metadata);
            metadata.response_code = ResponseCode::FormErr;
            let mut reply = Message::new(metadata.id, MessageType::Response, metadata.op_code);
            reply.metadata = metadata;
            send(socket, out, &reply, src).await;
            return;
        }
    };
    if request.metadata.message_type == MessageType::Response {
        // Never answer answers (reflection loops).
        return;
    }
    let Some(inflight) = handler.drain.enter() else {
        // Shutting down: drop it; the client retries another server.
        return;
    };
    let lower: Option<(&Query, Name)> = match request.queries.as_slice() {
        [q] => Some((q, q.name().to_lowercase())),
        _ => None,
    };
    let question = Question {
        metadata: &request.metadata,
        edns: request.edns.as_ref(),
        query: lower.as_ref().map(|(q, n)| (*q, n)),
        client: src.ip(),
    };
    match handler.step(&question) {
        Step::Reply(mut reply) => {
            reply.queries = request.queries;
            send(socket, out, &reply, src).await;
        }
        Step::Drop => {}
        Step::Upstream(pending) => {
            let inflight = inflight.into_owned(handler.drain.clone());
            let (socket, handler) = (socket.clone(), handler.clone());
            let queries = request.queries;
            tokio::spawn(async move {
                let mut reply = handler.finish(pending).await;
                reply.queries = queries;
                let mut out = Vec::with_capacity(512);
                send(&socket, &mut out, &reply, src).await;
                drop(inflight);
            });
        }
    }
}

/// Encodes `reply` for UDP into `out` and sends it; a failure is logged, not fatal.
async fn send(socket: &UdpSocket, out: &mut Vec<u8>, reply: &Message, dst: SocketAddr) {
    encode(out, reply);
    if let Err(error) = socket.send_to(out, dst).await {
        tracing::debug!(%error, %dst, "could not send the response");
    }
}

/// `reply` on the wire within the client's payload size (our OPT's, clamped to
/// 512..=1232, or 512 without EDNS): records that do not fit are left out and TC=1 is set.
/// A reply that cannot be encoded at all becomes a bare SERVFAIL, as in hickory-server.
fn encode(out: &mut Vec<u8>, reply: &Message) {
    out.clear();
    let max = reply.edns.as_ref().map_or(512, Edns::max_payload);
    let mut encoder = BinEncoder::new(out);
    encoder.set_max_size(max);
    let Err(error) = reply.emit(&mut encoder) else {
        return;
    };
    tracing::error!(%error, "error encoding message");
    out.clear();
    let mut metadata = Metadata::new(reply.metadata.id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    let header = Header {
        metadata,
        counts: HeaderCounts::default(),
    };
    let mut encoder = BinEncoder::new(out);
    if let Err(error) = header.emit(&mut encoder) {
        tracing::error!(%error, "cannot encode even a header");
        out.clear();
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
