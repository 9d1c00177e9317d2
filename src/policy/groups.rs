//! Client address → policy group, by longest-prefix CIDR match (and [`IdTable`]: ClientID
//! or MAC address → group, by exact match).
//!
//! An ISP or school assigns policies per subnet (a classroom VLAN, a subscriber pool); the
//! most specific CIDR wins so a narrow exception can sit inside a broad range. Single
//! addresses are one hash probe; networks are in a prefix trie, so a lookup's cost depends
//! on the address width, never on the number of groups.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use prefix_trie::joint::JointPrefixMap;

/// Why a [`GroupTable`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Two groups list the same network, so which one applies would be arbitrary.
    #[error("CIDR {cidr} is claimed by both group {first} and group {second}")]
    DuplicateCidr {
        /// The network, canonical form (host bits cleared, IPv4-mapped IPv6 as IPv4).
        cidr: IpNet,
        /// Index of the group that listed it first.
        first: usize,
        /// Index of the group that listed it again.
        second: usize,
    },
    /// Two groups list the same ClientID.
    #[error("ClientID {id} is claimed by both group {first} and group {second}")]
    DuplicateClientId {
        /// The ClientID.
        id: String,
        /// Index of the group that listed it first.
        first: usize,
        /// Index of the group that listed it again.
        second: usize,
    },
    /// Two groups list the same MAC address.
    #[error("MAC address {mac} is claimed by both group {first} and group {second}")]
    DuplicateMac {
        /// The address.
        mac: String,
        /// Index of the group that listed it first.
        first: usize,
        /// Index of the group that listed it again.
        second: usize,
    },
}

/// Maps client addresses to group indices by the most specific matching CIDR.
///
/// Single addresses (`/32`, `/128`: a family's line, a device) are kept in a hash map
/// apart from the trie: a hit there is the most specific match there can be, in one probe,
/// where the trie walks every level of the address (`benches/profiles.rs`: with 100,000
/// single-address profiles, ~410 ns a lookup in the trie alone).
#[derive(Debug, Clone, Default)]
pub struct GroupTable {
    hosts: std::collections::HashMap<IpAddr, usize>,
    trie: JointPrefixMap<IpNet, usize>,
}

impl GroupTable {
    /// Builds the table; `groups[i]` holds the CIDRs of group `i`.
    ///
    /// CIDRs are canonicalized first: host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`)
    /// and IPv4-mapped IPv6 networks (`::ffff:10.0.0.0/104`) become IPv4 (`10.0.0.0/8`).
    /// Listing a CIDR twice within one group is harmless; listing it in two groups is an
    /// error naming both group indices and the CIDR.
    pub fn new(groups: &[Vec<IpNet>]) -> Result<Self, GroupError> {
        let mut trie = JointPrefixMap::new();
        let mut hosts = std::collections::HashMap::new();
        for (group, nets) in groups.iter().enumerate() {
            for &net in nets {
                let cidr = canonical_net(net);
                if cidr.prefix_len() == cidr.max_prefix_len() {
                    match hosts.get(&cidr.addr()) {
                        Some(&first) if first != group => {
                            return Err(GroupError::DuplicateCidr {
                                cidr,
                                first,
                                second: group,
                            });
                        }
                        Some(_) => {}
                        None => {
                            hosts.insert(cidr.addr(), group);
                        }
                    }
                    continue;
                }
                match trie.get(&cidr) {
                    Some(&first) if first != group => {
                        return Err(GroupError::DuplicateCidr {
                            cidr,
                            first,
                            second: group,
                        });
                    }
                    Some(_) => {}
                    None => {
                        trie.insert(cidr, group);
                    }
                }
            }
        }
        Ok(Self { hosts, trie })
    }

    /// The group whose most specific CIDR contains `ip`, or `None` (the caller falls back to
    /// its default group). IPv4-mapped IPv6 clients (`::ffff:a.b.c.d`, as seen on dual-stack
    /// sockets) match IPv4 entries.
    pub fn lookup(&self, ip: IpAddr) -> Option<usize> {
        let ip = ip.to_canonical();
        if !self.hosts.is_empty()
            && let Some(&group) = self.hosts.get(&ip)
        {
            return Some(group);
        }
        self.trie.get_lpm(&IpNet::from(ip)).map(|(_, &group)| group)
    }

    /// Number of distinct CIDRs in the table.
    pub fn len(&self) -> usize {
        self.hosts.len() + self.trie.len()
    }

    /// True when no CIDR was given, so every lookup is `None`.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.trie.is_empty()
    }
}

/// Exact identities (ClientIDs, MAC addresses) → group index; one identity, one group.
#[derive(Debug, Clone)]
pub struct IdTable<K> {
    map: std::collections::HashMap<K, usize>,
}

