//! Policy costs: client-group selection with 10k CIDR groups (a prefix trie, so the cost
//! follows the prefix length, not the group count), access list and rate limiter checks.
//!
//! `cargo bench --bench policy`; figures in BENCHMARKS.md.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use kidsafe_dns::policy::access::AccessList;
use kidsafe_dns::policy::groups::GroupTable;
use kidsafe_dns::policy::ratelimit::RateLimiter;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn benches(c: &mut Criterion) {
    // 10k groups: each one IPv4 /24 inside 10/8 plus one IPv6 /48 inside 2001:db8::/32
    // (an ISP's per-customer policies), and a few wide ones that everything nests in.
    let mut groups: Vec<Vec<IpNet>> = (0u32..10_000)
        .map(|i| {
            let v4 = IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i << 8))), 24).unwrap();
            let v6 = IpNet::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0x0db8, i as u16, 0, 0, 0, 0, 0)),
                48,
            )
            .unwrap();
            vec![v4, v6]
        })
        .collect();
    groups.push(vec![
        "10.0.0.0/8".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ]);
    let table = GroupTable::new(&groups).unwrap();
    let mut seed = 0x1234_5678_9abc_def0;
    let v4: Vec<IpAddr> = (0..4096)
        .map(|_| {
            IpAddr::V4(Ipv4Addr::from(
                0x0a00_0000 | (xorshift(&mut seed) as u32 & 0x00ff_ffff),
            ))
        })
        .collect();
    let v6: Vec<IpAddr> = (0..4096)
        .map(|_| {
            let r = xorshift(&mut seed);
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0x0db8,
                r as u16,
                (r >> 16) as u16,
                0,
                0,
                0,
                (r >> 32) as u16,
            ))
        })
        .collect();
    let mut i = 0;
    c.bench_function("group_lookup_10k_groups_ipv4", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(table.lookup(black_box(v4[i])))
        })
    });
    c.bench_function("group_lookup_10k_groups_ipv6", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(table.lookup(black_box(v6[i])))
        })
    });
    let acl = AccessList::default_private();
    c.bench_function("access_list_check", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(acl.allows(black_box(v4[i])))
        })
    });
    let rl = RateLimiter::new(1000, 2000, 100_000);
    let now = Instant::now();
    c.bench_function("rate_limiter_check", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(rl.check(black_box(v4[i]), now))
        })
    });
}

criterion_group!(policy, benches);
criterion_main!(policy);
