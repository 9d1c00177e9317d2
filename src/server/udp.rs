//! The UDP path: kidsafe-dns's own receive loop per UDP socket, each on a thread of its own.
//!
//! Every `SO_REUSEPORT` socket gets a dedicated thread running a current-thread runtime:
//! the kernel spreads datagrams over the sockets, and each thread stays on its own socket
//! (as Unbound's threads do) instead of tokio's scheduler placing two receive loops on one
//! worker. The loop reads datagrams in batches (`mmsg`), answers whatever can be
//! answered without waiting (blocks and cache hits written on bytes by [`fastpath`];
//! refusals, errors, SafeSearch CNAMEs and the rest through [`wire`] and
//! [`Handler::answer`]) and sends those replies in one batch. A query that must wait on
//! upstream becomes a task on the same thread; it sends its reply on the same socket.
//!
//! Nothing is sent to port 0 or to an unspecified or broadcast address. Replies are
//! encoded under the client's UDP payload size (512 without EDNS), truncated with TC=1 by
//! [`crate::dns::encode`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handler::{Handler, Reply};
use super::mmsg::{self, BATCH};
use super::proxy::{self, TrustedProxies};
use super::wire;
use crate::dns::EDNS_PAYLOAD;
use crate::dns::encode::encode;
use crate::metrics::Protocol;
use crate::policy::Client;

/// Largest query read; longer datagrams are cut, and fail to decode.
const RECEIVE_BUFFER: usize = 4096;

/// Batches handled in a row before the loop lets the thread's other tasks run (reading
/// with `try_io` does not use tokio's budget) while none of its upstream queries is in
/// flight; with one in flight it yields after every batch, so upstream replies are not
/// kept waiting behind a busy socket (the mix's p99 went from 37 ms to 7 ms).
const BURST: u32 = 8;

/// Starts the receive thread for `socket` (non-blocking, from [`super::listener`]). It
/// stops receiving when `stop` is cancelled, then keeps running its upstream tasks for up
/// to `grace` so their replies still go out, and ends. Datagrams from `proxies` carry
/// the client's address in a PROXY v2 header ([`proxy`]).
///
/// # Errors
/// The thread, its runtime or the socket's registration could not be set up.
pub fn spawn(
    socket: std::net::UdpSocket,
    handler: Arc<Handler>,
    proxies: Arc<TrustedProxies>,
    stop: CancellationToken,
    grace: Duration,
    name: String,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let socket = {
        let _in_runtime = runtime.enter();
        UdpSocket::from_std(socket)?
    };
    std::thread::Builder::new().name(name).spawn(move || {
        runtime.block_on(async move {
            let tasks = TaskTracker::new();
            serve(Arc::new(socket), &handler, &proxies, &stop, &tasks).await;
            tasks.close();
            // The app waits up to `grace` for in-flight queries; the tasks answering them
            // live here, so keep them running as long (plus a beat to send).
            let _ = tokio::time::timeout(grace + Duration::from_millis(200), tasks.wait()).await;
        });
    })?;
    Ok(())
}

async fn serve(
    socket: Arc<UdpSocket>,
    handler: &Arc<Handler>,
    proxies: &TrustedProxies,
    stop: &CancellationToken,
    tasks: &TaskTracker,
) {
    let mut receiver = mmsg::Receiver::new(RECEIVE_BUFFER);
    let mut sender = mmsg::Sender::default();
    let mut outs: Vec<Vec<u8>> = (0..BATCH)
        .map(|_| Vec::with_capacity(usize::from(EDNS_PAYLOAD)))
        .collect();
    let mut dsts: Vec<SocketAddr> = Vec::with_capacity(BATCH);
    let mut burst = 0u32;
    loop {
        if stop.is_cancelled() {
            break;
        }
        match socket.try_io(Interest::READABLE, || receiver.receive(&*socket)) {
            Ok(n) => {
                dsts.clear();
                for i in 0..n {
                    let Some((packet, src)) = receiver.datagram(i) else {
                        continue;
                    };
                    let Some(out) = outs.get_mut(dsts.len()) else {
                        break;
                    };
                    let Some((client, packet)) = proxy::datagram(proxies, packet, src) else {
                        handler.metrics().proxy_invalid.increment(1);
                        continue;
                    };
                    if handle(&socket, handler, tasks, packet, src, client.ip(), out) {
                        dsts.push(src);
                    }
                }
                send_batch(&socket, &mut sender, &outs[..dsts.len()], &dsts).await;
                burst += 1;
                if burst >= BURST || !tasks.is_empty() {
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

/// Sends `replies[i]` to `dsts[i]`, in batches; when the socket's buffer is full, waits
/// for room one datagram at a time. A datagram that cannot be sent is logged and skipped.
async fn send_batch(
    socket: &UdpSocket,
    sender: &mut mmsg::Sender,
    replies: &[Vec<u8>],
    dsts: &[SocketAddr],
) {
    let mut done = 0;
    while let (Some(rest), Some(to)) = (replies.get(done..), dsts.get(done..)) {
        if rest.is_empty() {
            break;
        }
        match socket.try_io(Interest::WRITABLE, || sender.send(socket, rest, to)) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(error) = socket.send_to(&rest[0], to[0]).await {
                    tracing::debug!(%error, dst = %to[0], "could not send the response");
                }
                done += 1;
            }
            Err(error) => {
                tracing::debug!(%error, dst = %to[0], "could not send the response");
                done += 1;
            }
        }
    }
}

/// One datagram from `src` (on behalf of `client`, which differs behind a PROXY protocol
/// balancer): answered into `out` (true: send it to `src`), handed to a task, or ignored.
fn handle(
    socket: &Arc<UdpSocket>,
    handler: &Arc<Handler>,
    tasks: &TaskTracker,
    packet: &[u8],
    src: SocketAddr,
    client: IpAddr,
    out: &mut Vec<u8>,
) -> bool {
    if !answerable(src) {
        return false;
    }
    let Some(inflight) = handler.drain.enter() else {
        // Shutting down: drop it; the client retries another server.
        return false;
    };
    let client = Client::from_addr(client);
    let Some(reply) = wire::answer_into(handler, packet, &client, Protocol::Udp, out) else {
        return true;
    };
    match reply {
        Reply::Now(reply) => {
            encode(out, &reply, wire::udp_limit(&reply));
            true
        }
        Reply::Silent => false,
        Reply::Upstream(pending) => {
            let inflight = inflight.into_owned(handler.drain.clone());
            let (socket, handler) = (socket.clone(), handler.clone());
            tasks.spawn(async move {
                let reply = handler.finish(pending).await;
                let mut out = Vec::with_capacity(512);
                send(&socket, &mut out, &reply, src).await;
                drop(inflight);
            });
            false
        }
    }
}

/// Encodes `reply` for UDP into `out` and sends it; a failure is logged, not fatal.
async fn send(socket: &UdpSocket, out: &mut Vec<u8>, reply: &Message, dst: SocketAddr) {
    encode(out, reply, wire::udp_limit(reply));
    if let Err(error) = socket.send_to(out, dst).await {
        tracing::debug!(%error, %dst, "could not send the response");
    }
}

/// Whether a reply may go to `src`: not port 0, not an unspecified or broadcast address.
fn answerable(src: SocketAddr) -> bool {
    if src.port() == 0 {
        return false;
    }
    match src.ip() {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast()),
        IpAddr::V6(v6) => !v6.is_unspecified(),
    }
}
