//! The RPZ primary: each published list served as a Response Policy Zone, by zone transfer
//! (AXFR, IXFR from the journal), with TSIG and NOTIFY, to kidsafe-dns edges
//! (`[[lists.source]] rpz = {...}`), Unbound (`rpz:` with `primary:`) and PowerDNS Recursor
//! (`rpzPrimary`).
//!
//! [`serve`] binds `[publish] xfr_listen` (UDP and TCP on each address), answers
//! requests from the [`PublishedLists`] it is given, and sends NOTIFY to `[publish] notify`
//! whenever a list changes. Zones are `<list>.<zone_suffix>`; see [`zone`] for their
//! contents and [`request`] for what each request gets.
//!
//! Access: `xfr_allow` (empty: any address) and, with `tsig_key` set, a valid TSIG on every
//! transfer request; answers to signed requests are signed, every message of a multi-message
//! transfer chained to the one before (RFC 8945 §5.3.1). SOA queries need no TSIG (the
//! serial is in every NOTIFY anyway) but are checked, and answered signed, when they carry
//! one.
//!
//! # Layout
//! - `zone`: zone names and the records a list becomes;
//! - `tsig`: request checks and chained answer signing;
//! - `writer`: packing records into signed messages of at most 64 KiB, streamed;
//! - `request`: one request, from access checks to the last message;
//! - `listener`: UDP and TCP sockets, limits;
//! - `notify`: NOTIFY on change;
//! - `stats`: counters.

pub mod listener;
pub mod notify;
pub mod request;
pub mod stats;
pub mod tsig;
pub mod writer;
pub mod zone;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use stats::RpzStats;

use crate::feed::xfr::XfrError;
use crate::publish::lists::PublishedLists;
use crate::publish::settings::PublishConfig;
use listener::{Serving, WORKERS};
use notify::Notifier;
use request::Primary;
use zone::{BadSuffix, Zones};

/// A running primary.
#[derive(Debug)]
pub struct RpzPrimary {
    /// The addresses bound (UDP and TCP on each), in `xfr_listen` order; a port 0 there is
    /// the port chosen here.
    pub addrs: Vec<SocketAddr>,
    /// Its counters.
    pub stats: Arc<RpzStats>,
}

/// Why the primary could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpzError {
    /// `zone_suffix` is not a domain name.
    #[error("publish.zone_suffix: {0}")]
    Suffix(#[from] BadSuffix),
    /// The TSIG key cannot be used.
    #[error("publish.tsig_key: {0}")]
    Key(XfrError),
    /// An address could not be bound.
    #[error("publish.xfr_listen: cannot listen on {addr} ({proto}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// `udp` or `tcp`.
        proto: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// Starts the primary: binds every `xfr_listen` address, then serves and notifies until
/// `shutdown` is cancelled. With no `xfr_listen` nothing is started.
pub async fn serve(
    config: &PublishConfig,
    lists: Arc<dyn PublishedLists>,
    shutdown: CancellationToken,
) -> Result<RpzPrimary, RpzError> {
    let stats = Arc::new(RpzStats::default());
    let zones = Zones::new(&config.zone_suffix)?;
    let key = config
        .tsig_key
        .as_ref()
        .map(|k| k.signer())
        .transpose()
        .map_err(RpzError::Key)?;
    if config.xfr_listen.is_empty() {
        return Ok(RpzPrimary {
            addrs: Vec::new(),
            stats,
        });
    }
    let mut bound = Vec::new();
    for &addr in &config.xfr_listen {
        bound.push(bind(addr).await?);
    }
    let serving = Serving {
        primary: Arc::new(Primary {
            lists: lists.clone(),
            zones: zones.clone(),
            key: key.clone(),
            allow: config.xfr_allow.clone(),
            stats: stats.clone(),
        }),
        workers: Arc::new(Semaphore::new(WORKERS)),
        shutdown: shutdown.clone(),
    };
    let mut addrs = Vec::new();
    for (udp, tcp, addr) in bound {
        addrs.push(addr);
        tokio::spawn(listener::udp(udp, serving.clone()));
        tokio::spawn(listener::tcp(tcp, serving.clone()));
    }
    if !config.notify.is_empty() {
        let notifier = Notifier {
            lists,
            zones,
            key,
            targets: config.notify.clone(),
            stats: stats.clone(),
        };
        tokio::spawn(notifier.run(shutdown));
    }
    tracing::info!(?addrs, "rpz primary listening");
    Ok(RpzPrimary { addrs, stats })
}

/// UDP and TCP on `addr`; for port 0, one port free for both.
async fn bind(addr: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr), RpzError> {
    let err = |proto, source| RpzError::Bind {
        addr,
        proto,
        source,
    };
    let mut attempt = 0;
    loop {
        let udp = UdpSocket::bind(addr).await.map_err(|e| err("udp", e))?;
        let local = udp.local_addr().map_err(|e| err("udp", e))?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp, local)),
            // The port the system picked for UDP is taken for TCP: pick again.
            Err(_) if addr.port() == 0 && attempt < 20 => attempt += 1,
            Err(e) => return Err(err("tcp", e)),
        }
    }
}

#[cfg(test)]
mod tests;
