//! Sends one question to the upstream resolvers, UDP first, TCP when the reply is truncated.
//!
//! Every attempt uses a fresh socket on a random port and a random query ID, and a reply is
//! accepted only if its ID and question match what was sent (anything else on the socket is
//! ignored, which is what defeats blind spoofing). The client's whole query shares one
//! deadline; with several servers each gets a slice of it, so one silent server cannot
//! starve the others, and a server that refuses outright (ICMP unreachable) moves the
//! query on at once. So does a truncated UDP reply whose TCP retry fails: a truncated
//! reply is never returned as the answer. A DNS-over-TLS server ([`super::tls`]) is asked
//! on a kept connection instead, with the same matching.
//!
//! A server that does not speak EDNS (RFC 6891 §7) answers our EDNS query with FORMERR,
//! often without echoing the question; that one query is asked again without EDNS. A
//! server that says FORMERR to the plain query too has failed it, like SERVFAIL: the
//! client's query was well formed, so FORMERR is never relayed.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::dns::EDNS_PAYLOAD;
use crate::dns::exchange::{self, Resend};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::endpoint::Endpoint;
use super::tls::{TlsClientError, TlsUpstream, client_config};

/// First UDP retransmission after this long without a reply (then doubling). Loopback and
/// LAN resolvers answer in well under a millisecond; a distant one in tens.
const RETRANSMIT_AFTER: Duration = Duration::from_millis(250);

/// Why no upstream answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No server gave a usable reply in time: what each one did, in the order asked.
    #[error("no upstream answered: {}", Attempts(.0))]
    Unanswered(Vec<Attempt>),
    /// The question could not be encoded (a bug or an absurd name).
    #[error("cannot encode the upstream query: {0}")]
    Encode(String),
}

/// One server that did not answer one query usably.
#[derive(Debug)]
pub struct Attempt {
    /// The server's address.
    pub server: SocketAddr,
    /// What it did.
    pub failure: Failure,
}

/// What one server did wrong with one query.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Its share of the query's time budget passed without a usable reply.
    #[error("no answer within {}ms", .0.as_millis())]
    TimedOut(Duration),
    /// The network or the connection failed (refused, reset, a bad TLS handshake, …).
    #[error("{0}")]
    Network(#[source] std::io::Error),
    /// It answered FORMERR, to the query with EDNS and to the one without.
    #[error("FORMERR, with and without EDNS")]
    FormErr,
    /// It answered SERVFAIL (the next server was asked).
    #[error("SERVFAIL")]
    ServFail,
    /// It answered REFUSED (the next server was asked).
    #[error("REFUSED")]
    Refused,
    /// Not asked: the servers before it used up the query's time budget.
    #[error("not asked, the servers before it used up the time budget")]
    NotAsked,
}

impl Failure {
    /// A short, fixed name for the failure's kind (a metric label).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::TimedOut(_) => "timeout",
            Failure::Network(_) => "network",
            Failure::FormErr => "formerr",
            Failure::ServFail => "servfail",
            Failure::Refused => "refused",
            Failure::NotAsked => "not_asked",
        }
    }
}

/// `server: failure; server: failure` for an error message.
struct Attempts<'a>(&'a [Attempt]);

impl std::fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no server configured");
        }
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", a.server, a.failure)?;
        }
        Ok(())
    }
}

/// The options of the client's query that travel upstream.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueryFlags {
    /// DNSSEC OK: the client wants RRSIGs.
    pub dnssec_ok: bool,
    /// Checking disabled: the client validates itself.
    pub checking_disabled: bool,
}

/// Forwards questions to a list of upstream resolvers.
#[derive(Clone, Debug)]
pub struct Forwarder {
    servers: Vec<Target>,
    timeout: Duration,
}

/// A server and how it is reached.
#[derive(Clone, Debug)]
enum Target {
    Plain(SocketAddr),
    Tls(Arc<TlsUpstream>),
}

impl Target {
    fn addr(&self) -> SocketAddr {
        match self {
            Target::Plain(addr) => *addr,
            Target::Tls(tls) => tls.addr(),
        }
    }
}

