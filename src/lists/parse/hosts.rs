//! `/etc/hosts`-style lists: `0.0.0.0 ads.example.com tracker.example.com`.
//!
//! - `#` starts a comment anywhere on the line, as in the system hosts file.
//! - The first token must be an IP address (any address: `0.0.0.0`, `127.0.0.1`, `::`, `::1`
//!   or another; all of them mean "block" to a DNS filter). Otherwise the line is
//!   [`Reject::Malformed`], as is an address with no names after it.
//! - Each following token is one name matching only itself ([`Scope::Exact`]): a hosts file
//!   has no notion of subdomains.
//! - The loopback boilerplate many hosts lists start with (`localhost`, `broadcasthost`,
//!   `ip6-allnodes`, `0.0.0.0 0.0.0.0`, ...) is skipped, neither accepted nor rejected. So is
//!   any spelling that normalizes to one of those names (`ｌｏｃａｌｈｏｓｔ`, or a name with a
//!   code point IDNA drops, such as U+FEFF), so no rule ever names the local host.

use std::net::IpAddr;

use super::line::BLANKS;
use super::sink::Sink;
use crate::lists::normalize::{Reject, normalize};
use crate::lists::rule::{Action, Rule, Scope};

/// Names from the standard hosts-file preamble; blocking them would break the host itself.
const LOCAL_NAMES: [&str; 5] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "0.0.0.0",
];

/// Parses one trimmed, non-blank line.
pub(crate) fn parse_line(line: &str, sink: &mut Sink<'_>) {
    let line = line.split('#').next().unwrap_or_default();
    let mut tokens = line.split(BLANKS).filter(|t| !t.is_empty());
    let Some(address) = tokens.next() else {
        return; // comment only
    };
    if address.parse::<IpAddr>().is_err() {
        sink.reject(Reject::Malformed);
        return;
    }
    let mut names = 0;
    for name in tokens {
        names += 1;
        if is_local_name(name) {
            continue; // also covers `0.0.0.0`, which `normalize` rejects as an address
        }
        match normalize(name) {
            // IDNA mapping can turn another spelling into a local name.
            Ok(name) if is_local_name(&name) => {}
            Ok(name) => sink.accept(Rule::new(name, Action::Block, Scope::Exact)),
            Err(reason) => sink.reject(reason),
        }
    }
    if names == 0 {
        sink.reject(Reject::Malformed);
    }
}

/// `localhost`-style names, case-insensitive, with or without a trailing dot. `ip6-*` only
/// as a single label (`ip6-localhost`, `ip6-allnodes`, ...), so real domains stay blockable.
fn is_local_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    LOCAL_NAMES
        .iter()
        .any(|local| name.eq_ignore_ascii_case(local))
        || (!name.contains('.')
            && name
                .as_bytes()
                .get(..4)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"ip6-")))
}

#[cfg(test)]
mod tests {
    use crate::lists::normalize::Reject;
    use crate::lists::parse::tests::parse_str;
    use crate::lists::parse::{Format, ParseReport};
    use crate::lists::rule::{Action, Rule, Scope};

    fn exact(name: &str) -> Rule {
        Rule {
            name: name.to_owned(),
            action: Action::Block,
            scope: Scope::Exact,
        }
    }

    fn hosts(input: &str) -> (Vec<Rule>, ParseReport) {
        parse_str(input, Format::Hosts)
    }

    #[test]
    fn every_address_form_blocks_exact_names() {
        let input = "0.0.0.0 a.com\n127.0.0.1 b.com\n:: c.com\n::1 d.com\n10.1.2.3 e.com\n";
        let (rules, report) = hosts(input);
        assert_eq!(
            rules,
            ["a.com", "b.com", "c.com", "d.com", "e.com"].map(exact)
        );
        assert_eq!(report.accepted, 5);
        assert_eq!(report.format, Format::Hosts);
    }

    #[test]
    fn several_names_tabs_comments_and_case() {
        let input = "\u{feff}# title\r\n0.0.0.0\tA.com  b.com.\tbücher.example # note\r\n\
                     0.0.0.0 xn--bcher-kva.example#glued comment\r\n\t\r\n#0.0.0.0 off.com\r\n";
        let (rules, report) = hosts(input);
        assert_eq!(
            rules,
            [
                "a.com",
                "b.com",
                "xn--bcher-kva.example",
                "xn--bcher-kva.example"
            ]
            .map(exact)
        );
        assert_eq!(report.lines, 5);
        assert!(report.rejected.is_empty());
    }

    #[test]
    fn localhost_preamble_is_skipped_silently() {
        let input = "127.0.0.1 localhost\n127.0.0.1 localhost.localdomain\n127.0.0.1 local\n\
                     255.255.255.255 broadcasthost\n::1 localhost ip6-localhost ip6-loopback\n\
                     fe80::1%lo0 localhost\nff02::1 ip6-allnodes\n0.0.0.0 0.0.0.0\n\
                     127.0.0.1 LOCALHOST.\n0.0.0.0 ip6-x.example.com\n";
        let (rules, report) = hosts(input);
        assert_eq!(rules, [exact("ip6-x.example.com")]);
        // `fe80::1%lo0` has a zone id, which std does not parse: the line is malformed.
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&1));
        assert_eq!(report.rejected_total(), 1);
    }

    #[test]
    fn spellings_that_normalize_to_a_local_name_are_skipped_too() {
        // Found by the parse_hosts fuzz target (first line, as minimized): IDNA drops U+FEFF,
        // so `broad\u{feff}casthost` normalized to `broadcasthost` and became a rule.
        // Fullwidth letters and a soft hyphen map to local names the same way.
        let input = "55.255.2.5 broad\u{feff}casthost\n\
                     127.0.0.1 ｌｏｃａｌｈｏｓｔ LOCAL\u{ad}HOST.localdomain ｉｐ6-ｌｏｃａｌｈｏｓｔ\n\
                     0.0.0.0 ｌｏｃａｌｈｏｓｔ.example\n";
        let (rules, report) = hosts(input);
        assert_eq!(rules, [exact("localhost.example")]);
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(report.unsupported, 0);
    }

    #[test]
    fn garbage_is_counted_by_reason() {
        // Sinfonietta's first line glues two names together; it is still a valid name.
        let input = "0.0.0.0 rahaporn.commanhwax.top\nexample.com\n0.0.0.0\n300.1.1.1 a.com\n\
                     0.0.0.0 1.2.3.4\n0.0.0.0 a..b bad_ok.com *.c.com\n";
        let (rules, report) = hosts(input);
        assert_eq!(
            rules,
            [exact("rahaporn.commanhwax.top"), exact("bad_ok.com")]
        );
        assert_eq!(report.rejected.get(&Reject::Malformed), Some(&3));
        assert_eq!(report.rejected.get(&Reject::IpAddress), Some(&1));
        assert_eq!(report.rejected.get(&Reject::EmptyLabel), Some(&1));
        assert_eq!(report.rejected.get(&Reject::BadCharacter), Some(&1));
    }
}
