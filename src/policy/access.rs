//! Which clients may query at all: a closed resolver (RFC 5358).
//!
//! An open resolver is abused for amplification attacks and lets anyone probe the filter,
//! so queries from addresses outside the configured networks are refused before any
//! policy or upstream work is done.

use std::net::IpAddr;

use ipnet::IpNet;
use prefix_trie::joint::JointPrefixSet;

use super::groups::{canonical_net, host_net};

/// The networks [`AccessList::default_private`] allows, for config defaults and docs.
pub fn default_private_nets() -> Vec<IpNet> {
    PRIVATE.iter().filter_map(|s| s.parse().ok()).collect()
}

/// The networks allowed to use the resolver; everything else is refused.
#[derive(Debug, Clone, Default)]
pub struct AccessList {
    nets: JointPrefixSet<IpNet>,
}

/// Private-use networks allowed by [`AccessList::default_private`].
const PRIVATE: [&str; 9] = [
    "127.0.0.0/8",    // loopback
    "::1/128",        // loopback
    "10.0.0.0/8",     // RFC 1918
    "172.16.0.0/12",  // RFC 1918
    "192.168.0.0/16", // RFC 1918
    "fc00::/7",       // unique local (RFC 4193)
    "169.254.0.0/16", // link-local
    "fe80::/10",      // link-local
    "100.64.0.0/10",  // CGNAT shared space (RFC 6598): an ISP's subscribers
];

impl AccessList {
    /// Allows exactly `nets` (an empty list allows nobody). Networks are canonicalized as in
    /// [`GroupTable`](super::groups::GroupTable): host bits cleared, IPv4-mapped IPv6 as IPv4.
    pub fn new(nets: &[IpNet]) -> Self {
        let mut set = JointPrefixSet::new();
        for &net in nets {
            set.insert(canonical_net(net));
        }
        Self { nets: set }
    }

    /// The safe default for a resolver with no explicit list: loopback, RFC 1918, IPv6 ULA,
    /// link-local and CGNAT (100.64.0.0/10, where an ISP's subscribers sit). Public
    /// addresses are refused.
    pub fn default_private() -> Self {
        Self::new(&default_private_nets())
    }

    /// True when `ip` lies in an allowed network. IPv4-mapped IPv6 clients (`::ffff:a.b.c.d`)
    /// are judged as the IPv4 address they carry.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.nets.get_lpm(&host_net(ip)).is_some()
    }

    /// Number of distinct networks in the list.
    pub fn len(&self) -> usize {
        self.nets.len()
    }

    /// True when the list allows nobody.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_constants_all_parse() {
        assert_eq!(AccessList::default_private().len(), PRIVATE.len());
    }

    #[test]
    fn default_private_allows_private_ranges() {
        let acl = AccessList::default_private();
        for a in [
            "127.0.0.1",
            "127.255.255.254",
            "::1",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.10",
            "fc00::1",
            "fd12:3456:789a::1",
            "169.254.1.1",
            "fe80::1",
            "febf::1",
            "100.64.0.1",
            "100.127.255.254",
        ] {
            assert!(acl.allows(ip(a)), "{a} should be allowed");
        }
    }

    #[test]
    fn default_private_refuses_public_and_edges() {
        let acl = AccessList::default_private();
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "11.0.0.0",
            "2001:4860:4860::8888",
            "fec0::1",
            "::",
            "::2",
        ] {
            assert!(!acl.allows(ip(a)), "{a} should be refused");
        }
    }

    #[test]
    fn ipv4_mapped_clients_are_judged_as_ipv4() {
        let acl = AccessList::default_private();
        assert!(acl.allows(ip("::ffff:192.168.1.1")));
        assert!(acl.allows(ip("::ffff:127.0.0.1")));
        assert!(acl.allows(ip("::ffff:100.64.1.1")));
        assert!(!acl.allows(ip("::ffff:8.8.8.8")));
    }

    #[test]
    fn explicit_list_and_empty_list() {
        let acl = AccessList::new(&[
            "203.0.113.0/24".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ]);
        assert!(acl.allows(ip("203.0.113.7")));
        assert!(acl.allows(ip("::ffff:203.0.113.7")));
        assert!(acl.allows(ip("2001:db8:5::1")));
        assert!(!acl.allows(ip("10.0.0.1")));
        let none = AccessList::new(&[]);
        assert!(none.is_empty());
        assert!(!none.allows(ip("127.0.0.1")));
    }

    #[test]
    fn open_resolver_when_asked_for() {
        let acl = AccessList::new(&["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()]);
        assert!(acl.allows(ip("8.8.8.8")));
        assert!(acl.allows(ip("2a00::1")));
    }
}
