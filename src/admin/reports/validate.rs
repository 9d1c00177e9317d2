//! Checks on what the public sends, before anything is written: the name (normalized as the
//! block lists spell it), the category, and the note (cleaned of control and bidi characters).

use super::{MAX_CATEGORY_LEN, MAX_NOTE_CHARS, ReportError};
use crate::lists::normalize::{Reject, normalize};

/// Raw name input longer than this is rejected before normalization (a name is at most 253
/// octets; this leaves room for U-labels, which are longer than their A-labels in bytes).
pub(super) const MAX_NAME_INPUT: usize = 1024;
/// Raw note input longer than this (in bytes) is rejected before cleaning.
pub(super) const MAX_NOTE_INPUT: usize = 16 * MAX_NOTE_CHARS;

/// The normalized name, or why it is not a host name we take reports for.
pub(super) fn validate_name(raw: &str) -> Result<String, ReportError> {
    let raw = raw.trim();
    if raw.len() > MAX_NAME_INPUT {
        return Err(ReportError::invalid("name", "too long to be a host name"));
    }
    normalize(raw).map(|n| n.into_owned()).map_err(|reject| {
        let reason = match reject {
            Reject::EmptyName => "empty",
            Reject::EmptyLabel => "empty label (a leading dot or two dots in a row)",
            Reject::LabelTooLong => "a label is longer than 63 octets",
            Reject::NameTooLong => "longer than 253 octets",
            Reject::BadCharacter => {
                "only letters, digits, '-', '_' and '.' are allowed; \
                 send a host name such as www.example.com, not a URL"
            }
            Reject::IpAddress => "an IP address; send a host name",
            Reject::BadIdn => "not a valid internationalized domain name",
            other => other.as_str(),
        };
        ReportError::invalid("name", reason)
    })
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
    let too_long =
        || ReportError::invalid("note", format!("longer than {MAX_NOTE_CHARS} characters"));
    if raw.len() > MAX_NOTE_INPUT {
        return Err(too_long());
    }
    let cleaned: String = raw
        .chars()
        .filter(|&c| !is_bidi_control(c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.chars().count() > MAX_NOTE_CHARS {
        return Err(too_long());
    }
    Ok((!cleaned.is_empty()).then(|| cleaned.to_owned()))
}
