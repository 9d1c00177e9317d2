//! Datagrams in batches: `recvmmsg`/`sendmmsg` (through nix), so a busy socket pays one
//! system call per batch in each direction instead of one per datagram.
//!
//! Under load the kernel's per-call cost (entry, socket lock, wake-ups) was most of the
//! server's time once the answers themselves were cheap (BENCHMARKS.md). Both calls are
//! made on the non-blocking socket; `WouldBlock` comes back as an error for the caller's
//! readiness loop. Other systems get the same interface one datagram per call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Datagrams read or written per call at most.
pub const BATCH: usize = 32;

/// Reusable receive buffers and the headers `recvmmsg` fills.
pub struct Receiver {
    bufs: Vec<Vec<u8>>,
    got: Vec<(usize, SocketAddr)>,
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
}

impl Receiver {
    /// [`BATCH`] buffers of `size` bytes each (longer datagrams are cut to `size`).
    pub fn new(size: usize) -> Self {
        Receiver {
            bufs: (0..BATCH).map(|_| vec![0; size]).collect(),
            got: Vec::with_capacity(BATCH),
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Reads what is queued on `socket`, up to [`BATCH`] datagrams; returns how many.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is queued; any other receive error.
    #[cfg(target_os = "linux")]
    pub fn receive(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, recvmmsg};
        let mut slices: Vec<[io::IoSliceMut<'_>; 1]> = self
            .bufs
            .iter_mut()
            .map(|b| [io::IoSliceMut::new(b)])
            .collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        self.got.clear();
        for msg in results {
            // A datagram without a usable source address cannot be answered: skip it.
            if let Some(src) = msg.address.as_ref().and_then(to_std) {
                self.got.push((msg.bytes, src));
            } else {
                self.got.push((0, SocketAddr::from(([0, 0, 0, 0], 0))));
            }
        }
        Ok(self.got.len())
    }

    /// One datagram per call where `recvmmsg` is not available.
    ///
    /// # Errors
    /// `WouldBlock` when nothing is queued; any other receive error.
    #[cfg(not(target_os = "linux"))]
    pub fn receive(&mut self, socket: &tokio::net::UdpSocket) -> io::Result<usize> {
        let (len, src) = socket.try_recv_from(&mut self.bufs[0])?;
        self.got.clear();
        self.got.push((len, src));
        Ok(1)
    }

    /// The `i`th datagram of the last [`Receiver::receive`] and its source (port 0 when the
    /// source was unreadable, which the caller refuses to answer).
    pub fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let &(len, src) = self.got.get(i)?;
        Some((self.bufs.get(i)?.get(..len)?, src))
    }
}

#[cfg(target_os = "linux")]
fn to_std(addr: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

/// The headers `sendmmsg` fills, kept between calls.
pub struct Sender {
    #[cfg(target_os = "linux")]
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    #[cfg(target_os = "linux")]
    addrs: Vec<Option<nix::sys::socket::SockaddrStorage>>,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            #[cfg(target_os = "linux")]
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
            #[cfg(target_os = "linux")]
            addrs: Vec::with_capacity(BATCH),
        }
    }
}

impl Sender {
    /// Sends `replies[i]` to `dsts[i]` from the start, as many as the socket takes in one
    /// call (at most [`BATCH`]); returns how many were sent.
    ///
    /// # Errors
    /// `WouldBlock` when the socket's send buffer is full; the error of the first datagram
    /// when it could not be sent (the caller skips it).
    #[cfg(target_os = "linux")]
    pub fn send(
        &mut self,
        socket: &impl AsRawFd,
        replies: &[Vec<u8>],
        dsts: &[SocketAddr],
    ) -> io::Result<usize> {
        use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmmsg};
        let n = replies.len().min(dsts.len()).min(BATCH);
        self.addrs.clear();
        self.addrs
            .extend(dsts.iter().take(n).map(|&d| Some(SockaddrStorage::from(d))));
        let slices: Vec<[io::IoSlice<'_>; 1]> = replies
            .iter()
            .take(n)
            .map(|r| [io::IoSlice::new(r)])
            .collect();
        let none: [ControlMessage<'_>; 0] = [];
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            slices.iter(),
            &self.addrs,
            none,
            MsgFlags::MSG_DONTWAIT,
        )?;
        Ok(sent.count())
    }

    /// One datagram per call where `sendmmsg` is not available.
    ///
    /// # Errors
    /// As [`tokio::net::UdpSocket::try_send_to`].
    #[cfg(not(target_os = "linux"))]
    pub fn send(
        &mut self,
        socket: &tokio::net::UdpSocket,
        replies: &[Vec<u8>],
        dsts: &[SocketAddr],
    ) -> io::Result<usize> {
        match (replies.first(), dsts.first()) {
            (Some(r), Some(&d)) => socket.try_send_to(r, d).map(|_| 1),
            _ => Ok(0),
        }
    }
}
