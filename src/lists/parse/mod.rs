//! Streaming blocklist parsers: plain domains, hosts files, adblock-style filters, RPZ zones.
//!
//! [`parse`] reads a list line by line, cleans each line the same way for every format
//! (UTF-8 BOM, CRLF, trailing blanks) and hands it to the format's own line parser. Entries
//! that become rules go to the caller's `emit`; everything else is counted in the
//! [`ParseReport`] so a bad list can be diagnosed without reading it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Cursor, Read};
use std::str::FromStr;

use crate::lists::normalize::Reject;
use crate::lists::rule::Rule;

mod adblock;
mod domains;
mod hosts;
mod line;
mod rpz;
mod sink;
mod sniff;
mod zone_text;

use line::{BLANKS, Line, Lines};
use sink::Sink;

/// List formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Decide from the first meaningful lines (see [`parse`]).
    #[default]
    Auto,
    /// One name per line; each entry covers its subdomains.
    Domains,
    /// `/etc/hosts` lines: an address followed by names; each name matches only itself.
    Hosts,
    /// Adblock/AdGuard-style DNS filter rules (`||example.com^`, `@@||...`).
    Adblock,
    /// DNS Response Policy Zone file.
    Rpz,
}

impl Format {
    /// Every format, in the order used by error messages.
    pub const ALL: [Format; 5] = [
        Format::Auto,
        Format::Domains,
        Format::Hosts,
        Format::Adblock,
        Format::Rpz,
    ];

    /// The lowercase name used in configuration, e.g. `"hosts"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Domains => "domains",
            Format::Hosts => "hosts",
            Format::Adblock => "adblock",
            Format::Rpz => "rpz",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    /// Case-insensitive; the error names the accepted values.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown list format {s:?}; expected one of: auto, domains, hosts, adblock, rpz"
                )
            })
    }
}

/// What parsing one list found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseReport {
    /// The resolved format, never [`Format::Auto`] after [`parse`].
    pub format: Format,
    /// Physical lines read.
    pub lines: u64,
    /// Rules emitted (before dedup).
    pub accepted: u64,
    /// Malformed or invalid entries by reason (never [`Reject::Unsupported`]).
    pub rejected: BTreeMap<Reject, u64>,
    /// Valid syntax that cannot be expressed at the DNS level: adblock cosmetic rules, paths
    /// and options, RPZ triggers and actions this resolver does not implement.
    pub unsupported: u64,
    /// The first rejected lines ([`SAMPLE_REJECTED`] unless asked for more), located.
    pub rejected_lines: Vec<RejectedLine>,
}

/// How many rejected lines a [`ParseReport`] keeps by default.
pub const SAMPLE_REJECTED: usize = 5;

/// One rejected line, located: `file:line: reason: text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    /// 1-based line number in the (decompressed) list.
    pub line: u64,
    /// Why it was rejected.
    pub reason: Reject,
    /// The line as read (at most 200 characters).
    pub text: String,
}

impl RejectedLine {
    /// What to do about it, for the reasons people can fix by editing the line.
    pub fn hint(&self) -> Option<String> {
        match self.reason {
            Reject::Url => {
                let rest = self.text.split("://").nth(1)?;
                let host = rest.split(['/', '?', '#', ':']).next()?;
                Some(format!("a URL: list its host instead, e.g. `{host}`"))
            }
            _ => None,
        }
    }
}

impl ParseReport {
    /// Total entries rejected for any reason except [`Reject::Unsupported`].
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Parse a whole list, streaming, and call `emit` once per rule.
///
/// Lines are read as bytes into one reused buffer, never the whole input at once. Lines that
/// are not UTF-8 count as [`Reject::NotUtf8`]; lines over 64 KiB as [`Reject::Malformed`].
/// A UTF-8 BOM on the first line, CR before LF and surrounding spaces and tabs are stripped.
/// Comments and blank lines are neither accepted nor rejected.
///
/// With [`Format::Auto`] the first meaningful lines (up to 50 lines or 64 KiB) are buffered,
/// sniffed, then replayed in front of the rest of the input.
///
/// # Errors
/// Only I/O errors from `reader` (including gzip corruption surfacing as I/O errors). Rules
/// emitted before an error are not retracted, so callers should discard them on error.
pub fn parse<R: BufRead>(
    reader: R,
    format: Format,
    emit: &mut dyn FnMut(Rule),
) -> io::Result<ParseReport> {
    parse_keeping(reader, format, emit, SAMPLE_REJECTED)
}

/// [`parse`], keeping the first `keep` rejected lines in the report.
///
/// # Errors
/// As [`parse`].
pub fn parse_keeping<R: BufRead>(
    mut reader: R,
    format: Format,
    emit: &mut dyn FnMut(Rule),
    keep: usize,
) -> io::Result<ParseReport> {
    if format != Format::Auto {
        return run(reader, format, emit, keep);
    }
    let mut head = Vec::new();
    let format = sniff::sniff(&mut reader, &mut head)?;
    run(Cursor::new(head).chain(reader), format, emit, keep)
}

/// The per-format state machines behind one interface.
enum Parser {
    Domains,
    Hosts,
    Adblock,
    Rpz(Box<rpz::Rpz>),
}

impl Parser {
    fn new(format: Format) -> Self {
        match format {
            Format::Hosts => Parser::Hosts,
            Format::Adblock => Parser::Adblock,
            Format::Rpz => Parser::Rpz(Box::default()),
            Format::Domains | Format::Auto => Parser::Domains,
        }
    }

