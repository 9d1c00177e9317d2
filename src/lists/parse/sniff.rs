//! Guessing a list's format from its first meaningful lines.
//!
//! Signals, strongest first, each looked for in any sampled line:
//! 1. RPZ: a `$ORIGIN`/`$TTL`/`$INCLUDE` directive, or an `SOA`/`CNAME` token after an owner
//!    name that is not an IP address (hagezi RPZ files open with `;` comments, then `$TTL`).
//! 2. Adblock: an `[Adblock ...]`/`[AdGuard ...]` header (hagezi and most filter lists start
//!    with one), or a rule starting with `||`, `@@` or `|`, or ending with `^`.
//! 3. Hosts: the first token parses as an IP address and a second token follows.
//! 4. Domains otherwise.
//!
//! "Any line" rather than a majority because the stronger formats are supersets in practice:
//! adblock lists may carry hosts lines, and a single `$TTL` settles a zone file.

use std::io::{self, BufRead, Read};
use std::net::IpAddr;

use super::Format;
use super::line::{BLANKS, clean};

/// Meaningful lines sampled at most.
const MAX_LINES: usize = 50;
/// Bytes sampled at most, whatever the line count.
const MAX_BYTES: u64 = 64 * 1024;

/// Reads the sample from `reader` into `head` (raw bytes, to be replayed) and decides.
pub(super) fn sniff<R: BufRead>(reader: &mut R, head: &mut Vec<u8>) -> io::Result<Format> {
    let mut limited = reader.take(MAX_BYTES);
    let mut signals = Signals::default();
    let mut meaningful = 0;
    let mut first = true;
    loop {
        let start = head.len();
        if limited.read_until(b'\n', head)? == 0 {
            break;
        }
        let Some(text) = clean(&head[start..], std::mem::replace(&mut first, false)) else {
            continue;
        };
        let text = text.trim_start_matches(BLANKS);
        if signals.observe(text) {
            meaningful += 1;
            if meaningful >= MAX_LINES {
                break;
            }
        }
    }
    Ok(signals.verdict())
}

/// What the sampled lines showed.
#[derive(Default)]
struct Signals {
    rpz: bool,
    adblock: bool,
    hosts: bool,
}

impl Signals {
    /// Records the signals of one trimmed line; returns whether the line was meaningful.
    fn observe(&mut self, line: &str) -> bool {
        if line.is_empty() {
            return false;
        }
        if line.starts_with('[') {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("[adblock") || lower.starts_with("[adguard") {
                self.adblock = true;
            }
            return false;
        }
        if line.starts_with(['#', '!', ';']) {
            return false;
        }
        if is_rpz_line(line) {
            self.rpz = true;
        } else if line.starts_with('|') || line.starts_with("@@") || line.ends_with('^') {
            self.adblock = true;
        } else if is_hosts_line(line) {
            self.hosts = true;
        }
        true
    }

    fn verdict(&self) -> Format {
        if self.rpz {
            Format::Rpz
        } else if self.adblock {
            Format::Adblock
        } else if self.hosts {
            Format::Hosts
        } else {
            Format::Domains
        }
    }
}

fn is_rpz_line(line: &str) -> bool {
    let mut tokens = line.split(BLANKS).filter(|t| !t.is_empty());
    let Some(first) = tokens.next() else {
        return false;
    };
    if first.starts_with('$') {
        return ["$ORIGIN", "$TTL", "$INCLUDE"]
            .iter()
            .any(|d| first.eq_ignore_ascii_case(d));
    }
    // `@ SOA ...`, `name 300 IN CNAME .`: the type comes after owner, TTL and class.
    first.parse::<IpAddr>().is_err()
        && tokens
            .take(3)
            .any(|t| t.eq_ignore_ascii_case("SOA") || t.eq_ignore_ascii_case("CNAME"))
}

fn is_hosts_line(line: &str) -> bool {
    let mut tokens = line.split(BLANKS).filter(|t| !t.is_empty());
    matches!(
        (tokens.next(), tokens.next()),
        (Some(ip), Some(_)) if ip.parse::<IpAddr>().is_ok()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniffed(input: &str) -> Format {
        let mut head = Vec::new();
        let mut reader = input.as_bytes();
        let format = sniff(&mut reader, &mut head).unwrap_or(Format::Auto);
        // Everything consumed is kept for replay.
        assert!(input.as_bytes().starts_with(&head));
        format
    }

    #[test]
    fn hagezi_rpz_head() {
        let head = "; comment\n$TTL 300\n@ SOA localhost. root.localhost. 1 2 3 4 5\n  NS  localhost.\n;\nbunkr.ac CNAME .\n";
        assert_eq!(sniffed(head), Format::Rpz);
        assert_eq!(sniffed("bunkr.ac 300 IN CNAME .\n"), Format::Rpz);
        assert_eq!(sniffed("$ORIGIN rpz.example.\n"), Format::Rpz);
    }

    #[test]
    fn hagezi_adblock_head() {
        assert_eq!(
            sniffed("[Adblock Plus]\n! Title: x\n!\nexample.com\n"),
            Format::Adblock
        );
        assert_eq!(sniffed("! c\n||a.com^\n"), Format::Adblock);
        assert_eq!(sniffed("@@||a.com^\n"), Format::Adblock);
        assert_eq!(sniffed("|a.com^\n"), Format::Adblock);
        assert_eq!(sniffed("a.com^\n"), Format::Adblock);
    }

    #[test]
    fn hosts_needs_an_address_and_a_name() {
        assert_eq!(sniffed("# c\n\n0.0.0.0 a.com\n"), Format::Hosts);
        assert_eq!(sniffed("::1\tlocalhost\n"), Format::Hosts);
        assert_eq!(sniffed("1.2.3.4\na.com\n"), Format::Domains);
    }

    #[test]
    fn domains_by_default() {
        assert_eq!(sniffed("# c\na.com\nb.com\n"), Format::Domains);
        assert_eq!(sniffed(""), Format::Domains);
        assert_eq!(sniffed("\u{feff}a.com\r\n"), Format::Domains);
    }

    #[test]
    fn hosts_names_called_cname_do_not_make_a_zone() {
        assert_eq!(sniffed("0.0.0.0 cname soa\n"), Format::Hosts);
    }

    #[test]
    fn sample_is_bounded() {
        // 60 domain lines, then a zone directive the sample must not reach.
        let mut input: String = (0..60).map(|i| format!("d{i}.com\n")).collect();
        input.push_str("$TTL 300\n");
        assert_eq!(sniffed(&input), Format::Domains);
        let mut head = Vec::new();
        let mut reader = input.as_bytes();
        let _ = sniff(&mut reader, &mut head);
        assert_eq!(head.iter().filter(|&&b| b == b'\n').count(), MAX_LINES);
    }
}
