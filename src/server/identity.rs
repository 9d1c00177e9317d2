//! Who is asking, read off the wire: the ClientID of a TLS server name or a DoH path, and
//! the device MAC and Client Subnet EDNS options of a trusted forwarder. The policy then
//! chooses the profile from the [`Client`] this builds
//! ([`crate::policy::decide::Policy::choose`]).
//!
//! - **ClientID**: `/dns-query/{id}` on DoH ([`path_client_id`]; an invalid one is a 400),
//!   and the TLS server name `{id}.{server.client_id_domain}` on DoT and DoH
//!   ([`Identify::sni`]; a name not under the domain gives none, counted).
//! - **Device MAC**: EDNS option 65001 (dnsmasq `--add-mac`: the 6 bytes) and 65073
//!   (`--add-mac=text`: `aa:bb:cc:dd:ee:ff`, or `--add-mac=base64`: 8 base64 characters),
//!   believed only from `server.trusted_forwarders`; from anyone else ignored and counted
//!   (`kidsafe_identity_untrusted_total{kind="mac"}`), malformed ones too
//!   (`kidsafe_identity_invalid_total{kind="mac"}`). The query is answered either way.
//! - **Client Subnet** (option 8), with `server.ecs_from_trusted`: from a trusted
//!   forwarder, the address the profile is chosen by (not the allow list or the rate
//!   limit: see [`Client::subnet`]).
//!
//! None of these options travel upstream: the forwarder builds its own query from the
//! question and two flags (`crate::upstream::forwarder`), and no reply echoes them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE64, BASE64URL_NOPAD};

use super::settings::IdentityConfig;
use crate::metrics::IdentityCounters;
use crate::policy::access::AccessList;
use crate::policy::client::{Client, ClientId, ClientIdError, Mac};

/// EDNS Client Subnet (RFC 7871).
pub const OPTION_ECS: u16 = 8;
/// dnsmasq `--add-mac`: the device's MAC address, 6 bytes.
pub const OPTION_MAC: u16 = 65001;
/// dnsmasq `--add-mac=text` / `--add-mac=base64`: the device's MAC address as text.
pub const OPTION_MAC_TEXT: u16 = 65073;

/// An EDNS option as a transport read it.
#[derive(Clone, Copy, Debug)]
pub enum EdnsOpt<'a> {
    /// Code and payload, as on the wire.
    Raw(u16, &'a [u8]),
    /// A Client Subnet hickory decoded: address and source prefix length.
    Subnet(IpAddr, u8),
}

/// The server's side of who is asking: which forwarders are believed, and the ClientID
/// domain.
#[derive(Debug, Default)]
pub struct Identify {
    trusted: AccessList,
    any_trusted: bool,
    ecs: bool,
    domain: Option<String>,
}

impl Identify {
    /// From `server.trusted_forwarders`, `ecs_from_trusted` and `client_id_domain`.
    pub fn new(config: &IdentityConfig) -> Self {
        Identify {
            trusted: AccessList::new(&config.trusted_forwarders),
            any_trusted: !config.trusted_forwarders.is_empty(),
            ecs: config.ecs_from_trusted,
            domain: config.client_id_domain.clone(),
        }
    }

