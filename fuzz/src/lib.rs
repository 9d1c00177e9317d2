//! Oracles shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every assertion here restates something the parsing code documents (module docs of
//! `src/lists/parse/*`, `src/lists/normalize.rs`, `src/lists/rule.rs`, `src/lists/source.rs`);
//! the doc comment of each check names where. A panic is a finding.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::OnceLock;

use kidsafe_dns::lists::normalize::{Reject, normalize};
use kidsafe_dns::lists::parse::{Format, ParseReport, parse};
use kidsafe_dns::lists::rule::{Action, Rule, Scope};
use kidsafe_dns::lists::source::{SourceError, SourceReport, read_source};
use sha2::{Digest, Sha256};

/// Rules and report of one parse.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Rules in emission order.
    pub rules: Vec<Rule>,
    /// The report `parse` returned.
    pub report: ParseReport,
}

/// Runs [`parse`] over an in-memory reader, which cannot fail with an I/O error.
pub fn parse_reader(reader: impl BufRead, format: Format) -> Parsed {
    let mut rules = Vec::new();
    let report = match parse(reader, format, &mut |rule| rules.push(rule)) {
        Ok(report) => report,
        Err(error) => panic!("parse over an in-memory reader failed: {error}"),
    };
    Parsed { rules, report }
}

/// The checks every target runs: parse `input` as `format`, check the report and every rule
/// name, and check that a reader handing out the same bytes in small chunks gives the same
/// result (the parser streams through one reused line buffer and, for `Auto`, a replayed
/// sample, so chunk boundaries must not matter).
pub fn check_list(input: &[u8], format: Format) -> Parsed {
    let parsed = parse_reader(input, format);
    check_report(input, format, &parsed);
    // 1..=16 bytes per `fill_buf`, chosen from the input so a finding reproduces.
    let chunk = 1 + usize::from(input.first().copied().unwrap_or(0) % 16);
    let chunked = parse_reader(BufReader::with_capacity(chunk, input), format);
    assert_eq!(
        chunked, parsed,
        "reading {chunk} bytes at a time changed the result"
    );
    parsed
}

/// `ParseReport` field docs and `parse`'s doc: the format is resolved, `accepted` counts the
/// rules emitted, `Unsupported` has its own counter, and `lines` counts physical lines.
pub fn check_report(input: &[u8], format: Format, parsed: &Parsed) {
    let report = &parsed.report;
    assert_ne!(report.format, Format::Auto, "format left unresolved");
    if format != Format::Auto {
        assert_eq!(report.format, format, "explicit format not kept");
    }
    assert_eq!(
        report.accepted,
        parsed.rules.len() as u64,
        "accepted does not match the rules emitted"
    );
    assert!(
        !report.rejected.contains_key(&Reject::Unsupported),
        "Unsupported counted as a rejection: {:?}",
        report.rejected
    );
    assert_eq!(report.lines, physical_lines(input), "physical line count");
    for rule in &parsed.rules {
        check_name(&rule.name);
    }
}

/// Newline-terminated lines plus an unterminated last one.
pub fn physical_lines(input: &[u8]) -> u64 {
    let newlines = input.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(input.last().is_some_and(|&b| b != b'\n'))
}

/// `Rule::name` is normalized (`rule.rs`), and `normalize` promises (`normalize.rs`): no
/// trailing dot, lowercase, characters `[a-z0-9-_]` in labels, labels of 1..=63 octets,
/// names of at most 253 octets, no IPv4 literal, and idempotence.
pub fn check_name(name: &str) {
    assert!(!name.is_empty(), "empty rule name");
    assert!(!name.ends_with('.'), "trailing dot in {name:?}");
    assert!(name.len() <= 253, "name over 253 octets: {name:?}");
    assert!(
        name.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.')),
        "character outside [a-z0-9-_.] in {name:?}"
    );
    for label in name.split('.') {
        assert!(
            (1..=63).contains(&label.len()),
            "label of {} octets in {name:?}",
            label.len()
        );
    }
    assert!(
        name.parse::<Ipv4Addr>().is_err(),
        "IPv4 literal as a name: {name:?}"
    );
    assert_eq!(
        normalize(name).as_deref(),
        Ok(name),
        "rule name does not normalize to itself"
    );
}

