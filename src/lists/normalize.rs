//! One canonical spelling for DNS names, shared by list entries and queries.
//!
//! Lists and queries must agree byte for byte, so both go through [`normalize`]: one trailing
//! dot dropped, lowercase, IDN U-labels turned into A-labels (`bücher.example` and
//! `xn--bcher-kva.example` are the same name), then checked against DNS limits.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// Longest label in octets (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;
/// Longest name in presentation form without the trailing dot: 255 octets on the wire
/// minus the length octets and the root label.
const MAX_NAME: usize = 253;

/// Why a name or line was rejected. Ord so it can key a BTreeMap; Display gives a short
/// snake_case reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Nothing left once the trailing dot is gone.
    EmptyName,
    /// Two dots in a row, or a leading dot.
    EmptyLabel,
    /// A label longer than 63 octets (after IDN conversion).
    LabelTooLong,
    /// A name longer than 253 octets (after IDN conversion).
    NameTooLong,
    /// A character outside `[a-z0-9-_]` in a label.
    BadCharacter,
    /// An IPv4 or IPv6 address where a name was expected.
    IpAddress,
    /// A U-label that cannot be converted, or an `xn--` label that does not decode.
    BadIdn,
    /// The line is not valid UTF-8.
    NotUtf8,
    /// The line does not have the shape its format requires.
    Malformed,
    /// A URL (`https://host/path`) where a name was expected: list the host instead.
    Url,
    /// Valid syntax the resolver cannot express at the DNS level (cosmetic rules, paths,
    /// options, RPZ actions we do not implement).
    Unsupported,
}

impl Reject {
    /// Every reason, in `Ord` order.
    pub const ALL: [Reject; 11] = [
        Reject::EmptyName,
        Reject::EmptyLabel,
        Reject::LabelTooLong,
        Reject::NameTooLong,
        Reject::BadCharacter,
        Reject::IpAddress,
        Reject::BadIdn,
        Reject::NotUtf8,
        Reject::Malformed,
        Reject::Url,
        Reject::Unsupported,
    ];

    /// The short snake_case reason, e.g. `"empty_label"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::EmptyName => "empty_name",
            Reject::EmptyLabel => "empty_label",
            Reject::LabelTooLong => "label_too_long",
            Reject::NameTooLong => "name_too_long",
            Reject::BadCharacter => "bad_character",
            Reject::IpAddress => "ip_address",
            Reject::BadIdn => "bad_idn",
            Reject::NotUtf8 => "not_utf8",
            Reject::Malformed => "malformed",
            Reject::Url => "url",
            Reject::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Normalize a DNS name the same way for list entries and for queries.
///
/// Strips ONE trailing dot, lowercases, converts IDN U-labels to A-labels, then validates:
/// no empty labels, labels of at most 63 octets, names of at most 253 octets, characters
/// `[a-z0-9-_]` only (underscore is allowed: `_dmarc` and friends are real names), and no
/// IPv4/IPv6 addresses ([`Reject::IpAddress`]).
///
/// Already-canonical input (lowercase ASCII `[a-z0-9-_.]` without `xn--` labels, the common
/// case for lists and queries alike) takes a fast path that neither allocates nor calls
/// `idna`, and returns a borrowed subslice. `xn--` labels always go through `idna` so a label
/// that does not decode is rejected as [`Reject::BadIdn`] wherever it comes from.
pub fn normalize(name: &str) -> Result<Cow<'_, str>, Reject> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() {
        return Err(Reject::EmptyName);
    }
    match check(body, false) {
        Check::Valid => Ok(Cow::Borrowed(body)),
        Check::Invalid(reason) => Err(reason),
        Check::NotCanonical => {
            let ascii = to_ascii(body)?;
            match check(&ascii, true) {
                Check::Valid => Ok(Cow::Owned(ascii)),
                Check::Invalid(reason) => Err(reason),
                // ToASCII passes ASCII through, so this is a stray `*`, `/`, `:`, space...
                Check::NotCanonical => Err(invalid_reason(&ascii)),
            }
        }
    }
}

/// What one pass over a name found.
enum Check {
    /// Canonical and within every limit.
    Valid,
    /// Canonical characters, but some limit is broken.
    Invalid(Reject),
    /// Uppercase, non-ASCII, a character outside `[a-z0-9-_.]`, or an `xn--` label still to
    /// be checked by IDNA.
    NotCanonical,
}

