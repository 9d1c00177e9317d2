//! The compiled map against a naive longest-prefix match, corrupt files, and the guards.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;

use super::compile::compile;
use super::map::SubscriberMap;
use super::parse::{Row, parse};

fn map_of(text: &str) -> SubscriberMap {
    let rows = parse(text.as_bytes()).rows;
    SubscriberMap::from_vec(compile(&rows).unwrap().bytes).unwrap()
}

/// The most specific row containing `ip`; the later of two equal prefixes.
fn naive(rows: &[Row], ip: IpAddr) -> Option<&str> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.net.contains(&ip))
        .max_by_key(|(i, r)| (r.net.prefix_len(), *i))
        .map(|(_, r)| r.profile.as_str())
}

#[test]
fn lookups_v4_v6_and_mapped() {
    let map = map_of(
        "10.0.0.0/8 wide\n10.1.0.0/16 mid\n10.1.2.3 host\n2001:db8::/32 v6\n2001:db8::1 v6host\n",
    );
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(map.lookup(ip("10.1.2.3")), Some("host"));
    assert_eq!(map.lookup(ip("10.1.2.4")), Some("mid"));
    assert_eq!(map.lookup(ip("10.200.0.1")), Some("wide"));
    assert_eq!(map.lookup(ip("11.0.0.0")), None);
    assert_eq!(map.lookup(ip("0.0.0.0")), None);
    assert_eq!(map.lookup(ip("255.255.255.255")), None);
    assert_eq!(map.lookup(ip("::ffff:10.1.2.3")), Some("host"));
    assert_eq!(map.lookup(ip("2001:db8::1")), Some("v6host"));
    assert_eq!(map.lookup(ip("2001:db8:ffff::1")), Some("v6"));
    assert_eq!(map.lookup(ip("2001:db9::")), None);
    assert_eq!(map.rows(), 5);
    assert_eq!(map.ids(), 5);
}

#[test]
fn empty_families_answer_none() {
    let map = map_of("2001:db8::/32 v6\n");
    assert_eq!(map.lookup(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))), None);
    let map = map_of("10.0.0.0/8 v4\n");
    assert_eq!(map.lookup(IpAddr::V6(Ipv6Addr::LOCALHOST)), None);
}

#[test]
fn corrupt_files_are_refused() {
    let good = compile(&parse(b"10.0.0.0/8 a\n10.1.0.0/16 b\n2001:db8::/32 c\n").rows)
        .unwrap()
        .bytes;
    assert!(SubscriberMap::from_vec(good.clone()).is_ok());
    let refused = |bytes: Vec<u8>, what: &str| {
        let e = SubscriberMap::from_vec(bytes).unwrap_err();
        assert!(e.contains(what), "{e}");
    };
    refused(Vec::new(), "magic");
    let mut b = good.clone();
    b[0] = b'X';
    refused(b, "magic");
    let mut b = good.clone();
    b[8] = 9;
    refused(b, "version");
    let mut b = good.clone();
    b.pop();
    refused(b, "size");
    let mut b = good.clone();
    b.push(0);
    refused(b, "size");
    let mut b = good.clone();
    b[20..24].copy_from_slice(&u32::MAX.to_le_bytes()); // v4 count
    refused(b, "size");
    // Swap two v4 starts: out of order.
    let counts_end = good.len();
    let v6 = 3 * 20; // 3 v6 ranges (0, 2001:db8::, 2001:db9::) of 16 + 4 bytes
    let v4_values = counts_end - v6 - 5 * 4;
    let v4_starts = v4_values - 5 * 4;
    let mut b = good.clone();
    b[v4_starts + 4..v4_starts + 8].copy_from_slice(&[0, 0, 0, 0xff]);
    refused(b, "");
    // A value naming no id.
    let mut b = good.clone();
    b[v4_values + 4..v4_values + 8].copy_from_slice(&7u32.to_le_bytes());
    refused(b, "names no profile id");
    // Every single-byte flip is refused or still answers without panicking.
    for at in 0..good.len() {
        let mut b = good.clone();
        b[at] ^= 0x5a;
        if let Ok(m) = SubscriberMap::from_vec(b) {
            let _ = m.lookup(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)));
        }
    }
}

fn arb_row() -> impl Strategy<Value = Row> {
    // Few distinct high bits, so prefixes nest and collide often.
    let v4 = (0u32..4, any::<u32>(), 0u8..=32).prop_map(|(hi, lo, len)| {
        let a = (hi << 30) | (lo >> 2);
        IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(a), len).unwrap().trunc())
    });
    let v4_host = (0u32..4, 0u32..64).prop_map(|(hi, lo)| {
        IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from((hi << 30) | lo), 32).unwrap())
    });
    let v6 = (0u128..4, any::<u128>(), 0u8..=128).prop_map(|(hi, lo, len)| {
        let a = (hi << 126) | (lo >> 2);
        IpNet::V6(ipnet::Ipv6Net::new(Ipv6Addr::from(a), len).unwrap().trunc())
    });
    (prop_oneof![v4, v4_host, v6], 0u8..5).prop_map(|(net, p)| Row {
        net,
        profile: format!("p{p}"),
    })
}

fn probes(rows: &[Row], extra: &[IpAddr]) -> Vec<IpAddr> {
    let mut out = extra.to_vec();
    for r in rows {
        let (first, last) = (r.net.network(), r.net.broadcast());
        out.extend([first, last]);
        for ip in [first, last] {
            match ip {
                IpAddr::V4(a) => {
                    let n = u32::from(a);
                    out.push(Ipv4Addr::from(n.wrapping_sub(1)).into());
                    out.push(Ipv4Addr::from(n.wrapping_add(1)).into());
                }
                IpAddr::V6(a) => {
                    let n = u128::from(a);
                    out.push(Ipv6Addr::from(n.wrapping_sub(1)).into());
                    out.push(Ipv6Addr::from(n.wrapping_add(1)).into());
                }
            }
        }
    }
    out
}

proptest! {
    #[test]
    fn lookup_is_longest_prefix_match(
        rows in proptest::collection::vec(arb_row(), 0..60),
        extra in proptest::collection::vec(any::<IpAddr>(), 0..20),
    ) {
        let map = SubscriberMap::from_vec(compile(&rows).unwrap().bytes).unwrap();
        for ip in probes(&rows, &extra) {
            let ip = match ip {
                // The map answers mapped addresses as IPv4; the naive side sees them as v6.
                IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => continue,
                ip => ip,
            };
            prop_assert_eq!(map.lookup(ip), naive(&rows, ip), "{}", ip);
        }
    }
}