/// Domains, hosts and adblock lists are read line by line with no state carried between
/// lines (`parse/mod.rs`: each cleaned line goes to the format's line parser). Parsing the
/// input one physical line at a time must therefore emit the same rules and counts; `each`
/// sees every line (with its terminator) and what it produced.
pub fn check_line_by_line(
    input: &[u8],
    format: Format,
    whole: &Parsed,
    each: &mut dyn FnMut(&[u8], &Parsed),
) {
    assert!(format != Format::Rpz && format != Format::Auto);
    let mut rules = Vec::new();
    let mut accepted = 0;
    let mut unsupported = 0;
    let mut rejected: BTreeMap<Reject, u64> = BTreeMap::new();
    let mut one = Vec::new();
    for (i, line) in input.split_inclusive(|&b| b == b'\n').enumerate() {
        one.clear();
        if i > 0 {
            // A BOM is only stripped from the first physical line: keep this one second.
            one.push(b'\n');
        }
        one.extend_from_slice(line);
        let parsed = parse_reader(&one[..], format);
        each(line, &parsed);
        accepted += parsed.report.accepted;
        unsupported += parsed.report.unsupported;
        for (reason, n) in &parsed.report.rejected {
            *rejected.entry(*reason).or_default() += n;
        }
        rules.extend(parsed.rules);
    }
    assert_eq!(rules, whole.rules, "line-by-line rules differ");
    assert_eq!(accepted, whole.report.accepted);
    assert_eq!(unsupported, whole.report.unsupported);
    assert_eq!(
        rejected, whole.report.rejected,
        "line-by-line rejections differ"
    );
}

/// Rules with one action and scope only (domains: block subtree; hosts: block exact).
pub fn check_all_rules(parsed: &Parsed, action: Action, scope: Scope) {
    for rule in &parsed.rules {
        assert_eq!((rule.action, rule.scope), (action, scope), "{rule:?}");
    }
}

/// Each entry or record ends in at most one verdict (accepted, rejected or unsupported), so
/// there are never more verdicts than lines (domains: one entry per line; RPZ: a record
/// spans one or more lines and an unterminated one at the end counts once).
pub fn check_at_most_one_verdict_per_line(parsed: &Parsed) {
    let report = &parsed.report;
    let verdicts = report.accepted + report.rejected_total() + report.unsupported;
    assert!(
        verdicts <= report.lines,
        "{verdicts} verdicts from {} lines: {report:?}",
        report.lines
    );
}

/// `Auto` sniffs a sample of at most 64 KiB, then replays it in front of the rest
/// (`parse`'s doc). Inputs up to `-max_len` never reach that limit, so this prepends a comment
/// line long enough that the limit falls inside `input` (at an offset picked from the input),
/// and checks that `Auto` still reads exactly what the explicit parse of its format reads.
pub fn check_auto_over_sample_limit(input: &[u8]) {
    const SAMPLE: usize = 64 * 1024;
    static PAD: OnceLock<Vec<u8>> = OnceLock::new();
    let pad = PAD.get_or_init(|| {
        let mut pad = vec![b'x'; SAMPLE];
        pad[0] = b'#';
        pad
    });
    let pick = usize::from(input.last().copied().unwrap_or(0));
    let offset = (input.len() * pick / 255).min(SAMPLE - 2);
    // `#xxx…` + `\n` is SAMPLE - offset bytes: the sample ends `offset` bytes into `input`.
    let comment = &pad[..SAMPLE - offset - 1];
    let padded = || comment.chain(&b"\n"[..]).chain(input);
    let auto = parse_reader(padded(), Format::Auto);
    assert_eq!(auto.report.lines, 1 + physical_lines(input));
    let explicit = parse_reader(padded(), auto.report.format);
    assert_eq!(
        auto, explicit,
        "Auto differs from explicit {} with the sample limit {offset} bytes into the input",
        explicit.report.format
    );
    for rule in &auto.rules {
        check_name(&rule.name);
    }
}

/// The gzip magic number `read_source` looks for.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A scratch file for this fuzzing process (`read_source` only takes paths), in memory
/// (`/dev/shm`) where there is one.
fn scratch_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("kidsafe-dns-fuzz-{}.list", std::process::id()))
    })
}