impl<K> Default for IdTable<K> {
    fn default() -> Self {
        IdTable {
            map: std::collections::HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> IdTable<K> {
    /// Builds the table; `groups[i]` holds the identities of group `i`. An identity in two
    /// groups is `Err((identity, first, second))`; twice in one group is harmless.
    pub fn new(groups: &[Vec<K>]) -> Result<Self, (K, usize, usize)> {
        let mut map = std::collections::HashMap::new();
        for (group, ids) in groups.iter().enumerate() {
            for id in ids {
                match map.get(id) {
                    Some(&first) if first != group => return Err((id.clone(), first, group)),
                    Some(_) => {}
                    None => {
                        map.insert(id.clone(), group);
                    }
                }
            }
        }
        Ok(IdTable { map })
    }

    /// The group of `id`, if any lists it.
    pub fn lookup(&self, id: &K) -> Option<usize> {
        if self.map.is_empty() {
            return None;
        }
        self.map.get(id).copied()
    }
}

/// The single-address network (`/32` or `/128`) of a client, IPv4-mapped IPv6 as IPv4.
pub(crate) fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip.to_canonical())
}

/// A configured network in the form the tries store: host bits cleared, and an IPv6 network
/// inside `::ffff:0:0/96` rewritten as the IPv4 network it denotes, so it matches the
/// canonicalized clients of [`host_net`].
pub(crate) fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    let IpNet::V6(v6) = net else {
        return net;
    };
    match (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
        (Some(v4), Some(len)) => Ipv4Net::new(v4, len).map_or(net, IpNet::V4),
        _ => net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table() -> GroupTable {
        GroupTable::new(&[
            vec![net("10.0.0.0/8"), net("2001:db8::/32")],
            vec![net("10.1.0.0/16"), net("2001:db8:1::/48")],
            vec![net("10.1.2.0/24"), net("192.168.0.0/16")],
        ])
        .unwrap()
    }

    #[test]
    fn most_specific_cidr_wins() {
        let t = table();
        assert_eq!(t.lookup(ip("10.9.9.9")), Some(0));
        assert_eq!(t.lookup(ip("10.1.9.9")), Some(1));
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(2));
        assert_eq!(t.lookup(ip("192.168.44.1")), Some(2));
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn ipv6_longest_match() {
        let t = table();
        assert_eq!(t.lookup(ip("2001:db8:ffff::1")), Some(0));
        assert_eq!(t.lookup(ip("2001:db8:1:2::1")), Some(1));
        assert_eq!(t.lookup(ip("2001:db9::1")), None);
    }

    #[test]
    fn unmatched_is_none() {
        let t = table();
        assert_eq!(t.lookup(ip("11.0.0.1")), None);
        assert_eq!(t.lookup(ip("::1")), None);
        assert!(
            GroupTable::new(&[])
                .unwrap()
                .lookup(ip("10.0.0.1"))
                .is_none()
        );
        assert!(GroupTable::default().is_empty());
    }

    #[test]
    fn ipv4_mapped_client_matches_ipv4_entries() {
        let t = table();
        assert_eq!(t.lookup(ip("::ffff:10.1.2.3")), Some(2));
        assert_eq!(t.lookup(ip("::ffff:10.200.0.1")), Some(0));
        assert_eq!(t.lookup(ip("::ffff:11.0.0.1")), None);
    }

    #[test]
    fn ipv4_mapped_entry_matches_ipv4_clients() {
        let t = GroupTable::new(&[vec![net("::ffff:172.16.0.0/108")]]).unwrap();
        assert_eq!(t.lookup(ip("172.20.1.1")), Some(0));
        assert_eq!(t.lookup(ip("::ffff:172.20.1.1")), Some(0));
        assert_eq!(t.lookup(ip("172.32.0.1")), None);
    }

    #[test]
    fn ipv4_compatible_and_loopback_v6_stay_v6() {
        // `::1` must not be read as 0.0.0.1 (only `::ffff:0:0/96` is IPv4-mapped).
        let t = GroupTable::new(&[vec![net("0.0.0.0/8")], vec![net("::1/128")]]).unwrap();
        assert_eq!(t.lookup(ip("::1")), Some(1));
        assert_eq!(t.lookup(ip("0.0.0.1")), Some(0));
    }

    #[test]
    fn default_routes_catch_everything_of_their_family() {
        let t = GroupTable::new(&[vec![net("0.0.0.0/0")], vec![net("::/0")]]).unwrap();
        assert_eq!(t.lookup(ip("8.8.8.8")), Some(0));
        assert_eq!(t.lookup(ip("::ffff:8.8.8.8")), Some(0));
        assert_eq!(t.lookup(ip("2a00::1")), Some(1));
    }

    #[test]
    fn duplicate_across_groups_names_both_and_the_cidr() {
        let err = GroupTable::new(&[
            vec![net("10.0.0.0/8")],
            vec![net("192.168.0.0/16")],
            vec![net("10.0.0.0/8")],
        ])
        .unwrap_err();
        assert_eq!(
            err,
            GroupError::DuplicateCidr {
                cidr: net("10.0.0.0/8"),
                first: 0,
                second: 2
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("10.0.0.0/8") && msg.contains("group 0") && msg.contains("group 2"));
    }

    #[test]
    fn duplicate_detection_sees_through_spelling() {
        // Host bits and the IPv4-mapped form name the same network.
        let err = GroupTable::new(&[vec![net("10.1.2.3/8")], vec![net("::ffff:10.0.0.0/104")]])
            .unwrap_err();
        assert!(matches!(
            err,
            GroupError::DuplicateCidr {
                first: 0,
                second: 1,
                ..
            }
        ));
    }

    #[test]
    fn duplicate_within_one_group_is_fine() {
        let t = GroupTable::new(&[vec![net("10.0.0.0/8"), net("10.0.0.0/8")]]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(ip("10.2.3.4")), Some(0));
    }

    #[test]
    fn canonical_net_forms() {
        assert_eq!(canonical_net(net("10.1.2.3/8")), net("10.0.0.0/8"));
        assert_eq!(canonical_net(net("::ffff:10.0.0.0/104")), net("10.0.0.0/8"));
        assert_eq!(canonical_net(net("::ffff:0:0/96")), net("0.0.0.0/0"));
        assert_eq!(canonical_net(net("::/0")), net("::/0"));
        assert_eq!(canonical_net(net("2001:db8::1/32")), net("2001:db8::/32"));
        assert_eq!(host_net(ip("::ffff:1.2.3.4")), net("1.2.3.4/32"));
    }

    /// Reference model: scan every CIDR, keep the longest one containing the address.
    fn naive(groups: &[Vec<IpNet>], ip: IpAddr) -> Option<usize> {
        let ip = ip.to_canonical();
        groups
            .iter()
            .enumerate()
            .flat_map(|(g, nets)| nets.iter().map(move |&n| (g, canonical_net(n))))
            .filter(|(_, n)| n.contains(&ip))
            .max_by_key(|(_, n)| n.prefix_len())
            .map(|(g, _)| g)
    }

    fn naive_has_conflict(groups: &[Vec<IpNet>]) -> bool {
        let all: Vec<(usize, IpNet)> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, nets)| nets.iter().map(move |&n| (g, canonical_net(n))))
            .collect();
        all.iter()
            .any(|(g1, n1)| all.iter().any(|(g2, n2)| g1 != g2 && n1 == n2))
    }

