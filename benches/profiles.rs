//! Profiles at ISP scale: 100,000 stored profiles, each with an address, a ClientID and a
//! MAC address. What a profile change costs (merge into the config, build the policy: the
//! follower does both after every API write) and what choosing a client's profile costs
//! (ClientID, MAC, address; the default for an unknown client).
//!
//! `cargo bench --bench profiles`; figures in BENCHMARKS.md ("Profiles at scale").

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use kidsafe_dns::app::{StartError, build_policy_with, with_profiles};
use kidsafe_dns::policy::client::{ClientId, Mac};
use kidsafe_dns::policy::decide::Clock;
use kidsafe_dns::policy::{Client, GroupConfig};
use kidsafe_dns::profiles::ProfilesSnapshot;

const PROFILES: u32 = 100_000;

fn addr(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
}

fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x02, 0x00, b[0], b[1], b[2], b[3]])
}

fn client_id(i: u32) -> ClientId {
    ClientId::parse(&format!("dev-{i}")).expect("a valid ClientID")
}

/// The snapshot the store gives with `PROFILES` profiles: one address, ClientID and MAC
/// each, some with their own categories.
fn snapshot() -> ProfilesSnapshot {
    let groups = (0..PROFILES)
        .map(|i| {
            let mut g = GroupConfig::implicit_default();
            g.id = format!("p{i}");
            g.name = format!("family-{i}");
            g.clients = vec![ipnet::IpNet::from(addr(i))];
            g.client_ids = vec![client_id(i)];
            g.macs = vec![mac(i)];
            if i % 3 == 0 {
                g.categories = Some(vec!["adult".into(), "gambling".into()]);
            }
            (g.id.clone(), g)
        })
        .collect();
    ProfilesSnapshot {
        groups,
        ..ProfilesSnapshot::default()
    }
}

fn benches(c: &mut Criterion) {
    let file = kidsafe_dns::config::parse(
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"127.0.0.1:5353\"]\n\
         [lists]\ncompiled = \"list.fst\"\n",
        Path::new("bench.toml"),
    )
    .expect("the bench config parses");
    let snap = snapshot();
    let clock: Clock = Arc::new(jiff::Timestamp::now);

    // One profile change: merge, then build (no own lists: those are compiled by the
    // pipeline, and only for profiles whose lists changed).
    let t = Instant::now();
    let merged = with_profiles(&file, &snap);
    let merge = t.elapsed();
    let t = Instant::now();
    let policy = build_policy_with(&merged, clock.clone(), |_| Ok::<_, StartError>(None))
        .expect("the policy builds");
    let build = t.elapsed();
    eprintln!(
        "{PROFILES} profiles: merge {merge:?}, policy build {build:?}, {} groups",
        policy.groups().len()
    );
    let mut g = c.benchmark_group("profiles_100k");
    g.sample_size(10);
    g.bench_function("change: merge + policy build", |b| {
        b.iter(|| {
            let merged = with_profiles(&file, &snap);
            build_policy_with(&merged, clock.clone(), |_| Ok::<_, StartError>(None))
                .expect("the policy builds")
        })
    });
    g.finish();

    let n = 4096u32;
    let step = PROFILES / n;
    let by_address: Vec<Client> = (0..n).map(|i| Client::from_addr(addr(i * step))).collect();
    let by_id: Vec<Client> = (0..n)
        .map(|i| Client {
            client_id: Some(client_id(i * step)),
            ..Client::from_addr(addr(PROFILES + 1))
        })
        .collect();
    let by_mac: Vec<Client> = (0..n)
        .map(|i| Client {
            mac: Some(mac(i * step)),
            ..Client::from_addr(addr(PROFILES + 1))
        })
        .collect();
    let unknown: Vec<Client> = (0..n)
        .map(|i| Client::from_addr(addr(PROFILES + 10 + i)))
        .collect();
    let mut g = c.benchmark_group("choose_100k");
    for (what, clients) in [
        ("address", &by_address),
        ("client_id", &by_id),
        ("mac", &by_mac),
        ("unknown (default)", &unknown),
    ] {
        let mut i = 0usize;
        g.bench_function(what, |b| {
            b.iter(|| {
                i = (i + 1) & (n as usize - 1);
                black_box(policy.choose(black_box(&clients[i])))
            })
        });
    }
    g.finish();
}

criterion_group!(profiles, benches);
criterion_main!(profiles);
