//! `[server]`, validated: where and how to listen. Built by [`crate::config`], read by
//! [`super::serve`]; the server's own type, so the server does not import config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// UDP and TCP on each.
    pub listen: Vec<SocketAddr>,
    /// Idle TCP connections close after this.
    pub tcp_idle: Duration,
    /// How long in-flight queries may take to finish on SIGTERM.
    pub shutdown_grace: Duration,
    /// Worker threads (0 = one per core); see [`ServerConfig::worker_threads`].
    pub threads: usize,
    /// Open TCP + DoT + DoH connections at most.
    pub tcp_max_connections: usize,
    /// DoT and DoH, if configured.
    pub tls: Option<TlsListeners>,
    /// Load balancers that prefix every datagram and connection with a PROXY protocol v2
    /// header; the client it names is the one policy applies to.
    pub proxy_protocol_from: Vec<IpNet>,
    /// Who is asking ([`super::identity`]): trusted forwarders, Client Subnet, ClientID
    /// domain.
    pub identity: IdentityConfig,
    /// The name DDR (`_dns.resolver.arpa` SVCB, [`super::ddr`]) gives as our DoT/DoH
    /// target: `server.ddr_name`, else `server.client_id_domain`; `None` = NODATA.
    pub ddr_name: Option<String>,
    /// The TXT answer to `version.bind`/`version.server` in class CH; `None` refuses it
    /// (the default: it reveals nothing about the software).
    pub chaos_version: Option<String>,
    /// The TXT answer to `hostname.bind`/`id.server` in class CH (which node of a fleet
    /// answered); `None` refuses it.
    pub chaos_identity: Option<String>,
}

impl ServerConfig {
    /// `threads` with 0 resolved to the number of cores: how many UDP receive threads
    /// each address gets, and how many async workers serve TCP, DoT, DoH and the rest.
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        }
    }
}

/// DNS over TLS and over HTTPS.
#[derive(Clone, Debug)]
pub struct TlsListeners {
    /// DoT addresses.
    pub dot_listen: Vec<SocketAddr>,
    /// DoH addresses (`/dns-query`).
    pub doh_listen: Vec<SocketAddr>,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Where the server reads who is asking from (`server.trusted_forwarders`,
/// `server.ecs_from_trusted`, `server.client_id_domain`).
#[derive(Clone, Debug, Default)]
pub struct IdentityConfig {
    /// Forwarders (home routers) whose device MAC options, and Client Subnet when
    /// `ecs_from_trusted`, are believed.
    pub trusted_forwarders: Vec<IpNet>,
    /// Choose profiles by the Client Subnet of trusted forwarders.
    pub ecs_from_trusted: bool,
    /// TLS server names `{id}.{client_id_domain}` carry a ClientID; lowercase, no
    /// trailing dot.
    pub client_id_domain: Option<String>,
}