    /// CIDRs drawn from a small space (a few /8s and one /32 of IPv6) so they nest and
    /// collide often; some IPv4 ones are written IPv4-mapped.
    fn arb_net() -> impl Strategy<Value = IpNet> {
        let v4 = (
            prop::sample::select(vec![10u32, 172, 192]),
            any::<u32>(),
            0u8..=32,
            any::<bool>(),
        )
            .prop_map(|(hi, lo, len, mapped)| {
                let addr = Ipv4Addr::from((hi << 24) | (lo & 0x00ff_ffff));
                if mapped {
                    IpNet::new(IpAddr::V6(addr.to_ipv6_mapped()), len + 96).unwrap()
                } else {
                    IpNet::new(IpAddr::V4(addr), len).unwrap()
                }
            });
        let v6 = (any::<u128>(), 16u8..=128).prop_map(|(lo, len)| {
            let addr = Ipv6Addr::from((0x2001_0db8u128 << 96) | (lo >> 32));
            IpNet::new(IpAddr::V6(addr), len).unwrap()
        });
        prop_oneof![3 => v4, 1 => v6]
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            (
                prop::sample::select(vec![10u32, 172, 192, 8]),
                any::<u32>(),
                any::<bool>()
            )
                .prop_map(|(hi, lo, mapped)| {
                    let a = Ipv4Addr::from((hi << 24) | (lo & 0x00ff_ffff));
                    if mapped {
                        IpAddr::V6(a.to_ipv6_mapped())
                    } else {
                        IpAddr::V4(a)
                    }
                }),
            any::<u128>()
                .prop_map(|lo| IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (lo >> 32)))),
        ]
    }

    proptest! {
        #[test]
        fn trie_matches_naive_longest_match(
            groups in prop::collection::vec(prop::collection::vec(arb_net(), 0..8), 0..6),
            probes in prop::collection::vec(arb_ip(), 1..64),
        ) {
            match GroupTable::new(&groups) {
                Err(_) => prop_assert!(naive_has_conflict(&groups)),
                Ok(t) => {
                    prop_assert!(!naive_has_conflict(&groups));
                    // Probe random addresses and the edges of every configured network.
                    let edges = groups.iter().flatten().flat_map(|n| {
                        let n = canonical_net(*n);
                        [n.network(), n.broadcast()]
                    });
                    for ip in probes.into_iter().chain(edges) {
                        prop_assert_eq!(t.lookup(ip), naive(&groups, ip), "ip {}", ip);
                    }
                }
            }
        }
    }
}
