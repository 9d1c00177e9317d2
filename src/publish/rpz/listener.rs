//! The sockets: UDP (SOA queries, small IXFR) and TCP (transfers), each request answered on
//! a blocking thread while its messages are written out as they come.
//!
//! Limits, because the port is reachable by whoever `xfr_allow` lets in (and by anyone for
//! the REFUSED answer): at most [`TCP_CONNECTIONS`] connections (more are closed at once
//! and counted), [`WORKERS`] requests being answered at a time (UDP datagrams beyond that
//! are dropped, TCP requests wait), an idle connection closed after [`IDLE`], and a peer
//! that stops reading dropped after [`WRITE_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::request::{Primary, Transport};
use super::stats::bump;
use super::writer::Gone;
use crate::dns::frame;

/// TCP connections open at once, at most.
pub const TCP_CONNECTIONS: usize = 64;
/// Requests answered at once, at most (each may hold a list snapshot while it streams).
pub const WORKERS: usize = 16;
/// A TCP connection with no request for this long is closed (RFC 7766 §6.2.3).
pub const IDLE: Duration = Duration::from_secs(10);
/// A peer that does not take a message within this long is dropped.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages of a transfer rendered ahead of the socket: bounds memory per transfer.
const AHEAD: usize = 4;

/// Shared by every listener of one primary.
#[derive(Clone)]
pub struct Serving {
    /// Answers requests.
    pub primary: Arc<Primary>,
    /// Requests being answered.
    pub workers: Arc<Semaphore>,
    /// Stops the listeners.
    pub shutdown: CancellationToken,
}

/// Serves UDP on `socket` until shutdown.
pub async fn udp(socket: UdpSocket, serving: Serving) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 65_535];
    loop {
        let (len, peer) = tokio::select! {
            () = serving.shutdown.cancelled() => return,
            got = socket.recv_from(&mut buf) => match got {
                Ok(got) => got,
                // ICMP errors from earlier sends surface here on some systems: keep going.
                Err(_) => continue,
            },
        };
        let Ok(permit) = serving.workers.clone().try_acquire_owned() else {
            continue;
        };
        let request = buf[..len].to_vec();
        let (primary, socket) = (serving.primary.clone(), socket.clone());
        tokio::spawn(async move {
            let answered = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                let mut collect = |m: Vec<u8>| {
                    out.push(m);
                    Ok(())
                };
                let _ = primary.answer(&request, peer.ip(), Transport::Udp, &mut collect);
                out
            })
            .await;
            for datagram in answered.unwrap_or_default() {
                let _ = socket.send_to(&datagram, peer).await;
            }
            drop(permit);
        });
    }
}

/// Accepts TCP connections on `listener` until shutdown.
pub async fn tcp(listener: TcpListener, serving: Serving) {
    let connections = Arc::new(Semaphore::new(TCP_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            () = serving.shutdown.cancelled() => return,
            got = listener.accept() => match got {
                Ok(got) => got,
                Err(e) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    tracing::warn!(error = %e, "rpz: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            bump(&serving.primary.stats.tcp_rejected);
            continue;
        };
        let serving = serving.clone();
        tokio::spawn(async move {
            connection(stream, peer, &serving).await;
            drop(permit);
        });
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, serving: &Serving) {
    loop {
        let request = tokio::select! {
            () = serving.shutdown.cancelled() => return,
            got = tokio::time::timeout(IDLE, frame::read(&mut stream)) => match got {
                Ok(Ok(Some(request))) => request,
                _ => return,
            },
        };
        let Ok(permit) = serving.workers.clone().acquire_owned().await else {
            return;
        };
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(AHEAD);
        let primary = serving.primary.clone();
        let work = tokio::task::spawn_blocking(move || {
            let mut send = |m: Vec<u8>| tx.blocking_send(m).map_err(|_| Gone);
            let _ = primary.answer(&request, peer.ip(), Transport::Tcp, &mut send);
            drop(permit);
        });
        let mut ok = true;
        loop {
            let message = tokio::select! {
                () = serving.shutdown.cancelled() => { ok = false; break; }
                m = rx.recv() => match m { Some(m) => m, None => break },
            };
            match tokio::time::timeout(WRITE_TIMEOUT, frame::write(&mut stream, &message)).await {
                Ok(Ok(())) => {
                    serving
                        .primary
                        .stats
                        .tcp_bytes
                        .fetch_add(message.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        // Dropping the receiver makes the renderer's next send fail, so it stops.
        drop(rx);
        let _ = work.await;
        if !ok {
            return;
        }
    }
}
