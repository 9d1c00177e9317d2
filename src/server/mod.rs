//! The DNS server: our own UDP receive loops ([`udp`]) and TCP/DoT/DoH connections
//! ([`stream`], `doh`) on the configured addresses, all answering through
//! [`handler::Handler`].

pub mod ddr;
mod doh;
pub mod fastpath;
pub mod handler;
mod hitpath;
pub mod identity;
pub mod listener;
pub mod local;
mod mmsg;
pub mod proxy;
mod settings;
pub mod stream;
pub mod tls;
pub mod udp;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

pub use handler::Handler;
pub use local::ChaosAnswers;
pub use settings::{IdentityConfig, ServerConfig, TlsListeners};

/// The path DoH answers on (RFC 8484's example, what clients default to).
pub const DOH_PATH: &str = "/dns-query";

/// Why the server could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// An address could not be bound; the message names it.
    #[error("{0}")]
    Bind(#[from] std::io::Error),
    /// The DoT/DoH certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
}

/// What [`start`] bound.
pub struct Listening {
    /// Plain DNS addresses (UDP and TCP each).
    pub dns: Vec<SocketAddr>,
    /// DoT addresses.
    pub dot: Vec<SocketAddr>,
    /// DoH addresses.
    pub doh: Vec<SocketAddr>,
}

fn named(addr: SocketAddr, what: &str) -> impl FnOnce(std::io::Error) -> std::io::Error {
    move |e| listener::bind_error(addr, what, &e)
}

/// Binds every address: UDP (one socket and receive thread per `server.threads`, sharing
/// the address with `SO_REUSEPORT`) and TCP on each `server.listen` address, DoT and DoH
/// on theirs. Our loops stop when `stop` is cancelled.
///
/// # Errors
/// An address that cannot be bound (named), or an unusable certificate.
pub fn start(
    handler: Handler,
    config: &ServerConfig,
    stop: CancellationToken,
) -> Result<Listening, ListenError> {
    let workers = config.worker_threads();
    let limits = stream::Limits::new(config.tcp_max_connections, config.tcp_idle);
    let proxies = Arc::new(proxy::TrustedProxies::new(&config.proxy_protocol_from));
    // Bind everything first: a failure must not leave loops running on the addresses
    // bound before it.
    let mut bound = Vec::with_capacity(config.listen.len());
    for &addr in &config.listen {
        bound.push(listener::bind(addr, workers).map_err(named(addr, "DNS"))?);
    }
    let mut dot = Vec::new();
    let mut doh = Vec::new();
    let mut dot_tls = None;
    let mut doh_tls = None;
    if let Some(t) = &config.tls {
        for &addr in &t.dot_listen {
            dot.push(listener::bind_tcp(addr).map_err(named(addr, "DoT"))?);
        }
        for &addr in &t.doh_listen {
            doh.push(listener::bind_tcp(addr).map_err(named(addr, "DoH"))?);
        }
        if !dot.is_empty() {
            dot_tls = Some(TlsAcceptor::from(tls::server_config(
                &t.cert, &t.key, b"dot",
            )?));
        }
        if !doh.is_empty() {
            doh_tls = Some(TlsAcceptor::from(tls::server_config(
                &t.cert, &t.key, b"h2",
            )?));
        }
    }

    // DDR names the encrypted endpoints as bound (a port 0 in the config is known now).
    let bound_of = |ls: &[tokio::net::TcpListener]| -> Vec<SocketAddr> {
        ls.iter().filter_map(|l| l.local_addr().ok()).collect()
    };
    let ddr = ddr::Ddr::new(config.ddr_name.as_deref(), &bound_of(&dot), &bound_of(&doh));
    let shared = Arc::new(handler.with_ddr(ddr));

    let mut listening = Listening {
        dns: Vec::new(),
        dot: Vec::new(),
        doh: Vec::new(),
    };
    for b in bound {
        tracing::info!(addr = %b.addr, udp_sockets = b.udp.len(), "listening on UDP and TCP");
        for (i, socket) in b.udp.into_iter().enumerate() {
            let name = format!("kidsafe-udp-{}-{i}", b.addr.port());
            udp::spawn(
                socket,
                shared.clone(),
                proxies.clone(),
                stop.clone(),
                config.shutdown_grace,
                name,
            )
            .map_err(named(b.addr, "DNS (UDP thread)"))?;
        }
        stream::spawn(
            b.tcp,
            stream::Transport::Tcp,
            shared.clone(),
            limits.clone(),
            proxies.clone(),
            stop.clone(),
        );
        listening.dns.push(b.addr);
    }
    if let Some(acceptor) = dot_tls {
        for l in dot {
            let addr = l.local_addr()?;
            tracing::info!(%addr, "listening for DNS over TLS");
            stream::spawn(
                l,
                stream::Transport::Dot(acceptor.clone()),
                shared.clone(),
                limits.clone(),
                proxies.clone(),
                stop.clone(),
            );
            listening.dot.push(addr);
        }
    }
    // DoH ([`doh`]) answers GET and POST (RFC 8484), a bad request with a 4xx, and any
    // `Accept` (curl's default `*/*` included). Its connections come through the same
    // accept loop as TCP and DoT, so they count against the connection limit and close on
    // the idle timeout.
    if let Some(acceptor) = doh_tls {
        for l in doh {
            let addr = l.local_addr()?;
            tracing::info!(%addr, path = DOH_PATH, "listening for DNS over HTTPS");
            stream::spawn(
                l,
                stream::Transport::Doh(acceptor.clone()),
                shared.clone(),
                limits.clone(),
                proxies.clone(),
                stop.clone(),
            );
            listening.doh.push(addr);
        }
    }
    Ok(listening)
}
