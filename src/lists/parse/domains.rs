//! Plain domain lists: one name per line (hagezi "onlydomains", UT1, ShadowWhisperer).
//!
//! - Comment lines start with `#`, `!` or `;`; an inline comment starts at a `#` preceded by
//!   a blank.
//! - Every entry blocks the name and its subdomains (the hagezi wildcard/UT1 convention).
//!   A leading `*.` is the same thing spelled explicitly: `*.example.com` blocks
//!   `example.com` and below.
//! - A line with more than one token is [`Reject::Malformed`]: guessing which token is the
//!   name (a hosts line pasted into the wrong list?) could block the wrong thing.
//! - A URL (`https://www.example.com/watch?v=1`) is [`Reject::Url`]: the list was meant to
//!   name the host; `compile` shows the line and says so.
//! - Another token with `/` is a path (`example.com/ads`): valid in URL lists but not
//!   expressible in DNS, so [`Reject::Unsupported`].
//! - Everything else goes through [`normalize`](crate::lists::normalize::normalize), so bare IP
//!   addresses count as [`Reject::IpAddress`], stray characters as `BadCharacter`, and so on.

use super::line::BLANKS;
use super::sink::Sink;
use crate::lists::normalize::Reject;
use crate::lists::rule::{Action, Scope};

/// Parses one trimmed, non-blank line.
pub(crate) fn parse_line(line: &str, sink: &mut Sink<'_>) {
    if line.starts_with(['#', '!', ';']) {
        return;
    }
    let line = strip_inline_comment(line);
    let mut tokens = line.split(BLANKS).filter(|t| !t.is_empty());
    let (Some(entry), None) = (tokens.next(), tokens.next()) else {
        sink.reject(Reject::Malformed);
        return;
    };
    if entry.contains("://") {
        sink.reject(Reject::Url);
        return;
    }
    if entry.contains('/') {
        sink.reject(Reject::Unsupported);
        return;
    }
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    sink.name(name, Action::Block, Scope::Subtree);
}

/// Cuts at the first `#` that follows a blank (`a.com # note`); a `#` glued to the name is
/// left in place so the name is rejected rather than silently shortened.
pub(crate) fn strip_inline_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = bytes
        .windows(2)
        .position(|w| matches!(w, [b' ' | b'\t', b'#']))
        .unwrap_or(bytes.len());
    line[..cut].trim_end_matches(BLANKS)
}

#[cfg(test)]
mod tests {
    use crate::lists::normalize::Reject;
    use crate::lists::parse::tests::{parse_bytes, parse_str};
    use crate::lists::parse::{Format, ParseReport};
    use crate::lists::rule::{Action, Rule, Scope};

    fn subtree(name: &str) -> Rule {
        Rule {
            name: name.to_owned(),
            action: Action::Block,
            scope: Scope::Subtree,
        }
    }

    fn domains(input: &str) -> (Vec<Rule>, ParseReport) {
        parse_str(input, Format::Domains)
    }

    #[test]
    fn entries_cover_subdomains() {
        let (rules, report) = domains("a.com\nsub.b.org\n");
        assert_eq!(rules, [subtree("a.com"), subtree("sub.b.org")]);
        assert_eq!(report.accepted, 2);
        assert_eq!(report.lines, 2);
        assert_eq!(report.format, Format::Domains);
    }

    #[test]
    fn real_world_quirks() {
        let input = "\u{feff}# header\r\n! adblock-ish comment\r\n; zone-ish comment\r\n\r\n\
                     \tA.COM.\t\r\n  b.com # why\r\nc.com\t#\ttab comment\r\n*.d.com\r\n\
                     bücher.example\r\nxn--bcher-kva.example\r\n   \r\n";
        let (rules, report) = domains(input);
        assert_eq!(
            rules,
            [
                subtree("a.com"),
                subtree("b.com"),
                subtree("c.com"),
                subtree("d.com"),
                subtree("xn--bcher-kva.example"),
                subtree("xn--bcher-kva.example"),
            ]
        );
        assert_eq!(report.lines, 11);
        assert!(report.rejected.is_empty());
        assert_eq!(report.unsupported, 0);
    }

    #[test]
    fn garbage_is_counted_by_reason() {
        let input = "1.2.3.4\n::1\na b\n0.0.0.0 x.com\nexample.com/ads\nhttp://x.com\n\
                     a..b\nbad#name.com\n*.*.x.com\nxn--zz.com\n";
        let (rules, report) = domains(input);
        assert!(rules.is_empty());
        assert_eq!(report.unsupported, 1);
        assert_eq!(report.rejected.get(&Reject::Url), Some(&1));
        assert_eq!(report.rejected.get(&Reject::IpAddress), Some(&2));
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&2));
        assert_eq!(report.rejected.get(&Reject::EmptyLabel), Some(&1));
        assert_eq!(report.rejected.get(&Reject::BadCharacter), Some(&2));
        assert_eq!(report.rejected.get(&Reject::BadIdn), Some(&1));
    }

    #[test]
    fn not_utf8_lines_are_counted_and_skipped() {
        let (rules, report) = parse_bytes(b"a.com\n\xffbad.com\nb.com", Format::Domains);
        assert_eq!(rules, [subtree("a.com"), subtree("b.com")]);
        assert_eq!(report.rejected.get(&Reject::NotUtf8), Some(&1));
        assert_eq!(report.lines, 3);
    }

    #[test]
    fn inline_comment_needs_a_blank() {
        assert_eq!(super::strip_inline_comment("a.com # x"), "a.com");
        assert_eq!(super::strip_inline_comment("a.com\t#x"), "a.com");
        assert_eq!(super::strip_inline_comment("a.com#x"), "a.com#x");
    }
}
