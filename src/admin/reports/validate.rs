//! Checks on what the public sends, before anything is written: the name (normalized as the
//! block lists spell it), the category, and the note (cleaned of control and bidi characters).

use std::borrow::Cow;

use super::{MAX_CATEGORY_LEN, MAX_CONTACT_CHARS, MAX_NOTE_CHARS, ReportError};
use crate::lists::normalize::{Reject, normalize};

/// Raw name input longer than this is rejected before normalization (a name is at most 253
/// octets; this leaves room for U-labels, which are longer than their A-labels in bytes).
pub(super) const MAX_NAME_INPUT: usize = 1024;
/// Raw note input longer than this (in bytes) is rejected before cleaning (16 bytes per
/// character allowed, as for every cleaned text field).
#[cfg(test)]
pub(super) const MAX_NOTE_INPUT: usize = 16 * MAX_NOTE_CHARS;

/// Longest idempotency key, in bytes.
pub(super) const MAX_KEY_LEN: usize = 64;

/// What the reporter meant by `raw`: a URL (`https://Bad.Example/x?y`, or `bad.example/x`
/// without a scheme) stands for its host; anything else is taken as a name.
fn host_of(raw: &str) -> Result<Cow<'_, str>, ReportError> {
    let looks_like_url = raw.contains("://") || raw.contains(['/', '?', '#']);
    if !looks_like_url {
        return Ok(Cow::Borrowed(raw));
    }
    let parsed = if raw.contains("://") {
        url::Url::parse(raw)
    } else {
        url::Url::parse(&format!("http://{raw}"))
    };
    let not_a_url = || {
        ReportError::invalid(
            "name",
            "not a host name nor a URL with one; send e.g. www.example.com",
        )
    };
    match parsed.map_err(|_| not_a_url())?.host() {
        Some(url::Host::Domain(host)) => Ok(Cow::Owned(host.to_owned())),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => Err(ip_address()),
        None => Err(not_a_url()),
    }
}

fn ip_address() -> ReportError {
    ReportError::invalid(
        "name",
        "an IP address; reports name a host (e.g. www.example.com), not an address",
    )
}

/// The normalized name, or why it is not a host name we take reports for.
pub(super) fn validate_name(raw: &str) -> Result<String, ReportError> {
    let raw = raw.trim();
    if raw.len() > MAX_NAME_INPUT {
        return Err(ReportError::invalid(
            "name",
            "too long to be a host name (a name is at most 253 octets)",
        ));
    }
    if raw
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return Err(ip_address());
    }
    let host = host_of(raw)?;
    normalize(&host).map(|n| n.into_owned()).map_err(|reject| {
        let reason = match reject {
            Reject::EmptyName => "empty",
            Reject::EmptyLabel => "empty label (a leading dot or two dots in a row)",
            Reject::LabelTooLong => "a label is longer than 63 octets",
            Reject::NameTooLong => "longer than 253 octets",
            Reject::BadCharacter => {
                "only letters, digits, '-', '_' and '.' are allowed; \
                 send a host name such as www.example.com, not a URL"
            }
            Reject::IpAddress => return ip_address(),
            Reject::BadIdn => "not a valid internationalized domain name",
            other => other.as_str(),
        };
        ReportError::invalid("name", reason)
    })
}

/// An idempotency key, if well-formed.
pub(super) fn validate_key(raw: &str) -> Result<&str, ReportError> {
    if raw.is_empty()
        || raw.len() > MAX_KEY_LEN
        || !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ReportError::invalid(
            "key",
            format!("1 to {MAX_KEY_LEN} characters of A-Z, a-z, 0-9, '-' and '_'"),
        ));
    }
    Ok(raw)
}

/// The category, if well-formed (and one of `allowed`, when given).
pub(super) fn validate_category<'a>(
    raw: &'a str,
    allowed: Option<&[String]>,
) -> Result<&'a str, ReportError> {
    if raw.is_empty() {
        return Err(ReportError::invalid("category", "empty"));
    }
    if raw.len() > MAX_CATEGORY_LEN {
        return Err(ReportError::invalid(
            "category",
            format!("longer than {MAX_CATEGORY_LEN} characters"),
        ));
    }
    if !raw.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        || raw.starts_with(' ')
        || raw.ends_with(' ')
    {
        return Err(ReportError::invalid(
            "category",
            "only printable ASCII characters are allowed, without leading or trailing spaces",
        ));
    }
    if let Some(allowed) = allowed
        && !allowed.iter().any(|c| c == raw)
    {
        return Err(ReportError::invalid(
            "category",
            format!(
                "unknown category {raw:?}; expected one of: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(raw)
}

/// Bidirectional formatting characters: they can make a note display as something other
/// than what it says ("Trojan Source"), so they are removed.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// The cleaned note, `None` if nothing is left, or why it is refused.
pub(super) fn clean_note(raw: &str) -> Result<Option<String>, ReportError> {
    clean_text(raw, "note", MAX_NOTE_CHARS)
}

/// The cleaned contact (as a note, but shorter), `None` if nothing is left.
pub(super) fn clean_contact(raw: &str) -> Result<Option<String>, ReportError> {
    clean_text(raw, "contact", MAX_CONTACT_CHARS)
}

/// Free text cleaned of control and bidi characters and trimmed: `None` if nothing is
/// left, or `field` refused as longer than `max_chars`.
fn clean_text(
    raw: &str,
    field: &'static str,
    max_chars: usize,
) -> Result<Option<String>, ReportError> {
    let too_long = || ReportError::invalid(field, format!("longer than {max_chars} characters"));
    if raw.len() > 16 * max_chars {
        return Err(too_long());
    }
    let cleaned: String = raw
        .chars()
        .filter(|&c| !is_bidi_control(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() > max_chars {
        return Err(too_long());
    }
    Ok((!cleaned.is_empty()).then(|| cleaned.to_owned()))
}