    /// `base` (its address and the transport's ClientID) with what the query's EDNS
    /// `options` say: the device MAC and, with `ecs_from_trusted`, the Client Subnet, when
    /// `base.addr` is a trusted forwarder. Ignored options are counted in `counters`.
    pub fn identify<'a>(
        &self,
        base: &Client,
        options: impl IntoIterator<Item = EdnsOpt<'a>>,
        counters: &IdentityCounters,
    ) -> Client {
        let mut client = base.clone();
        let mut trusted = None;
        let mut is_trusted =
            || *trusted.get_or_insert_with(|| self.any_trusted && self.trusted.allows(base.addr));
        for option in options {
            match option {
                EdnsOpt::Raw(code @ (OPTION_MAC | OPTION_MAC_TEXT), data) => {
                    if !is_trusted() {
                        counters.untrusted_mac.increment(1);
                        continue;
                    }
                    match mac_option(code, data) {
                        Some(mac) => client.mac = Some(mac),
                        None => counters.invalid_mac.increment(1),
                    }
                }
                EdnsOpt::Raw(OPTION_ECS, data) if self.ecs => {
                    self.subnet(subnet_option(data), &mut client, &mut is_trusted, counters);
                }
                EdnsOpt::Subnet(addr, prefix) if self.ecs => {
                    let subnet = (prefix > 0).then_some(addr);
                    self.subnet(subnet, &mut client, &mut is_trusted, counters);
                }
                _ => {}
            }
        }
        client
    }

    fn subnet(
        &self,
        subnet: Option<IpAddr>,
        client: &mut Client,
        is_trusted: &mut impl FnMut() -> bool,
        counters: &IdentityCounters,
    ) {
        if !is_trusted() {
            counters.untrusted_ecs.increment(1);
            return;
        }
        match subnet {
            Some(addr) => client.subnet = Some(addr),
            None => counters.invalid_ecs.increment(1),
        }
    }

    /// The ClientID in a TLS server name `{id}.{client_id_domain}`; `None` without a
    /// domain configured, without a server name, for the domain itself, and (counted) for
    /// a name not under the domain or whose first label is not a ClientID.
    pub fn sni(&self, server_name: Option<&str>, counters: &IdentityCounters) -> Option<ClientId> {
        let domain = self.domain.as_deref()?;
        let name = server_name?.trim_end_matches('.').to_ascii_lowercase();
        if name == domain {
            return None;
        }
        let Some(id) = name
            .strip_suffix(domain)
            .and_then(|rest| rest.strip_suffix('.'))
        else {
            counters.sni_other.increment(1);
            return None;
        };
        match ClientId::parse(id) {
            Ok(id) => Some(id),
            Err(_) => {
                counters.invalid_sni.increment(1);
                None
            }
        }
    }
}

/// The MAC address in option 65001 (6 bytes) or 65073 (text or base64); `None` if it is
/// not one.
pub fn mac_option(code: u16, data: &[u8]) -> Option<Mac> {
    if code == OPTION_MAC {
        return <[u8; 6]>::try_from(data).ok().map(Mac);
    }
    let text = std::str::from_utf8(data).ok()?;
    if text.len() == 17 {
        return Mac::parse(text).ok();
    }
    let text = text.trim_end_matches('=');
    for decoded in [
        BASE64.decode(text.as_bytes()).ok(),
        BASE64URL_NOPAD.decode(text.as_bytes()).ok(),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(bytes) = <[u8; 6]>::try_from(decoded.as_slice()) {
            return Some(Mac(bytes));
        }
    }
    None
}

/// The address of a Client Subnet option's payload (RFC 7871 §6: family, source prefix,
/// scope prefix, then the prefix's bytes), host bits beyond the prefix cleared; `None` for
/// an unknown family, a prefix too long for it, a payload of the wrong length, or a
/// prefix of 0 (the client asks that no address be used).
pub fn subnet_option(data: &[u8]) -> Option<IpAddr> {
    let (head, addr) = data.split_at_checked(4)?;
    let family = u16::from_be_bytes([head[0], head[1]]);
    let prefix = head[2];
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if prefix == 0 || prefix > max || addr.len() != usize::from(prefix).div_ceil(8) {
        return None;
    }
    let mut octets = [0u8; 16];
    octets[..addr.len()].copy_from_slice(addr);
    if prefix % 8 != 0
        && let Some(last) = octets.get_mut(addr.len() - 1)
    {
        *last &= 0xffu8 << (8 - prefix % 8);
    }
    Some(if family == 1 {
        IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(octets))
    })
}

