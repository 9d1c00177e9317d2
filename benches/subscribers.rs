//! The ISP subscriber map at 5,000,000 rows: compile time, file size, open time, RSS
//! growth per row, and the lookup of random subscriber addresses.
//!
//! `cargo bench --bench subscribers`; figures in BENCHMARKS.md ("Subscriber map").
//!
//! The rows look like an ISP's export, all distinct: 4.5M single addresses (/32) spread
//! over 10.0.0.0/8, 400k /24s in 32.0.0.0/5, and 100k IPv6 /56s in 2001:db8::/32, over
//! 200 profile ids.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kidsafe_dns::subscribers::{SubscriberMap, compile, parse};

const ROWS_V4_HOST: u32 = 4_500_000;
const ROWS_V4_NET: u32 = 400_000;
const ROWS_V6: u32 = 100_000;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Subscriber host `i`: a bijection of 0..2^24 onto 10.0.0.0/8 (odd multiplier), so
/// rows are distinct and scattered.
fn host(i: u32) -> u32 {
    0x0a00_0000 | (i.wrapping_mul(2_654_435_761) & 0x00ff_ffff)
}

fn source() -> String {
    let mut text = String::with_capacity(130_000_000);
    for i in 0..ROWS_V4_HOST {
        let _ = writeln!(text, "{} p{}", Ipv4Addr::from(host(i)), i % 200);
    }
    for i in 0..ROWS_V4_NET {
        let net = 0x2000_0000 | ((i.wrapping_mul(2_654_435_761) & 0x7_ffff) << 8);
        let _ = writeln!(text, "{}/24,p{}", Ipv4Addr::from(net), i % 200);
    }
    for i in 0..ROWS_V6 {
        let r = i.wrapping_mul(2_654_435_761) & 0xff_ffff;
        let a = Ipv6Addr::new(
            0x2001,
            0x0db8,
            (r >> 8) as u16,
            ((r & 0xff) << 8) as u16,
            0,
            0,
            0,
            0,
        );
        let _ = writeln!(text, "{a}/56 p{}", i % 200);
    }
    text
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn benches(c: &mut Criterion) {
    let text = source();
    let started = Instant::now();
    let parsed = parse::parse(text.as_bytes());
    let parse_time = started.elapsed();
    let built = compile::compile(&parsed.rows).expect("compiles");
    let compile_time = started.elapsed();
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("subscribers.map");
    std::fs::write(&path, &built.bytes).expect("written");
    let (rows, size) = (built.rows, built.bytes.len());
    drop((parsed, built, text));

    let before = rss_kib();
    let started = Instant::now();
    let map = SubscriberMap::open(&path).expect("opens");
    let open_time = started.elapsed();
    let after_open = rss_kib();

    // Lookups: 50 % subscriber hosts, 20 % in the /24 region, 20 % anywhere, 10 % IPv6.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let probes: Vec<IpAddr> = (0..1 << 20)
        .map(|_| match xorshift(&mut s) % 10 {
            0..=4 => IpAddr::V4(Ipv4Addr::from(host(xorshift(&mut s) as u32 % ROWS_V4_HOST))),
            5 | 6 => IpAddr::V4(Ipv4Addr::from(
                0x2000_0000 | (xorshift(&mut s) as u32 & 0x7ff_ffff),
            )),
            7 | 8 => IpAddr::V4(Ipv4Addr::from(xorshift(&mut s) as u32)),
            _ => {
                let r = xorshift(&mut s);
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0x0db8,
                    (r >> 16) as u16,
                    (r as u16) & 0xff00,
                    1,
                    2,
                    3,
                    4,
                ))
            }
        })
        .collect();
    let hits = probes
        .iter()
        .filter(|ip| map.lookup(**ip).is_some())
        .count();
    let after_lookups = rss_kib();
    eprintln!(
        "subscribers: {rows} rows, parse {parse_time:?}, parse+compile {compile_time:?}, \
         file {size} bytes ({:.1} bytes/row), open {open_time:?}, RSS +{} KiB at open \
         ({:.1} bytes/row), +{} KiB after {} lookups ({:.1} bytes/row), hits {:.0} %",
        size as f64 / rows as f64,
        after_open.saturating_sub(before),
        after_open.saturating_sub(before) as f64 * 1024.0 / rows as f64,
        after_lookups.saturating_sub(before),
        probes.len(),
        after_lookups.saturating_sub(before) as f64 * 1024.0 / rows as f64,
        hits as f64 * 100.0 / probes.len() as f64,
    );

    let mut g = c.benchmark_group("subscribers");
    g.measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    g.bench_function("lookup_random_5M", |b| {
        b.iter(|| {
            i = (i + 1) & ((1 << 20) - 1);
            black_box(map.lookup_index(black_box(probes[i])))
        })
    });
    g.finish();
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);
