//! DNS over TLS to an upstream resolver (RFC 7858): a home's or a school's questions do not
//! cross the network in clear text to the resolver it forwards to.
//!
//! Connections are kept and reused (RFC 7858 §3.4): a handshake per query would add round
//! trips to every miss. Each server has a pool of idle connections; a query takes one (or
//! opens one), sends, reads its reply and puts it back. One query per connection at a time
//! keeps replies in order without a demultiplexer; concurrent misses open more connections,
//! up to [`MAX_CONNECTIONS`], and beyond that wait for one to come back (within the
//! query's deadline) rather than pay a handshake for a connection that could not be kept.
//! A kept connection the server has closed since fails on first use, and the query is
//! asked once more on a fresh one. There is never a fallback to clear text: a certificate
//! that does not verify for the configured name fails the server like silence does.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hickory_proto::op::Message;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::dns::exchange;

/// Connections open at once per server, idle or busy.
pub const MAX_CONNECTIONS: usize = 64;

/// A connection and its place among the server's [`MAX_CONNECTIONS`] (given back when
/// the connection is dropped).
struct Conn {
    stream: TlsStream<TcpStream>,
    slot: OwnedSemaphorePermit,
}

/// Why TLS to upstreams cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsClientError {
    /// `upstream.tls_ca` could not be read or holds no certificate.
    #[error("upstream.tls_ca {}: {message}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Neither `upstream.tls_ca` nor the system store gave a root certificate.
    #[error(
        "no trusted root certificates for TLS upstreams: the system store is empty (install ca-certificates) and upstream.tls_ca is not set"
    )]
    NoRoots,
    /// rustls refused the client setup.
    #[error("TLS client setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client side of every TLS upstream: roots from `ca` (a PEM bundle) when given,
/// otherwise the system's store; TLS 1.2 and 1.3 (ring); ALPN `dot`.
///
/// # Errors
/// [`TlsClientError`]: an unreadable bundle, no roots at all, or a rustls refusal.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsClientError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let bad = |message: String| TlsClientError::Ca {
                path: path.to_owned(),
                message,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("no usable CERTIFICATE block".into()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "reading the system's root certificates");
            }
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsClientError::NoRoots);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"dot".to_vec()];
    Ok(Arc::new(config))
}

/// One DNS-over-TLS upstream and its idle connections.
pub struct TlsUpstream {
    addr: SocketAddr,
    name: ServerName<'static>,
    connector: TlsConnector,
    idle: Mutex<Vec<Conn>>,
    slots: Arc<Semaphore>,
    /// Woken when a connection goes back to `idle`.
    returned: Notify,
}

impl std::fmt::Debug for TlsUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsUpstream")
            .field("addr", &self.addr)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsUpstream {
    /// The server at `addr` whose certificate must be valid for `name`.
    ///
    /// # Errors
    /// `name` is not a DNS name or IP address (the config parser already checked it).
    pub fn new(
        addr: SocketAddr,
        name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, TlsClientError> {
        let name = ServerName::try_from(name.to_owned()).map_err(|e| {
            TlsClientError::Rustls(rustls::Error::General(format!("`{name}`: {e}")))
        })?;
        Ok(TlsUpstream {
            addr,
            name,
            connector: TlsConnector::from(config),
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            returned: Notify::new(),
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `bytes` (the encoding of `sent`) and returns the matching reply.
    ///
    /// # Errors
    /// The connection, the handshake (certificate included) or the exchange failed.
    pub async fn exchange(&self, sent: &Message, bytes: &[u8]) -> io::Result<Message> {
        let slot = match self.checkout().await? {
            Checkout::Kept(mut conn) => {
                match exchange::stream(&mut conn.stream, sent, bytes).await {
                    Ok(reply) => {
                        self.keep(conn);
                        return Ok(reply);
                    }
                    // Closed by the server while idle (or broken): its slot gets a fresh
                    // connection.
                    Err(error) => {
                        tracing::debug!(server = %self.addr, %error, "kept TLS connection failed");
                        conn.slot
                    }
                }
            }
            Checkout::Slot(slot) => slot,
        };
        let tcp = TcpStream::connect(self.addr).await?;
        let _ = tcp.set_nodelay(true);
        let stream = self.connector.connect(self.name.clone(), tcp).await?;
        let mut conn = Box::new(Conn { stream, slot });
        let reply = exchange::stream(&mut conn.stream, sent, bytes).await?;
        self.keep(conn);
        Ok(reply)
    }

    /// An idle connection, or room for a new one; at [`MAX_CONNECTIONS`], waits for
    /// either.
    async fn checkout(&self) -> io::Result<Checkout> {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            // Registered before looking, so a connection put back meanwhile wakes us.
            returned.as_mut().enable();
            if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
                return Ok(Checkout::Kept(Box::new(conn)));
            }
            if let Ok(slot) = self.slots.clone().try_acquire_owned() {
                return Ok(Checkout::Slot(slot));
            }
            tokio::select! {
                () = &mut returned => {}
                slot = self.slots.clone().acquire_owned() => {
                    return slot.map(Checkout::Slot).map_err(io::Error::other);
                }
            }
        }
    }

    fn keep(&self, conn: Box<Conn>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(*conn);
        }
        self.returned.notify_one();
    }
}

/// What [`TlsUpstream::checkout`] found.
enum Checkout {
    Kept(Box<Conn>),
    Slot(OwnedSemaphorePermit),
}