/// The ClientID of a DoH request path: `None` for `/dns-query`, the ClientID for
/// `/dns-query/{id}`, and `Err` (a 400, naming why) for an invalid one. Other paths are
/// not asked about (404).
///
/// # Errors
/// [`ClientIdError`] for `/dns-query/{id}` whose `{id}` is not a ClientID.
pub fn path_client_id(rest: &str) -> Result<Option<ClientId>, ClientIdError> {
    let id = rest.strip_suffix('/').unwrap_or(rest);
    if id.is_empty() {
        return Ok(None);
    }
    ClientId::parse(id).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    const M: Mac = Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);

    #[test]
    fn mac_options() {
        assert_eq!(mac_option(OPTION_MAC, &M.0), Some(M));
        assert_eq!(mac_option(OPTION_MAC, &M.0[..5]), None);
        assert_eq!(mac_option(OPTION_MAC, &[0; 7]), None);
        assert_eq!(mac_option(OPTION_MAC_TEXT, b"aa:bb:cc:dd:ee:ff"), Some(M));
        assert_eq!(mac_option(OPTION_MAC_TEXT, b"qrvM3e7/"), Some(M));
        assert_eq!(mac_option(OPTION_MAC_TEXT, b"qrvM3e7_"), Some(M));
        assert_eq!(mac_option(OPTION_MAC_TEXT, b"aa:bb:cc:dd:ee:zz"), None);
        assert_eq!(mac_option(OPTION_MAC_TEXT, b"\xff\xfe"), None);
        assert_eq!(mac_option(OPTION_MAC_TEXT, b""), None);
    }

    #[test]
    fn subnet_options() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            subnet_option(&[0, 1, 24, 0, 10, 1, 2]),
            Some(ip("10.1.2.0"))
        );
        assert_eq!(
            subnet_option(&[0, 1, 23, 0, 10, 1, 3]),
            Some(ip("10.1.2.0"))
        );
        assert_eq!(
            subnet_option(&[0, 1, 32, 0, 10, 1, 2, 3]),
            Some(ip("10.1.2.3"))
        );
        assert_eq!(
            subnet_option(&[0, 2, 16, 0, 0x20, 0x01]),
            Some(ip("2001::"))
        );
        assert_eq!(subnet_option(&[0, 1, 0, 0]), None, "prefix 0");
        assert_eq!(subnet_option(&[0, 1, 24, 0, 10, 1]), None, "short");
        assert_eq!(subnet_option(&[0, 1, 33, 0, 1, 2, 3, 4, 5]), None);
        assert_eq!(subnet_option(&[0, 3, 8, 0, 1]), None, "family");
        assert_eq!(subnet_option(&[0, 1]), None);
    }

    #[test]
    fn trust_decides() {
        let config = IdentityConfig {
            trusted_forwarders: vec!["127.0.0.2/32".parse().unwrap()],
            ecs_from_trusted: true,
            client_id_domain: Some("dns.test".into()),
        };
        let id = Identify::new(&config);
        let metrics = Metrics::new(&["default".into()]);
        let c = &metrics.identity;
        let opts = [
            EdnsOpt::Raw(OPTION_MAC, &M.0),
            EdnsOpt::Raw(OPTION_ECS, &[0, 1, 24, 0, 10, 9, 9]),
        ];
        let trusted = id.identify(&Client::from_addr("127.0.0.2".parse().unwrap()), opts, c);
        assert_eq!(trusted.mac, Some(M));
        assert_eq!(trusted.subnet, Some("10.9.9.0".parse().unwrap()));
        let other = id.identify(&Client::from_addr("127.0.0.1".parse().unwrap()), opts, c);
        assert_eq!((other.mac, other.subnet), (None, None));
        let text = metrics.render();
        assert!(
            text.contains("kidsafe_identity_untrusted_total{kind=\"mac\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("kidsafe_identity_untrusted_total{kind=\"ecs\"} 1"),
            "{text}"
        );

        assert_eq!(
            id.sni(Some("kid-tablet.dns.test"), c).unwrap().as_str(),
            "kid-tablet"
        );
        assert_eq!(
            id.sni(Some("Kid-Tablet.DNS.test."), c).unwrap().as_str(),
            "kid-tablet"
        );
        assert_eq!(id.sni(Some("dns.test"), c), None);
        assert_eq!(id.sni(None, c), None);
        assert_eq!(id.sni(Some("kid.other.test"), c), None);
        assert_eq!(id.sni(Some("xdns.test"), c), None);
        assert_eq!(id.sni(Some("a.b.dns.test"), c), None);
        let text = metrics.render();
        assert!(
            text.contains("kidsafe_identity_sni_other_total 2"),
            "{text}"
        );
        assert!(
            text.contains("kidsafe_identity_invalid_total{kind=\"sni\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn doh_paths() {
        assert_eq!(path_client_id(""), Ok(None));
        assert_eq!(path_client_id("kid").unwrap().unwrap().as_str(), "kid");
        assert_eq!(path_client_id("kid/").unwrap().unwrap().as_str(), "kid");
        assert!(path_client_id("-kid").is_err());
        assert!(path_client_id("a/b").is_err());
    }
}