/// Writes `bytes` to the scratch file and runs `read_source` on it.
fn read_file(bytes: &[u8], format: Format) -> (Vec<Rule>, Result<SourceReport, SourceError>) {
    let path = scratch_path();
    if let Err(error) = std::fs::write(path, bytes) {
        panic!("cannot write {}: {error}", path.display());
    }
    let mut rules = Vec::new();
    let result = read_source(path, format, &mut |rule| rules.push(rule));
    (rules, result)
}

/// `read_source` (`source.rs`): a file starting with the gzip magic is decompressed
/// (all members), the reported size and SHA-256 are those of the stored bytes, and a list
/// without rules is `SourceError::Empty`. `input` gzipped as two members (split in the
/// middle) must read exactly like `expected`, the in-memory `Auto` parse of `input`; so must
/// `input` stored as is, unless it starts with the gzip magic (see [`check_read_gzip`]).
pub fn check_read_source(input: &[u8], expected: &Parsed) {
    let mid = input.len() / 2;
    let mut stored = gzip(&input[..mid]);
    stored.extend(gzip(&input[mid..]));
    check_file(&stored, Some(expected));
    if !input.starts_with(&GZIP_MAGIC) {
        check_file(input, Some(expected));
    }
}

/// `input` stored as is when it starts with the gzip magic: (mostly corrupt) gzip that
/// `read_source` must turn into a clean error, or into valid rules and a correct size and
/// hash.
pub fn check_read_gzip(input: &[u8]) {
    if input.starts_with(&GZIP_MAGIC) {
        check_file(input, None);
    }
}

fn check_file(stored: &[u8], expected: Option<&Parsed>) {
    let (rules, result) = read_file(stored, Format::Auto);
    for rule in &rules {
        check_name(&rule.name);
    }
    let Some(expected) = expected else {
        match result {
            Ok(report) => {
                assert_eq!(report.bytes, stored.len() as u64);
                assert_eq!(report.sha256, hex::encode(Sha256::digest(stored)));
            }
            Err(SourceError::Read { .. } | SourceError::Empty { .. }) => {}
            Err(error) => panic!("unexpected error on corrupt gzip: {error}"),
        }
        return;
    };
    match result {
        Ok(SourceReport {
            bytes,
            sha256,
            parse: report,
            ..
        }) => {
            assert!(
                expected.report.accepted > 0,
                "a list without rules was not Empty"
            );
            assert_eq!(report, expected.report, "read_source report differs");
            assert_eq!(rules, expected.rules, "read_source rules differ");
            assert_eq!(bytes, stored.len() as u64, "stored size");
            assert_eq!(
                sha256,
                hex::encode(Sha256::digest(stored)),
                "SHA-256 of the stored bytes"
            );
        }
        Err(SourceError::Empty { lines, .. }) => {
            assert_eq!(
                expected.report.accepted, 0,
                "Empty although rules were accepted"
            );
            assert_eq!(lines, expected.report.lines);
        }
        Err(error) => panic!("read_source failed on a well-formed file: {error}"),
    }
}

/// One gzip member (RFC 1952) holding `data` in stored deflate blocks (RFC 1951 §3.2.4).
/// Written by hand because a real compressor's state costs more per run than everything
/// else in the target; `read_source` decodes stored blocks with the same decoder.
fn gzip(data: &[u8]) -> Vec<u8> {
    // Magic, CM = deflate, no flags, no mtime, no extra flags, OS = unknown.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(u16::MAX as usize).peekable();
    if blocks.peek().is_none() {
        out.extend([1, 0, 0, 0xff, 0xff]); // one empty final block
    }
    while let Some(block) = blocks.next() {
        let len = block.len() as u16;
        out.push(u8::from(blocks.peek().is_none())); // BFINAL, BTYPE = 00
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend(crc32fast::hash(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// Decodes a reply we sent the way a strict client does: it must decode, and no byte may
/// follow its last counted record (dig's "extra bytes at end").
pub fn strict_reply(bytes: &[u8]) -> hickory_proto::op::Message {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    let mut decoder = BinDecoder::new(bytes);
    let message = hickory_proto::op::Message::read(&mut decoder).expect("our reply decodes");
    assert_eq!(decoder.len(), 0, "bytes after the last counted record");
    message
}