/// All DNS checks in one pass over the bytes, without allocating; bails out with
/// [`Check::NotCanonical`] at the first byte that needs the slow path. `idna_checked` says
/// `xn--` labels have already been through IDNA.
fn check(name: &str, idna_checked: bool) -> Check {
    let bytes = name.as_bytes();
    let mut label_len = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'.' => {
                if let Some(reason) = label_error(label_len) {
                    return Check::Invalid(reason);
                }
                label_len = 0;
                continue;
            }
            b'a'..=b'z' | b'0'..=b'9' | b'_' => {}
            // `xn--`: the second hyphen of a label that starts with "xn-".
            b'-' if !idna_checked && label_len == 3 && bytes[i - 3..i] == *b"xn-" => {
                return Check::NotCanonical;
            }
            b'-' => {}
            _ => return Check::NotCanonical,
        }
        label_len += 1;
    }
    if let Some(reason) = label_error(label_len) {
        return Check::Invalid(reason);
    }
    if bytes.len() > MAX_NAME {
        return Check::Invalid(Reject::NameTooLong);
    }
    // Only a name ending in a digit can be an IPv4 literal; skip the parse otherwise.
    if bytes.last().is_some_and(u8::is_ascii_digit) && name.parse::<Ipv4Addr>().is_ok() {
        return Check::Invalid(Reject::IpAddress);
    }
    Check::Valid
}

fn label_error(len: usize) -> Option<Reject> {
    match len {
        0 => Some(Reject::EmptyLabel),
        1..=MAX_LABEL => None,
        _ => Some(Reject::LabelTooLong),
    }
}

/// The reason for a name with characters no DNS name here may have: IPv6 literals contain
/// `:`, so they land here too.
fn invalid_reason(name: &str) -> Reject {
    if name.parse::<IpAddr>().is_ok() {
        Reject::IpAddress
    } else {
        Reject::BadCharacter
    }
}

