//! Adblock/AdGuard-style DNS filter lists, the subset that means something to a resolver.
//!
//! | line | result |
//! | --- | --- |
//! | `||example.com^`, `||example.com`, `example.com`, `example.com^` | block, name and subdomains |
//! | `@@||example.com^` (any of the above after `@@`) | allow, name and subdomains |
//! | `|example.com^`, `|example.com|` | block exactly that name |
//! | `...$important` | as without the option (it only ranks rules inside a blocker) |
//! | `0.0.0.0 example.com` | a hosts line, as AdGuard Home reads it (see [`super::hosts`]) |
//! | `! text`, `# text`, `[Adblock Plus 2.0]` | comment |
//!
//! [`Reject::Unsupported`], because guessing would block or allow the wrong things:
//! any other `$` option (`$third-party`, `$denyallow=`, `$dnstype=`, `$client=`,
//! `$badfilter`, ...), cosmetic rules (`##`, `#@#`, `#$#`, `#?#`, ...), regular expressions
//! and paths (`/ads/`, `||example.com/ads`), wildcards (`||ad*.example.com^`), ports and
//! schemes (`|https://...`), and `^` in the middle of a pattern.
//!
//! `example.com^` without `||` also matches names that merely end in the text
//! (`badexample.com`) in a browser blocker; reading it as a subtree rule blocks less than
//! that, never more.

use std::net::IpAddr;

use super::hosts;
use super::line::BLANKS;
use super::sink::Sink;
use crate::lists::normalize::Reject;
use crate::lists::rule::{Action, Scope};

/// Markers of element hiding, CSS, scriptlet and HTML-filtering rules, and their exceptions.
const COSMETIC: [&str; 8] = ["##", "#@#", "#?#", "#$#", "#%#", "#@?#", "#@$#", "#@%#"];

/// Characters of URL patterns that no DNS name contains.
const URL_PATTERN: [char; 7] = ['/', '*', ':', '^', '|', '?', '='];

/// Parses one trimmed, non-blank line.
pub(crate) fn parse_line(line: &str, sink: &mut Sink<'_>) {
    if line.starts_with('!') || (line.starts_with('[') && line.ends_with(']')) {
        return;
    }
    if line.contains('#') && COSMETIC.iter().any(|marker| line.contains(marker)) {
        sink.reject(Reject::Unsupported);
        return;
    }
    if line.starts_with('#') {
        return;
    }
    if is_hosts_line(line) {
        hosts::parse_line(line, sink);
        return;
    }
    match rule(line) {
        Ok((host, action, scope)) => sink.name(host, action, scope),
        Err(reason) => sink.reject(reason),
    }
}

/// An address, a blank, then more: the `/etc/hosts` shape AdGuard Home also accepts.
fn is_hosts_line(line: &str) -> bool {
    line.split_once(BLANKS)
        .is_some_and(|(first, _)| first.parse::<IpAddr>().is_ok())
}

/// Splits a network rule into the host to normalize, the action and the scope.
fn rule(line: &str) -> Result<(&str, Action, Scope), Reject> {
    let (action, rest) = match line.strip_prefix("@@") {
        Some(rest) => (Action::Allow, rest),
        None => (Action::Block, line),
    };
    if rest.starts_with('/') {
        return Err(Reject::Unsupported); // regex or path
    }
    let pattern = match rest.split_once('$') {
        Some((pattern, options)) => {
            check_options(options)?;
            pattern
        }
        None => rest,
    };
    let (scope, host) = if let Some(host) = pattern.strip_prefix("||") {
        (Scope::Subtree, host)
    } else if let Some(host) = pattern.strip_prefix('|') {
        (Scope::Exact, host)
    } else {
        (Scope::Subtree, pattern)
    };
    let host = host.strip_suffix('|').unwrap_or(host);
    let host = host.strip_suffix('^').unwrap_or(host);
    if host.is_empty() || host.contains(BLANKS) {
        return Err(Reject::Malformed);
    }
    if host.contains(URL_PATTERN) {
        return Err(Reject::Unsupported);
    }
    Ok((host, action, scope))
}

