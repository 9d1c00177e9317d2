//! Blocklist engine benchmarks: compile time and size, lookup cost.
//!
//! `cargo bench --bench matcher` — uses the real lists in `../shared/data/` when present
//! (the 1.46M-name union for scale, Umbrella top-100k for "allowed" traffic), synthetic
//! names otherwise and to pad up to 2M. Figures and the machine are in BENCHMARKS.md.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kidsafe_dns::lists::Blocklist;
use kidsafe_dns::lists::compile::{InlineRules, ListSource, compile};
use kidsafe_dns::lists::parse::Format;

fn data() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    p.is_dir().then_some(p)
}

fn read_gz_lines(path: &Path) -> Vec<String> {
    let f = std::fs::File::open(path).expect("open");
    BufReader::new(flate2::read::MultiGzDecoder::new(f))
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Deterministic synthetic hostnames, shaped like real list entries.
fn synthetic(n: usize, seed: u64) -> Vec<String> {
    const SYL: &[&str] = &[
        "ka", "lo", "mi", "ne", "po", "ru", "sa", "ti", "vu", "xe", "bet", "cam", "sex", "win",
        "hot", "club", "play", "tube", "live", "star", "ads", "cdn", "img", "web",
    ];
    const TLD: &[&str] = &[
        "com", "net", "org", "xyz", "top", "info", "ru", "de", "vn", "co.uk", "com.br", "io",
    ];
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|i| {
            let r = next();
            let mut name = String::new();
            if r % 4 == 0 {
                name.push_str(SYL[(r >> 8) as usize % SYL.len()]);
                name.push('.');
            }
            for k in 0..(2 + (r >> 16) % 3) {
                name.push_str(SYL[(r >> (20 + 4 * k)) as usize % SYL.len()]);
            }
            name.push_str(&(i % 9973).to_string());
            name.push('.');
            name.push_str(TLD[(r >> 40) as usize % TLD.len()]);
            name
        })
        .collect()
}

/// Writes `names` as a plain domain list and compiles it; returns (compile time, bytes).
fn compile_names(names: &[String], dir: &Path, tag: &str) -> (Duration, u64, PathBuf) {
    let list = dir.join(format!("{tag}.txt"));
    let mut w = std::io::BufWriter::new(std::fs::File::create(&list).unwrap());
    for n in names {
        writeln!(w, "{n}").unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let out = dir.join(format!("{tag}.fst"));
    let src = [ListSource {
        category: Some("adult".into()),
        path: list,
        format: Format::Domains,
    }];
    let t = Instant::now();
    let m = compile(&src, &InlineRules::default(), &out, &mut |_| {}).unwrap();
    (t.elapsed(), m.fst_bytes, out)
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (blocked, allowed) = match data() {
        Some(d) => {
            let blocked = read_gz_lines(&d.join("scale/blocklist-union-domains.txt.gz"));
            let allowed = read_gz_lines(&d.join("allowed/umbrella-top-100k.txt.gz"));
            (blocked, allowed)
        }
        None => {
            eprintln!("../shared/data absent: synthetic names only");
            (synthetic(1_000_000, 7), synthetic(100_000, 99))
        }
    };

    // Compile: 1M and 2M names (the real union padded with synthetic names), and the union.
    let mut two_m = blocked.clone();
    two_m.extend(synthetic(2_000_000usize.saturating_sub(blocked.len()), 11));
    let one_m: Vec<String> = two_m.iter().step_by(2).cloned().collect();
    let mut group = c.benchmark_group("compile");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(30));
    for (tag, names) in [("1M", &one_m), ("2M", &two_m), ("union", &blocked)] {
        let (t, bytes, _) = compile_names(names, dir.path(), tag);
        eprintln!(
            "compile {tag}: {} names, {:.2} s, {} bytes, {:.2} B/name",
            names.len(),
            t.as_secs_f64(),
            bytes,
            bytes as f64 / names.len() as f64
        );
        group.bench_function(tag, |b| {
            b.iter(|| compile_names(names, dir.path(), &format!("{tag}-b")))
        });
    }
    group.finish();

    // Lookups on the 2M FST.
    let (_, _, fst2m) = compile_names(&two_m, dir.path(), "lookup2m");
    let t = Instant::now();
    let list = Blocklist::open(&fst2m).unwrap();
    eprintln!("open + verify 2M FST: {:?}", t.elapsed());
    let hits: Vec<String> = blocked.iter().step_by(97).take(10_000).cloned().collect();
    let misses: Vec<String> = allowed
        .iter()
        .filter(|n| !list.lookup(n).is_blocked())
        .take(90_000)
        .cloned()
        .collect();
    let deep: Vec<String> = hits.iter().map(|h| format!("a.b.c.d.cdn.{h}")).collect();
    let mix: Vec<String> = misses
        .iter()
        .take(9 * hits.len())
        .cloned()
        .chain(hits.iter().cloned())
        .collect::<Vec<_>>();
    let mut mix = mix;
    // Interleave deterministically so hits are spread through the mix.
    mix.sort_by_key(|n| {
        n.bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32))
    });

    let mut group = c.benchmark_group("lookup_2M");
    for (tag, names) in [
        ("hit", &hits),
        ("miss", &misses),
        ("deep_subdomain_hit", &deep),
        ("mix_90miss_10hit", &mix),
    ] {
        let mut i = 0;
        group.bench_function(tag, |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(list.lookup(black_box(&names[i])))
            })
        });
    }
    // What the DNS server does: the query name arrives as wire labels (already A-labels,
    // no text normalization), looked up with lookup_labels.
    let wire: Vec<Vec<Vec<u8>>> = mix
        .iter()
        .map(|n| n.split('.').map(|l| l.as_bytes().to_vec()).collect())
        .collect();
    let mut i = 0;
    group.bench_function("mix_90miss_10hit_wire_labels", |b| {
        b.iter(|| {
            i = (i + 1) % wire.len();
            black_box(list.lookup_labels(wire[i].iter().map(|l| l.as_slice()), u32::MAX))
        })
    });
    let wire_miss: Vec<Vec<Vec<u8>>> = misses
        .iter()
        .map(|n| n.split('.').map(|l| l.as_bytes().to_vec()).collect())
        .collect();
    group.bench_function("miss_wire_labels", |b| {
        b.iter(|| {
            i = (i + 1) % wire_miss.len();
            black_box(list.lookup_labels(wire_miss[i].iter().map(|l| l.as_slice()), u32::MAX))
        })
    });
    group.finish();
}

criterion_group!(matcher, benches);
criterion_main!(matcher);