/// UTS 46 ToASCII: case folding, NFC, punycode, and decoding checks on `xn--` labels.
///
/// No ASCII deny list and no hyphen or length checks here: [`check`] applies this module's
/// own rules to the result so the fast and slow paths accept exactly the same names.
fn to_ascii(body: &str) -> Result<String, Reject> {
    Uts46::new()
        .to_ascii(
            body.as_bytes(),
            AsciiDenyList::EMPTY,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map(Cow::into_owned)
        .map_err(|_| Reject::BadIdn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        match normalize(input) {
            Ok(name) => name.into_owned(),
            Err(reason) => panic!("{input:?} rejected: {reason}"),
        }
    }

    fn err(input: &str) -> Reject {
        match normalize(input) {
            Ok(name) => panic!("{input:?} accepted as {name:?}"),
            Err(reason) => reason,
        }
    }

    #[test]
    fn fast_path_borrows_a_subslice() {
        let input = "www.example.com.";
        let out = normalize(input);
        assert!(matches!(out, Ok(Cow::Borrowed("www.example.com"))));
        assert!(matches!(
            normalize("_dmarc.mail-1.example.com"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn uppercase_allocates_and_lowercases() {
        let out = normalize("WWW.Example.COM.");
        assert!(matches!(&out, Ok(Cow::Owned(s)) if s == "www.example.com"));
    }

    #[test]
    fn u_label_and_a_label_agree() {
        assert_eq!(ok("bücher.example"), "xn--bcher-kva.example");
        assert_eq!(ok("BÜCHER.example."), "xn--bcher-kva.example");
        assert_eq!(ok("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(ok("XN--BCHER-KVA.EXAMPLE"), "xn--bcher-kva.example");
        assert_eq!(ok("例え.テスト"), "xn--r8jz45g.xn--zckzah");
    }

    #[test]
    fn idna_output_renormalizes_to_itself() {
        for input in [
            "bücher.example",
            "例え.テスト",
            "Ｅｘａｍｐｌｅ.com",
            "straße.de",
        ] {
            let once = ok(input);
            assert_eq!(ok(&once), once, "{input}");
        }
    }

    #[test]
    fn every_name_reason() {
        assert_eq!(err(""), Reject::EmptyName);
        assert_eq!(err("."), Reject::EmptyName);
        assert_eq!(err("a..b"), Reject::EmptyLabel);
        assert_eq!(err(".a.b"), Reject::EmptyLabel);
        assert_eq!(err("a.b.."), Reject::EmptyLabel);
        assert_eq!(err("A..B"), Reject::EmptyLabel);
        assert_eq!(err(&"a".repeat(64)), Reject::LabelTooLong);
        assert_eq!(err("a b.com"), Reject::BadCharacter);
        assert_eq!(err("*.example.com"), Reject::BadCharacter);
        assert_eq!(err("example.com/ads"), Reject::BadCharacter);
        assert_eq!(err("Ex!ample.com"), Reject::BadCharacter);
        assert_eq!(err("1.2.3.4"), Reject::IpAddress);
        assert_eq!(err("1.2.3.4."), Reject::IpAddress);
        assert_eq!(err("::1"), Reject::IpAddress);
        assert_eq!(err("2001:db8::1"), Reject::IpAddress);
        assert_eq!(err("::ffff:1.2.3.4"), Reject::IpAddress);
        assert_eq!(err("xn--zz.example"), Reject::BadIdn);
        assert_eq!(err("xn--a.example"), Reject::BadIdn);
        assert_eq!(err("\u{fffd}.example"), Reject::BadIdn);
    }

    #[test]
    fn numeric_names_that_are_not_addresses_pass() {
        assert_eq!(ok("1.2.3"), "1.2.3");
        assert_eq!(ok("123.example.com"), "123.example.com");
        assert_eq!(ok("1.2.3.4.example"), "1.2.3.4.example");
    }

    #[test]
    fn label_length_limit_is_63_octets() {
        let l63 = "a".repeat(63);
        assert_eq!(ok(&format!("{l63}.com")), format!("{l63}.com"));
        assert_eq!(err(&format!("{l63}a.com")), Reject::LabelTooLong);
        assert_eq!(
            err(&format!("{}.com", "A".repeat(64))),
            Reject::LabelTooLong
        );
        // The limit applies to the A-label: 30 distinct CJK characters need far more.
        let wide: String = (0..30u32)
            .filter_map(|i| char::from_u32(0x4e00 + i * 97))
            .collect();
        assert!(wide.len() <= 90);
        assert_eq!(err(&format!("{wide}.com")), Reject::LabelTooLong);
    }

    #[test]
    fn name_length_limit_is_253_octets() {
        let l63 = "a".repeat(63);
        // 3 × (63 + dot) = 192 octets, then a last label of 61 or 62.
        let n253 = format!("{l63}.{l63}.{l63}.{}", "b".repeat(61));
        assert_eq!(n253.len(), 253);
        assert_eq!(ok(&n253), n253);
        assert_eq!(
            ok(&format!("{n253}.")),
            n253,
            "the trailing dot does not count"
        );
        let n254 = format!("{l63}.{l63}.{l63}.{}", "b".repeat(62));
        assert_eq!(n254.len(), 254);
        assert_eq!(err(&n254), Reject::NameTooLong);
        assert_eq!(err(&n254.to_uppercase()), Reject::NameTooLong);
        // The limit applies after IDN conversion: "ü" + 55 × "a" is 57 octets of UTF-8 but a
        // 63-octet A-label, so two of them push a 243-octet input to 255 octets.
        let grow = |n| format!("{l63}.{l63}.ü{0}.ü{0}", "a".repeat(n));
        assert_eq!(grow(55).len(), 243);
        assert_eq!(err(&grow(55)), Reject::NameTooLong);
        assert_eq!(ok(&grow(54)).len(), 253);
    }

    #[test]
    fn only_one_trailing_dot_is_stripped() {
        assert_eq!(ok("example.com."), "example.com");
        assert_eq!(err("example.com.."), Reject::EmptyLabel);
    }

    #[test]
    fn hyphens_and_underscores_are_kept() {
        assert_eq!(ok("-a-.b_c.example"), "-a-.b_c.example");
        assert_eq!(ok("ab--cd.example"), "ab--cd.example");
    }

    #[test]
    fn reasons_display_as_snake_case() {
        let names: Vec<String> = Reject::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "empty_name",
                "empty_label",
                "label_too_long",
                "name_too_long",
                "bad_character",
                "ip_address",
                "bad_idn",
                "not_utf8",
                "malformed",
                "url",
                "unsupported"
            ]
        );
        let mut sorted = Reject::ALL;
        sorted.sort();
        assert_eq!(sorted, Reject::ALL);
    }
}