    /// One non-blank line. Zone files need leading blanks (they mean "same owner as
    /// before"); the line-oriented formats get the line trimmed on both sides.
    fn line(&mut self, text: &str, sink: &mut Sink<'_>) {
        let trimmed = text.trim_start_matches(BLANKS);
        match self {
            Parser::Domains => domains::parse_line(trimmed, sink),
            Parser::Hosts => hosts::parse_line(trimmed, sink),
            Parser::Adblock => adblock::parse_line(trimmed, sink),
            Parser::Rpz(rpz) => rpz.line(text, sink),
        }
    }

    /// End of input: a zone record may still be open.
    fn finish(self, sink: &mut Sink<'_>) {
        if let Parser::Rpz(rpz) = self {
            rpz.finish(sink);
        }
    }
}

fn run<R: BufRead>(
    reader: R,
    format: Format,
    emit: &mut dyn FnMut(Rule),
    keep: usize,
) -> io::Result<ParseReport> {
    // `Auto` only reaches here if sniffing was skipped; settle on the most lenient reading.
    let format = if format == Format::Auto {
        Format::Domains
    } else {
        format
    };
    let mut report = ParseReport {
        format,
        ..ParseReport::default()
    };
    let mut sink = Sink::new(&mut report, emit);
    let mut parser = Parser::new(format);
    let mut lines = Lines::new(reader);
    while let Some(line) = lines.next_line()? {
        sink.line_read();
        match line {
            Line::Text(text) if text.trim_start_matches(BLANKS).is_empty() => {}
            Line::Text(text) => {
                parser.line(text, &mut sink);
                if let Some(reason) = sink.take_reject() {
                    let at = sink.lines();
                    sink.sample(at, reason, text.trim_matches(BLANKS), keep);
                }
            }
            Line::NotUtf8 => sink.reject(Reject::NotUtf8),
            Line::TooLong => sink.reject(Reject::Malformed),
        }
        if let Some(reason) = sink.take_reject() {
            let at = sink.lines();
            sink.sample(at, reason, "", keep);
        }
    }
    parser.finish(&mut sink);
    Ok(report)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lists::normalize::normalize;
    use crate::lists::rule::{Action, Scope};
    use proptest::prelude::*;

    /// Parses `input` and collects the rules; I/O cannot fail on a byte slice.
    pub(crate) fn parse_bytes(input: &[u8], format: Format) -> (Vec<Rule>, ParseReport) {
        let mut rules = Vec::new();
        let report = match parse(input, format, &mut |rule| rules.push(rule)) {
            Ok(report) => report,
            Err(error) => panic!("reading a slice failed: {error}"),
        };
        (rules, report)
    }

    /// [`parse_bytes`] for text.
    pub(crate) fn parse_str(input: &str, format: Format) -> (Vec<Rule>, ParseReport) {
        parse_bytes(input.as_bytes(), format)
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.to_string().parse::<Format>(), Ok(format));
            assert_eq!(format.as_str().to_uppercase().parse::<Format>(), Ok(format));
        }
        assert_eq!(Format::default(), Format::Auto);
        let error = "csv".parse::<Format>().err().unwrap_or_default();
        assert!(
            error.contains("csv") && error.contains("adblock, rpz"),
            "{error}"
        );
    }

    #[test]
    fn auto_resolves_and_replays_the_sniffed_lines() {
        let cases = [
            ("# c\na.com\nb.com\n", Format::Domains, 2),
            ("0.0.0.0 a.com\n0.0.0.0 b.com\n", Format::Hosts, 2),
            ("[Adblock Plus]\n||a.com^\n||b.com^\n", Format::Adblock, 2),
            (
                "$TTL 300\n@ SOA a. b. 1 2 3 4 5\na.com CNAME .\n",
                Format::Rpz,
                1,
            ),
        ];
        for (input, format, accepted) in cases {
            let (rules, report) = parse_str(input, Format::Auto);
            assert_eq!(report.format, format, "{input}");
            assert_eq!(report.accepted, accepted, "{input}");
            assert_eq!(rules.len() as u64, accepted);
            assert_eq!(report.lines, input.lines().count() as u64);
            assert_eq!(
                report,
                parse_str(input, format).1,
                "same as explicit {format}"
            );
        }
    }

    #[test]
    fn auto_replays_a_line_split_by_the_sample_limit() {
        // A comment line ending 5 bytes before the 64 KiB sample limit: the next name is cut
        // by the limit and must still come out whole.
        let mut input = format!("#{}\n", "x".repeat(64 * 1024 - 7));
        assert_eq!(input.len(), 64 * 1024 - 5);
        input.push_str("boundary.example.com\n");
        let (rules, report) = parse_str(&input, Format::Auto);
        assert_eq!(report.format, Format::Domains);
        assert_eq!(rules, [Rule::block("boundary.example.com")]);
    }

    #[test]
    fn empty_input() {
        for format in Format::ALL {
            let (rules, report) = parse_str("", format);
            assert!(rules.is_empty());
            assert_eq!(report.lines, 0);
            assert_ne!(report.format, Format::Auto);
        }
    }

    #[test]
    fn overlong_line_is_malformed() {
        let input = format!("a.com\n{}\nb.com\n", "x".repeat(100_000));
        let (rules, report) = parse_str(&input, Format::Domains);
        assert_eq!(rules.len(), 2);
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&1));
        assert_eq!(report.lines, 3);
    }

    /// Tokens real lists are made of, to steer random input towards the parsers' branches.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("0.0.0.0".to_owned()),
            Just("::1".to_owned()),
            Just("||".to_owned()),
            Just("@@".to_owned()),
            Just("^".to_owned()),
            Just("$important".to_owned()),
            Just("$third-party".to_owned()),
            Just("##".to_owned()),
            Just("#".to_owned()),
            Just("!".to_owned()),
            Just(";".to_owned()),
            Just("*.".to_owned()),
            Just("$TTL 300".to_owned()),
            Just("$ORIGIN rpz.example.".to_owned()),
            Just("$INCLUDE /etc/passwd".to_owned()),
            Just("@ SOA a. b. 1 2 3 4 5".to_owned()),
            Just("CNAME".to_owned()),
            Just("rpz-passthru.".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("\"".to_owned()),
            Just("\\".to_owned()),
            Just("xn--".to_owned()),
            Just("xn--bcher-kva".to_owned()),
            Just("bücher".to_owned()),
            Just("\u{feff}".to_owned()),
            Just(".".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("\r\n".to_owned()),
            Just("\n".to_owned()),
            "[a-zA-Z0-9_-]{1,12}",
            "[a-z]{1,8}\\.[a-z]{2,3}",
            any::<char>().prop_map(String::from),
        ]
    }

    fn list_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..400),
            proptest::collection::vec(token(), 0..60).prop_map(|t| t.concat().into_bytes()),
            (
                proptest::collection::vec(token(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(t, b)| {
                    let mut v = t.concat().into_bytes();
                    v.extend(b);
                    v
                }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn parse_never_panics_and_emits_normalized_names(input in list_bytes()) {
            for format in Format::ALL {
                let (rules, report) = parse_bytes(&input, format);
                prop_assert_ne!(report.format, Format::Auto);
                prop_assert_eq!(report.accepted, rules.len() as u64);
                prop_assert!(!report.rejected.contains_key(&Reject::Unsupported));
                for rule in &rules {
                    let again = normalize(&rule.name);
                    prop_assert_eq!(again.as_deref(), Ok(rule.name.as_str()));
                    prop_assert!(matches!(rule.action, Action::Block | Action::Allow));
                    prop_assert!(matches!(rule.scope, Scope::Exact | Scope::Subtree));
                }
            }
        }

        #[test]
        fn normalize_never_panics_and_is_idempotent(name in any::<String>()) {
            if let Ok(once) = normalize(&name) {
                let twice = normalize(&once);
                prop_assert_eq!(twice.as_deref(), Ok(once.as_ref()));
                prop_assert!(once.len() <= 253);
                prop_assert!(once.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.')));
            }
        }

        #[test]
        fn normalize_is_idempotent_on_name_like_strings(
            name in "[a-zA-Z0-9_.üßÜ例-]{0,80}\\.?"
        ) {
            if let Ok(once) = normalize(&name) {
                let twice = normalize(&once);
                prop_assert_eq!(twice.as_deref(), Ok(once.as_ref()));
            }
        }
    }
}
