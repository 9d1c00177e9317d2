//! Who is asking: the identities a query can carry, from the most specific to the least.
//!
//! - a **ClientID** (`kid-tablet`), named by the device itself: the DoH path
//!   (`/dns-query/kid-tablet`) or the TLS server name (`kid-tablet.dns.example.vn`, the
//!   hostname Android's Private DNS sends on DoT);
//! - a **MAC address**, added by the home router (dnsmasq `--add-mac`) to the queries it
//!   forwards; believed only from `server.trusted_forwarders`;
//! - the **address**: the packet's source (or the PROXY protocol client), or the EDNS
//!   Client Subnet a trusted forwarder sent (`server.ecs_from_trusted`).
//!
//! [`crate::policy::decide::Policy::choose`] picks the profile (client group) in that
//! order. The server reads the identities off the wire (`crate::server::identity`); this
//! module only holds their checked forms, so the policy does not depend on the server.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

/// A ClientID: one DNS label, 1 to 63 characters of `a-z`, `0-9` and `-`, neither starting
/// nor ending with `-`. Parsing lowercases ASCII first (names are case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Arc<str>);

/// Why a ClientID is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    /// Nothing there.
    #[error("a ClientID cannot be empty")]
    Empty,
    /// Over 63 characters.
    #[error("a ClientID is at most 63 characters (a DNS label); this one has {0}")]
    TooLong(usize),
    /// A character outside `a-z`, `0-9`, `-`.
    #[error("a ClientID may only hold a-z, 0-9 and '-' (a DNS label); found {0:?}")]
    BadChar(char),
    /// Starts or ends with `-`.
    #[error("a ClientID cannot start or end with '-'")]
    Hyphen,
}

impl ClientId {
    /// Checks `text` (lowercased first) as a ClientID.
    ///
    /// # Errors
    /// [`ClientIdError`] saying why not.
    pub fn parse(text: &str) -> Result<ClientId, ClientIdError> {
        if text.is_empty() {
            return Err(ClientIdError::Empty);
        }
        let len = text.chars().count();
        if len > 63 {
            return Err(ClientIdError::TooLong(len));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(ClientIdError::BadChar(c));
        }
        if text.starts_with('-') || text.ends_with('-') {
            return Err(ClientIdError::Hyphen);
        }
        Ok(ClientId(Arc::from(text.to_ascii_lowercase())))
    }

    /// The ClientID as text (lowercase).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ClientId {
    type Err = ClientIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientId::parse(s)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A device's MAC address (EUI-48).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

/// Why a MAC address is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address: write six hex pairs, e.g. aa:bb:cc:dd:ee:ff")]
pub struct MacError(pub String);

impl Mac {
    /// Reads `aa:bb:cc:dd:ee:ff` (also with `-` between the pairs, any case).
    ///
    /// # Errors
    /// [`MacError`] quoting the text.
    pub fn parse(text: &str) -> Result<Mac, MacError> {
        let bad = || MacError(text.to_owned());
        let sep = if text.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = text.split(sep);
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mac::parse(s)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Who is asking, as far as the query tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The address the query came from: the packet's source, or the client a trusted PROXY
    /// protocol balancer named. The allow list, the rate limit and the query log see this
    /// one, always.
    pub addr: IpAddr,
    /// The address a trusted forwarder gave in EDNS Client Subnet
    /// (`server.ecs_from_trusted`): it replaces `addr` in the choice of profile by CIDR
    /// only. Admission stays with `addr`: the forwarder is the one sending the packets, and
    /// a subnet it names must not let it past the allow list or spread its rate limit.
    pub subnet: Option<IpAddr>,
    /// The ClientID the transport carried (DoH path, TLS server name).
    pub client_id: Option<ClientId>,
    /// The device's MAC address, from a trusted forwarder.
    pub mac: Option<Mac>,
}

impl Client {
    /// A client known only by its address.
    pub fn from_addr(addr: IpAddr) -> Client {
        Client {
            addr,
            subnet: None,
            client_id: None,
            mac: None,
        }
    }

    /// The address the profile is chosen by: the Client Subnet when there is one.
    pub fn profile_addr(&self) -> IpAddr {
        self.subnet.unwrap_or(self.addr)
    }
}

impl From<IpAddr> for Client {
    fn from(addr: IpAddr) -> Client {
        Client::from_addr(addr)
    }
}

/// Which identity chose the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChosenBy {
    /// The ClientID.
    ClientId,
    /// The MAC address.
    Mac,
    /// The address (or Client Subnet), by CIDR.
    Address,
    /// The address (or Client Subnet), by the ISP's subscriber lines.
    Subscriber,
    /// Nothing matched: the `default` profile.
    Default,
}

impl ChosenBy {
    /// How it reads in `check` output and `/v1/check`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChosenBy::ClientId => "client_id",
            ChosenBy::Mac => "mac",
            ChosenBy::Address => "address",
            ChosenBy::Subscriber => "subscriber",
            ChosenBy::Default => "default",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        assert_eq!(
            ClientId::parse("Kid-Tablet").unwrap().as_str(),
            "kid-tablet"
        );
        assert_eq!(ClientId::parse("a").unwrap().as_str(), "a");
        assert_eq!(ClientId::parse(""), Err(ClientIdError::Empty));
        assert_eq!(ClientId::parse("-a"), Err(ClientIdError::Hyphen));
        assert_eq!(ClientId::parse("a-"), Err(ClientIdError::Hyphen));
        assert_eq!(ClientId::parse("a.b"), Err(ClientIdError::BadChar('.')));
        assert_eq!(ClientId::parse("a_b"), Err(ClientIdError::BadChar('_')));
        assert_eq!(ClientId::parse("é"), Err(ClientIdError::BadChar('é')));
        assert!(ClientId::parse(&"a".repeat(63)).is_ok());
        assert_eq!(
            ClientId::parse(&"a".repeat(64)),
            Err(ClientIdError::TooLong(64))
        );
    }

    #[test]
    fn macs() {
        let m = Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(Mac::parse("aa:bb:cc:dd:ee:ff"), Ok(m));
        assert_eq!(Mac::parse("AA-BB-CC-DD-EE-FF"), Ok(m));
        assert_eq!(m.to_string(), "aa:bb:cc:dd:ee:ff");
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:f",
            "aa:bb:cc:dd:ee:gg",
            "aabbccddeeff",
            "aa:bb:cc:dd:ee:+f",
        ] {
            assert!(Mac::parse(bad).is_err(), "{bad}");
        }
    }
}