impl Forwarder {
    /// A forwarder trying `servers` in order within `timeout` per client query. TLS servers
    /// verify their certificates against `tls_ca`, or the system's roots without it
    /// ([`client_config`], set up only when some server is TLS).
    ///
    /// # Errors
    /// The roots cannot be loaded, or rustls refuses a server's name.
    pub fn new(
        servers: &[Endpoint],
        timeout: Duration,
        tls_ca: Option<&Path>,
    ) -> Result<Self, TlsClientError> {
        let mut tls = None;
        let mut targets = Vec::with_capacity(servers.len());
        for server in servers {
            targets.push(match server {
                Endpoint::Plain(addr) => Target::Plain(*addr),
                Endpoint::Tls { addr, name } => {
                    let config = match &tls {
                        Some(config) => Arc::clone(config),
                        None => Arc::clone(tls.insert(client_config(tls_ca)?)),
                    };
                    Target::Tls(Arc::new(TlsUpstream::new(*addr, name, config)?))
                }
            });
        }
        Ok(Forwarder {
            servers: targets,
            timeout,
        })
    }

    /// The total time budget of one query.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Resolves `query` upstream and returns the reply message as the upstream sent it.
    /// A SERVFAIL or REFUSED reply moves on to the next server; if every server says so,
    /// the last such reply is returned.
    ///
    /// # Errors
    /// [`UpstreamError`] when no server gave a usable reply in time.
    pub async fn forward(
        &self,
        query: &Query,
        flags: QueryFlags,
    ) -> Result<Message, UpstreamError> {
        self.forward_noting(query, flags, &mut Vec::new())
            .await
            .map(|(_, reply)| reply)
    }

    /// [`Forwarder::forward`], also pushing onto `failed` the servers that did not give a
    /// usable reply before one did (for per-server metrics; when none did, they are in
    /// [`UpstreamError::Unanswered`] instead), and naming the server whose reply it is
    /// (`None` when every server failed it and the last SERVFAIL or REFUSED is returned).
    ///
    /// # Errors
    /// [`UpstreamError`] when no server gave a usable reply in time.
    pub async fn forward_noting(
        &self,
        query: &Query,
        flags: QueryFlags,
        failed: &mut Vec<Attempt>,
    ) -> Result<(Option<SocketAddr>, Message), UpstreamError> {
        let deadline = Instant::now() + self.timeout;
        let slice = self.timeout / self.servers.len().max(1) as u32;
        let mut last_reply = None;
        let mut tried = Vec::new();
        for (i, target) in self.servers.iter().enumerate() {
            let server = target.addr();
            let now = Instant::now();
            if now >= deadline {
                tried.push(Attempt {
                    server,
                    failure: Failure::NotAsked,
                });
                continue;
            }
            let until = if i + 1 == self.servers.len() {
                deadline
            } else {
                (now + slice).min(deadline)
            };
            let failure = match timeout_at(until, exchange(target, query, flags)).await {
                Ok(Ok(reply)) if reply.metadata.response_code == ResponseCode::FormErr => {
                    tracing::debug!(%server, "upstream answered FORMERR with and without EDNS");
                    Failure::FormErr
                }
                Ok(Ok(reply)) => {
                    let code = reply.metadata.response_code;
                    if code == ResponseCode::ServFail || code == ResponseCode::Refused {
                        tracing::debug!(%server, %code, "upstream failed the query, trying the next");
                        last_reply = Some(reply);
                        tried.push(Attempt {
                            server,
                            failure: if code == ResponseCode::ServFail {
                                Failure::ServFail
                            } else {
                                Failure::Refused
                            },
                        });
                        continue;
                    }
                    failed.append(&mut tried);
                    return Ok((Some(server), reply));
                }
                // Another server would not encode it either.
                Ok(Err(Exchange::Encode(e))) => return Err(UpstreamError::Encode(e)),
                Ok(Err(Exchange::Io(error))) => {
                    tracing::debug!(%server, %error, "upstream error");
                    Failure::Network(error)
                }
                Err(_) => {
                    tracing::debug!(%server, "upstream timed out");
                    Failure::TimedOut(until.saturating_duration_since(now))
                }
            };
            tried.push(Attempt { server, failure });
        }
        match last_reply {
            Some(reply) => {
                failed.append(&mut tried);
                Ok((None, reply))
            }
            None => Err(UpstreamError::Unanswered(tried)),
        }
    }
}

/// Whether the upstream query carries an EDNS OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Edns0 {
    /// EDNS with our payload size and the client's DO bit: what every server gets first.
    On,
    /// No OPT: the retry for a server that rejected EDNS with FORMERR.
    Off,
}