/// Only `important` is harmless; every other option changes what the rule matches.
fn check_options(options: &str) -> Result<(), Reject> {
    for option in options.split(',') {
        let option = option.trim_matches(BLANKS);
        if option.is_empty() {
            return Err(Reject::Malformed);
        }
        if !option.eq_ignore_ascii_case("important") {
            return Err(Reject::Unsupported);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::lists::normalize::Reject;
    use crate::lists::parse::tests::parse_str;
    use crate::lists::parse::{Format, ParseReport};
    use crate::lists::rule::{Action, Rule, Scope};

    fn adblock(input: &str) -> (Vec<Rule>, ParseReport) {
        parse_str(input, Format::Adblock)
    }

    #[test]
    fn network_rules() {
        use Action::*;
        use Scope::*;
        let input = "||a.com^\n@@||b.com^\n|c.com^\n||d.com^$important\n\
                     e.com\n||f.com\n|g.com|\n@@h.com\ni.com^\n||j.com^|\n@@||k.com^$IMPORTANT\n";
        let (rules, report) = adblock(input);
        assert_eq!(
            rules,
            [
                Rule::new("a.com", Block, Subtree),
                Rule::new("b.com", Allow, Subtree),
                Rule::new("c.com", Block, Exact),
                Rule::new("d.com", Block, Subtree),
                Rule::new("e.com", Block, Subtree),
                Rule::new("f.com", Block, Subtree),
                Rule::new("g.com", Block, Exact),
                Rule::new("h.com", Allow, Subtree),
                Rule::new("i.com", Block, Subtree),
                Rule::new("j.com", Block, Subtree),
                Rule::new("k.com", Allow, Subtree),
            ]
        );
        assert_eq!(report.accepted, 11);
        assert_eq!(report.unsupported, 0);
        assert!(report.rejected.is_empty());
    }

    #[test]
    fn comments_and_headers() {
        let input = "[Adblock Plus 2.0]\n[AdGuard]\n! Title: x\n!\n# hash comment\n#\n";
        let (rules, report) = adblock(input);
        assert!(rules.is_empty());
        assert_eq!(report.lines, 6);
        assert_eq!(report.unsupported, 0);
        assert!(report.rejected.is_empty());
    }

    #[test]
    fn real_world_quirks() {
        let input = "\u{feff}[Adblock Plus]\r\n! c\r\n\t||A.COM^\t\r\n||bücher.example^\r\n\
                     ||xn--bcher-kva.example^\r\n||trailing.dot.^\r\n\r\n";
        let (rules, report) = adblock(input);
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a.com",
                "xn--bcher-kva.example",
                "xn--bcher-kva.example",
                "trailing.dot"
            ]
        );
        assert_eq!(report.lines, 7);
    }

    #[test]
    fn hosts_lines_inside_adblock_lists() {
        let (rules, report) = adblock("0.0.0.0 a.com b.com\n127.0.0.1 localhost\n::1\tc.com\n");
        assert_eq!(
            rules,
            ["a.com", "b.com", "c.com"].map(|n| Rule::new(n, Action::Block, Scope::Exact))
        );
        assert_eq!(report.accepted, 3);
    }

    #[test]
    fn unsupported_is_counted_not_guessed() {
        let input = "||a.com^$third-party\n||a.com^$script\n||a.com^$domain=b.com\n\
                     ||a.com^$denyallow=b.com\n||a.com^$dnstype=AAAA\n||a.com^$client=1.2.3.4\n\
                     ||a.com^$badfilter\n||a.com^$important,third-party\n\
                     example.com##.banner\n##.ad\nexample.com#@#.ad\nexample.com#$#body{}\n\
                     example.com#?#div:has(a)\nexample.com#%#//scriptlet('x')\n\
                     ||a.com/ads\n/ads[0-9]/\n/banner/*\n||ad*.example.com^\n||*.example.com^\n\
                     |https://a.com^\n||a.com:8080^\n||a.com^foo\nexample.com$$script[tag]\n";
        let (rules, report) = adblock(input);
        assert!(rules.is_empty(), "{rules:?}");
        assert_eq!(report.unsupported, 23);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    }

    #[test]
    fn garbage_is_counted_by_reason() {
        let input = "||^\n@@\n||a.com^$\n||a.com^$important,\nfoo bar\n||1.2.3.4^\n\
                     ||a..com^\n||bad!name.com^\n||xn--zz.com^\n";
        let (rules, report) = adblock(input);
        assert!(rules.is_empty());
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&5));
        assert_eq!(report.rejected.get(&Reject::IpAddress), Some(&1));
        assert_eq!(report.rejected.get(&Reject::EmptyLabel), Some(&1));
        assert_eq!(report.rejected.get(&Reject::BadCharacter), Some(&1));
        assert_eq!(report.rejected.get(&Reject::BadIdn), Some(&1));
        assert_eq!(report.unsupported, 0);
    }
}
