//! How an upstream resolver is written in `upstream.servers`: `9.9.9.9:53` (plain DNS, UDP
//! then TCP) or `tls://9.9.9.9:853#dns.quad9.net` (DNS over TLS, RFC 7858, with the name
//! its certificate must carry). The syntax is Unbound's `forward-addr: 9.9.9.9@853#name`
//! in URL dress; it is small enough that a hand-written parser is clearer than a URL crate.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// One configured upstream resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Plain DNS: UDP, and TCP for a truncated reply.
    Plain(SocketAddr),
    /// DNS over TLS to `addr`, whose certificate must be valid for `name`.
    Tls {
        /// Address and port (853 by default).
        addr: SocketAddr,
        /// The name checked against the certificate (and sent as SNI).
        name: String,
    },
}

impl Endpoint {
    /// The address queries go to.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Endpoint::Plain(addr) | Endpoint::Tls { addr, .. } => *addr,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Plain(addr) => write!(f, "{addr}"),
            Endpoint::Tls { addr, name } => write!(f, "tls://{addr}#{name}"),
        }
    }
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix("tls://") else {
            return text.parse().map(Endpoint::Plain).map_err(|_| {
                format!(
                    "`{text}` is not an upstream: write `9.9.9.9:53`, `[2620:fe::fe]:53` or `tls://9.9.9.9:853#dns.quad9.net`"
                )
            });
        };
        let Some((addr, name)) = rest.split_once('#') else {
            return Err(format!(
                "`{text}` needs the name on the resolver's certificate: `tls://9.9.9.9:853#dns.quad9.net`"
            ));
        };
        let addr = addr
            .parse::<SocketAddr>()
            .or_else(|_| addr.parse::<std::net::IpAddr>().map(|ip| (ip, 853).into()))
            .map_err(|_| {
                format!("`{addr}` in `{text}` is not an IP address with an optional port")
            })?;
        if rustls::pki_types::ServerName::try_from(name).is_err() || name.is_empty() {
            return Err(format!("`{name}` in `{text}` is not a host name"));
        }
        Ok(Endpoint::Tls {
            addr,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tls_forms() {
        assert_eq!(
            "9.9.9.9:53".parse::<Endpoint>(),
            Ok(Endpoint::Plain("9.9.9.9:53".parse().unwrap()))
        );
        let tls = Endpoint::Tls {
            addr: "9.9.9.9:853".parse().unwrap(),
            name: "dns.quad9.net".into(),
        };
        assert_eq!("tls://9.9.9.9:853#dns.quad9.net".parse(), Ok(tls.clone()));
        assert_eq!("tls://9.9.9.9#dns.quad9.net".parse(), Ok(tls.clone()));
        assert_eq!(tls.to_string(), "tls://9.9.9.9:853#dns.quad9.net");
        let v6: Endpoint = "tls://[2620:fe::fe]:853#dns.quad9.net".parse().unwrap();
        assert_eq!(v6.addr(), "[2620:fe::fe]:853".parse().unwrap());
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        for (text, says) in [
            ("9.9.9.9", "is not an upstream"),
            ("dns.quad9.net:53", "is not an upstream"),
            ("tls://9.9.9.9:853", "needs the name"),
            ("tls://dns.quad9.net#dns.quad9.net", "is not an IP address"),
            ("tls://9.9.9.9:853#", "is not a host name"),
            ("tls://9.9.9.9:853#bad name", "is not a host name"),
        ] {
            let e = text.parse::<Endpoint>().unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