/// Builds the upstream query and its encoding: a fresh random ID, RD set, EDNS with our
/// payload size unless `edns` is off.
fn build_query(
    query: &Query,
    flags: QueryFlags,
    edns: Edns0,
) -> Result<(Message, Vec<u8>), Exchange> {
    let mut msg = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.metadata.checking_disabled = flags.checking_disabled;
    // AD in a query asks a validating upstream to say whether the answer is authentic
    // even without DO (RFC 6840 §5.7). It is asked always, so one cached reply serves
    // clients that set AD and clients that did not; the handler clears AD for the latter.
    msg.metadata.authentic_data = true;
    msg.add_query(query.clone());
    if edns == Edns0::On {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_dnssec_ok(flags.dnssec_ok);
        msg.set_edns(edns);
    }
    let bytes = msg.to_vec().map_err(|e| Exchange::Encode(e.to_string()))?;
    Ok((msg, bytes))
}

/// True when `reply` is a server rejecting the EDNS of `sent` (RFC 6891 §7): FORMERR to a
/// query with an OPT, and no OPT in the reply (a server that knows EDNS answers FORMERR
/// with an OPT, and then EDNS is not what it objects to).
fn rejects_edns(sent: &Message, reply: &Message) -> bool {
    reply.metadata.response_code == ResponseCode::FormErr
        && sent.edns.is_some()
        && reply.edns.is_none()
}

/// Why one exchange with one server failed.
#[derive(Debug)]
enum Exchange {
    /// The query could not be encoded.
    Encode(String),
    /// The network or the connection failed.
    Io(std::io::Error),
}

/// One server: UDP, then TCP if the UDP reply is truncated; or its TLS connection.
async fn exchange(target: &Target, query: &Query, flags: QueryFlags) -> Result<Message, Exchange> {
    let server = target.addr();
    let mut edns = Edns0::On;
    let reply = loop {
        let (sent, bytes) = build_query(query, flags, edns)?;
        let reply = match target {
            Target::Plain(_) => exchange_udp(server, &sent, &bytes).await,
            Target::Tls(tls) => tls.exchange(&sent, &bytes).await,
        }
        .map_err(Exchange::Io)?;
        if edns == Edns0::On && rejects_edns(&sent, &reply) {
            tracing::debug!(%server, "upstream rejects EDNS; asking again without it");
            edns = Edns0::Off;
            continue;
        }
        break reply;
    };
    // A stream carries any size: only a UDP reply is retried over TCP.
    if !reply.metadata.truncation || matches!(target, Target::Tls(_)) {
        return Ok(reply);
    }
    // Retry over TCP with a new ID. If that fails, this server failed: the truncated reply
    // is not an answer (the client would get it without TC=1, as a complete NOERROR, and the
    // cache refuses it), so the caller moves on to the next server or, if none is left,
    // answers SERVFAIL with EDE 22 (tests/faults.rs).
    let (sent, bytes) = build_query(query, flags, edns)?;
    exchange_tcp(server, &sent, &bytes).await.map_err(|error| {
        tracing::debug!(%server, %error, "TCP retry after truncation failed");
        Exchange::Io(error)
    })
}

/// One UDP exchange with one server, resending with backoff until the caller's deadline
/// for this server ends it.
async fn exchange_udp(
    server: SocketAddr,
    sent: &Message,
    bytes: &[u8],
) -> std::io::Result<Message> {
    let resend = Resend::Backoff {
        first: RETRANSMIT_AFTER,
        max: Duration::from_secs(2),
    };
    // We offer EDNS_PAYLOAD upstream, so a reply larger than this buffer is a server
    // ignoring it; the datagram is cut, fails to parse and is ignored like any bad reply.
    exchange::udp(server, bytes, 4096, resend, |datagram| {
        match Message::from_vec(datagram) {
            Ok(reply) if exchange::answers(sent, &reply) => Some(reply),
            Ok(_) => {
                tracing::debug!(%server, "ignoring an upstream reply that does not match the query");
                None
            }
            Err(error) => {
                tracing::debug!(%server, %error, "ignoring an unparseable upstream reply");
                None
            }
        }
    })
    .await
}

async fn exchange_tcp(
    server: SocketAddr,
    sent: &Message,
    bytes: &[u8],
) -> std::io::Result<Message> {
    let mut stream = TcpStream::connect(server).await?;
    exchange::stream(&mut stream, sent, bytes).await
}
